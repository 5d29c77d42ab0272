"""One training run on a worker, top to bottom.

    claim -> snapshot -> train (heartbeat thread alongside) -> fsync and
    publish the folder -> score the held-out pairs -> record the version and
    the promotion decision (one transaction, only if this attempt still owns
    the run) -> clean up.

Every failure ends in a recorded status with its reason; whatever happens,
the temp folder goes, and a published folder that no version points to
goes too.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from rewardmodel import artifacts, features, services
from rewardmodel.heartbeat import RunHeartbeat
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
    attempt, project_id = run.attempt, run.project_id
    heartbeat = RunHeartbeat(run_id=run_id, attempt=attempt, interval=settings.RM_HEARTBEAT_SECONDS).start()
    temp = final = None
    version = None
    clock = _PhaseClock()
    try:
        heartbeat.update(phase="snapshot", progress=0.01)
        snapshot = training_snapshot_take(project=run.project)
        temp = artifacts.temp_dir_create(project_id=project_id, run_id=run_id, attempt=attempt)
        config = TrainConfig.from_dict({**run.config, "output_dir": str(temp)})
        if not services.training_run_record_snapshot(
            run_id=run_id,
            attempt=attempt,
            sha256=snapshot.sha256,
            n_train=len(snapshot.train_pairs),
            n_test=len(snapshot.eval_pairs),
            n_votes=snapshot.n_votes,
            taken_at=snapshot.taken_at,
            config={**config.to_dict(), "output_dir": None},  # the version records the final folder
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
        checksums = artifacts.checksums_compute(folder=temp)
        final = artifacts.final_dir(project_id=project_id, run_id=run_id, attempt=attempt)
        artifacts.publish(temp=temp, final=final)
        clock.lap("publish")

        heartbeat.update(phase="predicting", progress=0.98)
        predictions = held_out_predictions(snapshot=snapshot, result=result, folder=final)
        clock.lap("predict")
        heartbeat.stop()  # the final write below decides; no beat may race it
        if heartbeat.lost:
            raise OwnershipLost
        version = services.training_run_succeed(
            run_id=run_id,
            attempt=attempt,
            artifact_dir=str(final),
            checksums=checksums,
            metrics=result.metrics,
            predictions=predictions,
            timings=clock.laps,
        )
        return "succeeded" if version is not None else "lost or cancelled"
    except Exception as exc:
        return _record_failure(exc, run_id=run_id, attempt=attempt, heartbeat=heartbeat)
    finally:
        heartbeat.stop()
        if temp is not None:
            artifacts.folder_remove(folder=temp)
        if final is not None and version is None:
            artifacts.folder_remove(folder=final)


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
    elif isinstance(exc, NotEnoughData):
        error = str(exc)
    else:
        log.exception("Run %s attempt %s failed", run_id, attempt)
        error = f"{type(exc).__name__}: {exc}"
    services.training_run_fail(run_id=run_id, attempt=attempt, error=error)
    return "failed"


def held_out_predictions(*, snapshot: Snapshot, result, folder: Path) -> list[Prediction]:
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
    scorer = RewardScorer.load(folder, device=settings.RM_SCORING_DEVICE)
    ties = [p for p in snapshot.test_pairs if p.winner is None]
    if ties:
        prompts = [p.prompt for p in ties]
        raw_a, _ = scorer.score(prompts, [p.response_a for p in ties], batch_size=settings.RM_SCORE_BATCH_SIZE)
        raw_b, _ = scorer.score(prompts, [p.response_b for p in ties], batch_size=settings.RM_SCORE_BATCH_SIZE)
        out += [Prediction(p.pair_id, a - b) for p, a, b in zip(ties, raw_a, raw_b)]
    return [p for p in out if math.isfinite(p.margin)]
