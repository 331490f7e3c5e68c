"""The agent page (Gradio, at /agent): the queue, one conversation, suggested replies, actions.

An agent picks a conversation from the queue (handed off, answered with low
confidence, or given a thumbs down), reads its history with the intent and
confidence of each customer turn, and answers with one of the top three
suggestions, as it is or edited, or with their own words; they can correct any
customer turn's intent and resolve the conversation, after which the bot answers
it again. Each action is logged by the store as the signed-in account.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import pandas as pd

from assistant.core.errors import (
    AccessDenied,
    HeldByAnotherAgent,
    MessageError,
    UnknownConversation,
    UnknownTurn,
)
from assistant.core.pipeline import Assistant
from assistant.core.records import (
    ActionKind,
    Author,
    Conversation,
    ConversationStatus,
    QueueItem,
    QueueKind,
)
from assistant.core.settings import UserAccount
from assistant.routing.suggestions import Suggestion, suggest
from assistant.staff.access import AGENT_PATH, require_role

TITLE = "Pebble & Pine: agent"
SUGGESTION_COUNT = 3
REFRESH_SECONDS = 3.0
QUEUE_COLUMNS = ["kind", "why", "since", "status", "agent", "customer said", "conversation"]
KIND_LABELS = {
    QueueKind.HANDOFF: "handed off",
    QueueKind.LOW_CONFIDENCE: "low confidence",
    QueueKind.THUMBS_DOWN: "thumbs down",
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


def plain(text: str) -> str:
    """`text` shown as written: customers' words must not become links, images or markup."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", text)


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
    return queue_rows(assistant.store.queue(assistant.settings.low_confidence_below))


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
    text = f"**Conversation** `{conversation.id}`: {status_line(conversation)}"
    if conversation.handoff_reason:
        text += f"  \nHanded off: {plain(conversation.handoff_reason)}"
    return text


