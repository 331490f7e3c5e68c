"""Which model versions serve, and how that changes: promote a retrained set, roll back.

The intent model, the Q&A index and the answer generator each keep their versions
in a folder of their own (versions.py). A release is one version of each. One
small file, `LIVE.json` in the models folder, names the live release: its id in
the release history and the version of every part. It is the only answer to
"what is live": the server's load, the watcher (hot_reload.py), rollback, prune
and the build all read it, and it is switched with one atomic, durable rename.

`releases.json` beside it is the history, oldest first, with the figures that
justified each release. A promotion writes the new release into the history
first, marked as the candidate, then switches the pointer, so the pointer never
names a release the history lacks; a candidate the pointer never named (the
promoter died in between) is listed as never live and is no rollback target.
A rollback moves the live release to `rolled_back` first, then switches the
pointer; if it dies in between, the release the pointer still names is put back.

Each part folder's `CURRENT` file is derived information, never read for
serving: rewritten to the pointer's version after every switch (a build also
sets it when it publishes a version, just before releasing it), for tools that
look at one folder. A models folder written before the pointer existed has only those
files; the first read writes the pointer from them, once (`_migrate`).
`assistant prune` removes the version folders none of that needs any more.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.core.errors import ArtifactError, ConfigError, RollbackError
from assistant.core.files import read_json, write_json
from assistant.core.settings import Settings
from assistant.lifecycle.versions import current_version, make_version_current, new_version

RELEASES_FILE = "releases.json"
LIVE_FILE = "LIVE.json"
NOT_BUILT_HINT = "Build the models first with `python launch.py`."
CANDIDATE, RELEASED = "candidate", "released"


@dataclass(frozen=True)
class ModelVersions:
    intent: str
    index: str
    generator: str | None = None

    def describe(self) -> str:
        names = f"intent:{self.intent} index:{self.index}"
        return names + (f" generator:{self.generator}" if self.generator else "")

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ModelVersions:
        return cls(document["intent"], document["index"], document.get("generator"))


@dataclass(frozen=True)
class LiveRelease:
    """What `LIVE.json` says: the history entry that is live, and its versions."""

    release: str
    versions: ModelVersions


def live_path(settings: Settings) -> Path:
    return settings.models_dir / LIVE_FILE


def releases_path(settings: Settings) -> Path:
    return settings.models_dir / RELEASES_FILE


def live_release(settings: Settings) -> LiveRelease:
    """The pointer, written from an older folder's `CURRENT` files the first time;
    raises `ArtifactError` when nothing was built yet."""
    pointer = read_pointer(settings)
    if pointer is None:
        pointer = _migrate(settings)
    if pointer is None:
        raise ArtifactError(f"no built intent model or retrieval index yet. {NOT_BUILT_HINT}")
    return pointer


def read_pointer(settings: Settings) -> LiveRelease | None:
    path = live_path(settings)
    if not path.is_file():
        return None
    document = read_json(path, f"Move it aside and run `python launch.py`. {NOT_BUILT_HINT}")
    try:
        return LiveRelease(str(document["release"]), ModelVersions.from_dict(document["versions"]))
    except (KeyError, TypeError) as error:
        raise ArtifactError(f"{path} is corrupt (no {error}). Move it aside.") from error


def live_versions(settings: Settings) -> ModelVersions:
    """The live versions of the parts the settings use; raises `ArtifactError` if one is
    missing."""
    versions = live_release(settings).versions
    if not settings.generator_enabled:
        return replace(versions, generator=None)
    if versions.generator is None:
        raise ArtifactError(f"no trained answer generator. {NOT_BUILT_HINT}")
    return versions


def live_or_none(settings: Settings) -> ModelVersions | None:
    """The live versions, or None when a part is not built yet."""
    try:
        return live_versions(settings)
    except ArtifactError:
        return None


def version_folders(settings: Settings) -> dict[str, Path]:
    """Where each part of a release keeps its versions, by the part's name."""
    return {
        "intent": settings.intent_models_dir,
        "index": settings.qa_index_dir,
        "generator": settings.generator_models_dir,
    }


