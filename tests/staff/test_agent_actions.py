import gradio as gr
import pytest

from assistant.channels.page_polling import IDLE_POLL_SECONDS, POLL_SECONDS, poll
from assistant.core.records import ActionKind, ConversationStatus
from assistant.staff.agent_actions import (
    correct_intent,
    resolve,
    send_reply,
    take_over,
    use_suggestion,
)
from tests.conftest import ADMIN_NAME, AGENT_NAME
from tests.staff.conftest import AS_AGENT, opened


def test_an_edited_suggestion_reaches_the_customer_and_is_logged(staffed, handed_off):
    page = opened(staffed, handed_off)
    text, picked = use_suggestion(page["offered"], rank=2)
    assert picked == page["offered"][1]
    edited = text + " Thanks for waiting."
    send_reply(staffed, page["selected"], edited, picked, AS_AGENT)

    action = staffed.store.actions(handed_off)[-1]
    assert action["kind"] == ActionKind.SUGGESTION_EDITED
    assert action["actor"] == AGENT_NAME
    assert action["turn_id"] == staffed.store.turns(handed_off)[-1]["id"]
    assert action["payload"]["edited"].endswith("Thanks for waiting.")
    assert action["payload"]["suggestion"]["rank"] == 2
    assert staffed.store.status(handed_off) == ConversationStatus.WITH_AGENT

    chat, _, status_line, interval = poll(staffed, [], handed_off, 0)
    assert chat[-1]["content"].startswith("**Support team:**")
    assert chat[-1]["content"].endswith("Thanks for waiting.")
    assert "with you" in status_line
    assert interval == POLL_SECONDS


def test_a_suggestion_sent_as_it_is_is_logged_as_used(staffed, handed_off):
    page = opened(staffed, handed_off)
    text, picked = use_suggestion(page["offered"], rank=1)
    send_reply(staffed, page["selected"], text, picked, AS_AGENT)
    assert staffed.store.actions(handed_off)[-1]["kind"] == ActionKind.SUGGESTION_USED


def test_an_agents_own_words_are_logged_as_a_reply(staffed, handed_off):
    page = opened(staffed, handed_off)
    values = send_reply(staffed, page["selected"], "Hello, Ana here.", None, AS_AGENT)
    assert values[-2:] == ("", None)  # the reply box is cleared
    action = staffed.store.actions(handed_off)[-1]
    assert action["kind"] == ActionKind.REPLY_SENT
    assert action["payload"]["text"] == "Hello, Ana here."
    assert "ana (support team):** Hello, Ana here" in values[2][-1]["content"]


def test_an_admin_may_answer_as_themself(staffed, handed_off):
    as_admin = gr.Request(username=ADMIN_NAME)
    page = opened(staffed, handed_off, as_admin)
    send_reply(staffed, page["selected"], "Sam from the support team here.", None, as_admin)
    assert staffed.store.actions(handed_off)[-1]["actor"] == ADMIN_NAME


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_reply_is_refused(staffed, handed_off, text):
    page = opened(staffed, handed_off)
    with pytest.raises(gr.Error, match="The reply is empty"):
        send_reply(staffed, page["selected"], text, None, AS_AGENT)
    assert staffed.store.actions(handed_off) == []


def test_acting_without_a_conversation_is_refused(staffed):
    with pytest.raises(gr.Error, match="Select a conversation"):
        send_reply(staffed, None, "hello", None, AS_AGENT)
    with pytest.raises(gr.Error, match="Select a conversation"):
        resolve(staffed, None, AS_AGENT)


def test_resolving_gives_the_conversation_back_to_the_bot(staffed, handed_off):
    page = opened(staffed, handed_off)
    send_reply(staffed, page["selected"], "Your parcel is on its way.", None, AS_AGENT)
    values = resolve(staffed, page["selected"], AS_AGENT)
    assert "resolved at" in values[1]
    assert staffed.store.actions(handed_off)[-1]["kind"] == ActionKind.RESOLVED

    _, _, status_line, interval = poll(staffed, [], handed_off, 0)
    assert "resolved" in status_line
    assert interval == IDLE_POLL_SECONDS
    with pytest.raises(gr.Error, match="already resolved"):
        resolve(staffed, page["selected"], AS_AGENT)
    with pytest.raises(gr.Error, match=f"{AGENT_NAME} resolved this conversation"):
        send_reply(staffed, page["selected"], "One more thing", None, AS_AGENT)

    answer = staffed.reply("how much is shipping", handed_off)
    assert answer.route != "agent"  # the bot answers again
    send_reply(staffed, page["selected"], "And shipping is free over $50.", None, AS_AGENT)
    assert staffed.store.status(handed_off) == ConversationStatus.WITH_AGENT


def test_replying_over_another_agent_needs_a_take_over(staffed, handed_off):
    page = opened(staffed, handed_off)
    staffed.store.take(handed_off, ADMIN_NAME)
    lines_before = staffed.store.messages_since(handed_off)
    with pytest.raises(gr.Error, match=f"{ADMIN_NAME} has this conversation"):
        send_reply(staffed, page["selected"], "Hello, Ana here.", None, AS_AGENT)
    assert staffed.store.messages_since(handed_off) == lines_before  # nothing was sent

    take_over(staffed, page["selected"], AS_AGENT)
    assert staffed.store.conversation(handed_off).assigned_to == AGENT_NAME
    taken = [a for a in staffed.store.actions(handed_off) if a["kind"] == ActionKind.TAKEN]
    assert taken[-1]["actor"] == AGENT_NAME
    assert taken[-1]["payload"]["assigned_to"] == ADMIN_NAME
    send_reply(staffed, page["selected"], "Hello, Ana here.", None, AS_AGENT)
    assert staffed.store.messages_since(handed_off)[-1]["text"] == "Hello, Ana here."


def test_an_agent_corrects_the_intent_of_a_customer_turn(staffed, handed_off):
    page = opened(staffed, handed_off)
    turn_id = page["turn"].value
    values = correct_intent(staffed, page["selected"], turn_id, "order_status", AS_AGENT)
    action = staffed.store.actions(handed_off)[-1]
    assert action["kind"] == ActionKind.INTENT_CORRECTED
    assert (action["turn_id"], action["actor"]) == (turn_id, AGENT_NAME)
    assert action["payload"]["new"] == "order_status"
    assert "corrected to order_status" in values[2][0]["content"]


def test_bad_intent_corrections_are_refused(staffed, handed_off):
    page = opened(staffed, handed_off)
    other = staffed.reply("hello there")
    turn_id = page["turn"].value
    with pytest.raises(gr.Error, match="Pick the customer turn"):
        correct_intent(staffed, page["selected"], None, "order_status", AS_AGENT)
    with pytest.raises(gr.Error, match="Pick an intent from the list"):
        correct_intent(staffed, page["selected"], turn_id, "made_up_intent", AS_AGENT)
    with pytest.raises(gr.Error, match="not in this conversation"):
        correct_intent(staffed, page["selected"], other.turn_id, "greeting", AS_AGENT)
    with pytest.raises(gr.Error, match="no longer exists"):
        correct_intent(staffed, page["selected"], 10**9, "greeting", AS_AGENT)
    assert staffed.store.actions(handed_off) == []
