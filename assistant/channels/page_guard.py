"""What the Gradio pages accept: no uploads, and events and sign-ins at a bounded rate.

No page takes files, so Gradio's upload routes are refused on every mount (Gradio
would store any upload under /tmp/gradio), and the customer page serves no files
(`/gradio_api/file=`, `/gradio_api/file/`). An event on the customer page (any POST
under `/gradio_api/`: the queue, and Gradio's `/call` API, which runs the same handlers)
is counted per browser tab (its `session_hash`) and per address, and a message (an
event that sends one) also per tab at the API's `rate_per_conversation`, since a tab
holds one conversation, whoever sends it; a sign-in
(`<page>/login`) per address and, through the shared `SignInThrottle`, per name.
Over a rate the answer is 429 with `Retry-After` and a JSON `{"error": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.channels.rate_limits import RateLimits
from assistant.core.errors import RateLimited
from assistant.staff.access import SignInThrottle

GRADIO_API = "/gradio_api/"
# Routes that take files from anyone (no page has a file or media input).
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording")
# Routes that serve files or fetch URLs, which the customer page does not need.
FILE_PATHS = ("/gradio_api/file=", "/gradio_api/file/")
UNCOUNTED_PATHS = frozenset({"/gradio_api/cancel"})  # stopping an event is never refused


def too_many(error: RateLimited) -> JSONResponse:
    return JSONResponse(
        {"error": str(error)},
        status_code=429,
        headers={"Retry-After": str(error.retry_after)},
    )


# Gradio's routes that run one named event, the name last in the path.
NAMED_EVENT_PATHS = ("/gradio_api/run/", "/gradio_api/api/", "/gradio_api/call/")


@dataclass(frozen=True)
class MessageEvents:
    """The customer page's events that send a message: their names and queue indexes."""

    names: frozenset[str] = frozenset()
    indexes: frozenset[int] = frozenset()

    def sent_by(self, path: str, body: dict[str, Any]) -> bool:
        if path.startswith(NAMED_EVENT_PATHS):
            return path.rstrip("/").rsplit("/", 1)[-1] in self.names
        index = body.get("fn_index")
        return isinstance(index, int) and index in self.indexes


class PageGuard:
    def __init__(
        self,
        app: ASGIApp,
        limits: RateLimits,
        staff_pages: Sequence[str],
        throttle: SignInThrottle | None,
        messages: MessageEvents = MessageEvents(),
    ) -> None:
        self.app, self.limits, self.throttle = app, limits, throttle
        self.staff_pages = tuple(staff_pages)
        self.messages = messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = next((p for p in self.staff_pages if scope["path"].startswith(p + "/")), "")
        path = scope["path"][len(page) :]
        if path.startswith(UPLOAD_PATHS) or (not page and path.startswith(FILE_PATHS)):
            refusal = JSONResponse({"error": "This page takes no files."}, status_code=403)
            await refusal(scope, receive, send)
            return
        counted = scope["method"] == "POST" and (
            (page and path.rstrip("/") == "/login") or (not page and _customer_event(path))
        )
        if not counted:
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        try:
            self._count(scope, page, body)
        except RateLimited as error:
            await too_many(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _count(self, scope: Scope, page: str, body: bytes) -> None:
        address = self.limits.address(scope)
        if page:  # a sign-in: not exempt, since guessing from this machine is guessing too
            self.limits.hit("sign-in attempts", ("sign-in", address))
            name = parse_qs(body.decode("utf-8", "replace")).get("username", [""])[0].strip()
            wait = self.throttle.retry_after(name) if self.throttle else 0
            if wait:
                raise RateLimited(wait, f"failed sign-ins for {name!r}")
            return
        event = _event(body)
        session = event.get("session_hash")
        session = session if isinstance(session, str) and session else None
        # As for /api/chat: an exempt client spares its address and tab, not its conversation.
        counted = [] if self.limits.clients.exempt(scope) else [("page-address", address)]
        if session and counted:
            counted.append(("page-session", session))
        if session and self.messages.sent_by(scope["path"], event):
            counted.append(("conversation", f"page:{session}"))
        if counted:
            self.limits.hit("messages and updates", *counted)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (the body cap stands outside), and a `receive` that replays it."""
    chunks, messages = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(chunks), replay


def _customer_event(path: str) -> bool:
    """Whatever runs the customer page's handlers: the queue, and Gradio's `/call` API."""
    return path.startswith(GRADIO_API) and path not in UNCOUNTED_PATHS


def _event(body: bytes) -> dict[str, Any]:
    """The event's JSON body, or nothing where it is not a JSON object."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}
