import numpy as np
import pytest

from assistant.analytics.metrics import (
    RememberedEmbed,
    compute_metrics,
    frequent_unanswered,
    group_questions,
    percentile,
    prometheus_text,
    unanswered,
)
from assistant.core.records import TurnRecord
from assistant.storage.sqlite import ConversationStore


def log(
    store,
    conversation,
    text,
    route="template",
    intent="greeting",
    confidence=0.9,
    ms=10.0,
    handoff=False,
):
    return store.log_turn(
        TurnRecord(
            conversation,
            text,
            "reply",
            route,
            intent,
            confidence,
            "why",
            [],
            {},
            ms,
            "v1",
            handoff_reason="why" if handoff else None,
        )
    )


@pytest.fixture
def store(tmp_path):
    """Four conversations: two the bot handled, one handed off by the bot, one by request."""
    opened = ConversationStore(tmp_path / "log.db")
    alone = opened.start_conversation()
    log(opened, alone, "hi", ms=10.0)
    rated = log(opened, alone, "how much is shipping", intent="shipping_cost", ms=20.0)
    opened.add_feedback(rated, alone, -1)
    reviewed = opened.start_conversation()
    fixed = log(
        opened, reviewed, "pay in bitcoin?", intent="payment_methods", confidence=0.3, ms=30.0
    )
    opened.add_feedback(fixed, reviewed, 1)
    opened.correct_intent(fixed, "ana", "out_of_scope")  # review only: still contained
    unsure = opened.start_conversation()
    log(
        opened,
        unsure,
        "Can I pay with bitcoin?",
        route="handoff",
        intent="out_of_scope",
        confidence=0.4,
        ms=40.0,
        handoff=True,
    )
    log(opened, unsure, "hello??", route="agent", intent=None, confidence=0.0, ms=1.0)
    opened.agent_reply(unsure, "ana", "No, sorry.")
    opened.resolve(unsure, "ana")
    asked = opened.start_conversation()
    log(
        opened,
        asked,
        "a human please",
        route="handoff",
        intent="human_agent",
        ms=50.0,
        handoff=True,
    )
    yield opened
    opened.close()


def test_each_conversation_counts_once_as_contained_or_handed_off(store):
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert (metrics.conversations, metrics.contained, metrics.handed_off) == (4, 2, 2)
    assert metrics.containment_rate == 0.5
    assert metrics.handoff_rate == 0.5


def test_turn_rates_latency_and_intents(store):
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert metrics.bot_turns == 5  # the message left to the agent is not the bot's
    assert metrics.fallbacks == 1  # asking for a human is not a fallback
    assert metrics.fallback_rate == pytest.approx(0.2)
    assert (metrics.rated_turns, metrics.thumbs_down, metrics.thumbs_down_rate) == (2, 1, 0.5)
    assert metrics.latency_p50_ms == 30.0
    assert metrics.latency_p95_ms == pytest.approx(48.0)
    assert metrics.intents == {
        "out_of_scope": 2,
        "greeting": 1,
        "shipping_cost": 1,
        "human_agent": 1,
    }
    assert metrics.routes == {"template": 3, "handoff": 2, "agent": 1}


def test_an_empty_log_has_no_rates(tmp_path):
    metrics = compute_metrics(ConversationStore(tmp_path / "empty.db"))
    assert metrics.conversations == 0
    assert metrics.containment_rate is None and metrics.latency_p50_ms is None
    assert percentile([], 50) is None


def test_unanswered_are_unasked_handoffs_and_low_confidence_answers(store):
    texts = unanswered(store.turn_facts(), low_confidence_below=0.5)
    assert texts == ["pay in bitcoin?", "Can I pay with bitcoin?"]


def letters(texts):
    """A deterministic embedding: letter counts, so anagram-like texts are similar."""
    return np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts])


def test_grouping_counts_repeats_and_joins_the_closest_group():
    texts = ["aaa", "AAA.", "aab", "zzz", "zzy", "aaa", "mmm"]
    groups = group_questions(texts, letters, threshold=0.85)
    assert [(g.text, g.count) for g in groups] == [("aaa", 4), ("zzz", 2), ("mmm", 1)]
    assert groups[0].examples == ["aaa", "aab"]
    assert group_questions([], letters) == []
    assert len(group_questions(texts, letters, threshold=0.85, top=1)) == 1


def test_remembered_vectors_are_not_embedded_again():
    asked = []

    def counting_letters(texts):
        asked.append(list(texts))
        return letters(texts)

    remembered = RememberedEmbed(counting_letters, capacity=3)
    assert np.array_equal(remembered(["ab", "cd"]), letters(["ab", "cd"]))
    assert np.array_equal(remembered(["cd", "ef", "ab"]), letters(["cd", "ef", "ab"]))
    assert asked == [["ab", "cd"], ["ef"]]
    remembered(["gh"])  # over capacity: the oldest, "ab", is dropped
    remembered(["ab"])
    assert asked[-1] == ["ab"]
    assert remembered([]).size == 0


def test_grouping_by_meaning_with_the_sentence_encoder():
    from assistant.core.settings import Settings
    from assistant.retrieval.index import load_encoder

    encoder = load_encoder(Settings(embedding_model="all-MiniLM-L6-v2"))

    def embed(texts):
        return encoder.encode(list(texts), normalize_embeddings=True)

    texts = [
        "Can I pay with bitcoin?",
        "Do you accept bitcoin payments?",
        "Can I pay with bitcoin",
        "What's the weather in Paris tomorrow?",
        "Will it rain in Paris?",
        "Who won the football match?",
    ]
    groups = group_questions(texts, embed, threshold=0.6)
    assert [(g.text, g.count) for g in groups] == [
        ("Can I pay with bitcoin?", 3),
        ("What's the weather in Paris tomorrow?", 2),
        ("Who won the football match?", 1),
    ]


def test_frequent_unanswered_from_the_log(store):
    groups = frequent_unanswered(store, letters, threshold=0.9)
    assert sum(g.count for g in groups) == 2


def test_prometheus_text(store):
    text = prometheus_text(store, ["human_agent"]).decode()
    assert 'assistant_conversations{outcome="contained"} 2.0' in text
    assert "assistant_containment_ratio 0.5" in text
    assert 'assistant_reply_latency_ms{quantile="0.95"} 48.0' in text
    assert 'assistant_intent_turns{intent="out_of_scope"} 2.0' in text
    assert 'assistant_turns{route="agent"} 1.0' in text
