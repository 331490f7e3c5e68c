"""Retraining from the conversation log: merge, train candidates, compare with live, promote.

1. Merge: the dataset folder's intent examples plus the exported log rows (the
   customer's text and its final intent, the agent's correction when there is
   one; see analytics/export.py), and its Q&A pairs plus the questions agents answered.
2. Hold out: the dataset folder's test split, plus the log rows whose text
   hashes into a fixed one-in-five share. A row is held out at every retraining
   or at none, so the held-out set only grows and is never trained on.
3. Train a candidate intent model, index and (when on) answer generator, saved
   beside the live versions but not live. The index grows from the live one when
   the new Q&A pairs only add to it (only they are embedded), else is rebuilt.
4. Score the candidate and the live release on the held-out set: the intent
   model's accuracy, and the index's MRR (a hit is a past question of the same
   intent). Promote the candidate when neither is lower. A running server
   switches to it by itself (hot_reload.py). The answer generator has no such
   figure; its answers are checked one by one when written (grounding.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.analytics.export import APPROVED, from_spreadsheet, normalised
from assistant.core.settings import Settings
from assistant.datasets.corpus import IntentSplits, dataset_splits
from assistant.datasets.loading import (
    Dataset,
    IntentExample,
    QAPair,
    checksum,
    qa_checksum,
    read_records,
)
from assistant.evaluation.measures import RETRIEVAL_KS, evaluate_retrieval
from assistant.generation.training import train_generator
from assistant.intents.classifier import BertIntentClassifier
from assistant.intents.fitting import measure
from assistant.intents.training import fit_intent_classifier, publish_fitted
from assistant.lifecycle.build import intent_checksum
from assistant.lifecycle.releases import ModelVersions, live_versions, promote
from assistant.retrieval.encoder_gate import build_gated_index
from assistant.retrieval.extension import plan_extension
from assistant.retrieval.index import FaissRetriever, load_index_version

LOG_COLUMNS = ("text", "intent", "question", "answer", "intent_source", "answer_source")
HELD_OUT_ONE_IN = 5


@dataclass(frozen=True)
class LogRow:
    text: str
    intent: str
    answer: str
    corrected: bool  # the intent is an agent's correction
    approved: bool  # `question` and `answer`: a Q&A pair a person approved for reuse
    question: str = ""  # empty: the customer's `text`

    @classmethod
    def from_export(cls, row: Mapping[str, Any]) -> LogRow:
        return cls(
            str(row["text"]),
            str(row["intent"]),
            str(row["answer"]),
            row["intent_source"] == "agent",
            row["answer_source"] == APPROVED,
            str(row.get("question") or row["text"]),
        )


@dataclass(frozen=True)
class MergedData:
    splits: IntentSplits  # test: the fixed held-out set
    qa_pairs: list[QAPair]
    base_intent_checksum: str
    base_qa_checksum: str
    counts: dict[str, int]


@dataclass(frozen=True)
class RetrainResult:
    candidate: ModelVersions
    live: ModelVersions
    candidate_figures: dict[str, Any]
    live_figures: dict[str, Any]
    promoted: bool
    counts: dict[str, int]
    minutes: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.describe(),
            "live": self.live.describe(),
            "candidate_figures": self.candidate_figures,
            "live_figures": self.live_figures,
            "promoted": self.promoted,
            "counts": self.counts,
            "minutes": round(self.minutes, 2),
        }


def read_log_file(path: Path) -> list[LogRow]:
    """Rows of a JSONL or CSV file written by `assistant export` (a CSV's formula guards
    removed)."""
    records = [row for _, row in read_records(path, LOG_COLUMNS)]
    if path.suffix.lower() == ".csv":
        records = [{key: from_spreadsheet(value) for key, value in row.items()} for row in records]
    return [LogRow.from_export(row) for row in records]


def held_out(text: str) -> bool:
    """Whether a logged text belongs to the fixed held-out share (by a hash of its text)."""
    digest = hashlib.sha256(normalised(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_ONE_IN == 0


def merge(dataset: Dataset, settings: Settings, rows: Iterable[LogRow]) -> MergedData:
    """The dataset folder's splits and Q&A pairs, extended with the log's rows."""
    base = dataset_splits(dataset, settings)
    labels = {example.intent for example in base.train}
    seen = {normalised(e.text) for e in [*base.train, *base.validation, *base.test]}
    new_rows, unknown = [], 0
    for row in rows:
        key = normalised(row.text)
        if row.intent not in labels:
            unknown += 1
        elif key not in seen:
            seen.add(key)
            new_rows.append(row)
    kept = [row for row in new_rows if not held_out(row.text)]
    held = [IntentExample(row.text, row.intent) for row in new_rows if held_out(row.text)]
    train = [*base.train, *(IntentExample(row.text, row.intent) for row in kept)]
    pairs = _with_agent_answers(dataset.qa_pairs, kept)
    splits = IntentSplits(train, base.validation, [*base.test, *held], checksum(train))
    counts = {
        "log_rows": len(new_rows),
        "corrected": sum(row.corrected for row in new_rows),
        "trained_on": len(kept),
        "held_out_from_log": len(held),
        "held_out": len(splits.test),
        "unknown_intent": unknown,
        "agent_answers_added": len(pairs) - len(dataset.qa_pairs),
    }
    return MergedData(
        splits, pairs, intent_checksum(dataset, settings), qa_checksum(dataset), counts
    )


def _with_agent_answers(pairs: Sequence[QAPair], rows: Iterable[LogRow]) -> list[QAPair]:
    """The Q&A pairs plus each one a person approved for reuse that is not already there;
    an agent's answer no one approved is never indexed."""
    known = {normalised(pair.question) for pair in pairs}
    merged = list(pairs)
    for row in rows:
        question = row.question or row.text
        if row.approved and normalised(question) not in known:
            known.add(normalised(question))
            merged.append(QAPair(question, row.answer, row.intent))
    return merged


