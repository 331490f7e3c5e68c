import pytest

from assistant.core.errors import MessageError
from assistant.core.records import TurnRecord


@pytest.fixture
def answered(store):
    """A log with one agent reply to a customer turn; yields the store and the reply's id."""
    conversation = store.start_conversation()
    store.log_turn(
        TurnRecord(
            conversation_id=conversation,
            user_text="I'm Jo Bloggs, jo@example.com: was I charged twice?",
            reply_text="A person will help.",
            route="handoff",
            intent=None,
            confidence=0.1,
            reason="unsure",
            sources=[],
            trace={},
            latency_ms=1.0,
            model_version="v1",
            handoff_reason="unsure",
        )
    )
    line = store.agent_reply(conversation, "ana", "Jo, I refunded the second charge.")
    return store, line


def test_an_agent_reply_awaits_review_until_someone_approves_or_rejects_it(answered):
    store, line = answered
    [waiting] = store.answers_to_review()
    assert (waiting["id"], waiting["agent"]) == (line, "ana")
    assert waiting["question"] == "I'm Jo Bloggs, [EMAIL]: was I charged twice?"
    store.review_answer(line, "admin", True, "Was I charged twice?", "We refund a double charge.")
    assert store.answers_to_review() == []


def test_a_review_is_logged_with_who_when_and_the_approved_pair_redacted(answered):
    store, line = answered
    store.review_answer(line, "admin", True, "Charged twice? mail me at a@b.example")
    store.review_answer(line, "bo", False)
    approved, rejected = store.reviews(line)
    assert (approved["actor"], approved["approved"], rejected["actor"]) == ("admin", 1, "bo")
    assert approved["created_at"] and rejected["created_at"] >= approved["created_at"]
    assert approved["question"] == "Charged twice? mail me at [EMAIL]"
    assert approved["answer"] == "Jo, I refunded the second charge."  # as sent, by default
    assert rejected["answer"] is None
    [turn] = store.turn_facts()
    assert turn["approved_answer"] is None  # the latest review rejected it


def test_only_an_agents_reply_can_be_reviewed(answered):
    store, line = answered
    customer_line = store.messages_since(store.turn_facts()[0]["conversation_id"])[0]["id"]
    with pytest.raises(MessageError):
        store.review_answer(customer_line, "admin", True)
    with pytest.raises(ValueError):
        store.review_answer(line, " ", True)
