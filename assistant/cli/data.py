"""`assistant data validate` and `assistant export`: a dataset checked, training data exported."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from assistant.core.errors import ConfigError, DataError
from assistant.core.settings import Settings
from assistant.datasets.loading import (
    TEMPLATES_FILE,
    load_dataset,
)


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


def export_from_log(settings: Settings, since, min_confidence: float):
    from assistant.analytics.export import export_log
    from assistant.storage.store import ConversationStore

    if not settings.database_url and not settings.database_path.is_file():
        raise ConfigError(
            f"no conversation log at {settings.database_path}; set database_path "
            "(or ASSISTANT_DATABASE_PATH) to the server's database, or database_url "
            "(ASSISTANT_DATABASE_URL) to its PostgreSQL database"
        )
    store = ConversationStore.from_settings(settings)
    try:
        return export_log(store, since.isoformat() if since else None, min_confidence)
    finally:
        store.close()


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.analytics.export import ExportFormat, render, write_export

    export = export_from_log(settings, args.since, args.min_confidence)
    export_format = ExportFormat(args.format)
    if args.out is None:
        sys.stdout.write(render(export, export_format))
    else:
        write_export(export, export_format, args.out)
    print(f"Exported {export.summary()}" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def parse_date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2024-05-31") from error
