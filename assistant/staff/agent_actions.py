"""What an agent does on the agent page: reply, take over, correct an intent, resolve.

A reply is a suggestion used as it is or edited, or the agent's own words; a
resolved conversation belongs to the bot again. Each action is logged by the store
as the signed-in account and returns the refreshed conversation view.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.core.errors import (
    HeldByAnotherAgent,
    MessageError,
    UnknownConversation,
    UnknownTurn,
)
from assistant.core.pipeline import Assistant
from assistant.core.records import ActionKind, Conversation, ConversationStatus
from assistant.staff.agent_views import (
    GONE,
    NOTHING_SELECTED,
    Picked,
    Selected,
    acting_agent,
    load_view,
    short_time,
    view_updates,
)
from assistant.text.normalise import normalise_text


def use_suggestion(offered: list[dict[str, Any]], rank: int) -> tuple[str, Picked]:
    """Put suggestion `rank` in the reply box, remembering it was the starting point."""
    if rank > len(offered):
        raise gr.Error("There is no such suggestion; select the conversation again.")
    picked = offered[rank - 1]
    return picked["text"], picked


def require_open(assistant: Assistant, selected: Selected) -> Conversation:
    if selected is None:
        raise gr.Error(NOTHING_SELECTED)
    try:
        return assistant.store.conversation(selected["id"])
    except UnknownConversation as error:
        raise gr.Error(GONE) from error


def resolved_by(assistant: Assistant, conversation_id: str) -> str:
    resolutions = [
        action
        for action in assistant.store.actions(conversation_id)
        if action["kind"] == ActionKind.RESOLVED
    ]
    return resolutions[-1]["actor"] if resolutions else "someone"


def check_can_reply(assistant: Assistant, conversation: Conversation) -> None:
    """A resolved conversation belongs to the bot again, unless the customer wrote since."""
    if conversation.status is not ConversationStatus.RESOLVED:
        return
    turns = assistant.store.turns(conversation.id)
    if turns and conversation.resolved_at and turns[-1]["created_at"] > conversation.resolved_at:
        return
    raise gr.Error(
        f"{resolved_by(assistant, conversation.id)} resolved this conversation at "
        f"{short_time(conversation.resolved_at)}; the bot answers it now. "
        "Refresh the queue."
    )


def send_reply(
    assistant: Assistant,
    selected: Selected,
    text: str,
    picked: Picked,
    request: gr.Request | None,
) -> tuple[Any, ...]:
    """Send the reply box to the customer: a suggestion used, a suggestion edited, or the
    agent's own words. Returns the refreshed view, the cleared box and no pick."""
    agent = acting_agent(assistant, request)
    conversation = require_open(assistant, selected)
    try:  # normalised and length-checked before the redactor's patterns see it
        text = normalise_text(text or "", assistant.settings.serving.max_message_chars)
    except MessageError as error:
        raise gr.Error(str(error)) from error
    if not text:
        raise gr.Error("The reply is empty: use a suggestion or write your own.")
    check_can_reply(assistant, conversation)
    info = {k: v for k, v in picked.items() if k != "text"} if picked else None
    try:
        assistant.store.agent_reply(
            conversation.id,
            agent,
            text,
            suggestion=picked["text"] if picked else None,
            suggestion_info=info,
        )
    except HeldByAnotherAgent as held:
        raise gr.Error(
            f"{held.holder} has this conversation. Press Take over to answer it yourself."
        ) from held
    gr.Info("Reply sent.")
    return (*view_updates(load_view(assistant, conversation.id)), "", None)


def take_over(assistant: Assistant, selected: Selected, request: gr.Request | None) -> tuple:
    """Take the open conversation, from another agent too; the take-over is logged."""
    agent = acting_agent(assistant, request)
    conversation = require_open(assistant, selected)
    check_can_reply(assistant, conversation)
    holder = conversation.assigned_to
    if conversation.status is ConversationStatus.WITH_AGENT and holder == agent:
        gr.Info("This conversation is already yours.")
    else:
        assistant.store.take(conversation.id, agent)
        was_held = conversation.status is ConversationStatus.WITH_AGENT and holder
        gr.Info(f"You have this conversation now (from {holder})." if was_held else "Yours now.")
    return view_updates(load_view(assistant, conversation.id))


def correct_intent(
    assistant: Assistant,
    selected: Selected,
    turn_id: int | None,
    intent: str | None,
    request: gr.Request | None,
) -> tuple[Any, ...]:
    """Record the right intent of one of the open conversation's customer turns."""
    agent = acting_agent(assistant, request)
    conversation = require_open(assistant, selected)
    if turn_id is None:
        raise gr.Error("Pick the customer turn to correct.")
    if intent not in assistant.classifier.labels:
        raise gr.Error("Pick an intent from the list.")
    try:
        turn = assistant.store.turn(int(turn_id))
    except UnknownTurn as error:
        gone = f"Turn {turn_id} no longer exists; select the conversation again."
        raise gr.Error(gone) from error
    if turn["conversation_id"] != conversation.id:
        raise gr.Error(f"Turn {turn_id} is not in this conversation.")
    assistant.store.correct_intent(int(turn_id), agent, intent)
    gr.Info(f"Turn {turn_id} is now {intent}.")
    return view_updates(load_view(assistant, conversation.id))


def resolve(assistant: Assistant, selected: Selected, request: gr.Request | None) -> tuple:
    """Close the conversation for the support team; the bot answers it again."""
    agent = acting_agent(assistant, request)
    conversation = require_open(assistant, selected)
    if conversation.status is ConversationStatus.RESOLVED:
        raise gr.Error(
            f"{resolved_by(assistant, conversation.id)} already resolved this conversation."
        )
    assistant.store.resolve(conversation.id, agent)
    gr.Info("Resolved: the bot answers this customer again.")
    return view_updates(load_view(assistant, conversation.id))
