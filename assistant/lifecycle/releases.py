"""Which model versions serve, and how that changes: promote a retrained set, roll back.

The intent model, the Q&A index and the answer generator each keep their versions
in a folder of their own, `CURRENT` naming the live one (versions.py). A release
is one version of each. `releases.json` in the models folder lists the releases
promoted, oldest first, with the figures that justified them, so `assistant
rollback` can return to the one before the live release. A running server
watches the `CURRENT` files (hot_reload.py) and switches when they change.
`assistant prune` removes the version folders none of that needs any more.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.core.errors import ArtifactError, ConfigError, RollbackError
from assistant.core.files import read_json, write_json
from assistant.core.settings import Settings
from assistant.lifecycle.versions import current_version, make_version_current

RELEASES_FILE = "releases.json"
NOT_BUILT_HINT = "Build the models first with `python launch.py`."


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


def live_versions(settings: Settings) -> ModelVersions:
    """The versions the `CURRENT` files name now; raises `ArtifactError` if one is missing."""
    intent = current_version(settings.intent_models_dir)
    index = current_version(settings.qa_index_dir)
    if intent is None or index is None:
        raise ArtifactError(f"no built intent model or retrieval index yet. {NOT_BUILT_HINT}")
    generator = None
    if settings.generator_enabled:
        generator = current_version(settings.generator_models_dir)
        if generator is None:
            raise ArtifactError(f"no trained answer generator. {NOT_BUILT_HINT}")
    return ModelVersions(intent, index, generator)


def version_folders(settings: Settings) -> dict[str, Path]:
    """Where each part of a release keeps its versions, by the part's name."""
    return {
        "intent": settings.intent_models_dir,
        "index": settings.qa_index_dir,
        "generator": settings.generator_models_dir,
    }


def releases_path(settings: Settings) -> Path:
    return settings.models_dir / RELEASES_FILE


def release_history(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """{"releases": promoted, oldest first, "rolled_back": those taken back}."""
    path = releases_path(settings)
    if not path.is_file():
        return {"releases": [], "rolled_back": []}
    document = read_json(path, f"Move it aside; {NOT_BUILT_HINT}")
    return {key: document.get(key, []) for key in ("releases", "rolled_back")}


def promote(
    settings: Settings, versions: ModelVersions, evaluation: dict[str, Any] | None, how: str
) -> None:
    """Make `versions` live and record them, with the release they replace if unrecorded."""
    history = release_history(settings)
    releases = history["releases"]
    replaced = live_or_none(settings)
    if replaced is not None and (not releases or _versions(releases[-1]) != replaced):
        releases.append(_record(replaced, None, "built outside retraining"))
    _point_at(settings, versions)
    releases.append(_record(versions, evaluation, how))
    write_json(releases_path(settings), history)


def rollback(settings: Settings) -> tuple[ModelVersions, ModelVersions]:
    """Return to the release before the live one; returns (left, now live)."""
    history = release_history(settings)
    releases = history["releases"]
    live = live_versions(settings)
    taken_back = releases[-1] if releases and _versions(releases[-1]) == live else None
    earlier = releases[:-1] if taken_back else releases
    if not earlier:
        raise RollbackError("there is no earlier release to return to")
    target = _versions(earlier[-1])
    _point_at(settings, target)
    if taken_back is not None:
        history["rolled_back"].append({**taken_back, "rolled_back_at": _now()})
        history["releases"] = earlier
    write_json(releases_path(settings), history)
    return live, target


def _point_at(settings: Settings, versions: ModelVersions) -> None:
    """Point each `CURRENT` at `versions`, checking all exist before changing any.

    The intent model goes last: a watcher that sees it change sees the others too.
    """
    targets = [
        (settings.generator_models_dir, versions.generator),
        (settings.qa_index_dir, versions.index),
        (settings.intent_models_dir, versions.intent),
    ]
    targets = [(folder, version) for folder, version in targets if version is not None]
    for folder, version in targets:
        if not (folder / version).is_dir():
            raise ArtifactError(f"version {version!r} is no longer in {folder}")
    for folder, version in targets:
        make_version_current(folder, version)


def live_or_none(settings: Settings) -> ModelVersions | None:
    """The live versions, or None when a part is not built yet."""
    try:
        return live_versions(settings)
    except ArtifactError:
        return None


def prunable(settings: Settings, keep: int) -> list[Path]:
    """Version folders that are not live, not part of the last `keep` releases (what
    `rollback` can return to), and not among the newest `keep` of their kind (recent
    builds and candidates not promoted)."""
    if keep < 1:
        raise ConfigError("keep at least one release")
    recent = release_history(settings)["releases"][-keep:]
    doomed = []
    for part, folder in version_folders(settings).items():
        if not folder.is_dir():
            continue
        versions = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        needed = {current_version(folder), *(r["versions"].get(part) for r in recent)}
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
    return {"versions": asdict(versions), "at": _now(), "how": how, "evaluation": evaluation}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
