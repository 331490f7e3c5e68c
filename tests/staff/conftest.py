"""What the agent page's tests share: a handed-off conversation, opened by an agent."""

import gradio as gr
import pytest

from assistant.core.records import ConversationStatus
from assistant.staff.agent_views import SUGGESTION_COUNT, VIEW_SIZE, open_conversation
from tests.conftest import AGENT_NAME

AS_AGENT = gr.Request(username=AGENT_NAME)
HANDOFF_MESSAGE = "I want to talk to a person"


def is_skip(value) -> bool:
    return value == gr.skip()


@pytest.fixture
def handed_off(staffed) -> str:
    """A new conversation the customer asked to hand to a person."""
    reply = staffed.reply(HANDOFF_MESSAGE)
    assert reply.status == ConversationStatus.WAITING
    return reply.conversation_id


def opened(staffed, conversation_id, request=AS_AGENT) -> dict:
    """The agent page's parts once the conversation is opened from the queue."""
    values = open_conversation(staffed, conversation_id, request)
    assert len(values) == VIEW_SIZE + 2
    selected, title, history, turn, offered = values[:5]
    cards = values[5 : 5 + SUGGESTION_COUNT]
    reply_box, picked = values[-2:]
    return {
        "selected": selected,
        "title": title,
        "history": history,
        "turn": turn,
        "offered": offered,
        "cards": cards,
        "reply_box": reply_box,
        "picked": picked,
    }
