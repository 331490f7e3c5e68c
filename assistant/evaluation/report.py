"""Writing an evaluation out: `report.json`, a readable `report.md`, and PNG charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

from assistant.core.files import atomic_write_text, write_json

MISCLASSIFIED_SHOWN = 50
NAMED_TICKS_UP_TO = 40  # beyond this many intents, axis labels would be unreadable
LEGEND_UP_TO = 20
CHARTS = {
    "confusion_matrix": "Confusion matrix",
    "confidence_histogram": "Confidence histogram",
    "reliability_diagram": "Reliability diagram",
    "embedding_map": "Sentence embeddings, 2-D map",
}


def write_report(
    evaluation: dict[str, Any], directory: Path, embedding_map: dict[str, Any] | None = None
) -> Path:
    """Write everything into `directory`; returns the Markdown page's path."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "report.json", evaluation)
    _confusion_matrix(evaluation["confusion_matrix"], directory / "confusion_matrix.png")
    _confidence_histogram(evaluation["confidences"], directory / "confidence_histogram.png")
    _reliability_diagram(evaluation["calibration"], directory / "reliability_diagram.png")
    if embedding_map is not None:
        _embedding_map(embedding_map, directory / "embedding_map.png")
    page = directory / "report.md"
    atomic_write_text(page, markdown(evaluation, charts=_charts_in(directory)))
    return page


def _charts_in(directory: Path) -> list[str]:
    return [name for name in CHARTS if (directory / f"{name}.png").is_file()]


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _confusion_matrix(matrix: dict[str, Any], path: Path) -> None:
    counts = np.array(matrix["counts"], dtype=float)
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.18 * len(counts), 24)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true intent")
    if len(counts) <= NAMED_TICKS_UP_TO:
        ticks = np.arange(len(counts))
        axes.set_xticks(ticks, matrix["labels"], rotation=90, fontsize=7)
        axes.set_yticks(ticks, matrix["labels"], fontsize=7)
    axes.set_xlabel("predicted intent")
    axes.set_ylabel("true intent")
    axes.set_title("Confusion matrix (rows sum to 1)")
    _save(figure, path)


