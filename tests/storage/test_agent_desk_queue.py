"""The agent queue on a real SQLite log: handoffs by urgency then age, then turns to review."""

import time

from assistant.core.records import ConversationStatus, HandoffKind, QueueKind, TurnRecord
from assistant.core.types import Route


def turn(store, conversation, text, route=Route.TEMPLATE, intent="order_status", **changes):
    values = dict(
        conversation_id=conversation,
        user_text=text,
        reply_text="reply",
        route=route.value,
        intent=intent,
        confidence=0.9,
        reason="why",
        sources=[],
        trace={},
        latency_ms=1.0,
        model_version="v1",
    )
    values.update(changes)
    return store.log_turn(TurnRecord(**values))


def handed_off(store, kind, text="help", intent=None, reason="why", before=()):
    """A new conversation handed off with `kind` after the (route, text) turns `before`."""
    conversation = store.start_conversation()
    for route, said in before:
        turn(store, conversation, said, route, confidence=0.3)
    turn(
        store,
        conversation,
        text,
        Route.HANDOFF,
        intent,
        handoff_reason=reason,
        handoff_kind=kind,
    )
    time.sleep(0.003)  # handoff times are to the millisecond: each one its own
    return conversation


def test_handoffs_come_by_urgency_then_oldest_first_each_saying_why(store):
    misunderstood = handed_off(
        store,
        HandoffKind.MISUNDERSTOOD,
        "what about the thing",
        before=[(Route.CLARIFY, "the thing"), (Route.CLARIFY, "my thing")],
    )
    older_complaint = handed_off(store, HandoffKind.ALWAYS_HUMAN, "awful", intent="complaint")
    legacy = handed_off(store, None, reason="no confident intent")  # before kinds were kept
    older_asked = handed_off(store, HandoffKind.ASKED, "a person please", intent="human_agent")
    complaint = handed_off(store, HandoffKind.ALWAYS_HUMAN, "so bad", intent="complaint")
    asked = handed_off(store, HandoffKind.ASKED, "human!", intent="human_agent")
    items = store.queue()
    assert [(item.conversation_id, item.why) for item in items] == [
        (older_asked, "asked for a person"),
        (asked, "asked for a person"),
        (older_complaint, "always handled by a person: complaint"),
        (complaint, "always handled by a person: complaint"),
        (misunderstood, "not understood 3 times running"),
        (legacy, "handed off: no confident intent"),
    ]
    assert {item.kind for item in items} == {QueueKind.HANDOFF}
    assert [item.since for item in items[:2]] == sorted(item.since for item in items[:2])
    assert items[0].user_text == "a person please"
    assert items[0].status is ConversationStatus.WAITING


def test_an_older_handoff_of_lower_priority_waits_behind_a_newer_urgent_one(store):
    old = handed_off(store, HandoffKind.MISUNDERSTOOD, before=[(Route.CLARIFY, "eh")])
    new = handed_off(store, HandoffKind.ASKED)
    assert [item.conversation_id for item in store.queue()] == [new, old]
    assert [item.conversation_id for item in store.queue(limit=1)] == [new]


def test_not_understood_counts_the_run_as_the_router_does(store):
    # A repeated message is not counted again; a refusal neither counts nor ends the run;
    # an answer before the run ends it.
    conversation = handed_off(
        store,
        HandoffKind.MISUNDERSTOOD,
        "which one",
        before=[
            (Route.CLARIFY, "the blue thing"),
            (Route.TEMPLATE, "where is my order"),
            (Route.CLARIFY, "the thing"),
            (Route.CLARIFY, "The  THING"),
            (Route.REFUSE, "tell me a joke"),
        ],
    )
    [item] = store.queue()
    assert (item.conversation_id, item.why) == (conversation, "not understood 2 times running")


def test_an_agent_made_handoff_has_no_kind_and_goes_last(store):
    by_agent = store.start_conversation()
    store.handoff(by_agent, "customer phoned")
    time.sleep(0.003)
    asked = handed_off(store, HandoffKind.ASKED)
    items = store.queue()
    assert [(i.conversation_id, i.why) for i in items] == [
        (asked, "asked for a person"),
        (by_agent, "handed off: customer phoned"),
    ]
    assert store.conversation(asked).handoff_kind is HandoffKind.ASKED
    assert store.conversation(by_agent).handoff_kind is None


def test_refusals_and_clarifying_questions_are_not_low_confidence_answers(store):
    conversation = store.start_conversation()
    turn(store, conversation, "tell me a joke", Route.REFUSE, "out_of_scope", confidence=0.2)
    turn(store, conversation, "the thing", Route.CLARIFY, "order_status", confidence=0.25)
    unsure = turn(store, conversation, "parcel?", Route.TEMPLATE, "order_status", confidence=0.31)
    [item] = store.queue(low_confidence_below=0.5)
    assert (item.kind, item.turn_id) == (QueueKind.LOW_CONFIDENCE, unsure)
    assert item.why == "low confidence 0.31 (order_status)"


def test_spam_refused_again_and_again_never_reaches_the_queue(store):
    for _ in range(5):
        conversation = store.start_conversation()
        for text in ("BUY CHEAP WATCHES", "asdfgh", "BUY CHEAP WATCHES"):
            turn(store, conversation, text, Route.REFUSE, "out_of_scope", confidence=0.05)
    assert store.queue(low_confidence_below=0.99) == []
    assert all(store.status(c["id"]) is ConversationStatus.BOT for c in store.conversation_facts())


def test_a_thumbs_down_counts_on_any_turn_and_comes_before_low_confidence(store):
    conversation = store.start_conversation()
    unsure = turn(store, conversation, "parcel?", confidence=0.3)
    refused = turn(store, conversation, "do you sell gift cards", Route.REFUSE, "out_of_scope")
    store.add_feedback(refused, conversation, -1)
    items = store.queue(low_confidence_below=0.5)
    assert [(i.kind, i.turn_id, i.why) for i in items] == [
        (QueueKind.THUMBS_DOWN, refused, "thumbs down"),
        (QueueKind.LOW_CONFIDENCE, unsure, "low confidence 0.30 (order_status)"),
    ]
    store.correct_intent(refused, "ana", "gift_cards")  # an agent acted: both leave
    assert store.queue() == []
