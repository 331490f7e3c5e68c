import itertools
import json
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.core.errors import ArtifactError, RollbackError
from assistant.core.settings import Settings
from assistant.lifecycle.hot_reload import ModelWatcher
from assistant.lifecycle.releases import (
    ModelVersions,
    live_versions,
    promote,
    prunable,
    prune,
    release_built,
    release_history,
    rollback,
)
from assistant.lifecycle.versions import current_version, make_version_current


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(models_dir=tmp_path / "models", index_dir=tmp_path / "index")


def saved(settings: Settings, name: str) -> ModelVersions:
    """Version folders for one release (what is inside them is the trainers' business)."""
    versions = ModelVersions(f"intent-{name}", f"index-{name}", f"generator-{name}")
    for folder, version in (
        (settings.intent_models_dir, versions.intent),
        (settings.qa_index_dir, versions.index),
        (settings.generator_models_dir, versions.generator),
    ):
        (folder / version).mkdir(parents=True)
    return versions


def make_live(settings: Settings, versions: ModelVersions) -> None:
    """What a first build does: release every part it built at once."""
    release_built(settings, asdict(versions))


def write_current_files(settings: Settings, versions: ModelVersions) -> None:
    """What a build by an older version left: only each part's CURRENT file."""
    make_version_current(settings.intent_models_dir, versions.intent)
    make_version_current(settings.qa_index_dir, versions.index)
    make_version_current(settings.generator_models_dir, versions.generator)


def test_live_versions_are_read_from_the_one_pointer(settings):
    with pytest.raises(ArtifactError, match="launch"):
        live_versions(settings)
    first, second = saved(settings, "a"), saved(settings, "b")
    make_live(settings, first)
    assert live_versions(settings) == first
    make_version_current(settings.intent_models_dir, second.intent)  # a part changed alone
    assert live_versions(settings) == first
    without_generator = settings.model_copy(update={"generator_enabled": False})
    assert live_versions(without_generator) == ModelVersions(first.intent, first.index, None)
    pointer = json.loads((settings.models_dir / "LIVE.json").read_text())
    assert pointer["versions"] == {
        "intent": "intent-a",
        "index": "index-a",
        "generator": "generator-a",
    }
    assert pointer["release"] == release_history(settings)["releases"][-1]["id"]


def test_a_folder_with_only_current_files_is_migrated_once(settings):
    first, second = saved(settings, "a"), saved(settings, "b")
    write_current_files(settings, first)
    assert live_versions(settings) == first
    assert (settings.models_dir / "LIVE.json").is_file()
    [record] = release_history(settings)["releases"]
    assert record["versions"]["intent"] == first.intent
    write_current_files(settings, second)  # read once: later CURRENT files are not live
    assert live_versions(settings) == first
    assert len(release_history(settings)["releases"]) == 1


def test_promote_records_the_release_it_replaces_then_rollback_returns_to_it(settings):
    first, second, third = saved(settings, "a"), saved(settings, "b"), saved(settings, "c")
    write_current_files(settings, first)
    assert live_versions(settings) == first  # what retraining reads before it trains
    promote(settings, second, {"candidate": {"accuracy": 0.9}}, "retrain")
    assert live_versions(settings) == second
    assert current_version(settings.intent_models_dir) == second.intent  # kept in step
    history = release_history(settings)["releases"]
    assert [h["how"] for h in history] == ["built outside retraining", "retrain"]
    assert [h["status"] for h in history] == ["released", "released"]
    assert history[1]["evaluation"] == {"candidate": {"accuracy": 0.9}}

    promote(settings, third, None, "retrain")
    assert rollback(settings) == (third, second)
    assert live_versions(settings) == second
    assert current_version(settings.qa_index_dir) == second.index
    assert rollback(settings) == (second, first)
    assert live_versions(settings) == first
    with pytest.raises(RollbackError, match="no earlier release"):
        rollback(settings)
    rolled_back = release_history(settings)["rolled_back"]
    assert [ModelVersions.from_dict(r["versions"]) for r in rolled_back] == [third, second]


def test_a_first_build_is_one_release_though_its_trainers_wrote_current_files(settings):
    built = saved(settings, "a")
    write_current_files(settings, built)  # each trainer publishes before the release
    release_built(settings, asdict(built))
    assert [r["how"] for r in release_history(settings)["releases"]] == ["build"]
    assert live_versions(settings) == built


def test_a_part_built_by_hand_is_released_with_the_live_others(settings):
    first = saved(settings, "a")
    make_live(settings, first)
    (settings.intent_models_dir / "manual").mkdir()
    release_built(settings, {"intent": "manual"})  # e.g. `assistant train`
    manual = ModelVersions("manual", first.index, first.generator)
    assert live_versions(settings) == manual
    assert rollback(settings) == (manual, first)


def test_a_candidate_that_never_went_live_is_listed_so_and_no_rollback_target(settings):
    first, second, third = saved(settings, "a"), saved(settings, "b"), saved(settings, "c")
    make_live(settings, first)
    promote(settings, second, None, "retrain")
    history = json.loads((settings.models_dir / "releases.json").read_text())
    history["releases"].append({**history["releases"][-1], "id": "died", "status": "candidate"})
    history["releases"][-1]["versions"] = {"intent": "intent-c", "index": "index-c"}
    (settings.models_dir / "releases.json").write_text(json.dumps(history))

    listed = release_history(settings)
    assert [r["id"] for r in listed["never_live"]] == ["died"]
    assert "died" not in [r["id"] for r in listed["releases"]]
    assert live_versions(settings) == second
    assert rollback(settings) == (second, first)
    promote(settings, third, None, "retrain")
    assert rollback(settings) == (third, first)


