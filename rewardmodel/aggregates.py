"""Dashboard aggregates that change when a model version becomes active.

`rewardmodel.services` calls `on_version_activated` after a promotion or a
rollback, in the same transaction, so per-annotator agreement with the
model always refers to the active version.
"""
from __future__ import annotations


def on_version_activated(*, version) -> None:
    """Recompute the model-vs-human aggregates for `version`'s project."""
