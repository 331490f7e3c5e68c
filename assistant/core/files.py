"""Crash-safe writes: a reader sees the old file or folder or the new one, never half of one.

A file written here is also durable once the call returns: its content and its
directory entry are flushed to disk, so a power cut cannot undo a switch that a
reader already acted on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from assistant.core.errors import ArtifactError


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries, so a file just renamed into it survives a power cut."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_tree(root: Path) -> None:
    """Flush every file under `root`, then each folder's entries, deepest first."""
    folders = [root]
    for folder, _, files in os.walk(root):
        folders.append(Path(folder))
        for name in files:
            handle = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
    for folder in sorted(set(folders), key=lambda f: len(f.parts), reverse=True):
        fsync_directory(folder)


def write_json(path: Path, document: Any) -> None:
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, rebuild_hint: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ArtifactError(f"{path} is missing. {rebuild_hint}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is corrupt ({error}). {rebuild_hint}") from error
    if not isinstance(document, dict):
        raise ArtifactError(f"{path} is corrupt (not a JSON object). {rebuild_hint}")
    return document


def staging_directory(final: Path) -> Path:
    """A fresh folder beside `final`, on the same file system, to build into."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.building-"))


def publish_directory(staging: Path, final: Path) -> None:
    """Move a fully written folder into place, replacing any previous one, durably: its
    files reach the disk before it is renamed in, and the rename before this returns, so
    a release pointer written next never names a version a power cut would lose.

    Also removes what builds killed before publishing left behind.
    """
    fsync_tree(staging)
    retired = final.with_name(f".{final.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if final.exists():
        os.replace(final, retired)
    os.replace(staging, final)
    fsync_directory(final.parent)
    shutil.rmtree(retired, ignore_errors=True)
    for leftover in final.parent.glob(f".{final.name}.building-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