def test_a_release_whose_folders_are_gone_is_refused_before_anything_changes(settings):
    first, second = saved(settings, "a"), saved(settings, "b")
    make_live(settings, first)
    (settings.qa_index_dir / second.index).rmdir()
    with pytest.raises(ArtifactError, match="no longer there"):
        promote(settings, second, None, "retrain")
    assert live_versions(settings) == first


def test_prune_keeps_the_live_release_what_rollback_needs_and_the_newest(settings):
    first, second, third, fourth = (saved(settings, name) for name in "abcd")
    make_live(settings, first)
    for versions in (second, third, fourth):
        promote(settings, versions, None, "retrain")
    candidate = saved(settings, "e")  # trained, not promoted
    (settings.intent_models_dir / ".e.building-x").mkdir()  # a build in progress

    removed = prune(settings, keep=2)
    assert sorted(p.name for p in removed) == sorted(
        f"{part}-{name}" for part in ("intent", "index", "generator") for name in "ab"
    )
    left = sorted(p.name for p in settings.intent_models_dir.iterdir() if p.is_dir())
    assert left == [".e.building-x", "intent-c", "intent-d", candidate.intent]
    assert rollback(settings) == (fourth, third)
    assert prunable(settings, keep=2) == []
    with pytest.raises(ValueError, match="at least one"):
        prunable(settings, keep=0)


# Killing the promoter: a child process runs a promotion or rollback and dies at its
# k-th replace or fsync, for every k, and what it leaves is checked.
KILLED = 75
WRITING_STEPS = ("replace", "fsync")  # what makes a write visible, then durable
MOST_STEPS = 60


class Serving:
    """The part of an assistant the watcher drives: what serves, and the switch."""

    def __init__(self, settings: Settings, versions: ModelVersions) -> None:
        self.settings = settings
        self.models = SimpleNamespace(versions=versions)

    def switch_to(self, versions: ModelVersions) -> bool:
        self.models = SimpleNamespace(versions=versions)
        return True


def run_killed_at(step: int, action: Callable[[], object]) -> int:
    """Run `action` in a child that dies at its `step`-th replace or fsync, before it
    happens; the child's exit code: KILLED, or 0 when it finished first."""
    child = multiprocessing.get_context("fork").Process(target=_die_at, args=(step, action))
    child.start()
    child.join(timeout=60)
    return child.exitcode


def _die_at(step: int, action: Callable[[], object]) -> None:
    calls = itertools.count(1)
    real = {name: getattr(os, name) for name in WRITING_STEPS}

    def dying(name: str) -> Callable[..., object]:
        def call(*args: object) -> object:
            if next(calls) == step:
                os._exit(KILLED)
            return real[name](*args)

        return call

    for name in WRITING_STEPS:
        setattr(os, name, dying(name))
    action()
    os._exit(0)


def assert_one_whole_release(settings: Settings, old: ModelVersions, new: ModelVersions):
    live = live_versions(settings)
    assert live in (old, new)
    assert ModelVersions.from_dict(release_history(settings)["releases"][-1]["versions"]) == live
    watcher = ModelWatcher(Serving(settings, old), interval_s=60)
    watcher.check()
    watcher.check()
    assert watcher.assistant.models.versions == live
    return live


def before_the_change(root: Path, what: str) -> tuple[Settings, ModelVersions, ModelVersions]:
    """Two evaluated releases' folders, the first live, or both promoted for a rollback:
    (settings, live before, live after `what`)."""
    settings = Settings(models_dir=root / "models", index_dir=root / "index")
    first, second = saved(settings, "a"), saved(settings, "b")
    promote(settings, first, {"candidate": {"accuracy": 0.8}}, "retrain")
    if what == "promote":
        return settings, first, second
    promote(settings, second, {"candidate": {"accuracy": 0.9}}, "retrain")
    return settings, second, first


def change(settings: Settings, what: str, new: ModelVersions) -> None:
    if what == "promote":
        promote(settings, new, {"candidate": {"accuracy": 0.9}}, "retrain")
    else:
        rollback(settings)


@pytest.mark.parametrize("what", ["promote", "rollback"])
def test_a_release_change_killed_at_any_step_leaves_old_or_new_whole(tmp_path, what):
    outcomes = []
    for step in range(1, MOST_STEPS):
        settings, old, new = before_the_change(tmp_path / f"{what}-{step}", what)
        third = saved(settings, "c")
        code = run_killed_at(step, partial(change, settings, what, new))
        assert code in (KILLED, 0), f"the child failed at step {step}"
        live = assert_one_whole_release(settings, old, new)
        outcomes.append(live == new)

        promote(settings, third, None, "retrain")
        assert live_versions(settings) == third
        assert rollback(settings) == (third, live)
        if code == 0:
            break
    assert outcomes[0] is False and outcomes[-1] is True, "both outcomes were reached"
    assert len(outcomes) < MOST_STEPS - 1
