"""The customer chat page (Gradio): chat, a "why this answer" fold per reply, thumbs up/down,
quick replies under a clarifying question, and a "Talk to a person" button.

A reply that offers options (a clarifying question's likeliest intents) shows them as
buttons under the chat; choosing one sends its text as the customer's next message, by
the same path as a typed one. "Talk to a person" hands the conversation to the support
team at once (`Assistant.request_person`), and its reply appears like any other.

While a conversation is open the page shows the agents' replies without the customer
sending anything (`page_polling`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from assistant.channels.explain import explain
from assistant.channels.page_guard import MessageEvents
from assistant.channels.page_polling import (
    EXPIRED,
    KNOWN_STATUS_LINES,
    POLL_SECONDS,
    SHOW_REPLIES,
    History,
    poll,
    polling,
    tick,
    timer_output,
)
from assistant.core.errors import MessageError, UnknownConversation, UnknownTurn
from assistant.core.pipeline import Assistant
from assistant.core.trace import public_trace
from assistant.core.types import Reply

TITLE = "Pebble & Pine support"
INTRO = (
    "## Pebble & Pine support\n"
    "Ask about orders, delivery, returns, refunds, payments or your account. "
    "Open **Why this answer** under a reply to see how it was chosen, and rate replies "
    "with the thumbs. **Talk to a person** passes the chat to our support team."
)
WHY_TITLE = "Why this answer"
TALK_TO_PERSON = "Talk to a person"

ChatState = tuple[str, History, str | None, dict[int, int]]
# The page after an event: the box, the chat, the conversation, the turn ids, the newest
# transcript line looked at, the status line, the poll timer and how often it ticks.
PageState = tuple[Any, Any, Any, Any, Any, Any, Any, Any]


def respond(
    assistant: Assistant,
    message: str,
    history: History,
    conversation_id: str | None,
    turn_ids: dict[int, int],
) -> Iterator[ChatState]:
    """Answer one message, showing a written answer as it is generated.

    Yields the cleared box, the history, the conversation and the turn ids; the
    last yield holds the reply that stands.
    """
    try:
        stream = assistant.reply_stream(message, conversation_id)
    except MessageError as error:
        gr.Warning(str(error))
        yield message, history, conversation_id, turn_ids
        return
    except UnknownConversation:
        gr.Warning(EXPIRED)
        yield message, [], None, {}
        return
    asked = with_message(history, message)
    written = ""
    try:
        for event in stream:
            if isinstance(event, Reply):
                reply = event
                break
            written += event
            yield "", [*asked, {"role": "assistant", "content": written}], conversation_id, turn_ids
    except GeneratorExit:
        # The page stopped listening (a cancel, a closed tab), and Gradio closes this on the
        # event loop: the rest of the answer is written, checked and logged in a thread.
        threading.Thread(target=stream.close, name="abandoned-answer", daemon=True).start()
        raise
    history, turn_ids = answered(asked, reply, turn_ids)
    yield "", history, reply.conversation_id, turn_ids


def with_message(history: History, text: str) -> History:
    """The chat with the customer's message added."""
    return [*history, {"role": "user", "content": text}]


def answered(
    asked: History, reply: Reply, turn_ids: dict[int, int]
) -> tuple[History, dict[int, int]]:
    """The chat once `reply` stands: its text, its "why this answer" fold, and its quick
    replies; and the turn ids with both new messages rated as this turn."""
    fold: dict[str, Any] = {
        "role": "assistant",
        "content": explain(public_trace(reply.trace), reply.latency_ms, reply.model_version),
        "metadata": {"title": WHY_TITLE, "status": "done"},
    }
    if reply.options:
        # The chat shows the options of its last message as buttons under it, until another
        # message follows; choosing one is the chatbot's `option_select` event.
        fold["options"] = [{"value": option} for option in reply.options]
    history = [*asked, {"role": "assistant", "content": reply.text}, fold]
    # Both the reply and its fold can be rated; either rating belongs to this turn.
    turn_ids = {**turn_ids, len(history) - 2: reply.turn_id, len(history) - 1: reply.turn_id}
    return history, turn_ids


