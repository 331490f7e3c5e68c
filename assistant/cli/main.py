"""The `assistant` command: its parser, and the one place user errors become a clean exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from assistant.cli.accounts import cmd_add_api_key, cmd_add_user
from assistant.cli.data import cmd_data_validate, cmd_export, parse_date
from assistant.cli.database import cmd_db_copy
from assistant.cli.models import (
    cmd_evaluate,
    cmd_index,
    cmd_train,
    cmd_train_generator,
)
from assistant.cli.releases import (
    cmd_prune,
    cmd_retrain,
    cmd_rollback,
)
from assistant.cli.serve import cmd_chat, cmd_serve, cmd_test
from assistant.core.errors import AssistantError
from assistant.core.settings import Settings, load_settings
from assistant.datasets.loading import (
    INTENTS_FILE,
    OUT_OF_SCOPE_FILE,
    QA_FILE,
    TEMPLATES_FILE,
)


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "dataset (default: the demo data in data_dir, split 80/10/10)"
    )
    group.add_argument("--data", type=Path, help="labelled CSV or JSONL file to train on")
    group.add_argument("--validation", type=Path, help="validation file (default: a split)")
    group.add_argument("--test", type=Path, help="test file, only measured")
    group.add_argument("--text-column", default="text")
    group.add_argument("--intent-column", default="intent")
    group.add_argument("--out-of-scope-label", help="the label of out-of-scope messages")
    group.add_argument("--models-dir", type=Path, help="where models are saved (models_dir)")


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

    train = commands.add_parser("train", help="fine-tune the intent classifier")
    _add_dataset_options(train)
    train.add_argument("--fresh", action="store_true", help="discard an interrupted run")
    train.add_argument(
        "--search", type=int, metavar="N", default=0, help="run N hyperparameter trials first"
    )
    train.set_defaults(handler=cmd_train)
    evaluate = commands.add_parser(
        "evaluate", help="measure the intent model and write a report (JSON, Markdown, charts)"
    )
    _add_dataset_options(evaluate)
    evaluate.add_argument("--version", help="model version (default: the live one)")
    evaluate.add_argument("--report", type=Path, help="report folder (default reports/VERSION)")
    evaluate.add_argument(
        "--int8", action="store_true", help="evaluate the int8 ONNX form, chosen or not"
    )
    evaluate.add_argument("--no-map", action="store_true", help="skip the 2-D embedding map")
    evaluate.set_defaults(handler=cmd_evaluate)
    commands.add_parser("index", help="build the retrieval index").set_defaults(handler=cmd_index)
    generator = commands.add_parser(
        "train-generator", help="train the answer generator on the Q&A pairs"
    )
    generator.add_argument("--fresh", action="store_true", help="start over, not resume")
    generator.set_defaults(handler=cmd_train_generator)
    chat = commands.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--trace", action="store_true", help="show why each answer was chosen")
    chat.set_defaults(handler=cmd_chat)
    serve = commands.add_parser("serve", help="serve the web UI and JSON API")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(handler=cmd_serve)
    test = commands.add_parser(
        "test", help="replay conversation stories and report each (default: data_dir/stories.yml)"
    )
    test.add_argument("stories", nargs="?", type=Path, help="a stories YAML file")
    test.set_defaults(handler=cmd_test)
    _add_export_command(commands)
    _add_release_commands(commands)
    _add_account_commands(commands)
    _add_database_commands(commands)
    return parser


def _add_min_confidence(parser: argparse.ArgumentParser) -> None:
    from assistant.analytics.export import DEFAULT_MIN_CONFIDENCE

    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        help="uncorrected turns need at least this intent probability "
        f"(default {DEFAULT_MIN_CONFIDENCE})",
    )


def _add_release_commands(commands) -> None:
    retrain = commands.add_parser(
        "retrain",
        help="retrain on the dataset plus the conversation log; promote if not worse",
        description="Merges the dataset folder with the log's training rows (or an exported "
        "file), trains a new intent model, index and generator, scores new and live on a "
        "fixed held-out set, and promotes the new models only when they are not less accurate.",
    )
    retrain.add_argument("--logs", type=Path, help="an `assistant export` JSONL or CSV file")
    retrain.add_argument(
        "--since", type=parse_date, help="only turns logged on or after DATE (UTC)"
    )
    _add_min_confidence(retrain)
    retrain.add_argument("--force", action="store_true", help="promote even if it scores lower")
    retrain.add_argument("--json", action="store_true", help="print the result as JSON")
    retrain.set_defaults(handler=cmd_retrain)
    commands.add_parser("rollback", help="return to the release before the live one").set_defaults(
        handler=cmd_rollback
    )
    prune = commands.add_parser(
        "prune",
        help="remove old model versions no release needs",
        description="Removes intent model, index and generator versions that are not live, "
        "not part of the last KEEP releases (what rollback returns to) and not among the "
        "newest KEEP of their kind.",
    )
    prune.add_argument("--keep", type=int, default=3, help="releases to keep (default 3)")
    prune.add_argument("--dry-run", action="store_true", help="list them; remove nothing")
    prune.set_defaults(handler=cmd_prune)


def _add_export_command(commands) -> None:
    export = commands.add_parser(
        "export",
        help="write training data from the conversation log (corrected intents first)",
        description="Rows have text, intent, answer, route, intent_source, answer_source, "
        "feedback; `assistant train --data FILE` reads the JSONL and CSV as they are. What is "
        "left out, and why, is counted on stderr.",
    )
    export.add_argument("--format", choices=["jsonl", "csv", "rasa"], default="jsonl")
    export.add_argument("--since", type=parse_date, help="only turns logged on or after DATE (UTC)")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    _add_min_confidence(export)
    export.set_defaults(handler=cmd_export)


def _add_account_commands(commands) -> None:
    add_user = commands.add_parser(
        "add-user",
        help="print a [[users]] config entry for an agent or admin (password stored hashed)",
        description="Prompts for the password and prints the entry for assistant.toml on "
        "stdout, e.g. `assistant add-user ana --role agent >> assistant.toml`.",
    )
    add_user.add_argument("name", help="sign-in name (letters, digits, . _ @ -)")
    add_user.add_argument("--role", choices=["agent", "admin"], required=True)
    add_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin, not a prompt"
    )
    add_user.set_defaults(handler=cmd_add_user)
    add_key = commands.add_parser(
        "add-api-key",
        help="make an API key for POST /api/suggest; prints its [[api_keys]] config entry",
    )
    add_key.add_argument("name", help="which tool the key is for")
    add_key.set_defaults(handler=cmd_add_api_key)


def _add_database_commands(commands) -> None:
    from assistant.storage.copying import CHUNK_ROWS

    database = commands.add_parser("db", help="conversation log tools").add_subparsers(
        dest="action", required=True
    )
    copy = database.add_parser(
        "copy",
        help="copy a SQLite conversation log into PostgreSQL (resumable, safe to rerun)",
        description="Brings both schemas up to date, copies every table in primary-key order "
        "in chunks committed one by one (a rerun or a resumed run copies only what is "
        "missing), moves PostgreSQL's id sequences past the copied ids, and compares the row "
        "counts: exit 1 if they differ. Stop the servers writing to the SQLite file first.",
    )
    copy.add_argument("sqlite_path", type=Path, help="the SQLite log (database_path)")
    copy.add_argument("postgres_url", help="postgresql://user:password@host/database")
    copy.add_argument(
        "--chunk-rows",
        type=int,
        default=CHUNK_ROWS,
        help=f"rows per transaction (default {CHUNK_ROWS:,})",
    )
    copy.set_defaults(handler=cmd_db_copy)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, load_settings(args.config))
    except AssistantError as error:  # anything else is a bug, and shows its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
