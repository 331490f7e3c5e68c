"""Switching a serving assistant to new models: unit checks, then the whole loop under load."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import httpx
import pytest

from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.core.settings import Settings
from assistant.intents.classifier import METADATA_FILE
from assistant.lifecycle.hot_reload import ModelWatcher
from assistant.lifecycle.releases import ModelVersions, live_versions, promote, release_built
from assistant.lifecycle.retrain import RETRIEVAL_FIGURE
from assistant.lifecycle.versions import make_version_current
from tests.conftest import ROOT, copy_of_built, environment_for, running_server
from tests.lifecycle.test_releases import Serving, saved

# Customer messages of our own, answered before, during and after the switch.
LOAD_MESSAGES = [
    "has my parcel left the warehouse yet",
    "how much does delivery to Ireland cost",
    "hello, is anyone there",
    "can I return shoes that do not fit",
]
# Turns an agent corrects before retraining: (message, the intent that was right).
CORRECTED = [
    ("my parcel still shows as processing after a week", "order_status"),
    ("is posting to the Faroe Islands extra", "shipping_cost"),
    ("good evening team", "greeting"),
    ("can I swap the blue vase I bought for a refund", "return_policy"),
    ("put me through to somebody real please", "human_agent"),
]


@pytest.fixture
def own_settings(built_settings, tmp_path):
    return copy_of_built(built_settings, tmp_path, reload_check_seconds=0.2)


def run_cli(settings, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *arguments],
        cwd=ROOT,
        env={**os.environ, **environment_for(settings)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def watched(tmp_path):
    """A watcher over a release folder of empty versions, `a` live and serving."""
    settings = Settings(models_dir=tmp_path / "models", index_dir=tmp_path / "index")
    first = saved(settings, "a")
    release_built(settings, asdict(first))
    return ModelWatcher(Serving(settings, first), interval_s=60), first


def test_the_watcher_switches_at_its_first_look_at_a_new_pointer(watched):
    watcher, _ = watched
    settings = watcher.assistant.settings
    assert not watcher.check()
    second = saved(settings, "b")
    promote(settings, second, None, "retrain")
    assert watcher.check()
    assert watcher.assistant.models.versions == second
    assert not watcher.check()


def test_a_part_changed_outside_a_release_is_never_served(watched):
    watcher, first = watched
    settings = watcher.assistant.settings
    (settings.intent_models_dir / "by-hand").mkdir()
    make_version_current(settings.intent_models_dir, "by-hand")  # how a switch used to look
    assert not watcher.check()
    assert not watcher.check()
    assert watcher.assistant.models.versions == first


def test_a_pointer_naming_a_removed_version_is_not_followed(watched):
    watcher, first = watched
    settings = watcher.assistant.settings
    second = saved(settings, "b")
    promote(settings, second, None, "retrain")
    (settings.qa_index_dir / second.index).rmdir()
    assert not watcher.check()
    assert watcher.assistant.models.versions == first


def test_the_watcher_loads_a_promoted_copy_of_the_live_model(own_settings):
    assistant = Assistant.load(own_settings)
    watcher = ModelWatcher(assistant, interval_s=60)
    serving = assistant.models.versions
    assert not watcher.check()

    older = sorted(p.name for p in own_settings.intent_models_dir.iterdir() if p.is_dir())
    copy = own_settings.intent_models_dir / "copy-of-live"
    shutil.copytree(own_settings.intent_models_dir / serving.intent, copy)
    metadata = json.loads((copy / METADATA_FILE).read_text())
    (copy / METADATA_FILE).write_text(json.dumps({**metadata, "version": "copy-of-live"}))
    promote(
        own_settings, ModelVersions("copy-of-live", serving.index, serving.generator), None, "x"
    )

    assert watcher.check()
    assert assistant.models.versions.intent == "copy-of-live"
    assert assistant.reply("hello").model_version.startswith("intent:copy-of-live ")
    assert serving.intent in older


def test_a_version_that_cannot_load_leaves_the_old_one_serving(own_settings):
    assistant = Assistant.load(own_settings)
    serving = assistant.models.versions
    watcher = ModelWatcher(assistant, interval_s=60)
    assert not watcher.check()
    (own_settings.intent_models_dir / "broken").mkdir()
    promote(own_settings, ModelVersions("broken", serving.index, serving.generator), None, "x")
    assert not watcher.check()  # tried, failed, logged
    assert assistant.models.versions == serving
    assert assistant.reply("hello").model_version == serving.describe()
    assert not watcher.check()  # not retried until the pointer changes


def test_export_retrain_promote_and_switch_while_serving(own_settings, tmp_path):
    assistant = Assistant.load(own_settings)
    old = assistant.models.versions
    for text, intent in CORRECTED:
        reply = assistant.reply(text)
        assistant.store.correct_intent(reply.turn_id, "ana", intent)
        assistant.store.agent_reply(reply.conversation_id, "ana", f"An answer about {intent}.")

    with running_server(create_app(assistant, with_ui=False)) as url, Load(url) as load:
        exported = tmp_path / "log.jsonl"
        export = run_cli(own_settings, "export", "--out", str(exported))
        assert export.returncode == 0, export.stderr
        retrain = run_cli(own_settings, "retrain", "--logs", str(exported), "--force", "--json")
        assert retrain.returncode == 0, retrain.stderr
        result = json.loads(retrain.stdout)
        new = live_versions(own_settings)
        wait_for_version(url, new.describe())
        time.sleep(1)
        load.stop()

        assert load.failures == []
        assert {old.describe(), new.describe()} <= set(load.versions)
        assert load.versions[-1] == new.describe()
        assert result["counts"]["corrected"] == len(CORRECTED)
        assert result["promoted"] and result["candidate"] == new.describe()
        assert (
            set(result["live_figures"])
            == set(result["candidate_figures"])
            == {"accuracy", "macro_f1", RETRIEVAL_FIGURE}
        )

        rollback = run_cli(own_settings, "rollback")
        assert rollback.returncode == 0, rollback.stderr
        wait_for_version(url, old.describe())
        assert live_versions(own_settings) == old


class Load:
    """Customers chatting without pause, from two threads, noting every failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.failures: list[str] = []
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._chat, args=(n,), daemon=True) for n in range(2)
        ]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _chat(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            sent = offset
            while not self._stop.is_set():
                message = LOAD_MESSAGES[sent % len(LOAD_MESSAGES)]
                sent += 1
                try:
                    response = client.post("/api/chat", json={"message": message})
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                else:
                    self.versions.append(response.json()["model_version"])


def wait_for_version(url: str, version: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    serving = None
    while time.monotonic() < deadline:
        serving = httpx.get(f"{url}/api/health", timeout=30).json()["model_version"]
        if serving == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"still serving {serving}, not {version}")