def chosen_option(event: gr.SelectData) -> str:
    """The text of the quick reply the customer chose, to send as their message."""
    return str(event.value)


def hand_off(
    assistant: Assistant,
    history: History,
    conversation_id: str | None,
    turn_ids: dict[int, int],
) -> tuple[History, str | None, dict[int, int]]:
    """The "Talk to a person" button: hand this page's conversation (or a new one) to the
    support team, and show the reply like any other."""
    try:
        reply = assistant.request_person(conversation_id)
    except UnknownConversation:
        gr.Warning(EXPIRED)
        return [], None, {}
    asked = with_message(history, TALK_TO_PERSON)
    history, turn_ids = answered(asked, reply, turn_ids)
    return history, reply.conversation_id, turn_ids


def rate(
    assistant: Assistant,
    turn_ids: dict[int, int],
    conversation_id: str | None,
    event: gr.LikeData,
) -> int | None:
    """Store a thumbs up or down on the rated message's turn of this page's conversation;
    returns the feedback id."""
    index = event.index[0] if isinstance(event.index, list | tuple) else event.index
    turn_id = turn_ids.get(index)
    if turn_id is None or conversation_id is None or event.liked in (None, ""):
        return None
    rating = 1 if event.liked in (True, "Like") else -1
    try:
        feedback_id = assistant.feedback(turn_id, conversation_id, rating)
    except UnknownTurn:
        gr.Warning(EXPIRED)
        return None
    gr.Info("Thanks for the feedback!")
    return feedback_id


@dataclass(frozen=True)
class PageView:
    """What the page holds when the customer acts, in the order its events take it."""

    history: History
    conversation_id: str | None
    turn_ids: dict[int, int]
    last_seen: int  # the newest transcript line looked at
    status_line: str
    ticking: float | None  # the poll timer's interval while it ticks

    def __post_init__(self) -> None:
        # The status line comes back from the browser, and is shown again while the
        # customer's action runs: only a line this page writes is.
        if self.status_line not in KNOWN_STATUS_LINES:
            object.__setattr__(self, "status_line", "")


def then_poll(
    assistant: Assistant,
    view: PageView,
    box: Any,
    shown: History,
    steps: Iterator[tuple[Any, ...]],
) -> Iterator[PageState]:
    """A customer's action and the check after it, in one event.

    First the box and the chat `shown` while the action runs (the customer's message, at
    once); then each of `steps` (box, chat, conversation, turn ids) as it comes, the
    last with any agent reply since, the status line, and the timer set to the pace
    the conversation's status calls for.

    The chat, the status line and the timer are given values, not skipped, and the timer
    an update only when its pace changes: for an update or a skip Gradio builds the
    component and its configuration anew (about 10 ms for the chat here).
    """
    keep, line = gr.skip(), view.status_line
    as_it_ticks = timer_output(view.ticking, view.ticking)
    yield box, shown, keep, keep, keep, line, as_it_ticks, keep
    step = None
    for upcoming in steps:  # each shown when the next comes: the last goes with the check
        if step is not None:
            yield *step, keep, line, as_it_ticks, keep
        step = upcoming
    if step is None:
        return
    box, history, conversation_id, turn_ids = step
    chat, last_seen, line, interval = poll(assistant, history, conversation_id, view.last_seen)
    timer = timer_output(interval, view.ticking)
    yield box, chat, conversation_id, turn_ids, last_seen, line, timer, interval


