"""The chat page's poll: what is new in a conversation, and how often to ask.

While a conversation is open the page asks the log for what is new and shows the
agents' replies without the customer sending anything: every 2 seconds while the
support team has it, every 10 while the bot does (an agent may still answer a message
from the review queue). A customer's action ends with the same check (`poll`); the
poll timer's tick (`tick`) sends what it finds to a value the page holds, and the page
adds it to the chat in the browser (`SHOW_REPLIES`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gradio as gr

from assistant.core.errors import UnknownConversation
from assistant.core.pipeline import Assistant
from assistant.core.records import Author, ConversationStatus
from assistant.core.seams import AgentDesk

History = list[dict[str, Any]]
SUPPORT_TEAM = "Support team"
POLL_SECONDS = 2.0  # while people have the conversation
IDLE_POLL_SECONDS = 10.0  # while the bot has it
EXPIRED = "This conversation has expired; please send your message again."
STATUS_LINES = {
    ConversationStatus.BOT: "",
    ConversationStatus.WAITING: (
        "**Waiting for a member of our support team.** Their reply will appear here."
    ),
    ConversationStatus.WITH_AGENT: "**A member of our support team is with you.**",
    ConversationStatus.RESOLVED: (
        "**Our support team has resolved this conversation.** The assistant answers again."
    ),
}
KNOWN_STATUS_LINES = frozenset(STATUS_LINES.values())


def agent_lines_since(store: AgentDesk, conversation_id: str, after_id: int) -> tuple[History, int]:
    """The agents' replies newer than transcript line `after_id`, as chat messages, and the
    id of the newest line looked at (the customer's and the bot's are already shown)."""
    lines = store.messages_since(conversation_id, after_id)
    replies = [
        {"role": "assistant", "content": f"**{SUPPORT_TEAM}:** {line['text']}"}
        for line in lines
        if line["author"] == Author.AGENT
    ]
    return replies, lines[-1]["id"] if lines else after_id


def polling(interval: float | None) -> dict[str, Any]:
    """The poll timer's update: ticking every `interval` seconds, or resting (None)."""
    if interval is None:
        return gr.update(active=False)
    return gr.update(value=interval, active=True)


def timer_output(interval: float | None, ticking: float | None) -> Any:
    """What the page's timer is sent so that it polls every `interval` seconds (None: not at
    all) when it now polls every `ticking`: an update only when that changes. Otherwise
    a plain value, its interval, since Gradio builds a component anew for an update or a
    skip (a resting timer's interval is not used)."""
    if interval != ticking:
        return polling(interval)
    return IDLE_POLL_SECONDS if interval is None else interval


def check(
    assistant: Assistant, conversation_id: str | None, last_seen: int
) -> tuple[History, int, str, float | None]:
    """The agents' replies since transcript line `last_seen` (as chat messages), the newest
    line looked at, the status line, and how often to poll next (None: not at all)."""
    if conversation_id is None:
        return [], last_seen, "", None
    try:
        replies, last_seen = agent_lines_since(assistant.store, conversation_id, last_seen)
        status = assistant.store.status(conversation_id)
    except UnknownConversation:
        return [], last_seen, EXPIRED, None
    interval = POLL_SECONDS if status.with_people else IDLE_POLL_SECONDS
    return replies, last_seen, STATUS_LINES[status], interval


def poll(
    assistant: Assistant, history: History, conversation_id: str | None, last_seen: int
) -> tuple[History, int, str, float | None]:
    """Show new agent replies and the conversation's status; poll faster while people have it.

    Returns the chat with the agents' new replies (a value, never a skip: Gradio builds a
    skipped chat anew), the newest transcript id looked at, the status line and how often
    to poll next (None: not at all).
    """
    replies, last_seen, status_line, interval = check(assistant, conversation_id, last_seen)
    return [*history, *replies], last_seen, status_line, interval


def tick(
    assistant: Assistant, conversation_id: str | None, last_seen: int, ticking: float | None
) -> tuple[int, str, Any, float | None, Any]:
    """The poll timer's tick: the newest transcript id looked at, the status line, the
    timer's output and its new pace, and the agents' new replies as the chat shows them,
    with the newest id (None when there are none).

    The chat is neither read nor written here: a browser would send it with every tick,
    and Gradio builds a skipped chat anew (about 10 ms here), ticks being most events. The
    page adds what a tick found itself (`SHOW_REPLIES`), in the browser."""
    replies, last_seen, status_line, interval = check(assistant, conversation_id, last_seen)
    found = {"newest": last_seen, "replies": as_shown(replies)} if replies else None
    return last_seen, status_line, timer_output(interval, ticking), interval, found


def as_shown(messages: History) -> list[dict[str, Any]]:
    """Chat messages as the page's chat holds them in the browser."""
    return _chat_format().postprocess(messages).model_dump()


@cache
def _chat_format() -> gr.Chatbot:
    return gr.Chatbot(render=False)


# Run in the browser when a tick finds agent replies: added to the chat as it is then, at
# once. A server event would add them to the chat the browser sent it, and its answer
# could land after a reply the customer's message got meanwhile, and hide it.
# It returns the list of its outputs: the one chat.
SHOW_REPLIES = "(chat, found) => [found ? [...(chat || []), ...found.replies] : chat]"
