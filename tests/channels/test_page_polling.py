"""The chat page's poll: agents' replies shown without the customer sending anything, at a
pace that follows who has the conversation."""

import gradio as gr

from assistant.channels.page_polling import (
    EXPIRED,
    IDLE_POLL_SECONDS,
    POLL_SECONDS,
    STATUS_LINES,
    poll,
    tick,
    timer_output,
)
from assistant.channels.web_chat import respond
from assistant.core.records import ConversationStatus


def conversation(assistant, message):
    """The chat and the conversation once the page has answered `message`."""
    _, history, conversation_id, _ = list(respond(assistant, message, [], None, {}))[-1]
    return history, conversation_id


def test_agent_replies_appear_while_people_have_the_conversation(eager):
    history, conversation_id = conversation(eager, "I want to talk to a person")
    chat, last_seen, status_line, interval = poll(eager, history, conversation_id, 0)
    assert chat == history  # nothing new to show: the customer's and bot's lines are there
    assert last_seen == eager.store.messages_since(conversation_id)[-1]["id"]
    assert status_line == STATUS_LINES[ConversationStatus.WAITING]
    assert interval == POLL_SECONDS

    eager.store.agent_reply(conversation_id, "ana", "Hi, Ana here. Let me look.")
    chat, newer, status_line, interval = poll(eager, history, conversation_id, last_seen)
    assert chat == [
        *history,
        {"role": "assistant", "content": "**Support team:** Hi, Ana here. Let me look."},
    ]
    assert newer > last_seen
    assert status_line == STATUS_LINES[ConversationStatus.WITH_AGENT]
    assert interval == POLL_SECONDS
    assert poll(eager, chat, conversation_id, newer)[:2] == (chat, newer)


def test_polling_slows_once_the_bot_answers_again(eager):
    history, conversation_id = conversation(eager, "I want to talk to a person")
    eager.store.resolve(conversation_id, "ana")
    _, _, status_line, interval = poll(eager, history, conversation_id, 0)
    assert status_line == STATUS_LINES[ConversationStatus.RESOLVED]
    assert interval == IDLE_POLL_SECONDS


def test_an_agent_reply_to_a_conversation_the_bot_has_still_appears(eager):
    history, conversation_id = conversation(eager, "how much is shipping")
    _, last_seen, status_line, interval = poll(eager, history, conversation_id, 0)
    assert (status_line, interval) == ("", IDLE_POLL_SECONDS)
    eager.store.agent_reply(conversation_id, "ana", "Ana here: shipping is free over $50.")
    chat, _, status_line, interval = poll(eager, history, conversation_id, last_seen)
    assert chat[-1]["content"] == "**Support team:** Ana here: shipping is free over $50."
    assert status_line == STATUS_LINES[ConversationStatus.WITH_AGENT]
    assert interval == POLL_SECONDS


def test_polling_without_a_conversation_or_for_an_unknown_one_stops(assistant):
    assert poll(assistant, [], None, 0) == ([], 0, "", None)
    assert poll(assistant, [], "no-such-conversation", 5) == ([], 5, EXPIRED, None)


def test_the_timer_is_updated_only_when_its_pace_changes():
    assert timer_output(IDLE_POLL_SECONDS, None) == gr.update(value=IDLE_POLL_SECONDS, active=True)
    assert timer_output(POLL_SECONDS, IDLE_POLL_SECONDS) == gr.update(
        value=POLL_SECONDS, active=True
    )
    assert timer_output(None, POLL_SECONDS) == gr.update(active=False)
    # Unchanged: a plain value (Gradio builds a component anew for an update or a skip).
    assert timer_output(POLL_SECONDS, POLL_SECONDS) == POLL_SECONDS
    assert isinstance(timer_output(None, None), float)


def test_a_tick_finds_agent_replies_without_the_chat_and_keeps_its_pace(eager):
    _, conversation_id = conversation(eager, "how much is shipping")
    last_seen, status_line, timer, pace, found = tick(eager, conversation_id, 0, IDLE_POLL_SECONDS)
    assert (status_line, timer, pace, found) == (
        "",
        IDLE_POLL_SECONDS,
        IDLE_POLL_SECONDS,
        None,
    )
    eager.store.agent_reply(conversation_id, "ana", "Ana here.")
    newer, status_line, timer, pace, found = tick(eager, conversation_id, last_seen, pace)
    assert status_line == STATUS_LINES[ConversationStatus.WITH_AGENT]
    assert (timer, pace) == (gr.update(value=POLL_SECONDS, active=True), POLL_SECONDS)
    # As the chat holds messages in the browser, which adds them (`SHOW_REPLIES`; the page
    # in Chromium, tests/test_browser.py).
    reply = {
        "role": "assistant",
        "content": [{"type": "text", "text": "**Support team:** Ana here."}],
    }
    assert found["newest"] == newer
    assert [{"role": m["role"], "content": m["content"]} for m in found["replies"]] == [reply]
