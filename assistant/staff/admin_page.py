"""The admin page (Gradio, at /admin): how the assistant is doing, which models serve, and
training data from the log.

Figures come from metrics.py (each conversation counted once), the releases and their
evaluation figures from releases.py, the intent model versions from their folders,
and the download from export.py. Every handler checks that an admin is signed in.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from assistant.analytics.export import ExportFormat, export_log, write_export
from assistant.analytics.metrics import (
    OTHER_HANDOFF,
    Embed,
    Metrics,
    QuestionGroup,
    compute_metrics,
    frequent_unanswered,
)
from assistant.core.embeddings import RememberedEmbed
from assistant.core.errors import AccessDenied, ArtifactError
from assistant.core.files import read_json
from assistant.core.pipeline import Assistant
from assistant.core.records import HandoffKind
from assistant.core.settings import Settings
from assistant.intents.classifier import METADATA_FILE
from assistant.lifecycle.releases import ModelVersions, live_or_none, release_history
from assistant.staff.access import require_role

TITLE = "Pebble & Pine: admin"
INTENT_COLUMNS = ["intent", "turns"]
GROUP_COLUMNS = ["question", "times asked", "similar questions"]
RELEASE_COLUMNS = ["state", "promoted", "how", "intent", "index", "generator", "evaluation"]
MODEL_COLUMNS = [
    "version",
    "live",
    "base model",
    "examples (train/validation/test)",
    "validation accuracy",
    "test accuracy",
    "test macro-F1",
]
EXPORT_SUFFIXES = {ExportFormat.JSONL: "jsonl", ExportFormat.CSV: "csv", ExportFormat.RASA: "yml"}
EXPORT_KEEP_SECONDS = 3600
HANDOFF_REASONS = {
    HandoffKind.ASKED.value: "the customer asked for a person",
    HandoffKind.ALWAYS_HUMAN.value: "an intent always handled by a person",
    HandoffKind.MISUNDERSTOOD.value: "not understood several times running",
    OTHER_HANDOFF: "other (by an agent, or logged before reasons were)",
}


def acting_admin(settings: Settings, request: gr.Request | None) -> str:
    """The signed-in admin's name; a `gr.Error` for anyone else."""
    try:
        return require_role(settings, request, "admin").name
    except AccessDenied as error:
        raise gr.Error(str(error)) from error


def parse_since(text: str | None) -> str | None:
    """An optional day (YYYY-MM-DD) as the ISO date the log is filtered from."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as error:
        message = f"{text!r} is not a date like 2025-01-31; leave it empty for all."
        raise gr.Error(message) from error


# How the assistant is doing.


def rate(part: int, whole: int, value: float | None) -> str:
    return "no data yet" if value is None else f"{value:.1%} ({part} of {whole})"


def milliseconds(value: float | None) -> str:
    return "no data yet" if value is None else f"{value:.0f} ms"


def figures_table(metrics: Metrics) -> str:
    rows = [
        ("Conversations", str(metrics.conversations)),
        (
            "Containment rate (resolved by the bot, polite refusals included)",
            rate(metrics.contained, metrics.conversations, metrics.containment_rate),
        ),
        (
            "Handoff rate (a person took part)",
            rate(metrics.handed_off, metrics.conversations, metrics.handoff_rate),
        ),
        (
            "Left at a clarifying question (no answer from the customer)",
            rate(metrics.abandoned, metrics.conversations, metrics.abandoned_rate),
        ),
        (
            "Fallback rate (bot turns refused, clarified or handed off unasked)",
            rate(metrics.fallbacks, metrics.bot_turns, metrics.fallback_rate),
        ),
        ("Refusals (out of scope; the bot kept the conversation)", str(metrics.refusals)),
        ("Clarifying questions asked", str(metrics.clarifications)),
        *(
            (f"Handoffs: {HANDOFF_REASONS.get(reason, reason)}", str(count))
            for reason, count in metrics.handoffs.items()
        ),
        (
            "Thumbs-down rate (of rated replies)",
            rate(metrics.thumbs_down, metrics.rated_turns, metrics.thumbs_down_rate),
        ),
        ("Reply latency p50", milliseconds(metrics.latency_p50_ms)),
        ("Reply latency p95", milliseconds(metrics.latency_p95_ms)),
    ]
    return "\n".join(["| figure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def intent_counts(metrics: Metrics) -> pd.DataFrame:
    return pd.DataFrame(list(metrics.intents.items()), columns=INTENT_COLUMNS)


def question_groups(groups: list[QuestionGroup]) -> pd.DataFrame:
    rows = [[g.text, g.count, " · ".join(g.examples[1:])] for g in groups]
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def load_figures(
    assistant: Assistant,
    since_text: str | None,
    request: gr.Request | None,
    embed: Embed | None = None,
) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The figures table, the intent counts and the most frequent unanswered questions,
    grouped with `embed` (by default the index's sentence encoder)."""
    settings = assistant.settings
    acting_admin(settings, request)
    since = parse_since(since_text)
    metrics = compute_metrics(assistant.store, since, settings.routing.handoff_intents)
    groups = frequent_unanswered(
        assistant.store,
        embed or assistant.models.encoder.embed,
        since,
        settings.routing.low_confidence_below,
        human_intents=settings.routing.handoff_intents,
    )
    return figures_table(metrics), intent_counts(metrics), question_groups(groups)


