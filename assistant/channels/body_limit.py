"""A cap on the size of every request body, enforced before a body is read whole.

The API's fields have their own limits, but FastAPI (and Gradio, for the pages'
events and sign-ins) reads and parses a body before it checks them, so a huge
request would first be held in memory. This ASGI middleware, around the whole
app, answers 413 at once to a body whose declared `Content-Length` is over the
cap, and to a chunked one as soon as what arrived passes it; the app then sees
the client gone, and what it would answer is dropped. The pages send a chat's
history with each event, well under the 1 MB default.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DISCONNECT: Message = {"type": "http.disconnect"}


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = JSONResponse(
            {"error": f"The request body is over {self.limit:,} bytes; send less."},
            status_code=413,
        )
        if _declared_length(scope) > self.limit:
            await refusal(scope, receive, send)
            return
        received, refused = 0, False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return DISCONNECT
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                refused = True
                await refusal(scope, receive, send)
                return DISCONNECT
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)


def _declared_length(scope: Scope) -> int:
    value = dict(scope["headers"]).get(b"content-length", b"")
    return int(value) if value.isdigit() else 0
