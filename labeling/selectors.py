"""Reads for labeling: who may see which project, members and their progress, annotators' own progress and history."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone

from labeling import signals, sql
from labeling.models import Annotator, AnnotatorStanding, Pair, Project, RepeatCheck, Vote, VoteChange
from lib.errors import NotFound
from preferences.label_models import LabelVote


def user_sees_all_projects(*, user: AbstractBaseUser) -> bool:
    return user.has_perm("labeling.manage_project") or user.has_perm("rewardmodel.view_dashboard")


def project_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    if user_sees_all_projects(user=user):
        return Project.objects.all()
    if user.has_perm("labeling.label_pairs"):
        return Project.objects.filter(members=user)
    return Project.objects.none()


def project_get_for_labeling(
    *, user: AbstractBaseUser, slug: str | None = None, project_id: int | None = None
) -> Project:
    """A project this user may label, by slug or id. Anything else is NotFound,
    not Forbidden, so annotators cannot probe which project slugs exist."""
    if not user.has_perm("labeling.label_pairs"):
        raise NotFound("No such project.")
    # Every labeling request runs this: one query.
    found = sql.project_with_membership(user_id=user.pk, slug=slug, project_id=project_id)
    if found is None:
        raise NotFound("No such project.")
    project, is_member = found
    if not is_member and not user.has_perm("labeling.manage_project"):
        raise NotFound("No such project.")
    return project


def project_get(*, slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def _annotator_of(user: AbstractBaseUser) -> Annotator | None:
    """The user's annotator row; cached on the user, so after a lease (which looks it up) it costs nothing."""
    return getattr(user, "annotator", None)


def annotator_vote_count(*, project: Project, user: AbstractBaseUser) -> int:
    annotator = _annotator_of(user)
    if annotator is None:
        return 0
    return Vote.objects.filter(annotator=annotator, project=project).count()


# "N pairs left for you" counts at most this many, then says "N+": the count
# walks the same index as the pick, and stops there whatever the project's size.
PAIRS_LEFT_CAP = 50


def pairs_left_for_annotator(*, project: Project, user: AbstractBaseUser, holding: bool) -> int:
    """Pairs this annotator can still get: open pairs (votes plus leases under K) they have
    not seen, plus the one they hold (`holding`). Counted up to PAIRS_LEFT_CAP + 1 only.

    Right now, that is: other annotators may fill some of them first. It is
    the labeling page's figure, read after the pair is leased; the API's
    `next` and `vote-and-next` do not run it.
    """
    annotator = _annotator_of(user)
    open_pairs = sql.pairs_open_count(
        project_id=project.pk,
        annotator_id=annotator.pk if annotator else None,
        overlap_target=project.overlap_target,
        cap=PAIRS_LEFT_CAP + 1,
    )
    return open_pairs + int(holding)


def project_member_names(*, project: Project) -> list[str]:
    field = get_user_model().USERNAME_FIELD
    return list(project.members.order_by(field).values_list(field, flat=True))


def project_members_progress(*, project: Project) -> list[dict]:
    """Each member with their votes in the project, their last vote, whether they may label,
    and their standing (paused or not, with the pause's reason) for admins."""
    members = list(project.members.order_by(get_user_model().USERNAME_FIELD))
    standings = {
        s.annotator.user_id: s
        for s in AnnotatorStanding.objects.filter(project=project, annotator__user__in=members).select_related(
            "annotator", "reinstated_by"
        )
    }
    counts = {
        row["annotator__user_id"]: row
        for row in Vote.objects.filter(project=project, annotator__user__in=members)
        .values("annotator__user_id")
        .annotate(votes=Count("id"), last_vote=Max("created_at"))
    }
    return [
        {
            "user": user,
            "votes": counts.get(user.pk, {}).get("votes", 0),
            "last_vote": counts.get(user.pk, {}).get("last_vote"),
            "can_label": user.has_perm("labeling.label_pairs"),
            "standing": standings.get(user.pk),
            "paused": standings.get(user.pk) is not None and standings[user.pk].paused_at is not None,
        }
        for user in members
    ]


def vote_history_for_annotator(
    *, project: Project, user: AbstractBaseUser, now: datetime | None = None, limit: int = 50
) -> list[dict]:
    """The annotator's most recent votes in the project, newest first, in the screen terms
    they were cast in, each with whether it may still be changed and how often it was."""
    now = now or timezone.now()
    annotator = _annotator_of(user)
    if annotator is None:
        return []
    votes = list(
        Vote.objects.filter(annotator=annotator, project=project, shown_left__isnull=False)
        .select_related("pair")
        .order_by("-id")[:limit]
    )
    changes = Counter(VoteChange.objects.filter(vote_id__in=[v.pk for v in votes]).values_list("vote_id", flat=True))
    window = timedelta(seconds=settings.LABELING_UNDO_SECONDS)
    rows = []
    for vote in votes:
        left, right = (vote.pair.response_a, vote.pair.response_b)
        if vote.shown_left != "a":
            left, right = right, left
        on_screen = "left" if vote.choice == vote.shown_left else "right" if vote.choice in ("a", "b") else vote.choice
        rows.append(
            {
                "vote": vote,
                "choice": on_screen,
                "left": left,
                "right": right,
                "changeable_until": vote.created_at + window if now - vote.created_at <= window else None,
                "changes": changes.get(vote.pk, 0),
            }
        )
    return rows


