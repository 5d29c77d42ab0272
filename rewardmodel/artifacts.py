"""Model folders on disk: written in a hidden temp folder, published whole.

The engine writes into `<project dir>/.tmp-run-<id>-a<attempt>-<key>`. Only
when it has finished are the files and folders fsynced and the folder
renamed into place with one `os.replace`, so a folder without a leading
dot is always complete: a worker killed mid-write leaves only a hidden
temp folder behind, which the next attempt or the reconciler removes.

`<key>` is the run's random `artifact_key`: a fresh database beside an old
artifact store numbers its runs from 1 again, and its folders must not
collide with the ones the old database left behind.

Two rules hold for every path that deletes a folder here:

- cleanup never deletes a folder that a version row points to
  (`folder_remove_unless_versioned`); only pruning deletes a version's
  folder, and it marks the row first (rewardmodel.retention);
- a folder this database does not know (another database's leftovers) is
  reported, never deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings

from rewardmodel.training import integrity

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-run-"
_MB = 1024 * 1024


class DiskSpaceLow(OSError):
    """Less free space under MODEL_ARTIFACTS_DIR than RM_MIN_FREE_DISK_MB."""


def project_dir(*, project_id: int) -> Path:
    return Path(settings.MODEL_ARTIFACTS_DIR) / f"project-{project_id}"


def temp_dir(*, project_id: int, run_id: int, attempt: int, key: str) -> Path:
    return project_dir(project_id=project_id) / f"{TMP_PREFIX}{run_id}-a{attempt}-{key}"


def final_dir(*, project_id: int, run_id: int, attempt: int, key: str) -> Path:
    # The attempt is in the name, so two attempts of one run can never
    # publish onto the same folder; the key keeps other databases' runs apart.
    return project_dir(project_id=project_id) / f"run-{run_id}-a{attempt}-{key}"


def temp_dir_create(*, project_id: int, run_id: int, attempt: int, key: str) -> Path:
    """A fresh, empty temp folder for this attempt (an older attempt's leftovers removed)."""
    temp_dirs_remove(project_id=project_id, run_id=run_id, key=key)
    path = temp_dir(project_id=project_id, run_id=run_id, attempt=attempt, key=key)
    path.mkdir(parents=True)
    return path


def temp_dirs_remove(*, project_id: int, run_id: int, key: str) -> None:
    """Remove every temp folder of a run (crashed attempts leave them behind); temp folders are never versions."""
    root = project_dir(project_id=project_id)
    if not root.is_dir():
        return
    for path in root.glob(f"{TMP_PREFIX}{run_id}-a*-{key}"):
        shutil.rmtree(path, ignore_errors=True)


def attempt_files_remove(*, project_id: int, run_id: int, attempt: int, key: str) -> None:
    """Remove what one failed attempt left: its temp folder, and a folder it
    published just before dying, unless a version points to it (a version and
    its run's success are recorded together, so normally none does)."""
    folder_remove(folder=temp_dir(project_id=project_id, run_id=run_id, attempt=attempt, key=key))
    folder_remove_unless_versioned(folder=final_dir(project_id=project_id, run_id=run_id, attempt=attempt, key=key))


def folder_remove_unless_versioned(*, folder: Path) -> bool:
    """Delete a published folder that no version row points to; True if deleted.

    When the database cannot be asked (it is down, or the connection broke
    just as a version was committed), the folder stays: a folder too many is
    reported later, a live version without its files would be an outage.
    """
    from rewardmodel.models import ModelVersion

    if not folder.exists():
        return False
    try:
        versioned = ModelVersion.objects.filter(artifact_dir=str(folder)).exists()
    except Exception as exc:  # any database error: keep the folder
        log.warning("Kept %s: could not check whether a version uses it (%s: %s)", folder, type(exc).__name__, exc)
        return False
    if versioned:
        log.warning("Kept %s: a model version points to it", folder)
        return False
    folder_remove(folder=folder)
    return True


def free_space_check(*, what: str) -> None:
    """Raise DiskSpaceLow when MODEL_ARTIFACTS_DIR has less free space than RM_MIN_FREE_DISK_MB."""
    need = settings.RM_MIN_FREE_DISK_MB * _MB
    root = Path(settings.MODEL_ARTIFACTS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < need:
        raise DiskSpaceLow(
            f"Not enough free disk space {what}: {free // _MB:,} MB free under {root}, and RM_MIN_FREE_DISK_MB "
            f"keeps {need // _MB:,} MB in reserve (so the database can still take votes). Old versions were "
            "pruned first; pin fewer versions, lower RM_KEEP_VERSIONS or add disk."
        )


def checksums_compute(*, folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by path relative to it (what the scorer verifies on load)."""
    return integrity.checksums_compute(folder)


def checksums_mismatched(*, folder: Path, expected: dict[str, str]) -> list[str]:
    """Files that are missing or differ from `expected` (empty when all match)."""
    if not folder.is_dir():
        return ["(folder missing)"]
    found = checksums_compute(folder=folder)
    return sorted(name for name, digest in expected.items() if found.get(name) != digest)


def publish(*, temp: Path, final: Path) -> None:
    """Make `temp`'s contents durable, then rename it to `final` atomically."""
    _fsync_tree(temp)
    if final.exists():
        raise FileExistsError(f"{final} already exists; refusing to overwrite a published model")
    os.replace(temp, final)
    _fsync_dir(final.parent)


def folder_remove(*, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def project_folders(*, project_id: int) -> list[Path]:
    """The published (visible) folders under a project's directory."""
    root = project_dir(project_id=project_id)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
