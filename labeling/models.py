"""Projects, pairs, assignments and votes.

Data flows one way: import -> Pair -> Assignment (a lease to one annotator)
-> Vote. A vote is stored in *pair* terms (a / b), never screen terms
(left / right); the side that was shown on the left is recorded beside it
so position bias can be measured.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown, shown above every pair.")
    overlap_target = models.PositiveSmallIntegerField(
        "overlap target K",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(25)],
        help_text="Votes wanted per pair; live leases count towards it.",
    )
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    ask_strength = models.BooleanField(default=False, help_text="Ask how strong the preference is (1-3).")
    ask_rationale = models.BooleanField(default=False, help_text="Offer a free-text rationale field.")
    lease_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(10)], help_text="How long a served pair is reserved."
    )
    test_percent = models.PositiveSmallIntegerField(
        default=20,
        validators=[MaxValueValidator(90)],
        help_text="Share of prompts held out for evaluation. Fixed once pairs exist.",
    )
    acquisition = models.CharField(
        "acquisition strategy",
        max_length=16,
        choices=[
            ("random", "random"),
            ("uncertainty", "uncertainty: the head's P(a > b) closest to 1/2"),
            ("disagreement", "disagreement: the head's members disagree most (BALD)"),
            ("diverse", "diverse: disagreement plus distance from what is labelled (BAL-PM style)"),
        ],
        default="random",
        help_text="Which train-split pairs the queue serves first, re-ordered after each head retrain. Held-out "
        "pairs always stay in random order.",
    )
    exploration_percent = models.PositiveSmallIntegerField(
        default=10,
        validators=[MaxValueValidator(100)],
        help_text="Share of the re-ordered train pairs placed at random, so the strategy never sees only its own picks.",
    )
    gold_percent = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(100)],
        help_text="Share of the pairs served to each annotator that are gold pairs (known answer), while any "
        "are left for them.",
    )
    repeat_percent = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(50)],
        help_text="Share of the pairs served that repeat one of the annotator's own earlier pairs, sides swapped, "
        "to measure self-consistency.",
    )
    gold_pause_below = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Pause an annotator when the upper end of their gold accuracy's 95% Wilson interval falls "
        "below this.",
    )
    gold_min_votes = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1)],
        help_text="Gold votes an annotator needs before they can be paused.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="labeling_projects",
        help_text="Annotators who may label this project. Reviewers and admins see every project.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("label_pairs", "Can label pairs"),
            ("manage_project", "Can import and export project data"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def choices(self) -> list[str]:
        """Choices offered on screen, in keyboard order."""
        out = ["left", "right"]
        if self.allow_tie:
            out.append("tie")
        if self.allow_both_bad:
            out.append("both_bad")
        return out


class Annotator(models.Model):
    """Who cast a vote: a login user, or an external identity from an import."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="annotator"
    )
    external_id = models.CharField(max_length=150, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(external_id__isnull=True))
                | (Q(user__isnull=True) & Q(external_id__isnull=False)),
                name="annotator_user_xor_external",
            )
        ]

    def __str__(self) -> str:
        return self.user.get_username() if self.user_id else f"external:{self.external_id}"

    @property
    def is_external(self) -> bool:
        return self.user_id is None


class Split(models.TextChoices):
    TRAIN = "train"
    TEST = "test"


class Side(models.TextChoices):
    A = "a"
    B = "b"


class Choice(models.TextChoices):
    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad", "both bad"


