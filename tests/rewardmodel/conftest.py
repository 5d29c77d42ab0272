"""Fixtures for retraining tests, including real Celery worker processes.

`celery_worker` / `celery_worker_factory` start `celery -A config worker`
against the real Redis (REDIS_URL; this test run's db is flushed first)
and the test database, with `transactional_db`. Reusable elsewhere:

    def test_something(celery_worker):           # one worker, queues training,default
        ...
    def test_other(celery_worker_factory):       # several, or other options
        worker = celery_worker_factory(queues="default", env={"X": "1"})
"""

from __future__ import annotations

import pytest

from labeling import services as labeling_services
from preferences.records import ImportedVote, PreferenceRecord
from tests.rewardmodel.workers import Process, start_worker


@pytest.fixture
def rm_settings(settings, tmp_path):
    """Fast, isolated retraining: the tiny engine preset and artifacts under tmp_path."""
    settings.RM_TRAIN_PRESET = "tiny"
    settings.RM_TRAIN_OVERRIDES = {}
    settings.MODEL_ARTIFACTS_DIR = tmp_path / "models"
    settings.FEATURE_CACHE_DIR = tmp_path / "features"
    settings.RM_HEARTBEAT_SECONDS = 0.3
    # One torch thread: on a small shared CI box, more threads thrash.
    settings.RM_TORCH_THREADS = 1
    return settings


@pytest.fixture
def celery_worker_factory(transactional_db, rm_settings, tmp_path):
    started: list[Process] = []

    def start(**options) -> Process:
        options.setdefault("log_dir", tmp_path / "logs")
        worker = start_worker(**options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def celery_worker(celery_worker_factory) -> Process:
    return celery_worker_factory()


def labelled_records(n: int = 60, *, tie_every: int = 0, prefix: str = "prompt") -> list[PreferenceRecord]:
    """Pairs whose careful answer (a) wins 2-1; every `tie_every`-th pair splits a/b/tie instead."""
    records = []
    for i in range(n):
        tie = tie_every and i % tie_every == 0
        choices = ("a", "b", "tie") if tie else ("a", "a", "b")
        records.append(
            PreferenceRecord(
                prompt=f"{prefix} {i}: explain topic {i}",
                response_a=f"A careful, correct answer about topic {i}, with an example.",
                response_b=f"meh {i}",
                votes=tuple(ImportedVote(f"rater-{k}", c) for k, c in enumerate(choices)),
            )
        )
    return records


def make_labelled_project(
    slug: str = "rm", *, n: int = 60, tie_every: int = 7, test_percent: int = 25, members=(), **options
):
    """A project whose pairs all carry three imported votes (see `labelled_records`)."""
    project = labeling_services.project_create(slug=slug, name=slug.upper(), test_percent=test_percent, **options)
    project.members.add(*members)
    labeling_services.pairs_import_batch(
        project=project, records=labelled_records(n, tie_every=tie_every), shuffle_sides=False
    )
    return project


@pytest.fixture
def labelled_project(db, rm_settings, annotator_user):
    return make_labelled_project(members=[annotator_user])


def _train_tiny_folder(folder, *, seed: int) -> None:
    """Train the tiny engine preset straight into `folder` (no database, no worker)."""
    from preferences.records import record_to_training_pair
    from rewardmodel.training import TrainConfig, train

    pairs = [record_to_training_pair(r) for r in labelled_records(40, tie_every=0)]
    train(TrainConfig.tiny(seed=seed, epochs=1, output_dir=str(folder)), pairs[:32], pairs[32:])


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    """Two small trained model folders (different seeds), shared read-only by the tests."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-models")
    folders = []
    for seed in (0, 1):
        folder = root / f"seed-{seed}"
        _train_tiny_folder(folder, seed=seed)
        folders.append(folder)
    return folders


@pytest.fixture(scope="session")
def tiny_head_dir(tmp_path_factory):
    """A head (kind='head') trained on the tiny preset's features, shared read-only by the tests."""
    from preferences.records import record_to_training_pair
    from rewardmodel.training import TrainConfig, train

    folder = tmp_path_factory.mktemp("tiny-head") / "head"
    pairs = [record_to_training_pair(r) for r in labelled_records(40, tie_every=0)]
    train(TrainConfig.tiny(kind="head", output_dir=str(folder)), pairs[:32], pairs[32:])
    return folder


def make_version(
    project, folder, *, number: int = 1, active: bool = True, metrics: dict | None = None, kind: str = "finetune"
):
    """A succeeded run and its version pointing at `folder`, as a worker would record them."""
    from rewardmodel import artifacts
    from rewardmodel.models import ModelVersion, TrainingRun

    run = TrainingRun.objects.create(
        project=project,
        kind=kind,
        trigger=TrainingRun.Trigger.CLI,
        status=TrainingRun.Status.SUCCEEDED,
        progress=1.0,
        promoted=active,
    )
    return ModelVersion.objects.create(
        project=project,
        run=run,
        number=number,
        artifact_dir=str(folder),
        is_active=active,
        checksums=artifacts.checksums_compute(folder=folder),
        metrics=metrics
        if metrics is not None
        else {"held_out_accuracy": 0.8, "eval_loss": 0.5, "reward_mean": 0.0, "reward_std": 1.0},
    )
