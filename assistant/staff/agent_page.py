"""The agent page (Gradio, at /agent): the queue, one conversation, suggested replies, actions.

An agent picks a conversation from the queue (handed off, the most urgent first,
then turns given a thumbs down or answered with low confidence; each row says why),
reads why it was handed off, the email address the customer left when no one was
available, and its history with the intent and confidence of each customer turn, and
answers with one of the top three suggestions, as it is or edited, or with their own
words; they can correct any customer turn's intent and resolve the conversation,
after which the bot answers it again. Each action is logged by the store as the signed-in account.

This module lays the page out and wires its events; what it shows is built in
`agent_views`, and the actions are in `agent_actions`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr
import pandas as pd

from assistant.core.pipeline import Assistant
from assistant.staff.access import AGENT_PATH
from assistant.staff.agent_actions import (
    correct_intent,
    resolve,
    send_reply,
    take_over,
    use_suggestion,
)
from assistant.staff.agent_reuse import build_reuse_section
from assistant.staff.agent_views import (
    NOTHING_SELECTED,
    QUEUE_COLUMNS,
    SUGGESTION_COUNT,
    Picked,
    Selected,
    acting_account,
    load_queue,
    open_conversation,
    queue_rows,
    refresh,
    skipped,
)

TITLE = "Pebble & Pine: agent"
REFRESH_SECONDS = 3.0


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
            column_widths=["10%", "24%", "12%", "9%", "8%", "23%", "14%"],
            elem_id="queue",
            label=(
                "Handed off (most urgent first), then thumbs down and low confidence; "
                "click a row to open it"
            ),
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
        reuse = build_reuse_section(assistant)
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
        page.load(reuse["on_reload"], None, reuse["pending"])
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
