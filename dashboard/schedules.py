"""The dashboard's periodic task (created as an editable beat row by lib.beat)."""

from __future__ import annotations

from lib.beat import PeriodicTaskSpec

SCHEDULES = [
    PeriodicTaskSpec(
        "Fold live votes into the dashboard aggregates",
        "dashboard.aggregates_fold",
        5,
        "Counts the votes stored since the last fold in the agreement, annotator and model figures; dashboard "
        "pages fold before they read, so this bounds how stale the annotators' own figures get.",
    ),
    PeriodicTaskSpec(
        "Refit annotator reliability",
        "dashboard.reliability_refit",
        300,
        "Fits each project's label model on all its votes when it has new ones, for the annotators' reliability "
        "column and its red flag; how stale that column may get.",
    ),
]
