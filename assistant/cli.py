"""The `assistant` command: data validate, train, index, chat, serve, export, retrain,
rollback, accounts."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from assistant.core.files import ArtifactError
from assistant.core.settings import Settings, load_settings
from assistant.datasets.loading import (
    INTENTS_FILE,
    OUT_OF_SCOPE_FILE,
    QA_FILE,
    TEMPLATES_FILE,
    DataError,
    load_dataset,
)
from assistant.text.normalise import MessageError


def validate_data(path: Path) -> dict:
    """Check a dataset folder and count what is in it; raises `DataError` at the bad line."""
    from assistant.routing.templates import TemplateBook

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


def intent_splits(args: argparse.Namespace, settings: Settings):
    """The demo dataset's splits, or those of the files given with --data."""
    from assistant.datasets.corpus import IntentFiles, dataset_splits, file_splits

    if args.data is None:
        return dataset_splits(load_dataset(settings.data_dir), settings)
    files = IntentFiles(args.data, args.validation, args.test, args.text_column, args.intent_column)
    return file_splits(files, settings)


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """Apply the command's --models-dir and --out-of-scope-label to the settings."""
    update: dict[str, object] = {}
    if args.models_dir is not None:
        update["models_dir"] = args.models_dir
    if args.out_of_scope_label is not None:
        update["out_of_scope_label"] = args.out_of_scope_label
    return settings.model_copy(update=update)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    splits = intent_splits(args, settings)
    print(
        f"Training on {len(splits.train)} examples, validating on {len(splits.validation)}"
        + (f", testing on {len(splits.test)}" if splits.test else "")
    )
    try:
        if args.search:
            report = _search_and_publish(splits, settings, args.search)
        else:
            from assistant.intents.training import train_intent_classifier

            report = train_intent_classifier(
                splits.train, splits.validation, settings, splits.checksum, splits.test, args.fresh
            )
    except KeyboardInterrupt:
        print("\nTraining stopped. Give the same command again to resume from the last epoch.")
        return 130
    print(f"Saved intent model {report.version} to {report.path}")
    print(summarise_metrics(report.metrics))
    return 0


def _search_and_publish(splits, settings: Settings, trials: int):
    import time

    from assistant.intents.search import search
    from assistant.intents.training import publish_fitted

    started = time.perf_counter()
    print(f"Searching hyperparameters: {trials} trials, scored on validation accuracy")
    fitted, history = search(splits.train, splits.validation, settings, splits.checksum, trials)
    best = max(history, key=lambda t: (t.validation_accuracy, t.validation_macro_f1))
    print(f"Best: trial {best.number}")
    extra = {"search": [trial.__dict__ for trial in history]}
    return publish_fitted(fitted, settings, splits.checksum, splits.test, started, extra)


