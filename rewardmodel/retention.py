"""Which model folders stay on disk: the rest are pruned so the disk never fills.

Kept, per project: the live version, the last RM_KEEP_VERSIONS versions,
the versions the promotion gate compares with (the last
RM_PROMOTION_LOOKBACK that were live) and pinned versions. Any other
version's folder is deleted, and its row says so (`pruned_at`): the row
stays, with its metrics and held-out scores, for the dashboard's history,
but it can no longer go live.

Folders no version points to:

- this database's own (`run-<id>-a<n>-<key>` with the key of one of its
  runs), published by an attempt that died before recording its version:
  deleted, unless that attempt is still running;
- anything else, such as folders another database left in the same store:
  reported, never deleted.

Runs after every successful run and from beat (`rewardmodel.tasks.prune_models`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from labeling.models import Project
from lib.errors import InvalidInput
from rewardmodel import artifacts
from rewardmodel.gate import reference_versions
from rewardmodel.models import ModelVersion, TrainingRun

log = logging.getLogger(__name__)

_RUN_FOLDER = re.compile(r"^run-(?P<run>\d+)-a(?P<attempt>\d+)-(?P<key>[0-9a-f]+)$")


@dataclass
class PruneReport:
    pruned: list[int] = field(default_factory=list)  # version numbers whose folders went
    orphans_removed: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # unknown to this database: left alone


def versions_kept(*, project_id: int) -> set[int]:
    """Ids of the versions whose folders stay."""
    newest = ModelVersion.objects.filter(project_id=project_id).order_by("-number")[: settings.RM_KEEP_VERSIONS]
    keep = set(newest.values_list("pk", flat=True))
    keep |= set(ModelVersion.objects.filter(project_id=project_id, pinned=True).values_list("pk", flat=True))
    active, recent = reference_versions(project_id=project_id)
    keep |= {v.pk for v in recent} | ({active.pk} if active else set())
    return keep


def model_versions_prune(*, project_id: int) -> PruneReport:
    """Delete the folders of versions no longer kept, and this database's orphan folders."""
    report = PruneReport()
    now = timezone.now()
    with transaction.atomic():
        # The project lock orders this after a promotion or pin in flight.
        Project.objects.select_for_update().filter(pk=project_id).first()
        keep = versions_kept(project_id=project_id)
        candidates = ModelVersion.objects.filter(project_id=project_id, pruned_at__isnull=True).exclude(pk__in=keep)
        doomed = list(candidates.filter(is_active=False, pinned=False))
        ModelVersion.objects.filter(pk__in=[v.pk for v in doomed]).update(pruned_at=now)
    for version in doomed:  # the rows say so first: nothing can activate them any more
        artifacts.folder_remove(folder=Path(version.artifact_dir))
        report.pruned.append(version.number)

    known = set(ModelVersion.objects.filter(project_id=project_id).values_list("artifact_dir", flat=True))
    for folder in artifacts.project_folders(project_id=project_id):
        if str(folder) in known:
            continue
        run, attempt = _folder_run(folder, project_id=project_id)
        if run is None:
            report.leftovers.append(folder.name)
        elif not (run.status == TrainingRun.Status.RUNNING and run.attempt == attempt):  # a finished attempt's
            if artifacts.folder_remove_unless_versioned(folder=folder):
                report.orphans_removed.append(folder.name)
    if report.pruned or report.orphans_removed:
        log.info("Pruned project %s: versions %s, orphan folders %s", project_id, report.pruned, report.orphans_removed)
    if report.leftovers:
        log.warning(
            "Project %s: folders %s under %s belong to no run of this database (another database's?); left alone",
            project_id,
            report.leftovers,
            artifacts.project_dir(project_id=project_id),
        )
    return report


def model_versions_prune_all() -> dict[int, PruneReport]:
    return {pid: model_versions_prune(project_id=pid) for pid in Project.objects.values_list("pk", flat=True)}


def model_version_pin(*, version: ModelVersion, pinned: bool, user: AbstractBaseUser | None = None) -> ModelVersion:
    """Pin a version (its folder is never pruned) or unpin it."""
    if pinned and version.pruned_at is not None:
        raise InvalidInput(
            f"Version {version.number}'s files were pruned on {version.pruned_at:%Y-%m-%d}; it cannot be pinned."
        )
    ModelVersion.objects.filter(pk=version.pk).update(pinned=pinned)
    version.refresh_from_db()
    log.info("Version %s v%s %s by %s", version.project_id, version.number, "pinned" if pinned else "unpinned", user)
    return version


def leftover_folders(*, project_id: int) -> list[str]:
    """Folders under the project's directory that no run of this database made (read-only, for the runs page)."""
    known = set(ModelVersion.objects.filter(project_id=project_id).values_list("artifact_dir", flat=True))
    return [
        f.name
        for f in artifacts.project_folders(project_id=project_id)
        if str(f) not in known and _folder_run(f, project_id=project_id)[0] is None
    ]


def _folder_run(folder: Path, *, project_id: int) -> tuple[TrainingRun | None, int]:
    """The run of this database (and project) that made the folder, and the attempt it names; (None, 0) if none."""
    match = _RUN_FOLDER.match(folder.name)
    if match is None:
        return None, 0
    run = TrainingRun.objects.filter(pk=int(match["run"]), project_id=project_id, artifact_key=match["key"]).first()
    return run, int(match["attempt"])
