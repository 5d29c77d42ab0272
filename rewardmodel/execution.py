"""One training run on a worker, top to bottom.

    claim -> snapshot -> check free disk -> train (heartbeat thread
    alongside) -> check free disk -> fsync and publish the folder -> score
    the held-out pairs -> score the versions it is compared with on those
    pairs (cached) -> record the version and the promotion decision (one
    transaction, only if this attempt still owns the run) -> prune old
    folders -> clean up.

Every failure ends in a recorded status with its reason; whatever happens,
the temp folder goes, and a published folder goes too unless a version
row points to it (the version's commit may have succeeded even if its
acknowledgement was lost).
"""

from __future__ import annotations

import logging
import math
import socket
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from rewardmodel import artifacts, features, gate, retention, services
from rewardmodel.heartbeat import RunHeartbeat
from rewardmodel.models import RetrainPolicy
from rewardmodel.run_config import backbone_check
from rewardmodel.services import Prediction
from rewardmodel.snapshot import Snapshot, training_snapshot_take
from rewardmodel.training import TrainConfig

log = logging.getLogger(__name__)


class NotEnoughData(ValueError):
    pass


class OwnershipLost(Exception):
    """The reconciler gave this run to another attempt."""


def _check_enough_data(snapshot: Snapshot) -> None:
    need_train, need_eval = settings.RM_MIN_TRAIN_PAIRS, settings.RM_MIN_EVAL_PAIRS
    if len(snapshot.train_pairs) < need_train or len(snapshot.eval_pairs) < need_eval:
        raise NotEnoughData(
            f"Not enough labelled data: {len(snapshot.train_pairs)} train-split and {len(snapshot.eval_pairs)} "
            f"test-split pairs have a majority vote; at least {need_train} and {need_eval} are needed."
        )


def training_run_execute(*, run_id: int, task_id: str = "", host: str = "") -> str:
    """Run `run_id` here if it is still queued. Returns what became of it."""
    run = services.training_run_claim(run_id=run_id, task_id=task_id, host=host or socket.gethostname())
    if run is None:
        log.info("Run %s is not queued (taken, finished or cancelled): nothing to do", run_id)
        return "skipped"
    attempt, project_id, key = run.attempt, run.project_id, run.artifact_key
    heartbeat = RunHeartbeat(run_id=run_id, attempt=attempt, interval=settings.RM_HEARTBEAT_SECONDS).start()
    temp = final = None
    version = None
    clock = _PhaseClock()
    try:
        heartbeat.update(phase="snapshot", progress=0.01)
        # Fine-tunes and heads train on the same labels: the policy's label model now.
        label_model = RetrainPolicy.for_project(run.project).label_model
        snapshot = training_snapshot_take(project=run.project, label_model=label_model)
        _free_space_check(project_id=project_id, what="to train")
        temp = artifacts.temp_dir_create(project_id=project_id, run_id=run_id, attempt=attempt, key=key)
        config = TrainConfig.from_dict({**run.config, "output_dir": str(temp)})
        backbone_check(config.backbone)  # this worker's allow-list, whoever queued the run
        if not services.training_run_record_snapshot(
            run_id=run_id,
            attempt=attempt,
            sha256=snapshot.sha256,
            n_train=len(snapshot.train_pairs),
            n_test=len(snapshot.eval_pairs),
            n_votes=snapshot.n_votes,
            taken_at=snapshot.taken_at,
            config={**config.to_dict(), "output_dir": None},  # the version records the final folder
            label_model=snapshot.label_model,
        ):
            raise OwnershipLost
        _check_enough_data(snapshot)

        from rewardmodel.training import train  # torch loads here, in the worker only

        torch_threads_limit()
        clock.lap("snapshot")
        heartbeat.update(phase="train", progress=0.05)
        result = train(
            config,
            snapshot.train_pairs,
            snapshot.eval_pairs,
            on_progress=heartbeat.on_progress,
            feature_cache=features.project_cache_root(project_id=project_id) if config.kind == "head" else None,
        )
        clock.lap("train")

        heartbeat.update(phase="publishing", progress=0.96)
        if heartbeat.stop_requested:
            raise _stop_reason(heartbeat)
        _free_space_check(project_id=project_id, what="to publish the model")
        checksums = artifacts.checksums_compute(folder=temp)
        final = artifacts.final_dir(project_id=project_id, run_id=run_id, attempt=attempt, key=key)
        artifacts.publish(temp=temp, final=final)
        clock.lap("publish")

        heartbeat.update(phase="predicting", progress=0.98)
        predictions = held_out_predictions(snapshot=snapshot, result=result, folder=final, checksums=checksums)
        clock.lap("predict")
        heartbeat.update(phase="comparing", progress=0.99)
        gate.references_prepare(project_id=project_id, pairs=snapshot.eval_voted_pairs)
        clock.lap("compare")
        if heartbeat.stop_requested:
            raise _stop_reason(heartbeat)
        heartbeat.stop()  # the final write below decides; no beat may race it
        if heartbeat.lost:
            raise OwnershipLost
        version = services.training_run_succeed(
            run_id=run_id,
            attempt=attempt,
            artifact_dir=str(final),
            checksums=checksums,
            metrics={**result.metrics, "labels": snapshot.labels},
            predictions=predictions,
            winners={p.pair_id: p.winner for p in snapshot.eval_voted_pairs},
            timings=clock.laps,
        )
        if version is None:
            return "lost or cancelled"
        _prune_quietly(project_id=project_id)
        return "succeeded"
    except Exception as exc:
        return _record_failure(exc, run_id=run_id, attempt=attempt, heartbeat=heartbeat)
    finally:
        heartbeat.stop()
        if temp is not None:
            artifacts.folder_remove(folder=temp)
        if final is not None and version is None:
            # Not recorded as far as we know; but if the commit went through and
            # only its answer was lost, a version points here and it stays.
            artifacts.folder_remove_unless_versioned(folder=final)


