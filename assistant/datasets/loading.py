"""Loading and validation of datasets: intent examples, out-of-scope messages, Q&A pairs.

Tabular files are CSV (with a header) or JSONL (one object per line). Every
problem is reported as a `DataError` naming the file and line, so a user can
open the file and fix it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.core.errors import DataError

INTENTS_FILE = "intents.csv"
OUT_OF_SCOPE_FILE = "out_of_scope.csv"
QA_FILE = "qa_pairs.csv"
TEMPLATES_FILE = "templates.json"
MIN_EXAMPLES_PER_INTENT = 2


@dataclass(frozen=True)
class IntentExample:
    text: str
    intent: str


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    intent: str


@dataclass
class Dataset:
    """Everything the assistant learns from; templates are loaded by `templates.py`."""

    examples: list[IntentExample]
    out_of_scope: list[str]
    qa_pairs: list[QAPair]
    warnings: list[str] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        return sorted({example.intent for example in self.examples})


def read_records(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for a CSV or JSONL file, each row holding `columns`."""
    if not path.is_file():
        raise DataError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path, columns)
    elif suffix in {".jsonl", ".ndjson"}:
        yield from _read_jsonl(path, columns)
    else:
        raise DataError(path, f"unsupported file type {suffix!r}; use .csv or .jsonl")


def _open_text(path: Path):
    return path.open(encoding="utf-8-sig", newline="")


def _read_csv(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle, strict=True)
        try:
            header = reader.fieldnames or []
            missing = [column for column in columns if column not in header]
            if missing:
                raise DataError(
                    path, f"header {header} lacks column(s) {missing}; expected {list(columns)}", 1
                )
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise DataError(path, "more fields than the header (unquoted comma?)", line)
                yield line, _checked_row(path, line, row, columns)
        except csv.Error as error:
            # The bad row starts after the last good one; the parser fails where it notices.
            start, noticed = reader.line_num + 1, reader.reader.line_num
            span = f" (the row starting on line {start}, noticed on line {noticed})"
            raise DataError(
                path, f"malformed CSV{span if noticed > start else ''}: {error}", start
            ) from error
        except UnicodeDecodeError as error:
            raise DataError(path, f"not UTF-8 text: {error.reason}", reader.line_num + 1) from error


def _read_jsonl(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    with _open_text(path) as handle:
        line = 0
        try:
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as error:
                    raise DataError(path, f"invalid JSON: {error.msg}", line) from error
                if not isinstance(row, dict):
                    raise DataError(path, "each line must be a JSON object", line)
                yield line, _checked_row(path, line, row, columns)
        except UnicodeDecodeError as error:
            raise DataError(path, f"not UTF-8 text: {error.reason}", line + 1) from error


def _checked_row(path: Path, line: int, row: dict, columns: Sequence[str]) -> dict[str, str]:
    checked = {}
    for column in columns:
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            raise DataError(path, f"column {column!r} is missing or empty", line)
        checked[column] = value.strip()
    return checked


def load_intent_examples(
    path: Path, text_column: str = "text", intent_column: str = "intent"
) -> list[IntentExample]:
    examples = [
        IntentExample(row[text_column], row[intent_column])
        for _, row in read_records(path, (text_column, intent_column))
    ]
    if not examples:
        raise DataError(path, "no examples")
    return examples


def load_out_of_scope(path: Path, text_column: str = "text") -> list[str]:
    return [row[text_column] for _, row in read_records(path, (text_column,))]


def load_qa_pairs(path: Path) -> list[QAPair]:
    pairs = [QAPair(**row) for _, row in read_records(path, ("question", "answer", "intent"))]
    if not pairs:
        raise DataError(path, "no question/answer pairs")
    return pairs


def load_dataset(data_dir: Path) -> Dataset:
    """Load the dataset folder (see data/README.md), checking it as it goes."""
    if not data_dir.is_dir():
        raise DataError(data_dir, "dataset folder not found")
    examples = load_intent_examples(data_dir / INTENTS_FILE)
    oos_path = data_dir / OUT_OF_SCOPE_FILE
    out_of_scope = load_out_of_scope(oos_path) if oos_path.exists() else []
    qa_pairs = load_qa_pairs(data_dir / QA_FILE)
    dataset = Dataset(examples, out_of_scope, qa_pairs)
    dataset.warnings = _consistency_warnings(dataset, data_dir)
    return dataset


def _consistency_warnings(dataset: Dataset, data_dir: Path) -> list[str]:
    counts = Counter(example.intent for example in dataset.examples)
    too_small = sorted(intent for intent, n in counts.items() if n < MIN_EXAMPLES_PER_INTENT)
    if too_small:
        raise DataError(
            data_dir / INTENTS_FILE,
            f"intents need at least {MIN_EXAMPLES_PER_INTENT} examples each: {too_small}",
        )
    warnings = []
    unknown = sorted({pair.intent for pair in dataset.qa_pairs} - set(counts))
    if unknown:
        warnings.append(f"{QA_FILE}: intents with no training examples: {unknown}")
    duplicates = len(dataset.examples) - len({e.text.lower() for e in dataset.examples})
    if duplicates:
        warnings.append(f"{INTENTS_FILE}: {duplicates} duplicate example text(s)")
    return warnings


def split_examples(
    examples: Sequence[IntentExample], validation_fraction: float, seed: int
) -> tuple[list[IntentExample], list[IntentExample]]:
    """A stratified train/validation split, the same for the same seed."""
    # Imported here: scikit-learn costs over a second of the server's start, which never splits.
    from sklearn.model_selection import train_test_split

    labels = [example.intent for example in examples]
    train, validation = train_test_split(
        list(examples), test_size=validation_fraction, random_state=seed, stratify=labels
    )
    return train, validation


def checksum(records: Iterable[object]) -> str:
    """A stable fingerprint of dataclass records, to tell when built artifacts are stale."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(asdict(record), sort_keys=True).encode())
    return digest.hexdigest()


def qa_checksum(dataset: Dataset) -> str:
    """What a Q&A index was built from: an index is stale when this changes."""
    return checksum(dataset.qa_pairs)
