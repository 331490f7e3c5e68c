"""Which labelled messages a classifier is trained, validated and tested on.

Either the assistant's own dataset folder (split 80/10/10 by default, stratified and
seeded), or any CSV/JSONL file with a text and an intent column, with an
optional validation file (else a stratified share of the training file) and an
optional test file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.core.settings import Settings
from assistant.datasets.loading import (
    Dataset,
    IntentExample,
    checksum,
    load_intent_examples,
    split_examples,
)


@dataclass(frozen=True)
class IntentSplits:
    train: list[IntentExample]
    validation: list[IntentExample]
    test: list[IntentExample]
    checksum: str  # of everything that was available for training


@dataclass(frozen=True)
class IntentFiles:
    """Labelled files named on the command line."""

    train: Path
    validation: Path | None = None
    test: Path | None = None
    text_column: str = "text"
    intent_column: str = "intent"

    def load(self, path: Path) -> list[IntentExample]:
        return load_intent_examples(path, self.text_column, self.intent_column)


def labelled_examples(dataset: Dataset, settings: Settings) -> list[IntentExample]:
    """Intent examples plus the out-of-scope messages under their own label."""
    out_of_scope = [
        IntentExample(text, settings.out_of_scope_label) for text in dataset.out_of_scope
    ]
    return [*dataset.examples, *out_of_scope]


def dataset_splits(dataset: Dataset, settings: Settings) -> IntentSplits:
    """Train / validation (early stopping, calibration, thresholds) / test (reported)."""
    examples = labelled_examples(dataset, settings)
    fraction = settings.validation_fraction
    train_and_validation, test = split_examples(examples, fraction, settings.seed)
    train, validation = split_examples(
        train_and_validation, fraction / (1 - fraction), settings.seed
    )
    return IntentSplits(train, validation, test, checksum(examples))


def file_splits(files: IntentFiles, settings: Settings) -> IntentSplits:
    """Splits from files; without a validation file, one is carved from the training file."""
    examples = files.load(files.train)
    if files.validation is not None:
        train, validation = examples, files.load(files.validation)
    else:
        train, validation = split_examples(examples, settings.validation_fraction, settings.seed)
    test = files.load(files.test) if files.test is not None else []
    return IntentSplits(train, validation, test, checksum([*train, *validation]))