def _confidence_histogram(confidences: dict[str, list[float]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 21)
    axes.hist(confidences["correct"], bins=bins, alpha=0.7, label="correct", color="tab:green")
    axes.hist(confidences["wrong"], bins=bins, alpha=0.7, label="wrong", color="tab:red")
    axes.set_yscale("log")
    axes.set_xlabel("calibrated confidence of the top intent")
    axes.set_ylabel("messages (log scale)")
    axes.set_title("Confidence of correct and wrong predictions")
    axes.legend()
    _save(figure, path)


def _reliability_diagram(calibration: dict[str, Any], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfectly calibrated")
    for key, label, marker in (
        ("bins_before", f"before (ECE {calibration['ece_before']:.3f})", "o"),
        (
            "bins_after",
            f"after, T={calibration['temperature']:.2f} (ECE {calibration['ece_after']:.3f})",
            "s",
        ),
    ):
        bins = calibration[key]
        axes.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker=marker,
            label=label,
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean confidence in bin")
    axes.set_ylabel("accuracy in bin")
    axes.set_title("Reliability diagram")
    axes.legend(loc="upper left", fontsize=8)
    _save(figure, path)


def _embedding_map(embedding_map: dict[str, Any], path: Path) -> None:
    points = np.asarray(embedding_map["points"])
    intents = embedding_map["intents"]
    names = sorted(set(intents))
    colours = plt.get_cmap("tab20")
    figure, axes = plt.subplots(figsize=(9, 8))
    for number, name in enumerate(names):
        mine = np.array([intent == name for intent in intents])
        axes.scatter(*points[mine].T, s=6, color=colours(number % 20), label=name, alpha=0.8)
        if len(names) > LEGEND_UP_TO:
            x, y = np.median(points[mine], axis=0)
            axes.annotate(name, (x, y), fontsize=5, ha="center", alpha=0.8)
    if len(names) <= LEGEND_UP_TO:
        axes.legend(fontsize=7, markerscale=2, loc="best")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"Sentence embeddings ({embedding_map['method']}), coloured by true intent")
    _save(figure, path)


def markdown(evaluation: dict[str, Any], charts: list[str]) -> str:
    """The report as a Markdown page, worst intents first."""
    calibration = evaluation["calibration"]
    fallback = evaluation["fallback"]
    lines = [
        f"# Intent model evaluation: {evaluation['model_version']}",
        "",
        f"{evaluation['examples']} labelled messages.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| accuracy | {evaluation['accuracy']:.4f} |",
        f"| macro-F1 | {evaluation['macro_f1']:.4f} |",
        f"| ECE before calibration | {calibration['ece_before']:.4f} |",
        f"| ECE after calibration (T = {calibration['temperature']:.3f}) "
        f"| {calibration['ece_after']:.4f} |",
        f"| in-scope accuracy, no fallback | "
        f"{fallback['without_fallback']['in_scope_accuracy']:.4f} |",
        f"| in-scope accuracy with fallback | {fallback['in_scope_accuracy']:.4f} |",
        f"| out-of-scope recall | {_optional(fallback['out_of_scope_recall'])} |",
        f"| wrong answers stopped by the fallback | "
        f"{_optional(fallback['wrong_answers_stopped'])} |",
        f"| messages answered | {fallback['answered']:.4f} |",
        "",
        f"Fallback: threshold {fallback['policy']['threshold']}, margin "
        f"{fallback['policy']['margin']}, {len(fallback['policy']['per_intent'])} "
        "per-intent thresholds.",
        "",
    ]
    lines += _retrieval_section(evaluation.get("retrieval"))
    lines += [f"![{CHARTS[name]}]({name}.png)\n" for name in charts]
    lines += _per_intent_section(evaluation["per_intent"])
    lines += _confusions_section(evaluation["top_confusions"])
    lines += _misclassified_section(evaluation["misclassified"])
    return "\n".join(lines) + "\n"


def _optional(value: float | None) -> str:
    return "n/a (no such messages)" if value is None else f"{value:.4f}"


def _retrieval_section(retrieval: dict[str, Any] | None) -> list[str]:
    if not retrieval or not retrieval.get("questions"):
        return []
    figures = {k: v for k, v in retrieval.items() if k.startswith(("recall@", "mrr@"))}
    return [
        f"## Retrieval index ({retrieval['questions']} held-out questions; "
        f"a hit is {retrieval['relevance']})",
        "",
        "| " + " | ".join(figures) + " |",
        "|" + "---|" * len(figures),
        "| " + " | ".join(f"{v:.4f}" for v in figures.values()) + " |",
        "",
    ]


def _per_intent_section(per_intent: dict[str, dict[str, float]]) -> list[str]:
    lines = ["## Per intent (worst F1 first)", "", "| intent | precision | recall | F1 | n |"]
    lines.append("|---|---|---|---|---|")
    for name, row in sorted(per_intent.items(), key=lambda item: item[1]["f1"]):
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} "
            f"| {row['support']} |"
        )
    return [*lines, ""]


def _confusions_section(confusions: list[dict[str, Any]]) -> list[str]:
    if not confusions:
        return []
    lines = ["## Most frequent confusions", "", "| true intent | predicted | count |"]
    lines.append("|---|---|---|")
    lines += [f"| {c['intent']} | {c['predicted']} | {c['count']} |" for c in confusions]
    return [*lines, ""]


def _misclassified_section(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"## Misclassified messages ({len(rows)}; the {min(len(rows), MISCLASSIFIED_SHOWN)} "
        "most confident shown, all in report.json)",
        "",
        "| message | true intent | predicted | confidence | runner-up |",
        "|---|---|---|---|---|",
    ]
    for row in rows[:MISCLASSIFIED_SHOWN]:
        runner_up = row["top"][1] if len(row["top"]) > 1 else None
        second = f"{runner_up['intent']} ({runner_up['probability']:.2f})" if runner_up else ""
        text = row["text"].replace("|", "\\|")
        lines.append(
            f"| {text} | {row['intent']} | {row['predicted']} | {row['confidence']:.2f} "
            f"| {second} |"
        )
    return [*lines, ""]
