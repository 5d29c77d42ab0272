"""A scheduled retrain on its own: real celery beat (database scheduler), real worker, real Redis."""
from __future__ import annotations

import importlib
import time

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from labeling.models import AnnotatorStats, Assignment, Vote
from rewardmodel import services
from rewardmodel.models import ModelVersion, TrainingRun
from rewardmodel.schedules import SCHEDULES, beat_schedules_ensure
from tests.rewardmodel.conftest import make_labelled_project
from tests.rewardmodel.workers import start_beat, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_schedules_are_editable_rows_created_once(db):
    # given the rows (migrations 0003 and 0004 create them; a flush by an earlier test may have removed them)
    beat_schedules_ensure()
    tasks = dict(PeriodicTask.objects.values_list("task", "interval__every"))
    assert tasks["rewardmodel.tasks.retrain_due_projects"] == 60
    assert tasks["rewardmodel.tasks.reconcile_runs"] == 30
    assert tasks["labeling.aggregates_fold"] == 5
    # when an admin edits one and the rows are ensured again, the edit stays
    PeriodicTask.objects.filter(task="rewardmodel.tasks.reconcile_runs").update(enabled=False)
    beat_schedules_ensure()
    assert PeriodicTask.objects.filter(task__startswith="rewardmodel.").count() == 2
    assert not PeriodicTask.objects.get(task="rewardmodel.tasks.reconcile_runs").enabled


def test_migration_and_service_define_the_same_schedules():
    migrated = []
    for name in ("0003_periodic_tasks", "0004_fold_schedule"):
        migrated += importlib.import_module(f"rewardmodel.migrations.{name}").SCHEDULES
    assert migrated == SCHEDULES


def test_after_n_new_votes_beat_retrains_on_its_own(transactional_db, rm_settings, annotator_user, client,
                                                    celery_worker, tmp_path):
    # given a project one vote short of its threshold, and beat checking every second
    project = make_labelled_project(members=[annotator_user], overlap_target=4)
    services.retrain_policy_update(project=project, min_new_votes=Vote.objects.filter(project=project).count() + 1)
    beat_schedules_ensure()
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="rewardmodel.tasks.retrain_due_projects").update(interval=every_second)
    beat = start_beat(log_dir=tmp_path / "logs")
    try:
        wait_for(lambda: "retrain_due_projects" in beat.log(), timeout=30, what="beat to send its first tick")
        time.sleep(1.5)
        assert not TrainingRun.objects.exists()
        # when an annotator casts the N-th new vote
        client.force_login(annotator_user)
        client.get(reverse("label", args=[project.slug]))
        assignment = Assignment.objects.get(annotator__user=annotator_user)
        client.post(reverse("label-vote", args=[project.slug, assignment.pk]), {"choice": "left"})
        # then a scheduled run appears by itself and produces a live version
        run = wait_for(lambda: TrainingRun.objects.filter(project=project).first(), timeout=30,
                       what="a scheduled run")
        assert run.trigger == TrainingRun.Trigger.SCHEDULE
        run = wait_for(lambda: (r := TrainingRun.objects.get(pk=run.pk)).status in ("succeeded", "failed") and r,
                       timeout=120, what="the scheduled run to finish")
        assert run.status == "succeeded", run.error
        assert ModelVersion.objects.get(run=run).is_active
    finally:
        beat.kill()


def test_beat_folds_live_votes_into_the_dashboard_aggregates(transactional_db, rm_settings, annotator_user, client,
                                                             celery_worker, tmp_path):
    # given beat folding every second, and an annotator's live vote
    project = make_labelled_project(members=[annotator_user], overlap_target=4)
    beat_schedules_ensure()
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="labeling.aggregates_fold").update(interval=every_second)
    beat = start_beat(log_dir=tmp_path / "logs")
    try:
        client.force_login(annotator_user)
        client.get(reverse("label", args=[project.slug]))
        assignment = Assignment.objects.get(annotator__user=annotator_user)
        client.post(reverse("label-vote", args=[project.slug, assignment.pk]), {"choice": "left"})
        vote = Vote.objects.get(assignment=assignment)
        # when beat's task has run on the worker
        wait_for(lambda: Vote.objects.get(pk=vote.pk).in_aggregates, timeout=30, what="beat to fold the vote")
        # then the annotator's own figures count it
        assert AnnotatorStats.objects.get(project=project, annotator__user=annotator_user).votes == 1
    finally:
        beat.kill()