def train_candidate(
    merged: MergedData,
    settings: Settings,
    announce: Callable[[str], None] = print,
    previous_index: str | None = None,
) -> ModelVersions:
    """Train and save an intent model, an index and (when on) a generator, none made live;
    the index grows from `previous_index` when the new Q&A pairs only add to it."""
    splits = merged.splits
    announce(f"Training the intent classifier on {len(splits.train)} examples...")
    started = time.perf_counter()
    fitted = fit_intent_classifier(splits.train, splits.validation, settings, splits.checksum)
    base = {"base_checksum": merged.base_intent_checksum, "retrained_from_log": merged.counts}
    intent = publish_fitted(
        fitted, settings, splits.checksum, splits.test, started, base, make_current=False
    )
    retriever = candidate_index(merged, settings, previous_index, announce)
    generator = None
    if settings.generator_enabled:
        announce("Training the answer generator...")
        generator = train_generator(
            merged.qa_pairs,
            settings,
            checksum(merged.qa_pairs),
            retriever,
            make_current=False,
            base_checksum=merged.base_qa_checksum,
        ).version
    return ModelVersions(intent.version, retriever.version, generator)


def candidate_index(
    merged: MergedData,
    settings: Settings,
    previous: str | None,
    announce: Callable[[str], None] = print,
) -> FaissRetriever:
    """The candidate's index, saved but not live: index `previous` with only the new Q&A
    pairs embedded and added when they only add to it (retrieval/extension.py), `previous`
    itself when there are none, else one built from all the pairs."""
    plan = plan_extension(settings, previous, merged.qa_pairs, merged.base_qa_checksum)
    if plan.previous is not None and not plan.additions:
        announce(f"The index already holds all {len(merged.qa_pairs)} Q&A pairs.")
        return plan.previous
    if plan.previous is not None:
        announce(
            f"Adding {len(plan.additions)} Q&A pairs to the index's {len(plan.previous.rows)}..."
        )
        retriever = plan.previous.extended(plan.additions, settings, merged.base_qa_checksum)
    else:
        announce(f"Indexing {len(merged.qa_pairs)} Q&A pairs ({plan.reason})...")
        retriever = build_gated_index(
            merged.qa_pairs, settings, merged.splits.validation, merged.base_qa_checksum
        )
    retriever.publish(settings.qa_index_dir, make_current=False)
    return retriever


RETRIEVAL_FIGURE = f"retrieval_mrr@{max(RETRIEVAL_KS)}"


def score(settings: Settings, versions: ModelVersions, held_out: Sequence[IntentExample]) -> dict:
    """A release's figures on the held-out set: its intent model's and its index's."""
    classifier = BertIntentClassifier.load(
        settings.intent_models_dir, settings.device, versions.intent
    )
    figures = measure(classifier, held_out, settings.out_of_scope_label)
    retrieval = evaluate_retrieval(load_index_version(settings, versions.index), held_out)
    return {
        "accuracy": figures["accuracy"],
        "macro_f1": figures["macro_f1"],
        RETRIEVAL_FIGURE: retrieval.get(f"mrr@{max(RETRIEVAL_KS)}"),
    }


def not_worse(candidate: Mapping[str, float | None], live: Mapping[str, float | None]) -> bool:
    """Neither the intent accuracy nor the index's MRR is lower (an MRR that could not be
    measured, with no held-out question of an intent the index knows, is not compared)."""
    for figure in ("accuracy", RETRIEVAL_FIGURE):
        new, old = candidate.get(figure), live.get(figure)
        if new is not None and old is not None and new < old:
            return False
    return True


def retrain(
    dataset: Dataset,
    settings: Settings,
    rows: Iterable[LogRow],
    force: bool = False,
    announce: Callable[[str], None] = print,
) -> RetrainResult:
    """Steps 1-4 of the module docstring; `force` promotes even a worse candidate."""
    started = time.perf_counter()
    live = live_versions(settings)
    merged = merge(dataset, settings, rows)
    candidate = train_candidate(merged, settings, announce, live.index)
    held_out_set = merged.splits.test
    candidate_figures = score(settings, candidate, held_out_set)
    live_figures = score(settings, live, held_out_set)
    promoted = force or not_worse(candidate_figures, live_figures)
    if promoted:
        evaluation = {
            "held_out": len(held_out_set),
            "candidate": candidate_figures,
            "replaced": live_figures,
            **merged.counts,
        }
        promote(settings, candidate, evaluation, "forced" if force else "retrain")
    minutes = (time.perf_counter() - started) / 60
    return RetrainResult(
        candidate, live, candidate_figures, live_figures, promoted, merged.counts, minutes
    )
