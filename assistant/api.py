"""The JSON API and the web UI, served by one FastAPI app.

Endpoints are plain `def` functions, which FastAPI runs in its thread pool, so
model work never blocks the event loop.
"""

from __future__ import annotations

from typing import Any, Literal

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant import __version__
from assistant.messages import MessageError
from assistant.pipeline import Assistant
from assistant.store import UnknownConversation, UnknownTurn


class ChatRequest(BaseModel):
    message: str
    conversation_id: str | None = Field(None, max_length=64)


class ChatResponse(BaseModel):
    reply: str
    route: str
    intent: str | None
    confidence: float
    conversation_id: str
    turn_id: int
    latency_ms: float
    model_version: str
    trace: dict[str, Any]


class FeedbackRequest(BaseModel):
    turn_id: int
    rating: Literal["up", "down"]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


def create_app(assistant: Assistant, with_ui: bool = True) -> FastAPI:
    app = FastAPI(title="Pebble & Pine assistant", version=__version__)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        return _error(422, f"Invalid request: {problems}.")

    @app.post("/api/chat", response_model=ChatResponse)
    def chat(request: ChatRequest) -> Any:
        try:
            return assistant.reply(request.message, request.conversation_id).to_dict()
        except MessageError as error:
            return _error(422, str(error))
        except UnknownConversation:
            return _error(404, "Unknown conversation_id; leave it out to start a new conversation.")

    @app.post("/api/feedback")
    def feedback(request: FeedbackRequest) -> Any:
        try:
            feedback_id = assistant.feedback(request.turn_id, 1 if request.rating == "up" else -1)
        except UnknownTurn:
            return _error(404, f"Unknown turn_id {request.turn_id}.")
        return {"feedback_id": feedback_id}

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model_version": assistant.model_version}

    if with_ui:
        from assistant.ui import build_ui

        app = gr.mount_gradio_app(app, build_ui(assistant), path="/")
    return app
