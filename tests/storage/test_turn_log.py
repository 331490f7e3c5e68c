import json

import pytest

from assistant.core.errors import RequestAnswered, RequestKeyReused, UnknownTurn
from assistant.core.records import RequestKey, TurnRecord
from assistant.storage.store import ConversationStore
from assistant.text.redaction import Redactor

PUBLIC_EMAIL = "help@pebbleandpine.example"
PUBLIC_PHONE = "+1 555 0142"
EMAIL = "ana@example.com"
CARD = "4111 1111 1111 1111"
SAID = f"I'm {EMAIL}, card {CARD}"


def test_the_trace_the_reason_and_the_sources_are_redacted_before_storage(log_location, tmp_path):
    store = ConversationStore(log_location, Redactor([PUBLIC_EMAIL, PUBLIC_PHONE]), tmp_path / "k")
    conversation = store.start_conversation()
    answer = f"Write to {PUBLIC_EMAIL} or call {PUBLIC_PHONE}."
    source = {"question": SAID, "answer": answer, "intent": "contact", "score": 0.8}
    store.log_turn(
        TurnRecord(
            conversation_id=conversation,
            user_text=SAID,
            reply_text=answer,
            route="retrieval",
            intent="contact",
            confidence=0.8,
            reason=f"retrieved for {EMAIL} paying with {CARD}",
            sources=[source],
            trace={
                "route": "retrieval",
                "reason": f"retrieved for {EMAIL}",
                "checks": [f"card {CARD} seen"],
                "sources": [source],
            },
            latency_ms=3.0,
            model_version="intent:v1",
        )
    )
    with store._engine.reading() as reader:  # the rows as stored, read around the store
        row = reader.one("SELECT reason, sources, trace FROM turns")
    store.close()
    reason, sources, trace = row["reason"], row["sources"], row["trace"]
    stored = " ".join([reason, sources, trace])
    assert EMAIL not in stored
    assert CARD not in stored and CARD.replace(" ", "") not in stored
    assert "[EMAIL]" in reason and "[CARD]" in reason
    assert json.loads(sources)[0]["answer"] == answer  # the business's contacts survive
    assert json.loads(trace)["sources"][0]["answer"] == answer
    assert json.loads(trace)["checks"] == ["card [CARD] seen"]


def _turn(store, conversation, text="hello"):
    return store.log_turn(
        TurnRecord(
            conversation_id=conversation,
            user_text=text,
            reply_text="hi there",
            route="template",
            intent="greeting",
            confidence=0.9,
            reason="confident",
            sources=[],
            trace={},
            latency_ms=1.0,
            model_version="v1",
        )
    )


def test_feedback_on_a_turn_of_another_conversation_is_refused_like_an_unknown_turn(store):
    mine, theirs = store.start_conversation(), store.start_conversation()
    their_turn = _turn(store, theirs)
    with pytest.raises(UnknownTurn) as other:
        store.add_feedback(their_turn, mine, -1)
    with pytest.raises(UnknownTurn) as unknown:
        store.add_feedback(their_turn + 100, mine, -1)
    assert str(other.value).replace(str(their_turn), "N") == str(unknown.value).replace(
        str(their_turn + 100), "N"
    )
    assert store.feedback(their_turn) == []


def test_a_turn_has_one_rating_and_every_change_is_kept(store):
    conversation = store.start_conversation()
    turn = _turn(store, conversation)
    first = store.add_feedback(turn, conversation, 1)
    assert store.add_feedback(turn, conversation, -1) == first
    store.add_feedback(turn, conversation, -1)  # the same again: no change to log
    [standing] = store.feedback(turn)
    assert (standing["rating"], standing["conversation_id"]) == (-1, conversation)
    history = store.feedback_history(turn)
    assert [(h["old_rating"], h["new_rating"]) for h in history] == [(None, 1), (1, -1)]
    assert store.turn_facts()[0]["rating"] == -1


def test_a_request_key_holds_one_turn_and_gives_its_reply_back(store):
    conversation = store.start_conversation()
    request = RequestKey.of("retry-7", conversation, "hello")
    record = TurnRecord(
        conversation_id=conversation,
        user_text="hello",
        reply_text=f"Hi {EMAIL}, how can I help?",
        route="template",
        intent="greeting",
        confidence=0.91234,
        reason="confident",
        sources=[],
        trace={"route": "template", "options": ["Track an order"]},
        latency_ms=4.5,
        model_version="v1",
        request=request,
    )
    assert store.answered(request) is None
    turn_id = store.log_turn(record)
    _turn(store, conversation, "without a key")  # turns without one never clash
    _turn(store, conversation, "nor this one")
    with pytest.raises(RequestAnswered):  # as when another server logged it first
        store.log_turn(record)
    reply = store.answered(request)
    assert (reply.turn_id, reply.conversation_id) == (turn_id, conversation)
    assert reply.route == "template"
    assert (reply.confidence, reply.options, reply.status) == (0.9123, ["Track an order"], "bot")
    assert EMAIL not in reply.text  # as the log keeps it
    assert len(store.turns(conversation)) == 3
    with pytest.raises(RequestKeyReused):
        store.answered(RequestKey.of("retry-7", conversation, "hello again"))
