"""A deployment on another company's data, measured through `Assistant.reply`.

The Bitext customer-support sample plays the company: a seeded 90 % of its
questions become the company's data folder (training examples, past Q&A pairs,
one answer template per intent, no out-of-scope examples), the assistant is built
from it with the project's defaults, and customers write the held-out 10 % and
CLINC150's `oos_test`. Every message goes through the route the server uses.
Used by `benchmarks/out_of_scope.py`.
"""

from __future__ import annotations

import csv
import json
import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from assistant.core.pipeline import Assistant
from assistant.core.settings import Settings
from assistant.datasets.loading import load_dataset
from assistant.lifecycle.build import ensure_artifacts

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
ANSWERS = {"template", "retrieval", "generate"}
HELD_OUT = 0.1


def company_rows(bitext: Path, seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The company's 90 % and the held-out 10 %, split by question."""
    with bitext.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["instruction"].strip()]
    questions = sorted({row["instruction"] for row in rows})
    random.Random(seed).shuffle(questions)
    held = set(questions[: round(HELD_OUT * len(questions))])
    return [r for r in rows if r["instruction"] not in held], [
        r for r in rows if r["instruction"] in held
    ]


def write_company_data(rows: list[dict[str, str]], folder: Path) -> None:
    """intents.csv, qa_pairs.csv and templates.json (the first answer of each intent, its
    `{{Placeholder}}` slots written out as words); no out_of_scope.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "intents.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows([r["instruction"], r["intent"]] for r in rows)
    with (folder / "qa_pairs.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer", "intent"])
        writer.writerows([r["instruction"], _plain(r["response"]), r["intent"]] for r in rows)
    templates: dict[str, str] = {}
    for row in rows:
        templates.setdefault(row["intent"], _plain(row["response"]))
    document = {"slots": {}, "messages": {}, "templates": templates}
    (folder / "templates.json").write_text(json.dumps(document, indent=2), encoding="utf-8")


def _plain(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: m.group(1).lower(), text).replace("{", "(").replace("}", ")")


def outcome_of(reply: Any, expected: str | None) -> str:
    """right / wrong (answered or handed off on another intent) / refused / clarified."""
    if reply.route == "refuse":
        return "refused"
    if reply.route == "clarify":
        return "clarified"
    if reply.route in ANSWERS or reply.route == "handoff":
        if expected is not None and reply.intent == expected:
            return "right"
        return "wrong"
    return "other"


def shares(outcomes: list[str]) -> dict[str, float]:
    counts = Counter(outcomes)
    return {key: counts[key] / len(outcomes) for key in ("right", "wrong", "refused", "clarified")}


def run_deployment(
    bitext: Path, out_of_scope: list[str], seed: int, work: Path, generator: bool
) -> dict[str, Any]:
    company, held_out = company_rows(bitext, seed)
    data_dir = work / "data"
    write_company_data(company, data_dir)
    settings = Settings(
        data_dir=data_dir,
        models_dir=work / "models",
        index_dir=work / "index",
        database_path=Path(tempfile.mkdtemp()) / "conversations.db",
        device="cpu",
        seed=seed,
        generator_enabled=generator,
        reload_check_seconds=0,
    )
    started = time.perf_counter()
    ensure_artifacts(load_dataset(data_dir), settings)
    build_minutes = (time.perf_counter() - started) / 60
    assistant = Assistant.load(settings)
    in_domain = [outcome_of(assistant.reply(r["instruction"]), r["intent"]) for r in held_out]
    off_topic = [outcome_of(assistant.reply(text), None) for text in out_of_scope]
    rejection = assistant.classifier.rejection
    return {
        "seed": seed,
        "company_questions": len(company),
        "held_out_questions": len(held_out),
        "out_of_scope_messages": len(out_of_scope),
        "generator": generator,
        "build_minutes": round(build_minutes, 2),
        "chosen_on_validation": {
            "threshold": rejection.threshold,
            "margin": rejection.margin,
            "familiarity": rejection.familiarity,
        },
        "in_domain": shares(in_domain),
        "out_of_scope": shares(off_topic),
        "out_of_scope_not_answered": sum(o in ("refused", "clarified") for o in off_topic)
        / len(off_topic),
    }
