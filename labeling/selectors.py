"""Reads for labeling: who may see which project, and annotators' own progress."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import QuerySet

from labeling import sql
from labeling.errors import NotFound
from labeling.models import Annotator, AnnotatorStats, Project, Vote


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


def annotator_vote_count(*, project: Project, user: AbstractBaseUser) -> int:
    annotator = Annotator.objects.filter(user=user).first()
    if annotator is None:
        return 0
    return Vote.objects.filter(annotator=annotator, project=project).count()


def project_open_pair_count(*, project: Project) -> int:
    """Pairs that still want votes. Cached briefly: it is a progress hint, and
    counting is the one query here whose cost grows with the project."""
    key = f"labeling:open-pairs:{project.pk}"
    value = cache.get(key)
    if value is None:
        value = project.pairs.filter(slots_taken__lt=project.overlap_target).count()
        cache.set(key, value, 30)
    return value


def annotator_own_stats(*, project: Project, user: AbstractBaseUser) -> dict:
    """What an annotator may see about their own work: never anyone else's."""
    stats = AnnotatorStats.objects.filter(project=project, annotator__user=user).first()
    if stats is None:
        return {"votes": 0}
    return {
        "votes": stats.votes,
        "median_seconds": None if stats.median_latency_ms is None else round(stats.median_latency_ms / 1000, 1),
        "agreement": None if not stats.loo_n else round(100 * stats.loo_agree / stats.loo_n),
        "agreement_n": stats.loo_n,
        "left_share": None if not stats.sided else round(100 * stats.left_chosen / stats.sided),
        "tie_share": None if not stats.votes else round(100 * stats.ties / stats.votes),
    }
