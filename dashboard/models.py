"""The dashboard's running aggregates of the votes (kept by dashboard.aggregates).

Counting them once as votes are folded in, rather than scanning the vote
table on every page, is what keeps the dashboard's cost flat in the number
of votes. The tables keep the names they had when labeling owned them.
"""

from __future__ import annotations

from django.db import models

from labeling.models import Split


class TallyBucket(models.Model):
    """How many pairs of one split have exactly this tally of votes.

    Percent agreement, Fleiss' kappa, Krippendorff's alpha and the human
    ceiling depend only on each pair's counts over a / b / tie, so this
    histogram (a few dozen rows per project, whatever the vote count) is all
    the dashboard reads to compute them. Pairs with no vote are not counted.
    """

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    split = models.CharField(max_length=5, choices=Split.choices)
    n_a = models.PositiveIntegerField()
    n_b = models.PositiveIntegerField()
    n_tie = models.PositiveIntegerField(help_text="Ties and both-bad votes.")
    pairs = models.IntegerField(default=0)

    class Meta:
        db_table = "labeling_tallybucket"
        constraints = [
            models.UniqueConstraint(fields=["project", "split", "n_a", "n_b", "n_tie"], name="tally_bucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.split} ({self.n_a},{self.n_b},{self.n_tie}) x{self.pairs}"


class AnnotatorStats(models.Model):
    """One annotator's running figures in one project.

    `loo_*`: the annotator's decisive votes (a or b) on pairs where the
    other voters have a decisive strict majority, and how many match it.
    `model_*`: decisive votes on held-out pairs the active version scored,
    and how many match the model's pick. `flags` is kept current on every
    update so the dashboard lists outliers without scanning all annotators.
    """

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey("labeling.Annotator", on_delete=models.CASCADE, related_name="+")
    votes = models.PositiveIntegerField(default=0)
    decisive = models.PositiveIntegerField(default=0, help_text="Votes for a or b.")
    ties = models.PositiveIntegerField(default=0, help_text="Tie and both-bad votes.")
    sided = models.PositiveIntegerField(default=0, help_text="Decisive votes whose left side is known.")
    left_chosen = models.PositiveIntegerField(default=0)
    longer_decidable = models.PositiveIntegerField(default=0, help_text="Decisive votes on pairs of unequal length.")
    longer_chosen = models.PositiveIntegerField(default=0)
    latency_n = models.PositiveIntegerField(default=0)
    latency_hist = models.JSONField(default=dict, blank=True, help_text="Log-spaced bucket index -> votes.")
    median_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    loo_n = models.PositiveIntegerField(default=0)
    loo_agree = models.PositiveIntegerField(default=0)
    model_n = models.PositiveIntegerField(default=0)
    model_agree = models.PositiveIntegerField(default=0)
    flags = models.JSONField(default=list, blank=True)
    flag_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "labeling_annotatorstats"
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotator_stats_unique"),
        ]
        indexes = [
            # The dashboard's table: flagged first, then the busiest.
            models.Index(fields=["project", "-flag_count", "-votes", "id"], name="annotator_stats_page_idx"),
        ]

    def __str__(self) -> str:
        return f"stats of {self.annotator_id} in {self.project_id}"


class ProjectStats(models.Model):
    """Project-wide running totals for the dashboard.

    `active_version_id` mirrors rewardmodel's active ModelVersion (kept by
    dashboard.aggregates.on_version_activated, a receiver of
    rewardmodel.signals.version_activated; a plain id, as the column was
    created when labeling owned this table). `model_*` count held-out pairs
    with a decisive majority that the active version scored; `*2` the same
    over pairs with at least two votes, the pairs the human ceiling uses.
    """

    project = models.OneToOneField("labeling.Project", on_delete=models.CASCADE, related_name="+")
    active_version_id = models.BigIntegerField(null=True, blank=True)
    model_n = models.PositiveIntegerField(default=0)
    model_agree = models.PositiveIntegerField(default=0)
    model_n2 = models.PositiveIntegerField(default=0)
    model_agree2 = models.PositiveIntegerField(default=0)
    loo_n = models.PositiveIntegerField(default=0)
    loo_agree = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "labeling_projectstats"

    def __str__(self) -> str:
        return f"stats of {self.project_id}"


class AnnotatorReliability(models.Model):
    """One annotator's reliability in one project, from the last fit of the project's label model.

    Refitted by dashboard.quality.reliability_refit (a beat task, when the
    project has new votes) rather than per request: a fit reads every vote.
    `reliability` is the model's estimate of P(this annotator's decisive vote
    is right), 0..1; `decisive_votes` how many a/b votes the fit used.
    """

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey("labeling.Annotator", on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=16)
    reliability = models.FloatField(null=True, blank=True)
    decisive_votes = models.PositiveIntegerField(default=0)
    fitted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotator_reliability_unique"),
        ]

    def __str__(self) -> str:
        return f"reliability of {self.annotator_id} in {self.project_id}: {self.reliability}"


class ReliabilityFit(models.Model):
    """When the project's label model was last fitted, and on how many votes (the refit's trigger)."""

    project = models.OneToOneField("labeling.Project", on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=16)
    votes = models.PositiveIntegerField(default=0)
    last_vote_id = models.BigIntegerField(default=0)
    changes_seen = models.BigIntegerField(default=0, help_text="VoteChange rows of the project at the fit.")
    fitted_at = models.DateTimeField()
    seconds = models.FloatField(default=0.0)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"reliability fit of {self.project_id} ({self.model})"
