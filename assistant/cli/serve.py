"""`assistant serve`, `assistant chat` and `assistant test`: the server, the terminal channel,
and conversation stories replayed through the assistant."""

from __future__ import annotations

import argparse
import sys

from assistant.core.settings import Settings

STORIES_FILE = "stories.yml"  # in data_dir


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


def cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    """Replay the stories on the live models, on a log of their own; 1 if any fails."""
    import tempfile
    from pathlib import Path

    from assistant.core.pipeline import Assistant
    from assistant.evaluation.stories import load_stories, replay, report

    stories = load_stories(args.stories or settings.data_dir / STORIES_FILE)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_log = Path(scratch) / "stories.db"
        replaying = settings.model_copy(update={"database_path": scratch_log, "database_url": ""})
        assistant = Assistant.load(replaying)
        results = [replay(assistant, story) for story in stories]
        assistant.store.close()
    print(report(results))
    return 0 if all(result.passed for result in results) else 1
