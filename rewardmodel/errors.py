"""Errors the retraining and scoring services raise.

They extend `lib.errors`, so the API's one exception handler
(config/api.py) and the views turn them into HTTP statuses.
"""

from __future__ import annotations

from lib.errors import Conflict


class RunAlreadyActive(Conflict):
    """A project has at most one queued or running run; this is it."""

    def __init__(self, run):
        self.run = run
        super().__init__(f"A training run is already {run.status} for this project (run {run.pk}).")


class NoActiveModel(Conflict):
    def __init__(self):
        super().__init__("This project has no active model version yet: train and promote one first.")
