"""The JSON API's contract: what each endpoint may answer, as its OpenAPI document says.

Every error is `{"error": "..."}` (see `ErrorBody`); each operation declares the
status codes it can answer, with the `Retry-After` header where a client should
wait, and the content types of what it sends (server-sent events from
`/api/chat` with `"stream": true`, Prometheus text from `/metrics`). A method a
path does not take gets 405 with an `Allow` header, not the web UI's 404.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from assistant.core.settings import Settings

HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)
# The largest id a request may name: every JSON parser reads it exactly (a larger one may be
# rounded, and one past SQLite's 2**63 - 1 cannot be looked up at all).
MAX_ROW_ID = 2**53 - 1


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in words for a person.")


class FeedbackResponse(BaseModel):
    feedback_id: int


class MessagesResponse(BaseModel):
    messages: list[dict[str, Any]]
    status: str


class HealthResponse(BaseModel):
    status: str
    model_version: str
    writer: Literal["off", "loading", "ready", "failed"] = Field(
        description="The answer writer: in service, still loading after start-up (no answer "
        "is written until it is ready), failed to load, or configured off."
    )


Responses = dict[int | str, dict[str, Any]]

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "model": ErrorBody,
        "description": description,
        **({"headers": headers} if headers else {}),
    }


BAD_BODY = _error("The body cannot be read as JSON (not UTF-8, or cut short).")
INVALID = _error("The request does not fit this document, or the message is empty or too long.")
TOO_LARGE = _error("The request body is over `max_request_bytes`.")
RATE_LIMITED = _error("Too many requests from this client; wait and retry.", RETRY_AFTER)
BUSY = _error("The server is busy; wait and retry.", RETRY_AFTER)
NO_API_KEY = _error("Missing or invalid API key (X-API-Key, or for /metrics a bearer token).")


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """One server-sent event: its name, and data that is JSON of the given schema."""
    payload = {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"const": name}, "data": payload},
    }


DELTA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
SERVER_SENT_EVENTS = {
    "text/event-stream": {
        # OpenAPI 3.2's way to describe each event of a stream (3.1 tools ignore it).
        "itemSchema": {
            "oneOf": [
                _event("delta", DELTA),
                _event("reply", {"$ref": "#/components/schemas/ChatResponse"}),
            ]
        },
        "description": 'With `"stream": true`: "delta" events, pieces of a written answer, then '
        'one "reply" event with the reply as JSON.',
    }
}

CHAT: Responses = {
    200: {
        "description": "The reply; with `stream`, as server-sent events.",
        "content": SERVER_SENT_EVENTS,
    },
    404: _error("Unknown conversation_id."),
    400: BAD_BODY,
    409: _error(
        "A request with this Idempotency-Key is still being answered; retry shortly.",
        RETRY_AFTER,
    ),
    413: TOO_LARGE,
    422: _error(
        "The request does not fit this document, the message is empty or too long, or its "
        "Idempotency-Key was sent before with another message or conversation."
    ),
    429: RATE_LIMITED,
    503: BUSY,
}
HANDOFF: Responses = {
    200: {
        "description": "The reply: the conversation is with the support team (`status`), or "
        "already was and stays so."
    },
    404: _error("Unknown conversation_id."),
    400: BAD_BODY,
    413: TOO_LARGE,
    422: _error("The request does not fit this document."),
    429: RATE_LIMITED,
}
FEEDBACK: Responses = {
    200: {"model": FeedbackResponse, "description": "The feedback was recorded."},
    404: _error("Unknown turn_id, or a turn of another conversation."),
    400: BAD_BODY,
    413: TOO_LARGE,
    422: INVALID,
    429: RATE_LIMITED,
}
MESSAGES: Responses = {
    200: {"model": MessagesResponse, "description": "The conversation's lines after `after`."},
    404: _error("Unknown conversation_id."),
    422: INVALID,
    429: RATE_LIMITED,
}
SUGGEST: Responses = {
    401: NO_API_KEY,
    400: BAD_BODY,
    413: TOO_LARGE,
    422: INVALID,
    429: RATE_LIMITED,
}


def _as_json(response: dict[str, Any]) -> dict[str, Any]:
    """An error declared as JSON on a route whose own responses are not (FastAPI would give
    its model the route's media type)."""
    declared = {key: value for key, value in response.items() if key != "model"}
    schema = response["model"].model_json_schema()
    return {**declared, "content": {"application/json": {"schema": schema}}}


# Errors as JSON, though the figures are text.
METRICS: Responses = {
    200: {
        "description": "Prometheus text exposition format (version 1.0.0).",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    401: _as_json(NO_API_KEY),
    422: _as_json(INVALID),
}
HEALTH: Responses = {200: {"model": HealthResponse, "description": "The server is up."}}


@cache
def has_text_pattern() -> str:
    """A JSON Schema pattern for a message with something left once the server has dropped
    whitespace and control, format, surrogate and private-use characters (see
    `normalise_message`): one character outside those. Surrogates are left out of the class,
    as no regex engine takes them; BMP characters are escaped, astral ones written as they are.
    """
    ranges: list[list[int]] = []
    for code in range(0x110000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        if char.isspace() or unicodedata.category(char) in {"Cc", "Cf", "Co"}:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "[^" + "".join(_class_range(low, high) for low, high in ranges) + "]"


def _class_range(low: int, high: int) -> str:
    def written(code: int) -> str:
        return f"\\u{code:04X}" if code <= 0xFFFF else chr(code)

    return written(low) if low == high else f"{written(low)}-{written(high)}"


def message_schema(description: str) -> Callable[[dict[str, Any]], None]:
    """What the server accepts as a message, for the document only: the server's own check
    (`normalise_message`) answers a refused one with a clearer 422 than a pattern would."""

    def extra(schema: dict[str, Any]) -> None:
        schema.update(minLength=1, pattern=has_text_pattern(), description=description)

    return extra


def install(app: FastAPI, settings: Settings) -> None:
    """Refuse other methods on the API's paths, and put the configured message length in
    the document. Call after the API's routes are added and before the web UI is mounted."""
    _refuse_other_methods(app)
    app.add_exception_handler(HTTPException, _as_error_body)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        for model in ("ChatRequest", "SuggestRequest"):
            message = document["components"]["schemas"][model]["properties"]["message"]
            message["maxLength"] = settings.serving.max_message_chars
        for operations in document["paths"].values():
            for operation in operations.values():
                _headers_not_null(operation.get("parameters", []))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _headers_not_null(parameters: list[dict[str, Any]]) -> None:
    """An optional header is absent or a string: HTTP has no null, which FastAPI's
    `str | None` would let a generated client send."""
    for parameter in parameters:
        options = parameter["schema"].get("anyOf", [])
        if parameter["in"] == "header" and {"type": "null"} in options:
            (kept,) = [option for option in options if option != {"type": "null"}]
            parameter["schema"] = {**kept, "title": parameter["schema"].get("title")}


def _as_error_body(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's own refusals (an unreadable body: 400) in the API's error shape."""
    assert isinstance(error, HTTPException)
    return JSONResponse({"error": str(error.detail)}, error.status_code, error.headers)


def _refuse_other_methods(app: FastAPI) -> None:
    """Each documented path also matches every other method, ahead of the web UI's mount."""
    paths = get_openapi(title=app.title, version=app.version, routes=app.routes)["paths"]
    for path, operations in paths.items():
        methods = {method.upper() for method in operations}
        refuse = _method_not_allowed(path, methods)
        app.add_route(path, refuse, methods=sorted(HTTP_METHODS - methods), include_in_schema=False)


def _method_not_allowed(path: str, methods: set[str]) -> Callable[[Request], JSONResponse]:
    allow = ", ".join(sorted(methods))

    def refuse(request: Request) -> JSONResponse:
        return JSONResponse(
            {"error": f"{request.method} is not allowed on {path}; use {allow}."},
            status_code=405,
            headers={"Allow": allow},
        )

    return refuse
