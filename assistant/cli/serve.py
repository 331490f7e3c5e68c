"""`assistant serve` and `assistant chat`: the server, and the terminal channel."""

from __future__ import annotations

import argparse
import sys

from assistant.core.settings import Settings


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.channels.terminal import converse
    from assistant.core.pipeline import Assistant

    assistant = Assistant.load(settings)
    assistant.warm_up()
    converse(assistant, sys.stdin, sys.stdout, trace=args.trace)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.channels.server import serve

    serve(settings, host=args.host, port=args.port)
    return 0
