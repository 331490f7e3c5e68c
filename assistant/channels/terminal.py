"""The terminal channel: a conversation on standard input and output (`assistant chat`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from assistant.channels.explain import explain
from assistant.core.errors import MessageError
from assistant.core.pipeline import Assistant
from assistant.core.types import Reply


def print_reply(assistant: Assistant, line: str, conversation_id: str | None, out: TextIO) -> Reply:
    """Print a reply as it is written; a written answer that fails its checks is withdrawn."""
    stream = assistant.reply_stream(line, conversation_id)  # a bad message is refused here
    shown = ""
    print("assistant: ", end="", flush=True, file=out)
    for event in stream:
        if isinstance(event, Reply):
            break
        print(event, end="", flush=True, file=out)
        shown += event
    if not shown:
        print(event.text, file=out)
    elif shown.strip() != event.text.strip():
        print(f"\n  (withdrawn: it failed its checks)\nassistant: {event.text}", file=out)
    else:
        print(file=out)
    return event


def converse(assistant: Assistant, lines: Iterable[str], out: TextIO, trace: bool = False) -> None:
    """Answer each line in one conversation, until an empty line or the end of input."""
    print("Type a question (empty line or Ctrl-D to quit).", file=out)
    conversation_id = None
    for line in lines:
        if not line.strip():
            break
        try:
            reply = print_reply(assistant, line, conversation_id, out)
        except MessageError as error:
            print(f"! {error}", file=out)
            continue
        conversation_id = reply.conversation_id
        if trace:
            print(explain(reply.trace, reply.latency_ms, reply.model_version), file=out)
