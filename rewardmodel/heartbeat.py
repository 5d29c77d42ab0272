"""A running run's pulse: a background thread that writes progress and reads Cancel.

The engine calls `on_progress` at every optimizer step, from the training
thread; that only stores the latest figures in memory and returns whether
to stop. The thread writes them every RM_HEARTBEAT_SECONDS with one
conditional UPDATE (so the database sees a few writes a minute, not one
per step), and proves the worker is alive even in phases where the engine
reports nothing (loading the backbone, saving).

Stop is requested when an admin pressed Cancel, or when the UPDATE matched
nothing: the reconciler gave the run to another attempt, and this worker
must stop without writing anything more (`lost`).
"""

from __future__ import annotations

import logging
import threading

from django.db import connections

from rewardmodel import services

log = logging.getLogger(__name__)

# The engine's fraction (0..1) maps onto this part of the run's progress
# bar; the snapshot before it and publishing after it take the rest.
TRAIN_START, TRAIN_END = 0.05, 0.95


class RunHeartbeat:
    def __init__(self, *, run_id: int, attempt: int, interval: float):
        self.run_id = run_id
        self.attempt = attempt
        self.interval = interval
        self.cancel_requested = False
        self.lost = False
        self._lock = threading.Lock()
        self._state = {"progress": 0.0, "phase": "starting", "metrics": {}}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-run-{run_id}", daemon=True)

    @property
    def stop_requested(self) -> bool:
        return self.cancel_requested or self.lost

    def start(self) -> RunHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for the thread (safe to call more than once)."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 30)

    def update(self, *, phase: str, progress: float, now: bool = True) -> None:
        """Set the phase shown on the run page; write it at once unless `now` is False."""
        with self._lock:
            self._state.update(phase=phase, progress=progress)
        if now:
            self._wake.set()

    def on_progress(self, p) -> bool:
        """The engine's callback: remember the figures; True asks it to stop."""
        with self._lock:
            self._state = {
                "progress": TRAIN_START + (TRAIN_END - TRAIN_START) * float(p.fraction),
                "phase": p.phase,
                "metrics": dict(p.metrics or {}),
            }
        return self.stop_requested

    def _loop(self) -> None:
        try:
            while True:
                self._beat()
                if self._stopped.is_set() or self.lost:
                    return
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stopped.is_set():
                    return
        finally:
            # This thread's own database connection; the task's is untouched.
            connections.close_all()

    def _beat(self) -> None:
        with self._lock:
            state = dict(self._state)
        try:
            answer = services.training_run_beat(run_id=self.run_id, attempt=self.attempt, **state)
        except Exception:  # a database hiccup: try again next beat; a long outage ends in the reconciler
            log.exception("Heartbeat of run %s failed", self.run_id)
            return
        if not answer.owned:
            log.warning("Run %s attempt %s is no longer ours; stopping", self.run_id, self.attempt)
            self.lost = True
        elif answer.cancel_requested and not self.cancel_requested:
            log.info("Cancel requested for run %s; stopping", self.run_id)
            self.cancel_requested = True