class Pair(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.TextField()
    response_a = models.TextField()
    response_b = models.TextField()
    content_hash = models.CharField(max_length=64, help_text="sha256 of prompt and the unordered responses.")
    external_id = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices, help_text="Fixed from a hash of the prompt.")
    rank = models.BigIntegerField(help_text="Random serving order, derived from the content hash.")
    # Counters kept by labeling.services in the same transaction as the rows
    # they count, so selection never aggregates over votes.
    slots_taken = models.PositiveIntegerField(default=0, help_text="Votes plus live leases.")
    vote_count = models.PositiveIntegerField(default=0)
    votes_a = models.PositiveIntegerField(default=0)
    votes_b = models.PositiveIntegerField(default=0)
    votes_tie = models.PositiveIntegerField(default=0, help_text="Ties and both-bad votes.")
    archived = models.BooleanField(
        default=False,
        help_text="Out of labeling and training; its votes are kept. What to do instead of deleting a voted pair.",
    )
    gold = models.CharField(
        max_length=1,
        blank=True,
        default="",
        choices=[("a", "a"), ("b", "b")],
        help_text="The known right answer (pair terms) of a gold pair; empty for an ordinary pair. "
        "Gold pairs check annotators and never count in training, held-out metrics or agreement.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="pair_unique_content_per_project"),
        ]
        indexes = [
            # Next-pair selection walks this index in order: least-served first.
            models.Index(fields=["project", "slots_taken", "rank"], name="pair_queue_idx"),
            models.Index(fields=["project", "split", "id"], name="pair_split_idx"),
            # The gold pick walks the project's gold pairs only (a few percent of its pairs).
            models.Index(fields=["project", "slots_taken", "rank"], condition=~Q(gold=""), name="pair_gold_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"pair {self.pk} ({self.project_id})"


class AnnotatorStanding(models.Model):
    """Whether an annotator is paused on a project, and the audit trail of pausing and reinstating.

    Created the first time an annotator is paused. While `paused_at` is set
    the annotator gets no pairs and their votes are left out of training;
    an admin reinstates them with a recorded reason.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotator_standings")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="standings")
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)
    reinstated_at = models.DateTimeField(
        null=True, blank=True, help_text="Gold votes before this no longer count towards a pause."
    )
    reinstated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reinstate_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotator_standing_unique"),
        ]

    def __str__(self) -> str:
        state = "paused" if self.paused_at else "active"
        return f"{self.annotator} on {self.project_id}: {state}"


class Assignment(models.Model):
    """A lease of one pair to one annotator, with the side shown on the left."""

    class State(models.TextChoices):
        LIVE = "live"
        VOTED = "voted"
        SKIPPED = "skipped"
        EXPIRED = "expired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="assignments")
    left = models.CharField(max_length=1, choices=Side.choices, help_text="Drawn by a server-side RNG.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.LIVE)
    served_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    repeat = models.BooleanField(
        default=False,
        help_text="A repeat check: a pair the annotator voted on before, served again with the sides swapped. "
        "It takes no slot and its answer is a RepeatCheck, not a Vote.",
    )

    class Meta:
        constraints = [
            # An annotator sees a pair at most once, whatever became of it (a repeat check aside).
            models.UniqueConstraint(
                fields=["pair", "annotator"], condition=Q(repeat=False), name="assignment_once_per_annotator"
            ),
            # ... and is asked to repeat it at most once.
            models.UniqueConstraint(
                fields=["pair", "annotator"], condition=Q(repeat=True), name="assignment_one_repeat_per_annotator"
            ),
            models.UniqueConstraint(
                fields=["project", "annotator"], condition=Q(state="live"), name="assignment_one_live_per_annotator"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(state="live"), name="assignment_live_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.state})"

    @property
    def right(self) -> str:
        return Side.B if self.left == Side.A else Side.A


class RepeatCheck(models.Model):
    """An annotator's answer to a repeat check: a pair they voted on before, shown again with the sides swapped.

    Stored apart from the votes: it is not a second vote on the pair, counts
    in no tally, agreement or training, and only measures self-consistency.
    `original_choice` is the vote's choice when the repeat was answered,
    `choice` the repeat's, both in pair terms; `consistent` is whether they
    are the same.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="repeat_checks")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="repeat_checks")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="repeat_check"
    )
    vote = models.ForeignKey("Vote", null=True, blank=True, on_delete=models.SET_NULL, related_name="repeat_checks")
    original_choice = models.CharField(max_length=8, choices=Choice.choices)
    original_left = models.CharField(max_length=1, choices=Side.choices, help_text="Shown left on the first vote.")
    shown_left = models.CharField(max_length=1, choices=Side.choices, help_text="Shown left on the repeat.")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    consistent = models.BooleanField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["project", "annotator"], name="repeat_check_annotator_idx")]

    def __str__(self) -> str:
        return f"repeat of pair {self.pair_id} by {self.annotator_id}: {'consistent' if self.consistent else 'not'}"


