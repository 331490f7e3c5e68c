"""An access log that names what was asked for, not whose it was.

A conversation id or a Gradio session hash is enough to read a conversation,
so uvicorn's access lines must not carry them: the query string is dropped and
the path segments that are ids are replaced by a placeholder.
"""

from __future__ import annotations

import logging
import string
from copy import deepcopy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

ID_MASK = "{id}"
# Segments that follow these name whatever they belong to: /api/conversations/<id>/messages,
# /gradio_api/heartbeat/<session hash>.
OWNED_AFTER = frozenset({"conversations", "heartbeat"})
# Anything else that looks like a generated token (hex or mixed letters and digits, 16+).
# A set test, not a regular expression: this runs for every request on the event loop, and
# re2's call, which gives up the GIL, cost several times the check itself there.
TOKEN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_-")
TOKEN_LENGTH = 16


def private_path(full_path: str) -> str:
    """`full_path` without its query string and with its id segments masked."""
    path, _, query = full_path.partition("?")
    segments = path.split("/")
    for position, segment in enumerate(segments):
        follows_owner = position > 0 and segments[position - 1] in OWNED_AFTER
        if segment and (follows_owner or (_token_like(segment) and _mixed(segment))):
            segments[position] = ID_MASK
    return "/".join(segments) + ("?…" if query else "")


def _token_like(segment: str) -> bool:
    return len(segment) >= TOKEN_LENGTH and TOKEN_CHARACTERS.issuperset(segment)


def _mixed(segment: str) -> bool:
    return any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)


class PrivateAccessLog(logging.Filter):
    """Rewrites uvicorn's access records (client, method, path, version, status) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], private_path(args[2]), args[3], args[4])
        return True


def logging_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with the access lines made private."""
    config = deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["private"] = {"()": PrivateAccessLog}
    config["handlers"]["access"]["filters"] = ["private"]
    return config