def missing_parts(settings: Settings, versions: ModelVersions) -> list[str]:
    """The parts of `versions` whose folder is not there, as "part version"."""
    folders = version_folders(settings)
    return [
        f"{part} {version!r}"
        for part, version in asdict(versions).items()
        if version is not None and not (folders[part] / version).is_dir()
    ]


def release_history(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """{"releases": those that went live, oldest first, the live one last;
    "rolled_back": those taken back; "never_live": candidates whose promotion was
    interrupted before the pointer switched}."""
    return _reconciled(_stored_history(settings), read_pointer(settings))


def promote(
    settings: Settings, versions: ModelVersions, evaluation: dict[str, Any] | None, how: str
) -> None:
    """Make `versions` live: record them as the candidate, switch the pointer, then mark
    them released. Checks every part exists before changing anything."""
    missing = missing_parts(settings, versions)
    if missing:
        raise ArtifactError(f"version {', '.join(missing)} is no longer there")
    # Not migrating here: `CURRENT` files may already name what is being released.
    history = _reconciled(_stored_history(settings), read_pointer(settings))
    record = _record(versions, evaluation, how)
    history["releases"].append({**record, "status": CANDIDATE})
    write_json(releases_path(settings), history)
    _point_at(settings, record["id"], versions)
    history["releases"][-1]["status"] = RELEASED
    write_json(releases_path(settings), history)
    _mirror_current_files(settings, versions)


def release_built(settings: Settings, built: dict[str, str], how: str = "build") -> ModelVersions:
    """Promote the live release with the freshly built parts in `built` replaced. With no
    pointer yet (a first build, or a folder from before it), the other parts are those
    their `CURRENT` files name."""
    pointer = read_pointer(settings)
    if pointer is not None:
        parts = asdict(pointer.versions)
    else:
        parts = {
            part: current_version(folder) for part, folder in version_folders(settings).items()
        }
    parts.update(built)
    if parts.get("intent") is None or parts.get("index") is None:
        raise ArtifactError(f"no built intent model or retrieval index yet. {NOT_BUILT_HINT}")
    versions = ModelVersions.from_dict(parts)
    promote(settings, versions, None, how)
    return versions


def rollback(settings: Settings) -> tuple[ModelVersions, ModelVersions]:
    """Return to the release before the live one; returns (left, now live)."""
    pointer = live_release(settings)
    history = _reconciled(_stored_history(settings), pointer)
    releases = history["releases"]
    position = next(n for n, entry in enumerate(releases) if entry["id"] == pointer.release)
    if position == 0:
        raise RollbackError("there is no earlier release to return to")
    taken_back, target = releases[position], releases[position - 1]
    missing = missing_parts(settings, _versions(target))
    if missing:
        raise ArtifactError(f"version {', '.join(missing)} is no longer there")
    history["releases"] = releases[:position] + releases[position + 1 :]
    history["rolled_back"].append({**taken_back, "rolled_back_at": _now()})
    write_json(releases_path(settings), history)
    _point_at(settings, target["id"], _versions(target))
    _mirror_current_files(settings, _versions(target))
    return _versions(taken_back), _versions(target)


def _point_at(settings: Settings, release: str, versions: ModelVersions) -> None:
    """The switch: one atomic, durable replace of `LIVE.json`."""
    document = {"release": release, "versions": asdict(versions), "at": _now()}
    write_json(live_path(settings), document)


def _mirror_current_files(settings: Settings, versions: ModelVersions) -> None:
    for part, folder in version_folders(settings).items():
        version = getattr(versions, part)
        if version is not None:
            make_version_current(folder, version)


def live_release_or_none(settings: Settings) -> LiveRelease | None:
    """The pointer (written from `CURRENT` files the first time), or None if none yet."""
    return read_pointer(settings) or _migrate(settings)


def _migrate(settings: Settings) -> LiveRelease | None:
    """Write the pointer from the `CURRENT` files of a folder built before it existed;
    None when they do not name an intent model and an index."""
    intent = current_version(settings.intent_models_dir)
    index = current_version(settings.qa_index_dir)
    if intent is None or index is None:
        return None
    versions = ModelVersions(intent, index, current_version(settings.generator_models_dir))
    history = _reconciled(_stored_history(settings), None)
    releases = history["releases"]
    if releases and _versions(releases[-1]) == versions:
        release = releases[-1]["id"]
    else:
        record = _record(versions, None, "built outside retraining")
        releases.append({**record, "status": RELEASED})
        release = record["id"]
    write_json(releases_path(settings), history)
    _point_at(settings, release, versions)
    return LiveRelease(release, versions)


def _stored_history(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    path = releases_path(settings)
    if not path.is_file():
        return {"releases": [], "rolled_back": [], "never_live": []}
    document = read_json(path, f"Move it aside; {NOT_BUILT_HINT}")
    history = {key: list(document.get(key, [])) for key in ("releases", "rolled_back")}
    history["never_live"] = list(document.get("never_live", []))
    for key in ("releases", "rolled_back"):  # written before releases had ids
        for position, entry in enumerate(history[key]):
            entry.setdefault("id", f"{key}-{position}-{entry.get('at', '')}")
    return history


def _reconciled(history: dict[str, list[dict]], pointer: LiveRelease | None) -> dict:
    """The history as the pointer makes it true: a rollback that died before switching
    is undone, a candidate the pointer names went live, others never did."""
    releases, rolled_back = history["releases"], history["rolled_back"]
    live_id = pointer.release if pointer else None
    if live_id is not None and all(entry["id"] != live_id for entry in releases):
        interrupted = [entry for entry in rolled_back if entry["id"] == live_id]
        rolled_back[:] = [entry for entry in rolled_back if entry["id"] != live_id]
        if interrupted:
            entry = {k: v for k, v in interrupted[-1].items() if k != "rolled_back_at"}
        else:  # the history was lost or edited by hand
            entry = {**_record(pointer.versions, None, "live, not in the history"), "id": live_id}
        releases.append({**entry, "status": RELEASED})
    went_live = []
    for entry in releases:
        if entry.get("status") == CANDIDATE and entry["id"] != live_id:
            history["never_live"].append({**entry, "status": "never live"})
        else:
            went_live.append({**entry, "status": RELEASED})
    history["releases"] = went_live
    return history


def prunable(settings: Settings, keep: int) -> list[Path]:
    """Version folders that are not live, not part of the last `keep` releases (what
    `rollback` can return to), and not among the newest `keep` of their kind (recent
    builds and candidates not promoted)."""
    if keep < 1:
        raise ConfigError("keep at least one release")
    pointer = live_release_or_none(settings)
    live = asdict(pointer.versions) if pointer else {}
    recent = release_history(settings)["releases"][-keep:]
    doomed = []
    for part, folder in version_folders(settings).items():
        if not folder.is_dir():
            continue
        versions = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        needed = {live.get(part), *(r["versions"].get(part) for r in recent)}
        needed |= {p.name for p in versions[-keep:]}
        doomed += [p for p in versions if p.name not in needed]
    return doomed


def prune(settings: Settings, keep: int) -> list[Path]:
    """Remove what `prunable` names; returns the folders removed."""
    doomed = prunable(settings, keep)
    remove_versions(settings, doomed)
    return doomed


def remove_versions(settings: Settings, doomed: list[Path]) -> None:
    for folder in version_folders(settings).values():  # left by a removal killed midway
        for leftover in folder.glob(".*.pruned") if folder.is_dir() else []:
            shutil.rmtree(leftover)
    for folder in doomed:
        # Renamed first, so a process killed while deleting leaves no half-version behind.
        retired = folder.with_name(f".{folder.name}.pruned")
        folder.rename(retired)
        shutil.rmtree(retired)


def _versions(record: dict[str, Any]) -> ModelVersions:
    return ModelVersions.from_dict(record["versions"])


def _record(versions: ModelVersions, evaluation: dict[str, Any] | None, how: str) -> dict:
    return {
        "id": new_version(),
        "versions": asdict(versions),
        "at": _now(),
        "how": how,
        "evaluation": evaluation,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
