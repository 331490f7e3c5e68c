"""Versioned model folders: each trained model in its own folder, `CURRENT` naming one.

Shared by the intent classifier, the index and the answer generator, so all are
saved and found the same way. Which versions serve together is not decided here:
the release pointer (`models/LIVE.json`, releases.py) names them, and `CURRENT`
is kept in step with it for tools that look at one folder only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.core.errors import ArtifactError
from assistant.core.files import atomic_write_text, publish_directory, read_json, staging_directory

CURRENT_FILE = "CURRENT"


def new_version() -> str:
    """A sortable, unique version name: the UTC time to the microsecond."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def current_version(models_dir: Path) -> str | None:
    """The version `CURRENT` names, or None when nothing was published yet. What serves
    is what the release pointer names (`releases.live_versions`)."""
    pointer = models_dir / CURRENT_FILE
    if not pointer.is_file():
        return None
    return pointer.read_text(encoding="utf-8").strip() or None


def version_path(models_dir: Path, version: str | None, what: str, hint: str) -> Path:
    """The folder of `version`, or of the current one; `what` and `hint` word the errors."""
    version = version or current_version(models_dir)
    if version is None:
        raise ArtifactError(f"no {what} in {models_dir}. {hint}")
    path = models_dir / version
    if not path.is_dir():
        raise ArtifactError(f"{what} version {version!r} not found in {models_dir}. {hint}")
    return path


def read_version(
    models_dir: Path,
    version: str | None,
    metadata_file: str,
    expected_format: int,
    what: str,
    hint: str,
) -> tuple[Path, dict[str, Any]]:
    """The folder and metadata of a saved version, refusing one saved in another format."""
    path = version_path(models_dir, version, what, hint)
    metadata = read_json(path / metadata_file, hint)
    if metadata.get("format") != expected_format:
        raise ArtifactError(
            f"the {what} in {path} was saved by another version of the assistant. {hint}"
        )
    return path, metadata


def publish_version(
    models_dir: Path, version: str, write: Callable[[Path], None], make_current: bool = True
) -> Path:
    """Let `write` fill a staging folder, move it into place, then (unless told not to) name
    it in `CURRENT`: a candidate is saved without `make_current`. Either way it serves
    only once a release names it (`releases.promote`, `releases.release_built`).

    A process killed at any point leaves the previous version live and intact.
    """
    final = models_dir / version
    staging = staging_directory(final)
    write(staging)
    publish_directory(staging, final)
    if make_current:
        make_version_current(models_dir, version)
    return final


def make_version_current(models_dir: Path, version: str) -> None:
    if not (models_dir / version).is_dir():
        raise ArtifactError(f"version {version!r} not found in {models_dir}")
    atomic_write_text(models_dir / CURRENT_FILE, version + "\n")


def base_data_checksum(metadata: dict[str, Any], checksum_key: str) -> str | None:
    """The checksum of the dataset folder's data a model was built from.

    A retrained model also learned from the conversation log, so its own data
    checksum differs; it records the dataset part as `base_checksum`. Either way
    the model is stale only when the dataset folder changes.
    """
    return metadata.get("base_checksum", metadata.get(checksum_key))
