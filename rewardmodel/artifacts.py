"""Model folders on disk: written in a hidden temp folder, published whole.

The engine writes into `<project dir>/.tmp-run-<id>-a<attempt>`. Only when
it has finished are the files and folders fsynced and the folder renamed
into place with one `os.replace`, so a folder without a leading dot is
always complete: a worker killed mid-write leaves only a hidden temp
folder behind, which the next attempt or the reconciler removes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-run-"
_CHUNK = 1 << 20


def project_dir(*, project_id: int) -> Path:
    return Path(settings.MODEL_ARTIFACTS_DIR) / f"project-{project_id}"


def temp_dir(*, project_id: int, run_id: int, attempt: int) -> Path:
    return project_dir(project_id=project_id) / f"{TMP_PREFIX}{run_id}-a{attempt}"


def final_dir(*, project_id: int, run_id: int, attempt: int) -> Path:
    # The attempt is in the name, so two attempts of one run can never
    # publish onto the same folder.
    return project_dir(project_id=project_id) / f"run-{run_id}-a{attempt}"


def temp_dir_create(*, project_id: int, run_id: int, attempt: int) -> Path:
    """A fresh, empty temp folder for this attempt (an older attempt's leftovers removed)."""
    temp_dirs_remove(project_id=project_id, run_id=run_id)
    path = temp_dir(project_id=project_id, run_id=run_id, attempt=attempt)
    path.mkdir(parents=True)
    return path


def temp_dirs_remove(*, project_id: int, run_id: int) -> None:
    """Remove every temp folder of a run: crashed attempts leave them behind."""
    root = project_dir(project_id=project_id)
    if not root.is_dir():
        return
    for path in root.glob(f"{TMP_PREFIX}{run_id}-a*"):
        shutil.rmtree(path, ignore_errors=True)


def attempt_files_remove(*, project_id: int, run_id: int, attempt: int) -> None:
    """Remove what one failed attempt left: its temp folder, and a folder it
    published just before dying, which no version points to (a version and
    its run's success are recorded together)."""
    folder_remove(folder=temp_dir(project_id=project_id, run_id=run_id, attempt=attempt))
    folder_remove(folder=final_dir(project_id=project_id, run_id=run_id, attempt=attempt))


def checksums_compute(*, folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by path relative to it."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        out[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return out


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