# Which models serve.


def evaluation_summary(evaluation: dict[str, Any] | None) -> str:
    """A release's evaluation figures in one line: new against replaced, then the rest."""
    if not evaluation:
        return "not evaluated (built outside retraining)"
    rest = dict(evaluation)
    new, old = rest.pop("candidate", None), rest.pop("replaced", None)
    parts = []
    if isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        held_out = rest.pop("held_out", None)
        for name, value in new.items():
            was = f" (was {old[name]:.3f})" if isinstance(old.get(name), int | float) else ""
            parts.append(f"held-out {name.replace('_', '-')} {value:.3f}{was}")
        if held_out is not None:
            parts.append(f"on {held_out} examples")
    parts += [f"{key.replace('_', ' ')} {value}" for key, value in rest.items()]
    return "; ".join(parts)


def release_rows(settings: Settings) -> pd.DataFrame:
    """Releases newest first: the live one, earlier ones, and those rolled back."""
    history = release_history(settings)
    live = live_or_none(settings)
    rows = []
    for record in reversed(history["releases"]):
        versions = ModelVersions.from_dict(record["versions"])
        # The same versions can be recorded twice (rebuilt, then promoted): the newest is live.
        is_live = versions == live and not any(row[0] == "live" for row in rows)
        rows.append(release_row("live" if is_live else "earlier", record))
    rows += [release_row("rolled back", record) for record in reversed(history["rolled_back"])]
    rows.sort(key=lambda row: row[1], reverse=True)  # stable: equal times keep newest first
    return pd.DataFrame(rows, columns=RELEASE_COLUMNS)


def release_row(state: str, record: dict[str, Any]) -> list[str]:
    versions = ModelVersions.from_dict(record["versions"])
    return [
        state,
        record.get("at", ""),
        record.get("how", ""),
        versions.intent,
        versions.index,
        versions.generator or "",
        evaluation_summary(record.get("evaluation")),
    ]


def figure(metrics: dict[str, Any], *keys: str) -> str:
    value: Any = metrics
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return f"{value:.3f}" if isinstance(value, int | float) else ""


def intent_model_rows(settings: Settings) -> pd.DataFrame:
    """Each intent model version on disk with its training figures, newest first.

    Folders without the model's metadata (a training run's checkpoints, a build in
    progress) are not versions and are left out.
    """
    folder = settings.intent_models_dir
    live = live_or_none(settings)
    rows = []
    versions = sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []
    for path in versions:
        if not (path / METADATA_FILE).is_file():
            continue
        try:
            metadata = read_json(path / METADATA_FILE, "")
        except ArtifactError:
            rows.append([path.name, "", "unreadable metadata", "", "", "", ""])
            continue
        metrics = metadata.get("metrics", {})
        counts = "/".join(
            str(metadata.get(f"{split}_examples", "?")) for split in ("train", "validation", "test")
        )
        rows.append(
            [
                path.name,
                "live" if live is not None and live.intent == path.name else "",
                metadata.get("base_model", ""),
                counts,
                figure(metrics, "validation", "accuracy"),
                figure(metrics, "test", "accuracy"),
                figure(metrics, "test", "macro_f1"),
            ]
        )
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def load_versions(
    assistant: Assistant, request: gr.Request | None
) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """What serves now, the release history and the intent model versions."""
    settings = assistant.settings
    acting_admin(settings, request)
    live = live_or_none(settings)
    serving = f"Serving: `{assistant.model_version}`"
    if live is not None and live.describe() != assistant.model_version:
        serving += f" (switching to `{live.describe()}`)"
    releases = release_rows(settings)
    if releases.empty:
        serving += "  \nNo releases recorded yet: `assistant retrain` records each one it promotes."
    return serving, releases, intent_model_rows(settings)