def summarise_metrics(metrics: dict) -> str:
    """A few readable lines: accuracy, calibration and the fallback's effect."""
    lines = []
    for split in ("validation", "test"):
        figures = metrics.get(split)
        if not figures:
            continue
        line = f"{split}: accuracy {figures['accuracy']:.4f}, macro-F1 {figures['macro_f1']:.4f}"
        if "ece_before_calibration" in figures:
            line += (
                f", ECE {figures['ece_before_calibration']:.4f} -> "
                f"{figures['ece_after_calibration']:.4f} (T={figures['temperature']:.2f})"
            )
        lines.append(line)
        fallback = figures["with_fallback"]
        recall = fallback["out_of_scope_recall"]
        lines.append(
            f"  with fallback: in-scope accuracy {fallback['in_scope_accuracy']:.4f}, "
            f"out-of-scope recall {'n/a' if recall is None else f'{recall:.4f}'}, "
            f"answered {fallback['answered']:.4f}"
        )
    lines.append(
        f"epochs {metrics.get('epochs_run', 0):.0f}, "
        f"{metrics.get('training_seconds', 0) / 60:.1f} min"
    )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.evaluation.measures import embedding_map, evaluate_classifier, evaluate_retrieval
    from assistant.evaluation.report import write_report
    from assistant.intents.classifier import BertIntentClassifier

    settings = settings_for(args, settings)
    classifier = BertIntentClassifier.load(
        settings.intent_models_dir, settings.device, args.version, int8=args.int8
    )
    examples = _evaluation_examples(args, settings)
    evaluation = evaluate_classifier(classifier, examples, settings.out_of_scope_label)
    demo = args.data is None and args.test is None
    retriever = _retriever_if_built(settings) if demo else None
    if retriever is not None:
        evaluation["retrieval"] = evaluate_retrieval(retriever, examples)
    points = None if args.no_map else embedding_map(classifier, examples)
    directory = args.report or Path("reports") / classifier.version
    page = write_report(evaluation, directory, points)
    print(
        f"accuracy {evaluation['accuracy']:.4f}, macro-F1 {evaluation['macro_f1']:.4f}, "
        f"ECE {evaluation['calibration']['ece_before']:.4f} -> "
        f"{evaluation['calibration']['ece_after']:.4f} on {len(examples)} messages"
    )
    if "retrieval" in evaluation:
        figures = evaluation["retrieval"]
        print("retrieval: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if "@" in k))
    print(f"Report: {page} (and report.json, charts beside it)")
    return 0


def _evaluation_examples(args: argparse.Namespace, settings: Settings):
    """The --test file, else the --data file, else the demo data's test split."""
    from assistant.datasets.corpus import dataset_splits
    from assistant.datasets.loading import load_intent_examples

    path = args.test or args.data
    if path is None:
        return dataset_splits(load_dataset(settings.data_dir), settings).test
    return load_intent_examples(path, args.text_column, args.intent_column)


def _retriever_if_built(settings: Settings):
    from assistant.datasets.loading import qa_checksum
    from assistant.retrieval.index import load_index_version

    try:
        return load_index_version(
            settings, expected_source_checksum=qa_checksum(load_dataset(settings.data_dir))
        )
    except ArtifactError as error:
        print(f"(retrieval not evaluated: {error})")
        return None


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.lifecycle.build import build_index

    retriever = build_index(load_dataset(settings.data_dir), settings)
    where = "GPU" if retriever.on_gpu else "CPU"
    print(
        f"Indexed {len(retriever.rows)} Q&A pairs into {settings.qa_index_dir} (FAISS on {where})"
    )
    return 0


def cmd_train_generator(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.datasets.loading import qa_checksum
    from assistant.generation.training import train_generator
    from assistant.lifecycle.build import build_index, index_staleness
    from assistant.retrieval.index import load_index_version

    dataset = load_dataset(settings.data_dir)
    if index_staleness(dataset, settings):
        retriever = build_index(dataset, settings)
    else:
        retriever = load_index_version(settings)
    report = train_generator(
        dataset.qa_pairs, settings, qa_checksum(dataset), retriever, fresh=args.fresh
    )
    metrics = report.metrics
    print(
        f"Answer generator {report.version} saved to {report.path}: "
        f"{metrics['parameters'] / 1e6:.1f}M parameters, held-out perplexity "
        f"{metrics['validation_perplexity']:.1f}, grounding threshold "
        f"{metrics['grounding_threshold']:.3f}, {metrics['training_seconds'] / 60:.1f} min"
    )
    return 0


def _print_streamed_reply(assistant, line: str, conversation_id: str | None):
    """Print a reply as it is written; a written answer that fails its checks is withdrawn."""
    from assistant.core.types import Reply

    stream = assistant.reply_stream(line, conversation_id)  # a bad message is refused here
    shown = ""
    print("assistant: ", end="", flush=True)
    for event in stream:
        if isinstance(event, Reply):
            break
        print(event, end="", flush=True)
        shown += event
    if not shown:
        print(event.text)
    elif shown.strip() != event.text.strip():
        print(f"\n  (withdrawn: it failed its checks)\nassistant: {event.text}")
    else:
        print()
    return event


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.channels.explain import explain
    from assistant.core.pipeline import Assistant

    assistant = Assistant.load(settings)
    assistant.warm_up()
    print("Type a question (empty line or Ctrl-D to quit).")
    conversation_id = None
    for line in sys.stdin:
        if not line.strip():
            break
        try:
            reply = _print_streamed_reply(assistant, line, conversation_id)
        except MessageError as error:
            print(f"! {error}")
            continue
        conversation_id = reply.conversation_id
        if args.trace:
            print(explain(reply.trace, reply.latency_ms, reply.model_version))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.channels.server import serve

    serve(settings, host=args.host, port=args.port)
    return 0


def _export_from_log(settings: Settings, since, min_confidence: float):
    from assistant.analytics.export import export_log
    from assistant.storage.sqlite import ConversationStore

    if not settings.database_path.is_file():
        raise FileNotFoundError(
            f"no conversation log at {settings.database_path}; set database_path "
            "(or ASSISTANT_DATABASE_PATH) to the server's database"
        )
    store = ConversationStore(settings.database_path)
    try:
        return export_log(store, since.isoformat() if since else None, min_confidence)
    finally:
        store.close()


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.analytics.export import ExportFormat, render, write_export

    export = _export_from_log(settings, args.since, args.min_confidence)
    export_format = ExportFormat(args.format)
    if args.out is None:
        sys.stdout.write(render(export, export_format))
    else:
        write_export(export, export_format, args.out)
    print(f"Exported {export.summary()}" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.lifecycle.retrain import LogRow, read_log_file, retrain

    if args.logs is not None:
        rows = read_log_file(args.logs)
    else:
        export = _export_from_log(settings, args.since, args.min_confidence)
        rows = [LogRow.from_export(row) for row in export.rows]
    try:
        dataset = load_dataset(settings.data_dir)
        # The trainer prints its log lines; they belong with the progress, not the result.
        with contextlib.redirect_stdout(sys.stderr):
            result = retrain(dataset, settings, rows, force=args.force, announce=_progress)
    except KeyboardInterrupt:
        print("\nRetraining stopped; the live models are unchanged. Run it again to resume.")
        return 130
    print(json.dumps(result.to_dict(), indent=2) if args.json else retrain_summary(result))
    return 0


def _progress(line: str) -> None:
    """Progress goes to stderr, beside the progress bars, leaving stdout for the result."""
    print(line, file=sys.stderr, flush=True)


def retrain_summary(result) -> str:
    """Both releases' held-out figures, the decision, and what the log added."""
    from assistant.lifecycle.retrain import RETRIEVAL_FIGURE

    counts = result.counts
    rows = [
        f"Held-out set: {counts['held_out']} examples "
        f"({counts['held_out_from_log']} of them from the log)",
        f"{'':<6}{'accuracy':>9}{'macro-F1':>10}{'index MRR':>11}  version",
    ]
    for name, figures, versions in (
        ("live", result.live_figures, result.live),
        ("new", result.candidate_figures, result.candidate),
    ):
        mrr = figures[RETRIEVAL_FIGURE]
        rows.append(
            f"{name:<6}{figures['accuracy']:>9.4f}{figures['macro_f1']:>10.4f}"
            f"{'-' if mrr is None else f'{mrr:.4f}':>11}  {versions.describe()}"
        )
    if result.promoted:
        rows.append(
            "Promoted: a running server switches to it within seconds; "
            "`assistant rollback` returns to the previous release."
        )
    else:
        rows.append(
            "Not promoted: the new intent model or index does worse on the held-out set, so "
            "the live models stay (--force promotes them anyway)."
        )
    rows.append(
        f"From the log: {counts['log_rows']} new rows ({counts['corrected']} corrected by "
        f"agents), {counts['trained_on']} trained on, {counts['held_out_from_log']} held out, "
        f"{counts['unknown_intent']} with an unknown intent left out; "
        f"{counts['agent_answers_added']} agent answers added to the index. "
        f"{result.minutes:.1f} min."
    )
    return "\n".join(rows)


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.lifecycle.releases import RollbackError, rollback

    try:
        left, live = rollback(settings)
    except RollbackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Rolled back from {left.describe()}\nNow live: {live.describe()}")
    print("A running server switches within seconds.")
    return 0


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.lifecycle.releases import prunable, remove_versions

    doomed = prunable(settings, args.keep)
    megabytes = sum(_folder_bytes(folder) for folder in doomed) / 1e6
    for folder in doomed:
        print(f"{'would remove' if args.dry_run else 'removing'} {folder}")
    if not args.dry_run:
        remove_versions(settings, doomed)
    print(
        f"{len(doomed)} version folders, {megabytes:.0f} MB"
        f"{' (dry run: nothing removed)' if args.dry_run else ' freed'}; "
        f"the live release and the last {args.keep} releases are kept."
    )
    return 0


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2024-05-31") from error


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != password:
        raise ValueError("the passwords differ; nothing was written")
    return password


def cmd_add_user(args: argparse.Namespace, settings: Settings) -> int:
    """Print a `[[users]]` entry for assistant.toml: the password only as its argon2 hash."""
    from assistant.staff.accounts import user_entry

    entry = user_entry(args.name, args.role, _read_password(args))
    if any(user.name == args.name for user in settings.users):
        print(f"note: {args.name} is already configured; replace that entry", file=sys.stderr)
    print(entry, end="")
    where = _config_name(args)
    print(f"Add the entry above to {where} to let {args.name} sign in.", file=sys.stderr)
    return 0


def cmd_add_api_key(args: argparse.Namespace, settings: Settings) -> int:
    """Make a new API key: the key is shown once, only its digest goes in the config."""
    from assistant.staff.accounts import api_key_entry, new_api_key

    key = new_api_key()
    print(api_key_entry(args.name, key), end="")
    print(
        f"API key for {args.name} (shown only now; send it as the X-API-Key header):\n{key}\n"
        f"Add the entry above to {_config_name(args)}.",
        file=sys.stderr,
    )
    return 0


def _config_name(args: argparse.Namespace) -> str:
    return str(args.config or "assistant.toml")


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
    evaluate.add_argument("--int8", action="store_true", help="evaluate the int8 model")
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
    _add_export_command(commands)
    _add_release_commands(commands)
    _add_account_commands(commands)
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
    retrain.add_argument("--since", type=_date, help="only turns logged on or after DATE (UTC)")
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
    export.add_argument("--since", type=_date, help="only turns logged on or after DATE (UTC)")
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
