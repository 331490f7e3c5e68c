"""The `assistant` command: data validate, train, index, chat, serve."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from assistant.config import Settings, load_settings
from assistant.data import (
    INTENTS_FILE,
    OUT_OF_SCOPE_FILE,
    QA_FILE,
    TEMPLATES_FILE,
    DataError,
    load_dataset,
)
from assistant.files import ArtifactError
from assistant.messages import MessageError


def validate_data(path: Path) -> dict:
    """Check a dataset folder and count what is in it; raises `DataError` at the bad line."""
    from assistant.templates import TemplateBook

    if path.is_file():
        raise DataError(path, "give the dataset folder (holding intents.csv, qa_pairs.csv, ...)")
    dataset = load_dataset(path)
    templates = TemplateBook.load(path / TEMPLATES_FILE)
    intents = set(dataset.intents)
    warnings = list(dataset.warnings)
    without_template = sorted(intents - set(templates.templates))
    if without_template:
        warnings.append(f"{TEMPLATES_FILE}: no template for {without_template}")
    unknown_templates = sorted(set(templates.templates) - intents)
    if unknown_templates:
        warnings.append(f"{TEMPLATES_FILE}: templates for unknown intents {unknown_templates}")
    per_intent = Counter(example.intent for example in dataset.examples)
    return {
        "path": str(path),
        "intents": len(intents),
        "examples": len(dataset.examples),
        "min_examples_per_intent": min(per_intent.values()),
        "qa_pairs": len(dataset.qa_pairs),
        "templates": len(templates),
        "out_of_scope": len(dataset.out_of_scope),
        "warnings": warnings,
    }


def cmd_data_validate(args: argparse.Namespace, settings: Settings) -> int:
    path = args.path or settings.data_dir
    report = validate_data(path)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{path}: OK")
        for key in ("intents", "examples", "min_examples_per_intent", "qa_pairs", "templates"):
            print(f"  {key.replace('_', ' ')}: {report[key]}")
        print(f"  out of scope: {report['out_of_scope']}")
        for warning in report["warnings"]:
            print(f"  warning: {warning}")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.build import train_intents

    report = train_intents(load_dataset(settings.data_dir), settings)
    print(f"Saved intent model {report.version} to {report.path}")
    print(json.dumps(report.metrics, indent=2))
    return 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.build import build_index

    retriever = build_index(load_dataset(settings.data_dir), settings)
    where = "GPU" if retriever.on_gpu else "CPU"
    print(
        f"Indexed {len(retriever.rows)} Q&A pairs into {settings.qa_index_dir} (FAISS on {where})"
    )
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.explain import explain
    from assistant.pipeline import Assistant

    assistant = Assistant.load(settings)
    assistant.warm_up()
    print("Type a question (empty line or Ctrl-D to quit).")
    conversation_id = None
    for line in sys.stdin:
        if not line.strip():
            break
        try:
            reply = assistant.reply(line, conversation_id)
        except MessageError as error:
            print(f"! {error}")
            continue
        conversation_id = reply.conversation_id
        print(f"assistant: {reply.text}")
        if args.trace:
            print(explain(reply.trace, reply.latency_ms, reply.model_version))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.server import serve

    serve(settings, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (default assistant.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="dataset tools").add_subparsers(
        dest="action", required=True
    )
    validate = data.add_parser(
        "validate",
        help=f"check a dataset folder: {INTENTS_FILE}, {QA_FILE}, {TEMPLATES_FILE}, "
        f"{OUT_OF_SCOPE_FILE}",
    )
    validate.add_argument("path", nargs="?", type=Path, help="dataset folder (default: data_dir)")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(handler=cmd_data_validate)

    commands.add_parser("train", help="fine-tune the intent classifier").set_defaults(
        handler=cmd_train
    )
    commands.add_parser("index", help="build the retrieval index").set_defaults(handler=cmd_index)
    chat = commands.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--trace", action="store_true", help="show why each answer was chosen")
    chat.set_defaults(handler=cmd_chat)
    serve = commands.add_parser("serve", help="serve the web UI and JSON API")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, load_settings(args.config))
    except (DataError, ArtifactError, MessageError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