def build_ui(assistant: Assistant) -> gr.Blocks:
    def on_like(turn_ids: dict[int, int], conversation: str | None, event: gr.LikeData) -> None:
        # A plain function: Gradio finds the LikeData parameter by its annotation.
        rate(assistant, turn_ids, conversation, event)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        chatbot = gr.Chatbot(
            label="Chat", height=520, placeholder="How can we help today?", elem_id="chat"
        )
        conversation_id = gr.State(None)
        turn_ids = gr.State({})
        status = gr.Markdown("", elem_id="status")
        with gr.Row():
            message = gr.Textbox(
                placeholder="Type your question and press Enter",
                show_label=False,
                scale=8,
                elem_id="message",
            )
            send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        with gr.Row():
            person = gr.Button(TALK_TO_PERSON, size="sm", elem_id="talk-to-person")
            restart = gr.Button("New conversation", size="sm")
        last_seen = gr.State(0)
        timer = gr.Timer(POLL_SECONDS, active=False)
        ticking = gr.State(None)  # the timer's interval while it ticks
        # The agents' replies the last tick found, with the newest id: a value the browser
        # holds, so that the page adds them there.
        found = gr.JSON(None, visible="hidden")
        page = [message, chatbot, conversation_id, turn_ids, last_seen, status, timer, ticking]

        def answer(text: str, box: Any, view: PageView) -> Iterator[PageState]:
            steps = respond(assistant, text, view.history, view.conversation_id, view.turn_ids)
            shown = with_message(view.history, text) if text.strip() else view.history
            yield from then_poll(assistant, view, box, shown, steps)

        def send_message(text: str, *held: Any) -> Iterator[PageState]:
            yield from answer(text, "", PageView(*held))

        def send_option(event: gr.SelectData, *held: Any) -> Iterator[PageState]:
            # A plain function: Gradio finds the SelectData parameter by its annotation.
            yield from answer(chosen_option(event), gr.skip(), PageView(*held))

        def press_for_person(*held: Any) -> Iterator[PageState]:
            view = PageView(*held)

            def handed() -> Iterator[tuple[Any, ...]]:
                yield (
                    gr.skip(),
                    *hand_off(assistant, view.history, view.conversation_id, view.turn_ids),
                )

            pressed = with_message(view.history, TALK_TO_PERSON)
            yield from then_poll(assistant, view, gr.skip(), pressed, handed())

        # One server event a message, however it is sent (named, so that a client, a load
        # test say, can call it): each event is a round trip through Gradio's queue.
        held = [chatbot, conversation_id, turn_ids, last_seen, status, ticking]  # a PageView
        message.submit(send_message, [message, *held], page, api_name="respond")
        send.click(send_message, [message, *held], page, api_name="respond_send")
        chatbot.option_select(send_option, held, page, api_name="respond_option")
        person.click(press_for_person, held, page, api_name="talk_to_person")
        timer.tick(
            partial(tick, assistant),
            [conversation_id, last_seen, ticking],
            [last_seen, status, timer, ticking, found],
            show_progress="hidden",
        )
        found.change(None, [chatbot, found], chatbot, js=SHOW_REPLIES, show_progress="hidden")
        chatbot.like(on_like, [turn_ids, conversation_id], None)
        restart.click(lambda: ("", [], None, {}, 0, "", polling(None), None), None, page)
    # Many customers at once, each event kind up to `chat_concurrency` (Gradio's default is
    # one: every customer would wait behind the reply being written). A full queue shows
    # Gradio's "busy, try again" rather than growing without bound.
    serving = assistant.settings.serving
    demo.queue(max_size=serving.queue_max_size, default_concurrency_limit=chat_concurrency(serving))
    return demo


# The page's events that send a message, each counted like a message to `/api/chat`.
MESSAGE_EVENT_NAMES = frozenset({"respond", "respond_send", "respond_option", "talk_to_person"})


def message_events(page: gr.Blocks) -> MessageEvents:
    """Where the page's message events are, by name and by queue index."""
    indexes = {index for index, fn in page.fns.items() if fn.api_name in MESSAGE_EVENT_NAMES}
    return MessageEvents(MESSAGE_EVENT_NAMES, frozenset(indexes))


def prepare_events() -> None:
    """Import matplotlib and resolve its backend, as Gradio's first event otherwise does (it
    switches the backend to Agg around every event): on the event loop that took about
    0.75 s here, while every customer's request waited."""
    try:
        import matplotlib
    except ImportError:  # Gradio then skips the switch too
        return
    matplotlib.get_backend()


def chat_concurrency(serving: Any) -> int:
    """Events of one kind handled at once: as configured, or as many as the API serves."""
    return serving.chat_concurrency or serving.max_waiting_chats
