"""Model folders over months: pruning, pinning, free disk, leftovers from another
database, and never deleting a folder that a version points to."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from lib.errors import Conflict
from rewardmodel import artifacts, execution, retention, services
from rewardmodel.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

Status = TrainingRun.Status


@pytest.fixture
def no_broker(monkeypatch):
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)


def _run(project) -> TrainingRun:
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.ADMIN)
    execution.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def _folder_version(project, number: int, *, live: bool = False, was_live: bool = False, pinned: bool = False):
    """A version whose folder holds one file, recorded as a worker would."""
    run = TrainingRun.objects.create(project=project, trigger="cli", status=Status.SUCCEEDED)
    folder = artifacts.final_dir(project_id=project.pk, run_id=run.pk, attempt=1, key=run.artifact_key)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    return ModelVersion.objects.create(
        project=project,
        run=run,
        number=number,
        artifact_dir=str(folder),
        is_active=live,
        pinned=pinned,
        promoted_at=timezone.now() if (live or was_live) else None,
        checksums=artifacts.checksums_compute(folder=folder),
        metrics={"held_out_accuracy": 0.8, "eval_loss": 0.5, "reward_mean": 0.0, "reward_std": 1.0},
    )


def test_pruning_keeps_the_live_last_n_pinned_and_compared_versions(labelled_project, settings, admin_user):
    # given six versions: v1 pinned, v2 once live, v5 live; keep the last 2, compare with the last 1 live
    settings.RM_KEEP_VERSIONS, settings.RM_PROMOTION_LOOKBACK = 2, 2
    v = {n: _folder_version(labelled_project, n, pinned=n == 1, was_live=n == 2, live=n == 5) for n in range(1, 7)}
    # when pruned
    report = retention.model_versions_prune(project_id=labelled_project.pk)
    # then v3 and v4 lost their folders, and their rows say so; the others are whole
    assert sorted(report.pruned) == [3, 4]
    for n, version in v.items():
        version.refresh_from_db()
        assert Path(version.artifact_dir).exists() is (n not in (3, 4))
        assert (version.pruned_at is not None) is (n in (3, 4))
    # and a pruned version cannot go live, nor be pinned
    with pytest.raises(Conflict, match="pruned"):
        services.model_version_activate(version=v[3], user=admin_user)
    with pytest.raises(Exception, match="pruned"):
        retention.model_version_pin(version=v[4], pinned=True)
    # and pruning again does nothing more
    assert retention.model_versions_prune(project_id=labelled_project.pk).pruned == []


def test_a_fresh_database_beside_an_old_artifact_store_trains_and_reports_the_leftovers(
    labelled_project, no_broker, client, admin_user
):
    # given the folders an earlier database left where this one's run 1 would go
    root = artifacts.project_dir(project_id=labelled_project.pk)
    old = [root / "run-1-a1", root / "run-1-a1-0123456789ab"]
    for folder in old:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"someone else's")
    # when this database's first run trains
    run = _run(labelled_project)
    # then it succeeds, in a folder of its own
    assert run.status == Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(run=run)
    assert Path(version.artifact_dir).name == f"run-{run.pk}-a1-{run.artifact_key}"
    # and the leftovers are reported, never deleted
    report = retention.model_versions_prune(project_id=labelled_project.pk)
    assert sorted(report.leftovers) == sorted(f.name for f in old)
    assert all(f.exists() for f in old)
    client.force_login(admin_user)
    page = client.get(reverse("rewardmodel:runs", args=[labelled_project.slug])).content.decode()
    assert 'data-testid="leftover-folders"' in page and "run-1-a1-0123456789ab" in page


def test_a_lost_acknowledgement_of_the_recorded_version_keeps_its_folder(labelled_project, no_broker, monkeypatch):
    # given a database connection that breaks just after the version's transaction commits
    real = services.training_run_succeed

    def commit_then_lose_the_answer(**kwargs):
        real(**kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "training_run_succeed", commit_then_lose_the_answer)
    # when the run records its version
    run = _run(labelled_project)
    # then the committed version is live and its folder is still there, whole
    version = ModelVersion.objects.get(run=run)
    assert run.status == Status.SUCCEEDED and version.is_active
    assert artifacts.checksums_mismatched(folder=Path(version.artifact_dir), expected=version.checksums) == []


def test_cleanup_never_deletes_a_folder_a_version_points_to(labelled_project):
    version = _folder_version(labelled_project, 1, live=True)
    assert artifacts.folder_remove_unless_versioned(folder=Path(version.artifact_dir)) is False
    assert Path(version.artifact_dir).exists()
    run = version.run
    artifacts.attempt_files_remove(project_id=labelled_project.pk, run_id=run.pk, attempt=1, key=run.artifact_key)
    assert Path(version.artifact_dir).exists()


def test_an_orphan_folder_of_a_finished_attempt_is_removed_by_pruning(labelled_project):
    # given a folder published by an attempt that died before recording its version
    run = TrainingRun.objects.create(project=labelled_project, trigger="cli", status=Status.FAILED, attempt=1)
    orphan = artifacts.final_dir(project_id=labelled_project.pk, run_id=run.pk, attempt=1, key=run.artifact_key)
    orphan.mkdir(parents=True)
    # and one of an attempt that is still running (it is about to record it)
    busy = TrainingRun.objects.create(project=labelled_project, trigger="cli", status=Status.RUNNING, attempt=1)
    publishing = artifacts.final_dir(project_id=labelled_project.pk, run_id=busy.pk, attempt=1, key=busy.artifact_key)
    publishing.mkdir(parents=True)
    # when pruned
    report = retention.model_versions_prune(project_id=labelled_project.pk)
    # then only the finished attempt's folder goes
    assert report.orphans_removed == [orphan.name] and not orphan.exists() and publishing.exists()


def test_no_free_disk_fails_the_run_before_training_and_writes_nothing(labelled_project, no_broker, settings):
    # given a disk with less room than the reserve
    settings.RM_MIN_FREE_DISK_MB = 1 << 40
    # when a run starts
    run = _run(labelled_project)
    # then it fails saying so, and nothing is on disk
    assert run.status == Status.FAILED
    assert run.error.startswith("Not enough free disk space to train")
    assert artifacts.project_folders(project_id=labelled_project.pk) == []
    assert not list(artifacts.project_dir(project_id=labelled_project.pk).glob(".tmp-*"))


def test_disk_full_at_publish_fails_the_run_and_the_live_version_stays(labelled_project, no_broker, monkeypatch):
    # given a live version
    first = _run(labelled_project)
    live = ModelVersion.objects.get(run=first)
    # and a disk that fills up while the next run trains (a fake: this machine's disk cannot be filled)
    real = artifacts.free_space_check

    def full_at_publish(*, what):
        if "publish" in what:
            raise artifacts.DiskSpaceLow(f"Not enough free disk space {what}: 3 MB free")
        real(what=what)

    monkeypatch.setattr(artifacts, "free_space_check", full_at_publish)
    # when it reaches publishing
    run = _run(labelled_project)
    # then it fails with the reason, leaves no folder behind, and the live version is untouched
    assert run.status == Status.FAILED and "to publish the model" in run.error
    assert artifacts.project_folders(project_id=labelled_project.pk) == [Path(live.artifact_dir)]
    assert not list(artifacts.project_dir(project_id=labelled_project.pk).glob(".tmp-*"))
    live.refresh_from_db()
    assert live.is_active
    assert artifacts.checksums_mismatched(folder=Path(live.artifact_dir), expected=live.checksums) == []


def test_each_successful_run_prunes_what_is_no_longer_kept(labelled_project, no_broker, settings):
    settings.RM_KEEP_VERSIONS, settings.RM_PROMOTION_LOOKBACK = 1, 1
    for _ in range(3):
        assert _run(labelled_project).status == Status.SUCCEEDED
    kept = [v.number for v in ModelVersion.objects.filter(pruned_at__isnull=True).order_by("number")]
    live = ModelVersion.objects.get(is_active=True).number
    assert set(kept) == {3, live}
    assert len(artifacts.project_folders(project_id=labelled_project.pk)) == len(set(kept))
