"""What the agent page shows: the queue, one conversation and its suggested replies.

The queue lists conversations handed off (the most urgent first), then turns given a
thumbs down or answered with low confidence, each saying why; an opened conversation
shows why it was handed off, the email address the customer left when no one was
available, its history with the intent and confidence of each customer turn, and the
top three suggestions for the latest customer message. The page layout is in
`agent_page`, the agent's actions in `agent_actions`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from assistant.core.errors import AccessDenied, MessageError, UnknownConversation
from assistant.core.pipeline import Assistant
from assistant.core.records import (
    Author,
    Conversation,
    ConversationStatus,
    HandoffKind,
    QueueItem,
    QueueKind,
)
from assistant.core.settings import UserAccount
from assistant.routing.suggestions import Suggestion, suggest
from assistant.staff.access import require_role
from assistant.text.plain import plain_text

SUGGESTION_COUNT = 3
QUEUE_COLUMNS = ["kind", "why", "since", "status", "agent", "customer said", "conversation"]
KIND_LABELS = {
    QueueKind.HANDOFF: "handed off",
    QueueKind.LOW_CONFIDENCE: "low confidence",
    QueueKind.THUMBS_DOWN: "thumbs down",
}
HANDOFF_LABELS = {
    HandoffKind.ASKED: "the customer asked for a person",
    HandoffKind.ALWAYS_HUMAN: "always handled by a person",
    HandoffKind.MISUNDERSTOOD: "the bot did not understand",
}
NOTHING_SELECTED = "Select a conversation in the queue."
GONE = "This conversation no longer exists; refresh the queue."

VIEW_SIZE = 5 + 2 * SUGGESTION_COUNT  # the values `view_updates` returns

History = list[dict[str, Any]]
Selected = dict[str, Any] | None  # {"id", "status", "last_line"} of the open conversation
Picked = dict[str, Any] | None  # the suggestion the reply box started from


def acting_account(assistant: Assistant, request: gr.Request | None) -> UserAccount:
    """The signed-in account; a `gr.Error` if it may not use the agent page."""
    try:
        return require_role(assistant.settings, request, "agent")
    except AccessDenied as error:
        raise gr.Error(str(error)) from error


def acting_agent(assistant: Assistant, request: gr.Request | None) -> str:
    return acting_account(assistant, request).name


def short_time(iso: str | None) -> str:
    return iso[:16].replace("T", " ") + " UTC" if iso else ""


# The queue.


def queue_rows(items: list[QueueItem]) -> pd.DataFrame:
    rows = [
        [
            KIND_LABELS[item.kind],
            item.why,
            short_time(item.since),
            item.status.value.replace("_", " "),
            item.assigned_to or "",
            textwrap.shorten(item.user_text or "", 80, placeholder="…"),
            item.conversation_id,
        ]
        for item in items
    ]
    return pd.DataFrame(rows, columns=QUEUE_COLUMNS)


def load_queue(assistant: Assistant, request: gr.Request | None) -> pd.DataFrame:
    acting_agent(assistant, request)
    return queue_rows(assistant.store.queue(assistant.settings.routing.low_confidence_below))


def skipped(count: int) -> tuple[Any, ...]:
    """No change to `count` outputs: the page keeps what it shows (and where it is clicked)."""
    return tuple(gr.skip() for _ in range(count))


# One conversation.


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    lines: list[dict[str, Any]]  # `ConversationStore.history` rows
    suggestions: list[Suggestion]
    suggestion_note: str  # why there are none, when there are none


def load_view(assistant: Assistant, conversation_id: str) -> ConversationView:
    """The conversation, its transcript, and suggestions for its latest customer message."""
    conversation = assistant.store.conversation(conversation_id)
    lines = assistant.store.history(conversation_id)
    customer = [index for index, line in enumerate(lines) if line["author"] == Author.CUSTOMER]
    if not customer:
        return ConversationView(conversation, lines, [], "The customer has not written yet.")
    latest = customer[-1]
    earlier = [{"role": line["author"], "text": line["text"]} for line in lines[:latest]]
    try:
        found = suggest(assistant, lines[latest]["text"], earlier, SUGGESTION_COUNT)
    except MessageError as error:
        return ConversationView(conversation, lines, [], f"No suggestions: {error}")
    note = "" if found else "No suggestions for this message; write your own reply."
    return ConversationView(conversation, lines, found, note)


def status_line(conversation: Conversation) -> str:
    if conversation.status is ConversationStatus.WAITING:
        return f"waiting for an agent since {short_time(conversation.handoff_at)}"
    if conversation.status is ConversationStatus.WITH_AGENT:
        return f"with {conversation.assigned_to}"
    if conversation.status is ConversationStatus.RESOLVED:
        return f"resolved at {short_time(conversation.resolved_at)}; the bot answers it"
    return "with the bot"


def header(conversation: Conversation) -> str:
    """The conversation's status, why it was handed off, and the contact left, if any."""
    text = f"**Conversation** `{conversation.id}`: {status_line(conversation)}"
    if conversation.handoff_reason:
        kind = conversation.handoff_kind
        label = f" ({HANDOFF_LABELS[kind]})" if kind is not None else ""
        text += f"  \nHanded off{label}: {plain_text(conversation.handoff_reason)}"
    if conversation.contact:
        text += (
            f"  \nContact: {plain_text(conversation.contact)} (left because no one was available)"
        )
    return text