def _free_space_check(*, project_id: int, what: str) -> None:
    """Fail early when the disk is short, after pruning old folders to make room."""
    try:
        artifacts.free_space_check(what=what)
    except artifacts.DiskSpaceLow:
        _prune_quietly(project_id=project_id)
        artifacts.free_space_check(what=what)


def _prune_quietly(*, project_id: int) -> None:
    try:
        retention.model_versions_prune(project_id=project_id)
    except Exception:  # pruning is housekeeping: beat retries it; the run's outcome stands
        log.exception("Pruning the model folders of project %s failed", project_id)


class _PhaseClock:
    """Seconds spent in each phase of the run, for the run page and the benchmark."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._since = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._since, 3)
        self._since = now


def torch_threads_limit() -> None:
    """Apply RM_TORCH_THREADS (0: leave torch's default of one thread per core)."""
    if settings.RM_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.RM_TORCH_THREADS)


def _stop_reason(heartbeat: RunHeartbeat) -> Exception:
    from rewardmodel.training import TrainingCancelled

    return OwnershipLost() if heartbeat.lost else TrainingCancelled("cancel requested")


def _record_failure(exc: Exception, *, run_id: int, attempt: int, heartbeat: RunHeartbeat) -> str:
    from rewardmodel.training import TrainingCancelled

    heartbeat.stop()
    if isinstance(exc, OwnershipLost) or heartbeat.lost:
        log.warning("Run %s attempt %s lost its claim; its results are dropped", run_id, attempt)
        return "lost"
    if isinstance(exc, TrainingCancelled):
        services.training_run_mark_cancelled(run_id=run_id, attempt=attempt)
        return "cancelled"
    if isinstance(exc, SoftTimeLimitExceeded):
        error = f"Time limit reached ({settings.TRAINING_SOFT_TIME_LIMIT} s)."
    elif isinstance(exc, (NotEnoughData, artifacts.DiskSpaceLow)):
        error = str(exc)
    else:
        log.exception("Run %s attempt %s failed", run_id, attempt)
        error = f"{type(exc).__name__}: {exc}"
    services.training_run_fail(run_id=run_id, attempt=attempt, error=error)
    return "failed"


def held_out_predictions(*, snapshot: Snapshot, result, folder: Path, checksums: dict[str, str]) -> list[Prediction]:
    """r_a - r_b for every voted test pair, in pair terms.

    Pairs with a majority come from the engine's eval margins (chosen minus
    rejected, turned round when b won); pairs whose votes tie are scored with
    the published folder, which also proves the folder loads before it can
    go live.
    """
    from rewardmodel.training import RewardScorer

    voted = snapshot.eval_voted_pairs
    if len(result.eval_margins) != len(voted):
        raise RuntimeError(f"the engine returned {len(result.eval_margins)} margins for {len(voted)} eval pairs")
    spread = result.eval_disagreement
    out = [
        Prediction(p.pair_id, m if p.winner == "a" else -m, spread[i] if spread else None)
        for i, (p, m) in enumerate(zip(voted, result.eval_margins))
    ]
    scorer = RewardScorer.load(folder, device=settings.RM_SCORING_DEVICE, checksums=checksums)
    ties = [p for p in snapshot.test_pairs if p.winner is None]
    if ties:
        out += [Prediction(p.pair_id, m) for p, m in zip(ties, gate.pair_margins(scorer, ties))]
    return [p for p in out if math.isfinite(p.margin)]