class Vote(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    # A pair with votes cannot be deleted on its own (archive it instead);
    # deleting its whole project still takes pairs and votes together.
    pair = models.ForeignKey(Pair, on_delete=models.RESTRICT, related_name="votes")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="votes")
    assignment = models.OneToOneField(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="vote")
    choice = models.CharField(max_length=8, choices=Choice.choices, help_text="In pair terms: a = response_a.")
    shown_left = models.CharField(
        max_length=1,
        choices=Side.choices,
        null=True,
        blank=True,
        help_text="Which response was on the left; unknown for imported votes.",
    )
    strength = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    rationale = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A vote from the labeling loop is stored False and folded into the
    # dashboard aggregates in batches, after its request
    # (dashboard.aggregates.aggregates_fold), so no vote waits on the
    # project-wide aggregate rows. Imports fold their votes as they write them.
    in_aggregates = models.BooleanField(
        default=True, help_text="Counted in the dashboard aggregates (TallyBucket, AnnotatorStats, ProjectStats)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "annotator"], name="vote_once_per_pair_annotator"),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=3), name="vote_strength_1_3"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"], name="vote_project_time_idx"),
            models.Index(fields=["annotator", "project"], name="vote_annotator_idx"),
            # The votes waiting to be folded: a handful at any time, whatever the table's size.
            models.Index(fields=["project", "id"], condition=Q(in_aggregates=False), name="vote_fold_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk}: {self.choice}"


class VoteChange(models.Model):
    """One undo or change of a stored vote, by the annotator who cast it: the audit record.

    Kept for good: who, when, the old choice and the new one (empty for an
    undo). It also carries what the dashboard counted for the old vote
    (choice, the side shown on the left, the time to decide): while
    `uncount_pending` is set, that old vote is still counted in the dashboard
    aggregates, and the next fold takes it back out
    (dashboard.aggregates.aggregates_fold). A vote not folded in yet leaves
    nothing to take out, and its change is written with the flag off.
    """

    class Action(models.TextChoices):
        UNDO = "undo"
        CHANGE = "change"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="vote_changes")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="vote_changes")
    vote_id = models.BigIntegerField(help_text="The vote changed; an undo deletes it.")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=6, choices=Action.choices)
    old_choice = models.CharField(max_length=8, choices=Choice.choices)
    new_choice = models.CharField(max_length=8, choices=Choice.choices, blank=True, help_text="Empty for an undo.")
    old_strength = models.PositiveSmallIntegerField(null=True, blank=True)
    new_strength = models.PositiveSmallIntegerField(null=True, blank=True)
    shown_left = models.CharField(max_length=1, choices=Side.choices, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="The old vote's time to decide.")
    created_at = models.DateTimeField()
    uncount_pending = models.BooleanField(
        default=False, help_text="The old vote is still counted in the dashboard aggregates; the fold takes it out."
    )

    class Meta:
        indexes = [
            # Changes the fold has yet to take out: a handful at any time.
            models.Index(fields=["project", "id"], condition=Q(uncount_pending=True), name="vote_change_uncount_idx"),
            models.Index(fields=["vote_id"], name="vote_change_vote_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} of vote {self.vote_id}: {self.old_choice} -> {self.new_choice or '-'}"


class ImportJob(models.Model):
    """One dataset upload from the web form, imported by a Celery task (or inline when small).

    The uploaded file waits under VAR_DIR/uploads until the job ends; the
    counts are those of `labeling.importing.ImportSummary`.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    file_name = models.CharField(max_length=255, help_text="As uploaded; shown, never used as a path.")
    upload_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="The stored upload; deleted when the job ends (kept a while for a retry after invalid rows).",
    )
    file_size = models.BigIntegerField(default=0)
    format = models.CharField(max_length=10, default="auto")
    skip_invalid = models.BooleanField(default=False)
    gold = models.BooleanField(default=False, help_text="Every row of a TRL file is a gold pair, chosen its answer.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=16, blank=True, help_text="checking, then writing.")
    rows_total = models.PositiveIntegerField(null=True, blank=True, help_text="Known once the check pass ends.")
    rows_checked = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    votes = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    skipped_lines = models.JSONField(default=list, blank=True, help_text="The first skipped rows' messages.")
    rows_invalid = models.PositiveIntegerField(
        null=True, blank=True, help_text="Set when the check failed on invalid rows: how many the file holds."
    )
    attempt = models.PositiveSmallIntegerField(default=0, help_text="Claims so far; the reconciler caps them.")
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When the task message was last sent.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="importjob_project_time_idx")]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def percent(self) -> int:
        """Progress for the bar: the check pass is the first tenth, writing the rest."""
        if self.status == self.Status.SUCCEEDED:
            return 100
        if self.phase == "writing" and self.rows_total:
            return 10 + int(90 * self.rows_written / self.rows_total)
        if self.phase == "checking" and self.rows_total:
            return 10
        return 0
