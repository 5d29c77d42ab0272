"""What a model folder must be before anything loads it: safetensors weights
only, and, when the caller knows them, files that match their checksums.

A pickle-based weights file (`pytorch_model.bin`, `.pt`, ...) runs code when
it is loaded, so a folder holding one is refused outright rather than
trusted to be skipped. The check knows nothing about the folder's layout
beyond that: any folder with `.safetensors` weights and no pickle passes,
whatever kind of model it holds. No torch here: the web process and the
artifact store use the same checksums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

# Formats that unpickle (and so may execute code) when loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill")
_CHUNK = 1 << 20


class ArtifactIntegrityError(ValueError):
    """The folder holds unsafe weights, no weights, or files that differ from their checksums."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksums_compute(folder: str | Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by path relative to it."""
    root = Path(folder)
    return {
        path.relative_to(root).as_posix(): file_sha256(path)
        for path in sorted(p for p in root.rglob("*") if p.is_file())
    }


def folder_verify(folder: str | Path, checksums: Mapping[str, str] | None = None) -> None:
    """Raise unless `folder` holds safetensors weights, no pickle, and (if given) exactly `checksums`."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such model folder")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    unsafe = [name for name in files if name.lower().endswith(PICKLE_SUFFIXES)]
    if unsafe:
        raise ArtifactIntegrityError(
            f"{root} holds weights in a pickle format ({', '.join(unsafe[:5])}); only safetensors are loaded"
        )
    if not any(name.endswith(".safetensors") for name in files):
        raise ArtifactIntegrityError(f"{root} holds no .safetensors weights")
    if checksums is None:
        return
    found = {name: file_sha256(root / name) for name in files}  # the files listed above: one walk
    changed = sorted(name for name, digest in checksums.items() if found.get(name) != digest)
    extra = sorted(set(found) - set(checksums))
    if changed or extra:
        detail = ", ".join([*(f"{n} (missing or changed)" for n in changed), *(f"{n} (not recorded)" for n in extra)])
        raise ArtifactIntegrityError(f"{root} does not match its recorded checksums: {detail[:500]}")