def transcript(lines: list[dict[str, Any]]) -> History:
    """The history as chat messages; each customer turn with its intent and confidence."""
    messages = []
    for line in lines:
        if line["author"] == Author.CUSTOMER:
            content = f"{plain(line['text'])}\n\n*{turn_note(line)}*"
            messages.append({"role": "user", "content": content})
        elif line["author"] == Author.AGENT:
            content = f"**{line['agent']} (support team):** {plain(line['text'])}"
            messages.append({"role": "assistant", "content": content})
        else:
            messages.append({"role": "assistant", "content": f"**Bot:** {plain(line['text'])}"})
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
        f"**Suggestion {rank}**: {plain(suggestion.text)}",
        f"route `{suggestion.route}` · intent `{suggestion.intent or 'none'}` · "
        f"score {suggestion.score:.2f} ({score_kind})",
    ]
    sources = [
        f"“{plain(source['question'])}” ({source['intent']}, cosine {source['score']:.2f})"
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
    """Values for `AgentPage.view_outputs`, in that order."""
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


# Actions.


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
    if not (text or "").strip():
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


def signed_in_line(assistant: Assistant, request: gr.Request | None, path: str) -> str:
    user = acting_account(assistant, request)
    return f"Signed in as **{user.name}** ({user.role}) · [Sign out]({path}/logout)"


def intent_choices(assistant: Assistant) -> gr.Dropdown:
    return gr.Dropdown(choices=sorted(assistant.classifier.labels))


# The page.


def build_agent_ui(assistant: Assistant, path: str = AGENT_PATH) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as page:
        gr.Markdown("## Pebble & Pine: agent")
        who = gr.Markdown(elem_id="who")
        with gr.Row():
            gr.Markdown("### Queue")
            reload_queue = gr.Button("Refresh", size="sm", scale=0)
        queue = gr.Dataframe(
            value=queue_rows([]),
            headers=QUEUE_COLUMNS,
            interactive=False,
            wrap=True,
            column_widths=["11%", "22%", "12%", "9%", "8%", "24%", "14%"],
            elem_id="queue",
            label="Handed off, low confidence and thumbs down; click a row to open it",
        )
        queue_shown = gr.State([])  # the rows on screen, so an unchanged queue is not redrawn
        selected = gr.State(None)
        offered = gr.State([])
        picked = gr.State(None)
        title = gr.Markdown(NOTHING_SELECTED, elem_id="conversation")
        with gr.Row():
            with gr.Column(scale=3):
                history = gr.Chatbot(label="History", height=420, elem_id="history")
            with gr.Column(scale=2):
                cards, uses = [], []
                for rank in range(1, SUGGESTION_COUNT + 1):
                    cards.append(gr.Markdown(elem_id=f"suggestion-{rank}"))
                    uses.append(gr.Button(f"Use suggestion {rank}", size="sm", visible=False))
        reply = gr.Textbox(
            label="Reply to the customer (use a suggestion and edit it, or write your own)",
            lines=3,
            elem_id="reply",
        )
        with gr.Row():
            send = gr.Button("Send", variant="primary", elem_id="send-reply")
            take_button = gr.Button("Take over", elem_id="take-over")
            resolve_button = gr.Button("Resolve", elem_id="resolve")
        with gr.Row():
            turn = gr.Dropdown(label="Customer turn", choices=[], scale=3, elem_id="turn")
            intent = gr.Dropdown(label="Right intent", choices=[], scale=2, elem_id="intent")
            correct = gr.Button("Correct intent", scale=1, elem_id="correct")
        timer = gr.Timer(REFRESH_SECONDS)

        view = [selected, title, history, turn, offered, *cards, *uses]

        def on_queue(request: gr.Request) -> tuple[pd.DataFrame, list]:
            rows = load_queue(assistant, request)
            return rows, rows.values.tolist()

        def on_load(request: gr.Request) -> tuple[Any, ...]:
            line = signed_in_line(assistant, request, path)
            return (line, *on_queue(request), intent_choices(assistant))

        def on_select(event: gr.SelectData, request: gr.Request) -> tuple[Any, ...]:
            row = event.row_value or []
            if not row:
                return skipped(len(view) + 2)
            return open_conversation(assistant, str(row[-1]), request)

        def on_tick(current: Selected, shown: list, request: gr.Request) -> tuple[Any, ...]:
            rows, values = on_queue(request)
            queue_update = (gr.skip(), gr.skip()) if values == shown else (rows, values)
            return (*queue_update, *refresh(assistant, current, request))

        def on_send(
            current: Selected, text: str, start: Picked, request: gr.Request
        ) -> tuple[Any, ...]:
            return (*send_reply(assistant, current, text, start, request), *on_queue(request))

        def on_correct(
            current: Selected, turn_id: int | None, label: str | None, request: gr.Request
        ) -> tuple[Any, ...]:
            return correct_intent(assistant, current, turn_id, label, request)

        def on_resolve(current: Selected, request: gr.Request) -> tuple[Any, ...]:
            return (*resolve(assistant, current, request), *on_queue(request))

        def on_take(current: Selected, request: gr.Request) -> tuple[Any, ...]:
            return (*take_over(assistant, current, request), *on_queue(request))

        queue_outputs = [queue, queue_shown]
        page.load(on_load, None, [who, *queue_outputs, intent])
        reload_queue.click(on_queue, None, queue_outputs)
        queue.select(on_select, None, [*view, reply, picked])
        timer.tick(
            on_tick, [selected, queue_shown], [*queue_outputs, *view], show_progress="hidden"
        )
        for rank, use in enumerate(uses, start=1):
            use.click(partial(use_suggestion, rank=rank), offered, [reply, picked])
        send.click(on_send, [selected, reply, picked], [*view, reply, picked, *queue_outputs])
        correct.click(on_correct, [selected, turn, intent], view)
        resolve_button.click(on_resolve, [selected], [*view, *queue_outputs])
        take_button.click(on_take, [selected], [*view, *queue_outputs])
    return page
