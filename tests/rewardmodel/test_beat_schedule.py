"""A scheduled retrain on its own: real celery beat (database scheduler), real worker, real Redis."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from dashboard import schedules as dashboard_schedules
from dashboard.models import AnnotatorStats
from labeling import schedules as labeling_schedules
from labeling.models import Assignment, Vote
from lib.beat import periodic_tasks_ensure
from rewardmodel import schedules as rewardmodel_schedules
from rewardmodel import services
from rewardmodel.models import ModelVersion, TrainingRun
from tests.rewardmodel.conftest import make_labelled_project
from tests.rewardmodel.workers import start_beat, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_schedules_are_editable_rows_created_once(db):
    # given the rows (created after migrate; a flush by an earlier test may have removed them)
    periodic_tasks_ensure()
    tasks = dict(PeriodicTask.objects.values_list("task", "interval__every"))
    assert tasks["rewardmodel.tasks.retrain_due_projects"] == 60
    assert tasks["rewardmodel.tasks.reconcile_runs"] == 30
    assert tasks["rewardmodel.tasks.retrain_heads_due"] == 5
    assert tasks["dashboard.aggregates_fold"] == 5
    assert tasks["dashboard.reliability_refit"] == 300
    assert tasks["rewardmodel.tasks.prune_models"] == 3600
    assert tasks["labeling.import_jobs_reconcile"] == 60
    # when an admin edits one and the rows are ensured again, the edit stays
    PeriodicTask.objects.filter(task="rewardmodel.tasks.reconcile_runs").update(enabled=False)
    periodic_tasks_ensure()
    assert PeriodicTask.objects.filter(task__startswith="rewardmodel.").count() == 4
    assert not PeriodicTask.objects.get(task="rewardmodel.tasks.reconcile_runs").enabled


def test_a_renamed_task_keeps_its_row_and_follows_the_code(db):
    # given a row from before the fold task moved to the dashboard app, with an edited interval
    periodic_tasks_ensure()
    every_ten, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="dashboard.aggregates_fold").update(
        task="labeling.aggregates_fold", interval=every_ten
    )
    # when the rows are ensured
    periodic_tasks_ensure()
    # then the same row runs the task under its new name, at the edited interval
    row = PeriodicTask.objects.get(name="Fold live votes into the dashboard aggregates")
    assert (row.task, row.interval.every) == ("dashboard.aggregates_fold", 10)


def test_each_periodic_task_is_declared_once_by_the_app_that_runs_it():
    specs = [*labeling_schedules.SCHEDULES, *rewardmodel_schedules.SCHEDULES, *dashboard_schedules.SCHEDULES]
    assert sorted(s.task for s in specs) == [
        "dashboard.aggregates_fold",
        "dashboard.reliability_refit",
        "labeling.import_jobs_reconcile",
        "rewardmodel.tasks.prune_models",
        "rewardmodel.tasks.reconcile_runs",
        "rewardmodel.tasks.retrain_due_projects",
        "rewardmodel.tasks.retrain_heads_due",
    ]
    assert len({s.name for s in specs}) == len(specs)
    # and no migration holds a copy of them any more
    from pathlib import Path

    for migration in Path(__file__).resolve().parents[2].glob("*/migrations/*.py"):
        assert "PeriodicTask" not in migration.read_text(), migration


def test_after_n_new_votes_beat_retrains_on_its_own(
    transactional_db, rm_settings, annotator_user, client, celery_worker, tmp_path
):
    # given a project one vote short of its threshold, and beat checking every second
    project = make_labelled_project(members=[annotator_user], overlap_target=4)
    # (heads off: this is about the fine-tune's schedule; tests/rewardmodel/test_heads.py covers the heads')
    services.retrain_policy_update(
        project=project, min_new_votes=Vote.objects.filter(project=project).count() + 1, head_enabled=False
    )
    periodic_tasks_ensure()
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
        run = wait_for(lambda: TrainingRun.objects.filter(project=project).first(), timeout=30, what="a scheduled run")
        assert run.trigger == TrainingRun.Trigger.SCHEDULE
        run = wait_for(
            lambda: (r := TrainingRun.objects.get(pk=run.pk)).status in ("succeeded", "failed") and r,
            timeout=120,
            what="the scheduled run to finish",
        )
        assert run.status == "succeeded", run.error
        assert ModelVersion.objects.get(run=run).is_active
    finally:
        beat.kill()


def test_beat_folds_live_votes_into_the_dashboard_aggregates(
    transactional_db, rm_settings, annotator_user, client, celery_worker, tmp_path
):
    # given beat folding every second, and an annotator's live vote
    project = make_labelled_project(members=[annotator_user], overlap_target=4)
    periodic_tasks_ensure()
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="dashboard.aggregates_fold").update(interval=every_second)
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