def transcript(lines: list[dict[str, Any]]) -> History:
    """The history as chat messages; each customer turn with its intent and confidence."""
    messages = []
    for line in lines:
        if line["author"] == Author.CUSTOMER:
            content = f"{plain_text(line['text'])}\n\n*{turn_note(line)}*"
            messages.append({"role": "user", "content": content})
        elif line["author"] == Author.AGENT:
            content = f"**{line['agent']} (support team):** {plain_text(line['text'])}"
            messages.append({"role": "assistant", "content": content})
        else:
            content = f"**Bot:** {plain_text(line['text'])}"
            messages.append({"role": "assistant", "content": content})
    return messages


def turn_note(line: dict[str, Any]) -> str:
    """How the bot read a customer turn, and the agent's correction if any."""
    note = f"turn {line['turn_id']} · "
    if line["intent"] is None:
        note += "no intent (left to the support team)"
    else:
        note += f"intent {line['intent']} ({line['confidence']:.2f}) · route {line['route']}"
    if line["final_intent"] != line["intent"]:
        note += f" · corrected to {line['final_intent']}"
    return note


def turn_choices(lines: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Customer turns to pick for an intent correction, labelled by their text and intent."""
    return [
        (
            f"turn {line['turn_id']}: {textwrap.shorten(line['text'], 60, placeholder='…')} "
            f"[{line['final_intent'] or 'no intent'}]",
            line["turn_id"],
        )
        for line in lines
        if line["author"] == Author.CUSTOMER and line["turn_id"] is not None
    ]


def suggestion_card(rank: int, suggestion: Suggestion) -> str:
    score_kind = "cosine" if suggestion.route == "retrieval" else "probability"
    lines = [
        f"**Suggestion {rank}**: {plain_text(suggestion.text)}",
        f"route `{suggestion.route}` · intent `{suggestion.intent or 'none'}` · "
        f"score {suggestion.score:.2f} ({score_kind})",
    ]
    sources = [
        f"“{plain_text(source['question'])}” ({source['intent']}, cosine {source['score']:.2f})"
        for source in suggestion.sources
    ]
    lines.append("Sources: " + ("; ".join(sources) if sources else "none"))
    return "  \n".join(lines)


def suggestion_info(rank: int, suggestion: Suggestion) -> dict[str, Any]:
    """What the action log keeps about a suggestion an agent started from."""
    return {
        "text": suggestion.text,
        "rank": rank,
        "route": suggestion.route,
        "intent": suggestion.intent,
        "score": suggestion.score,
    }


def view_updates(view: ConversationView) -> tuple[Any, ...]:
    """Values for the page's conversation outputs (`view` in `agent_page.build_agent_ui`)."""
    lines = view.lines
    choices = turn_choices(lines)
    cards, buttons = [], []
    for rank in range(1, SUGGESTION_COUNT + 1):
        if rank <= len(view.suggestions):
            cards.append(suggestion_card(rank, view.suggestions[rank - 1]))
            buttons.append(gr.Button(visible=True))
        else:
            cards.append(view.suggestion_note if rank == 1 else "")
            buttons.append(gr.Button(visible=False))
    selected = {
        "id": view.conversation.id,
        "status": view.conversation.status.value,
        "last_line": lines[-1]["id"] if lines else 0,
    }
    offered = [suggestion_info(rank, s) for rank, s in enumerate(view.suggestions, start=1)]
    return (
        selected,
        header(view.conversation),
        transcript(lines),
        gr.Dropdown(choices=choices, value=choices[-1][1] if choices else None),
        offered,
        *cards,
        *buttons,
    )


def empty_view_updates(note: str = NOTHING_SELECTED) -> tuple[Any, ...]:
    hidden = [gr.Button(visible=False)] * SUGGESTION_COUNT
    cards = [""] * SUGGESTION_COUNT
    return (None, note, [], gr.Dropdown(choices=[], value=None), [], *cards, *hidden)


def open_conversation(
    assistant: Assistant, conversation_id: str, request: gr.Request | None
) -> tuple[Any, ...]:
    """`view_updates` for a conversation chosen in the queue, plus a cleared reply box."""
    acting_agent(assistant, request)
    try:
        view = load_view(assistant, conversation_id)
    except UnknownConversation as error:
        raise gr.Error(GONE) from error
    return (*view_updates(view), "", None)


def refresh(
    assistant: Assistant, selected: Selected, request: gr.Request | None
) -> tuple[Any, ...]:
    """The open conversation again if anything in it changed, else `gr.skip()` for each part."""
    acting_agent(assistant, request)
    if selected is None:
        return skipped(VIEW_SIZE)
    try:
        conversation = assistant.store.conversation(selected["id"])
        new = assistant.store.messages_since(selected["id"], selected["last_line"])
    except UnknownConversation:
        return empty_view_updates(GONE)
    if not new and conversation.status.value == selected["status"]:
        return skipped(VIEW_SIZE)
    return view_updates(load_view(assistant, selected["id"]))
