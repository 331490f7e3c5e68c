"""A reply stream as server-sent events, read in worker threads, never on the event loop.

Each piece of a written answer is produced in a worker thread. When the client
hangs up, the rest of the answer is still written, checked and logged
(`ReplyStream.close`); that work runs in a worker thread too, shielded from the
request's cancellation, so a client that leaves cannot stall other requests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from fastapi.sse import format_sse_event

from assistant.core.stream import ReplyStream
from assistant.core.trace import public_reply
from assistant.core.types import Reply

_END = object()


async def server_sent_events(stream: ReplyStream) -> AsyncIterator[bytes]:
    """A written answer's pieces as "delta" events; the final reply, which stands, as "reply"."""
    try:
        while (event := await anyio.to_thread.run_sync(next, stream, _END)) is not _END:
            if isinstance(event, Reply):
                yield format_sse_event(event="reply", data_str=json.dumps(public_reply(event)))
            else:
                yield format_sse_event(event="delta", data_str=json.dumps({"text": event}))
    finally:
        with anyio.CancelScope(shield=True):
            # A client that hung up: the answer is finished unseen and logged, off the loop.
            await anyio.to_thread.run_sync(stream.close)
