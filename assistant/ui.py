"""The customer chat page (Gradio): chat, a "why this answer" fold per reply, thumbs up/down."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import partial
from typing import Any

import gradio as gr

from assistant.explain import explain
from assistant.messages import MessageError
from assistant.pipeline import Assistant, Reply
from assistant.store import UnknownConversation

TITLE = "Pebble & Pine support"
INTRO = (
    "## Pebble & Pine support\n"
    "Ask about orders, delivery, returns, refunds, payments or your account. "
    "Open **Why this answer** under a reply to see how it was chosen, and rate replies "
    "with the thumbs."
)
WHY_TITLE = "Why this answer"

History = list[dict[str, Any]]
ChatState = tuple[str, History, str | None, dict[int, int]]


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
    events = assistant.reply_stream(message, conversation_id)
    try:
        first = next(events)
    except MessageError as error:
        gr.Warning(str(error))
        yield message, history, conversation_id, turn_ids
        return
    except UnknownConversation:
        gr.Warning("This conversation has expired; please send your message again.")
        yield message, [], None, {}
        return
    asked = [*history, {"role": "user", "content": message}]
    written = ""
    for event in itertools.chain([first], events):
        if isinstance(event, Reply):
            reply = event
            break
        written += event
        yield "", [*asked, {"role": "assistant", "content": written}], conversation_id, turn_ids
    history = [
        *asked,
        {"role": "assistant", "content": reply.text},
        {
            "role": "assistant",
            "content": explain(reply.trace, reply.latency_ms, reply.model_version),
            "metadata": {"title": WHY_TITLE, "status": "done"},
        },
    ]
    # Both the reply and its fold can be rated; either rating belongs to this turn.
    turn_ids = {**turn_ids, len(history) - 2: reply.turn_id, len(history) - 1: reply.turn_id}
    yield "", history, reply.conversation_id, turn_ids


def rate(assistant: Assistant, turn_ids: dict[int, int], event: gr.LikeData) -> int | None:
    """Store a thumbs up or down on the rated message's turn; returns the feedback id."""
    index = event.index[0] if isinstance(event.index, list | tuple) else event.index
    turn_id = turn_ids.get(index)
    if turn_id is None or event.liked in (None, ""):
        return None
    feedback_id = assistant.feedback(turn_id, 1 if event.liked in (True, "Like") else -1)
    gr.Info("Thanks for the feedback!")
    return feedback_id


def build_ui(assistant: Assistant) -> gr.Blocks:
    def on_like(turn_ids: dict[int, int], event: gr.LikeData) -> None:
        # A plain function: Gradio finds the LikeData parameter by its annotation.
        rate(assistant, turn_ids, event)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        chatbot = gr.Chatbot(
            label="Chat", height=520, placeholder="How can we help today?", elem_id="chat"
        )
        conversation_id = gr.State(None)
        turn_ids = gr.State({})
        with gr.Row():
            message = gr.Textbox(
                placeholder="Type your question and press Enter",
                show_label=False,
                scale=8,
                elem_id="message",
            )
            send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        restart = gr.Button("New conversation", size="sm")
        state = [message, chatbot, conversation_id, turn_ids]
        message.submit(partial(respond, assistant), state, state)
        send.click(partial(respond, assistant), state, state)
        chatbot.like(on_like, [turn_ids], None)
        restart.click(lambda: ("", [], None, {}), None, state)
    return demo