def annotator_own_figures(*, project: Project, user: AbstractBaseUser) -> dict:
    """The annotator's own figures (median time, agreement, side shares) from the apps
    above labeling that keep them (the dashboard), merged; empty when none does."""
    figures: dict = {}
    for _receiver, answer in signals.annotator_figures_wanted.send(sender=Project, project=project, user=user):
        figures.update(answer or {})
    return figures


def label_model_inputs(*, project: Project, leave_out_paused: bool) -> tuple[list[LabelVote], dict[int, str]]:
    """A label model's input (preferences.label_models): the project's votes in id order, and the gold
    pairs' answers, which seed it. Archived pairs are left out, and with `leave_out_paused` the votes of
    annotators paused now: training, the export's labels and the dashboard's reliability all read this."""
    votes = Vote.objects.filter(project=project, pair__archived=False)
    if leave_out_paused:
        votes = votes.exclude(annotator_id__in=annotator_ids_paused(project=project))
    rows = votes.order_by("id").values_list("pair_id", "annotator_id", "choice").iterator(chunk_size=10000)
    gold = dict(Pair.objects.filter(project=project, archived=False).exclude(gold="").values_list("id", "gold"))
    return [LabelVote(pair, annotator, choice) for pair, annotator, choice in rows], gold


def annotator_ids_paused(*, project: Project) -> set[int]:
    """Annotators paused on the project now: they get no pairs and their votes do not train."""
    return set(
        AnnotatorStanding.objects.filter(project=project, paused_at__isnull=False).values_list(
            "annotator_id", flat=True
        )
    )


# --------------------------------------------------------------------------- #
# Label quality: gold accuracy, self-consistency, pauses
# --------------------------------------------------------------------------- #
def annotator_gold_counts(
    *, project: Project, annotator_id: int, since: datetime | None = None, before: datetime | None = None
) -> tuple[int, int]:
    """(right, answered) over the annotator's votes on the project's gold pairs, cast after `since`
    and before `before` where given. A tie or both-bad vote is an answer, and not a right one."""
    votes = Vote.objects.filter(project=project, annotator_id=annotator_id).exclude(pair__gold="")
    if since is not None:
        votes = votes.filter(created_at__gt=since)
    if before is not None:
        votes = votes.filter(created_at__lt=before)
    row = votes.aggregate(n=Count("id"), right=Count("id", filter=Q(choice=F("pair__gold"))))
    return row["right"], row["n"]


def annotators_gold_counts(*, project: Project, annotator_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(right, answered) on gold pairs for each of these annotators who answered any, all their gold votes."""
    rows = (
        Vote.objects.filter(project=project, annotator_id__in=annotator_ids)
        .exclude(pair__gold="")
        .values("annotator_id")
        .annotate(n=Count("id"), right=Count("id", filter=Q(choice=F("pair__gold"))))
    )
    return {r["annotator_id"]: (r["right"], r["n"]) for r in rows}


def annotators_repeat_counts(*, project: Project, annotator_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(consistent, answered) repeat checks for each of these annotators who answered any."""
    rows = (
        RepeatCheck.objects.filter(project=project, annotator_id__in=annotator_ids)
        .values("annotator_id")
        .annotate(n=Count("id"), same=Count("id", filter=Q(consistent=True)))
    )
    return {r["annotator_id"]: (r["same"], r["n"]) for r in rows}


def annotator_is_paused(*, project: Project, annotator: Annotator) -> bool:
    return AnnotatorStanding.objects.filter(project=project, annotator=annotator, paused_at__isnull=False).exists()


def annotator_standings(*, project: Project, annotator_ids: list[int]) -> dict[int, AnnotatorStanding]:
    return {
        s.annotator_id: s
        for s in AnnotatorStanding.objects.filter(project=project, annotator_id__in=annotator_ids).select_related(
            "reinstated_by"
        )
    }


def project_contacts(*, project: Project) -> list[str]:
    """Who a paused annotator should contact: the active users who may manage the project (admins)."""
    User = get_user_model()
    perm = Q(groups__permissions__codename="change_project", groups__permissions__content_type__app_label="labeling")
    perm |= Q(user_permissions__codename="change_project", user_permissions__content_type__app_label="labeling")
    users = User.objects.filter(Q(is_superuser=True) | perm, is_active=True).distinct().order_by(User.USERNAME_FIELD)
    return [u.get_username() for u in users[:5]]


def project_contact_text(*, project: Project) -> str:
    names = project_contacts(project=project)
    if not names:
        return "the project's administrators"
    return "an administrator of the project (" + ", ".join(names) + ")"


def annotators_paused_count(*, project: Project) -> int:
    return AnnotatorStanding.objects.filter(project=project, paused_at__isnull=False).count()


def annotator_by_username(*, username: str) -> Annotator:
    field = get_user_model().USERNAME_FIELD
    annotator = Annotator.objects.filter(**{f"user__{field}": username}).select_related("user").first()
    if annotator is None:
        raise NotFound(f"No annotator named {username}.")
    return annotator
