"""`assistant retrain`, `rollback` and `prune`: releases of the models."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from assistant.cli.data import export_from_log
from assistant.core.settings import Settings
from assistant.datasets.loading import (
    load_dataset,
)


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.lifecycle.retrain import LogRow, read_log_file, retrain

    if args.logs is not None:
        rows = read_log_file(args.logs)
    else:
        export = export_from_log(settings, args.since, args.min_confidence)
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


def release_built_part(settings: Settings, part: str, version: str) -> None:
    """Make a version `assistant train`, `index` or `train-generator` just saved live, as
    a release with the other parts' live versions; says so when they are not built yet."""
    from assistant.core.errors import ArtifactError
    from assistant.lifecycle.releases import release_built

    try:
        live = release_built(settings, {part: version})
    except ArtifactError as error:
        print(f"Not live yet: {error}")
        return
    print(f"Now live: {live.describe()}")


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.core.errors import RollbackError
    from assistant.lifecycle.releases import release_history, rollback

    try:
        left, live = rollback(settings)
    except RollbackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Rolled back from {left.describe()}\nNow live: {live.describe()}")
    never_live = release_history(settings)["never_live"]
    if never_live:
        print(
            f"({len(never_live)} recorded candidate release(s) never went live: their "
            "promotion was interrupted before the switch; they are no rollback target.)"
        )
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
