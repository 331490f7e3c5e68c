"""Training data from the conversation log: what customers asked, and the intent that was right.

A turn becomes a row when its intent can be trusted: an agent corrected it, or the
bot answered it confidently and the customer did not give it a thumbs down. A turn
the bot did not answer (handed off, refused as out of scope, or met with a clarifying
question) is not an example of its top intent unless an agent corrected it.
Everything else is left out and counted by reason, so a team can see what
review would add. Customer text is already redacted in the log. The JSONL and
CSV use the `text` and `intent` columns `assistant train --data FILE` reads by
default; the Rasa format is NLU training data (YAML). The CSV is opened in
spreadsheets, so a text cell that would start a formula gets a leading quote; the
JSONL and Rasa files hold the texts as logged.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from assistant.core.files import atomic_write_text
from assistant.core.seams import LogReader
from assistant.core.types import Route
from assistant.text.patterns import WHITESPACE

COLUMNS = (
    "text",
    "intent",
    "question",
    "answer",
    "route",
    "intent_source",
    "answer_source",
    "feedback",
    "turn_id",
    "created_at",
)
DEFAULT_MIN_CONFIDENCE = 0.6
APPROVED = "approved"  # `answer_source` of an agent's answer approved for reuse


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    RASA = "rasa"


class LeftOut(StrEnum):
    """Why a logged turn is not in the export."""

    THUMBS_DOWN = "thumbs down without correction"
    HANDED_OFF = "handed off without correction"
    REFUSED = "refused as out of scope without correction"
    CLARIFIED = "clarifying question without correction"
    NO_INTENT = "no intent (left to an agent) without correction"
    LOW_CONFIDENCE = "low confidence without correction"
    DUPLICATE = "duplicate"


@dataclass
class Export:
    rows: list[dict[str, Any]] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.left_out.most_common())
        return f"{len(self.rows)} rows; left out: {reasons or 'none'}"


def normalised(text: str) -> str:
    """The text as compared for duplicates: case, spacing and end punctuation ignored."""
    return WHITESPACE.sub(" ", text.casefold()).strip().rstrip(".?!").strip()


def training_rows(turns: Iterable[dict[str, Any]], min_confidence: float) -> Export:
    """Rows from `LogReader.turn_facts`, oldest first; the first of duplicates is kept."""
    export = Export()
    seen: set[tuple[str, str]] = set()
    for turn in turns:
        intent = _final_intent(turn, min_confidence)
        if isinstance(intent, LeftOut):
            export.left_out[intent] += 1
            continue
        key = (normalised(turn["user_text"]), intent)
        if key in seen:
            export.left_out[LeftOut.DUPLICATE] += 1
            continue
        seen.add(key)
        export.rows.append(_row(turn, intent))
    return export


# Routes whose turns the bot did not answer: their top intent is not a training label.
NOT_ANSWERED = {
    Route.HANDOFF: LeftOut.HANDED_OFF,
    Route.REFUSE: LeftOut.REFUSED,
    Route.CLARIFY: LeftOut.CLARIFIED,
}


def _final_intent(turn: dict[str, Any], min_confidence: float) -> str | LeftOut:
    """The agent's correction, else the model's intent when it can be trusted, else why not."""
    if turn["corrected_intent"]:
        return str(turn["corrected_intent"])
    if turn["rating"] == -1:
        return LeftOut.THUMBS_DOWN
    if turn["route"] in NOT_ANSWERED:
        return NOT_ANSWERED[turn["route"]]
    if not turn["intent"] or turn["route"] == Route.AGENT:
        return LeftOut.NO_INTENT
    if (turn["confidence"] or 0.0) < min_confidence:
        return LeftOut.LOW_CONFIDENCE
    return str(turn["intent"])


def _row(turn: dict[str, Any], intent: str) -> dict[str, Any]:
    """An agent's answer is exported for reuse only as the Q&A pair a person approved."""
    approved = bool(turn.get("approved_answer"))
    return {
        "text": turn["user_text"],
        "intent": intent,
        "question": turn["approved_question"] if approved else turn["user_text"],
        "answer": turn["approved_answer"] if approved else turn["reply_text"],
        "route": turn["route"],
        "intent_source": "agent" if turn["corrected_intent"] else "model",
        "answer_source": APPROVED if approved else "bot",
        "feedback": {1: "up", -1: "down"}.get(turn["rating"]),
        "turn_id": turn["id"],
        "created_at": turn["created_at"],
    }


def export_log(
    store: LogReader,
    since: str | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Export:
    """Training rows from turns logged since an ISO date or time."""
    return training_rows(store.turn_facts(since), min_confidence)


def render(export: Export, export_format: ExportFormat) -> str:
    if export_format is ExportFormat.JSONL:
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in export.rows)
    if export_format is ExportFormat.CSV:
        buffer = io.StringIO()
        # Every cell quoted: a carriage return inside one cannot split the row.
        writer = csv.DictWriter(
            buffer, fieldnames=COLUMNS, lineterminator="\n", quoting=csv.QUOTE_ALL
        )
        writer.writeheader()
        writer.writerows(
            {key: spreadsheet_safe(value) for key, value in row.items()} for row in export.rows
        )
        return buffer.getvalue()
    return rasa_nlu(export.rows)


# A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: a leading quote before a formula start."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def from_spreadsheet(value: str) -> str:
    """A CSV cell as it was before `spreadsheet_safe`."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def rasa_nlu(rows: Iterable[dict[str, Any]]) -> str:
    """Rasa NLU training data: each intent with its examples in a literal block."""
    by_intent: dict[str, list[str]] = {}
    for row in rows:
        by_intent.setdefault(row["intent"], []).append(" ".join(row["text"].split()))
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"- intent: {json.dumps(intent)}", "  examples: |"]
        lines += [f"    - {text}" for text in by_intent[intent]]
    return "\n".join(lines) + "\n"


def write_export(export: Export, export_format: ExportFormat, path: Path) -> None:
    """Write atomically: a reader sees the previous file or the whole new one."""
    atomic_write_text(path, render(export, export_format))