# Training data.


class ExportFiles:
    """This page's export files in a temporary folder of their own.

    Gradio serves a copy from its cache, so each export's file is only needed until
    then: the next export removes those older than `keep_seconds`, and the folder
    goes when the server stops.
    """

    def __init__(self, keep_seconds: float = EXPORT_KEEP_SECONDS) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="pebble-export-")
        self.keep_seconds = keep_seconds

    @property
    def folder(self) -> Path:
        return Path(self._folder.name)

    def new_path(self, export_format: ExportFormat) -> Path:
        self.remove_old()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        return self.folder / f"training-data-{stamp}.{EXPORT_SUFFIXES[export_format]}"

    def remove_old(self) -> None:
        cutoff = time.time() - self.keep_seconds
        for path in self.folder.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        self._folder.cleanup()


def export_training_data(
    assistant: Assistant,
    files: ExportFiles,
    format_name: str | None,
    since_text: str | None,
    request: gr.Request | None,
) -> tuple[str, str]:
    """Write the log's training rows to a file to download; returns its path and a summary."""
    acting_admin(assistant.settings, request)
    try:
        export_format = ExportFormat(format_name)
    except ValueError as error:
        raise gr.Error("Pick a format: jsonl, csv or rasa.") from error
    export = export_log(assistant.store, parse_since(since_text))
    path = files.new_path(export_format)
    write_export(export, export_format, path)
    return str(path), f"Exported {export.summary()}."


# The page.


def read_only_table(value: pd.DataFrame, label: str, elem_id: str) -> gr.Dataframe:
    return gr.Dataframe(value=value, label=label, interactive=False, wrap=True, elem_id=elem_id)


def build_admin_ui(assistant: Assistant, files: ExportFiles | None = None) -> gr.Blocks:
    files = files or ExportFiles()
    with gr.Blocks(title=TITLE, delete_cache=(EXPORT_KEEP_SECONDS, EXPORT_KEEP_SECONDS)) as page:
        gr.Markdown("## Pebble & Pine: admin")
        with gr.Row():
            since = gr.Textbox(label="Figures since (YYYY-MM-DD, empty for all)", scale=3)
            reload = gr.Button("Refresh", scale=1)
        figures = gr.Markdown(elem_id="figures")
        intents = gr.BarPlot(
            pd.DataFrame(columns=INTENT_COLUMNS),
            x="intent",
            y="turns",
            title="Customer turns by intent (agents' corrections count)",
            sort="-y",
            y_lim=[0, None],
            x_label_angle=-30,
            elem_id="intents",
        )
        groups = read_only_table(
            question_groups([]),
            "Most frequent unanswered or low-confidence questions, grouped by meaning",
            "unanswered",
        )
        gr.Markdown("### Models")
        serving = gr.Markdown(elem_id="serving")
        releases = read_only_table(
            pd.DataFrame(columns=RELEASE_COLUMNS),
            "Releases (evaluation on the held-out set)",
            "releases",
        )
        models = read_only_table(
            pd.DataFrame(columns=MODEL_COLUMNS), "Intent model versions", "intent-models"
        )
        gr.Markdown("### Training data from the log")
        with gr.Row():
            export_format = gr.Radio(
                [f.value for f in ExportFormat], value=ExportFormat.JSONL.value, label="Format"
            )
            export_since = gr.Textbox(label="Turns since (YYYY-MM-DD, empty for all)")
            export_button = gr.Button("Export", variant="primary", elem_id="export")
        download = gr.File(label="Download", elem_id="download")
        summary = gr.Markdown(elem_id="export-summary")

        # The encoder stays the same across model switches, so its vectors stay valid. It
        # runs in the model worker, between customers' messages.
        remembered = RememberedEmbed(lambda texts: assistant.models.encoder.embed(texts))

        def on_figures(since_text: str, request: gr.Request) -> tuple[Any, ...]:
            return load_figures(assistant, since_text, request, remembered)

        def on_versions(request: gr.Request) -> tuple[Any, ...]:
            return load_versions(assistant, request)

        def on_export(format_name: str, since_text: str, request: gr.Request) -> tuple[Any, ...]:
            return export_training_data(assistant, files, format_name, since_text, request)

        shown = [figures, intents, groups]
        page.load(on_figures, since, shown).then(on_versions, None, [serving, releases, models])
        reload.click(on_figures, since, shown).then(on_versions, None, [serving, releases, models])
        since.submit(on_figures, since, shown)
        export_button.click(on_export, [export_format, export_since], [download, summary])
    return page
