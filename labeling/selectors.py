"""Reads for labeling: who may see which project, and annotators' own progress."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import QuerySet

from labeling import signals, sql
from labeling.models import Annotator, Project, Vote
from lib.errors import NotFound


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
        value = project.pairs.filter(slots_taken__lt=project.overlap_target, archived=False).count()
        cache.set(key, value, 30)
    return value


def annotator_own_figures(*, project: Project, user: AbstractBaseUser) -> dict:
    """The annotator's own figures (median time, agreement, side shares) from the apps
    above labeling that keep them (the dashboard), merged; empty when none does."""
    figures: dict = {}
    for _receiver, answer in signals.annotator_figures_wanted.send(sender=Project, project=project, user=user):
        figures.update(answer or {})
    return figures
