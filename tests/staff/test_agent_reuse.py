"""Approving agents' answers for reuse, over the fakes and a SQLite log (no models)."""

import pytest

from assistant.analytics.export import export_log
from assistant.core.pipeline import Assistant
from assistant.staff.agent_reuse import pending_choices, pick_answer, review
from assistant.storage.store import ConversationStore
from tests.conftest import AGENT_NAME
from tests.fakes import fake_settings
from tests.postgres import log_for_test
from tests.staff.conftest import AS_AGENT

SAID = "I'm Jo Bloggs of 4 Elm Road and I want a human about my refund"
SENT = "Jo, I have refunded you; it reaches 4 Elm Road's bank in 3 days."


@pytest.fixture
def answered(demo_slice, tmp_path, staff):
    settings = fake_settings(demo_slice, users=staff)
    plain = Assistant.load(settings)
    store = ConversationStore(log_for_test(tmp_path / "log.db"))
    desk = Assistant(settings, plain.classifier, plain.retriever, plain.router.templates, store)
    reply = desk.reply(SAID)
    store.correct_intent(reply.turn_id, AGENT_NAME, "return_policy")
    line = store.agent_reply(reply.conversation_id, AGENT_NAME, SENT)
    return desk, line


def _reusable(desk):
    return [row for row in export_log(desk.store).rows if row["answer_source"] == "approved"]


def test_an_agent_answer_no_one_approved_is_not_exported_for_reuse(answered):
    desk, line = answered
    assert [value for _, value in pending_choices(desk, AS_AGENT).choices] == [line]
    assert _reusable(desk) == []


def test_approving_an_edited_pair_logs_it_and_exports_only_that_pair(answered):
    desk, line = answered
    question, answer = pick_answer(desk, line, AS_AGENT)
    assert (question, answer) == (SAID, SENT)
    pending, *_ = review(
        desk, line, "When does a refund arrive?", "A refund arrives in 3 days.", True, AS_AGENT
    )
    assert pending.choices == []
    [row] = _reusable(desk)
    assert (row["question"], row["answer"]) == (
        "When does a refund arrive?",
        "A refund arrives in 3 days.",
    )
    [logged] = desk.store.reviews(line)
    assert (logged["actor"], logged["approved"]) == (AGENT_NAME, 1)


def test_a_rejected_answer_is_never_reused(answered):
    desk, line = answered
    review(desk, line, "", "", False, AS_AGENT)
    assert _reusable(desk) == []
    assert pending_choices(desk, AS_AGENT).choices == []
