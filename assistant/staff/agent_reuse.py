"""Approving agents' answers for reuse, on the agent page.

An agent's reply joins the retrieval index at the next retraining only once an agent
or admin approves it here, as it was sent or edited into a reusable Q&A pair (say,
without the customer's name or address); a rejected one never does. The store logs
each review with who made it, when, and the approved text.
"""

from __future__ import annotations

import textwrap
from typing import Any

import gradio as gr

from assistant.core.errors import MessageError
from assistant.core.pipeline import Assistant
from assistant.staff.agent_views import acting_agent

NOTHING_TO_REVIEW = "No agent answers await approval."


def pending_choices(assistant: Assistant, request: gr.Request | None) -> gr.Dropdown:
    """The agents' answers no one has reviewed yet, to pick one from."""
    acting_agent(assistant, request)
    pending = assistant.store.answers_to_review()
    choices = [
        (
            f"#{line['id']} {line['agent']}: {textwrap.shorten(line['text'], 70, placeholder='…')}",
            line["id"],
        )
        for line in pending
    ]
    return gr.Dropdown(
        choices=choices, value=None, label=NOTHING_TO_REVIEW if not choices else "Agent answer"
    )


def pick_answer(
    assistant: Assistant, message_id: int | None, request: gr.Request | None
) -> tuple[str, str]:
    """The question and answer of the picked reply, to edit before approving."""
    acting_agent(assistant, request)
    for line in assistant.store.answers_to_review():
        if line["id"] == message_id:
            return line["question"] or "", line["text"]
    return "", ""


def review(
    assistant: Assistant,
    message_id: int | None,
    question: str,
    answer: str,
    approved: bool,
    request: gr.Request | None,
) -> tuple[gr.Dropdown, str, str]:
    """Approve the picked reply as the pair in the boxes, or reject it; then the next list."""
    reviewer = acting_agent(assistant, request)
    if message_id is None:
        raise gr.Error("Pick an agent answer first.")
    try:
        assistant.store.review_answer(message_id, reviewer, approved, question, answer)
    except MessageError as error:
        raise gr.Error(str(error)) from error
    gr.Info("Approved for reuse." if approved else "Rejected: it will not be reused.")
    return pending_choices(assistant, request), "", ""


def build_reuse_section(assistant: Assistant) -> dict[str, Any]:
    """The page's "Approve for reuse" controls, wired; returns them by name."""
    with gr.Accordion("Approve agent answers for reuse", open=False):
        pending = gr.Dropdown(label="Agent answer", choices=[], elem_id="reuse-pick")
        question = gr.Textbox(label="Question (as it will be indexed)", elem_id="reuse-question")
        answer = gr.Textbox(label="Answer (as it will be indexed)", lines=3, elem_id="reuse-answer")
        with gr.Row():
            reload = gr.Button("Refresh", size="sm", elem_id="reuse-refresh")
            approve = gr.Button("Approve for reuse", variant="primary", elem_id="reuse-approve")
            reject = gr.Button("Reject", elem_id="reuse-reject")

    def on_reload(request: gr.Request) -> gr.Dropdown:
        return pending_choices(assistant, request)

    def on_pick(message_id: int | None, request: gr.Request) -> tuple[str, str]:
        return pick_answer(assistant, message_id, request)

    def on_review(approved: bool):
        def handler(message_id: int | None, q: str, a: str, request: gr.Request) -> tuple:
            return review(assistant, message_id, q, a, approved, request)

        return handler

    reload.click(on_reload, None, pending)
    pending.input(on_pick, pending, [question, answer])
    approve.click(on_review(True), [pending, question, answer], [pending, question, answer])
    reject.click(on_review(False), [pending, question, answer], [pending, question, answer])
    return {"pending": pending, "question": question, "answer": answer, "on_reload": on_reload}
