"""The [components] settings choose the class for each role, and keep it across a reload."""

from __future__ import annotations

import importlib.metadata

import pytest
from fastapi.testclient import TestClient

from assistant.channels.api import create_app
from assistant.core.components import component_class
from assistant.core.errors import ConfigError
from assistant.core.pipeline import Assistant
from assistant.core.seams import AgentDesk, IntentClassifier, LogReader, Retriever, TurnLog
from assistant.lifecycle.releases import ModelVersions
from assistant.storage.store import ConversationStore
from tests.fakes import KeywordClassifier, MemoryLog, WordOverlapRetriever, fake_settings
from tests.postgres import log_for_test


@pytest.fixture
def plugged(demo_slice) -> Assistant:
    return Assistant.load(fake_settings(demo_slice))


def test_the_configured_classes_serve_a_reply(plugged):
    assert isinstance(plugged.classifier, KeywordClassifier)
    assert isinstance(plugged.retriever, WordOverlapRetriever)
    assert isinstance(plugged.store, MemoryLog)
    reply = plugged.reply("Where is my order PP-204817?")
    assert (reply.route, reply.intent) == ("template", "order_status")
    assert "PP-204817" in reply.text
    [turn] = plugged.store.turns(reply.conversation_id)
    assert turn["reply_text"] == reply.text


def test_a_past_answer_comes_from_the_configured_retriever(plugged):
    reply = plugged.reply("Do you offer gift wrapping?")
    assert reply.route == "retrieval"
    assert reply.text == "Yes, gift wrapping is $3."
    assert plugged.reply("Will it rain tomorrow?").route == "refuse"


def test_the_configured_classes_serve_through_the_api(plugged):
    client = TestClient(create_app(plugged, with_ui=False))
    body = client.post("/api/chat", json={"message": "hello there"}).json()
    assert (body["route"], body["intent"]) == ("template", "greeting")
    assert plugged.store.turns(body["conversation_id"])[0]["user_text"] == "hello there"


def test_a_configured_class_survives_a_switch_to_new_versions(plugged):
    switched = plugged.switch_to(ModelVersions("keywords-2", "overlap-2", None))
    assert switched
    assert isinstance(plugged.classifier, KeywordClassifier)
    assert plugged.classifier.version == "keywords-2"
    assert isinstance(plugged.retriever, WordOverlapRetriever)
    assert plugged.reply("hello").intent == "greeting"


def test_fakes_and_the_sqlite_store_fit_their_seams(tmp_path):
    assert isinstance(KeywordClassifier(), IntentClassifier)
    assert isinstance(WordOverlapRetriever(), Retriever)
    assert isinstance(MemoryLog(), TurnLog)
    store = ConversationStore(log_for_test(tmp_path / "log.db"))
    assert all(isinstance(store, seam) for seam in (TurnLog, AgentDesk, LogReader))


def test_an_entry_point_name_is_looked_up_in_its_group(monkeypatch):
    point = importlib.metadata.EntryPoint(
        "keywords", "tests.fakes:KeywordClassifier", "pebble_assistant.intent_classifier"
    )
    found = importlib.metadata.EntryPoints([point])
    monkeypatch.setattr(
        "assistant.core.components.entry_points",
        lambda group: found.select(group=group),
    )
    assert component_class("intent_classifier", "keywords") is KeywordClassifier
    with pytest.raises(ConfigError, match=r"pebble_assistant\.retriever"):
        component_class("retriever", "keywords")


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("no.such.module:Thing", "cannot import"),
        ("tests.fakes:Missing", "names no class"),
        ("tests.fakes:fake_settings", "names no class"),
        ("assistant.core.settings:Settings", "has no from_settings"),
    ],
)
def test_a_bad_reference_says_what_is_wrong(reference, says):
    with pytest.raises(ConfigError, match=says):
        component_class("intent_classifier", reference)
