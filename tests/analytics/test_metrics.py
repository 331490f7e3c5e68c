import numpy as np
import pytest

from assistant.analytics.metrics import (
    compute_metrics,
    frequent_unanswered,
    group_questions,
    percentile,
    prometheus_text,
    unanswered,
)
from assistant.core.records import HandoffKind, TurnRecord
from assistant.storage.store import ConversationStore
from tests.postgres import log_for_test


def log(
    store,
    conversation,
    text,
    route="template",
    intent="greeting",
    confidence=0.9,
    ms=10.0,
    kind=None,
    handoff=False,
):
    """Log a turn; a handoff with `kind` carries it in its trace, as the pipeline's do."""
    handoff = handoff or kind is not None
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
            {"handoff": kind.value} if kind else {},
            ms,
            "v1",
            handoff_reason="why" if handoff else None,
            handoff_kind=kind,
        )
    )


@pytest.fixture
def store(tmp_path):
    """Seven conversations: four the bot resolved (one after a polite refusal, one after a
    clarifying question), one left at a clarifying question, two handed off (one because
    the bot did not understand, one by request)."""
    opened = ConversationStore(log_for_test(tmp_path / "log.db"))
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
    refused = opened.start_conversation()
    log(
        opened,
        refused,
        "Can I pay with bitcoin?",
        route="refuse",
        intent="out_of_scope",
        confidence=0.8,
        ms=40.0,
    )
    log(opened, refused, "ok, and with paypal?", intent="payment_methods", ms=50.0)
    clarified = opened.start_conversation()
    log(
        opened,
        clarified,
        "the thing with my parcel",
        route="clarify",
        intent="order_status",
        confidence=0.35,
        ms=60.0,
    )
    log(opened, clarified, "where is my order", intent="order_status", ms=70.0)
    left = opened.start_conversation()
    log(opened, left, "hmm", route="clarify", intent="order_status", confidence=0.2, ms=80.0)
    lost = opened.start_conversation()
    log(opened, lost, "blue thing", route="clarify", intent="order_status", confidence=0.3)
    log(
        opened,
        lost,
        "the blue thing!",
        route="handoff",
        intent="order_status",
        confidence=0.3,
        kind=HandoffKind.MISUNDERSTOOD,
    )
    log(opened, lost, "hello??", route="agent", intent=None, confidence=0.0, ms=1.0)
    opened.agent_reply(lost, "ana", "Which order is it?")
    opened.resolve(lost, "ana")
    asked = opened.start_conversation()
    log(
        opened,
        asked,
        "a human please",
        route="handoff",
        intent="human_agent",
        kind=HandoffKind.ASKED,
    )
    yield opened
    opened.close()


def test_each_conversation_counts_once_and_refusals_and_clarifications_are_contained(store):
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert (metrics.conversations, metrics.contained, metrics.handed_off) == (7, 4, 2)
    assert metrics.abandoned == 1  # it ends on a clarifying question the customer left
    assert metrics.containment_rate == pytest.approx(4 / 7)
    assert metrics.handoff_rate == pytest.approx(2 / 7)
    assert metrics.abandoned_rate == pytest.approx(1 / 7)


def test_refusals_clarifications_and_handoffs_by_reason(store):
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert (metrics.refusals, metrics.clarifications) == (1, 3)
    assert metrics.handoffs == {
        "asked_for_person": 1,
        "always_human": 0,
        "misunderstood": 1,
        "other": 0,
    }


def test_handoffs_with_no_kind_count_as_other(store):
    legacy = store.start_conversation()
    log(store, legacy, "no idea", route="handoff", intent="order_status", handoff=True)
    by_agent = store.start_conversation()
    log(store, by_agent, "hi")
    store.handoff(by_agent, "the customer phoned")
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert metrics.handoffs["other"] == 2
    assert (metrics.conversations, metrics.handed_off, metrics.contained) == (9, 4, 4)


def test_turn_rates_latency_and_intents(store):
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert metrics.bot_turns == 11  # the message left to the agent is not the bot's
    # One refusal, three clarifying questions and the handoff for not understanding;
    # asking for a person is not a fallback.
    assert metrics.fallbacks == 5
    assert metrics.fallback_rate == pytest.approx(5 / 11)
    assert (metrics.rated_turns, metrics.thumbs_down, metrics.thumbs_down_rate) == (2, 1, 0.5)
    assert metrics.latency_p50_ms == 30.0
    assert metrics.latency_p95_ms == pytest.approx(75.0)
    assert metrics.intents == {
        "order_status": 5,
        "out_of_scope": 2,
        "payment_methods": 1,
        "greeting": 1,
        "shipping_cost": 1,
        "human_agent": 1,
    }
    assert metrics.routes == {"template": 5, "clarify": 3, "handoff": 2, "refuse": 1, "agent": 1}


def test_an_always_human_handoff_is_not_a_fallback(tmp_path):
    store = ConversationStore(log_for_test(tmp_path / "log.db"))
    conversation = store.start_conversation()
    log(store, conversation, "awful service", "handoff", "complaint", kind=HandoffKind.ALWAYS_HUMAN)
    metrics = compute_metrics(store, human_intents=["human_agent"])
    assert (metrics.fallbacks, metrics.handed_off, metrics.contained) == (0, 1, 0)
    assert metrics.handoffs["always_human"] == 1
    store.close()


def test_an_empty_log_has_no_rates(tmp_path):
    metrics = compute_metrics(ConversationStore(log_for_test(tmp_path / "empty.db")))
    assert metrics.conversations == 0
    assert metrics.containment_rate is None and metrics.latency_p50_ms is None
    assert metrics.abandoned_rate is None
    assert metrics.handoffs == dict.fromkeys(
        ["asked_for_person", "always_human", "misunderstood", "other"], 0
    )
    assert percentile([], 50) is None


def test_unanswered_are_refusals_clarifications_unasked_handoffs_and_low_confidence(store):
    texts = unanswered(store.turn_facts(), low_confidence_below=0.5)
    assert texts == [
        "pay in bitcoin?",
        "Can I pay with bitcoin?",
        "the thing with my parcel",
        "hmm",
        "blue thing",
        "the blue thing!",
    ]


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
    assert sum(g.count for g in groups) == 6


def test_prometheus_text(store):
    text = prometheus_text(store, ["human_agent"]).decode()
    assert 'assistant_conversations{outcome="contained"} 4.0' in text
    assert 'assistant_conversations{outcome="abandoned"} 1.0' in text
    assert 'assistant_conversations{outcome="handed_off"} 2.0' in text
    assert f"assistant_containment_ratio {4 / 7}" in text
    assert 'assistant_reply_latency_ms{quantile="0.95"} 75.0' in text
    assert 'assistant_intent_turns{intent="out_of_scope"} 2.0' in text
    assert 'assistant_turns{route="agent"} 1.0' in text
    assert "assistant_refusals 1.0" in text
    assert "assistant_clarifications 3.0" in text
    assert 'assistant_handoffs{reason="asked_for_person"} 1.0' in text
    assert 'assistant_handoffs{reason="misunderstood"} 1.0' in text
    assert 'assistant_handoffs{reason="other"} 0.0' in text
