"""How familiar a message is: its similarity to the nearest example the classifier learned.

A softmax is confident wherever one class wins, even for a message far from
anything it was trained on ("what's the weather?" can score 0.9 on a delivery
intent). The nearest-neighbour similarity in the classifier's own embedding
space does not share that blind spot: an off-topic message lies far from every
training example. This is the k-NN out-of-distribution score of Sun et al.
(2022, "Out-of-Distribution Detection with Deep Nearest Neighbors"), with k=1 on
unit-length embeddings, so the score is a cosine.

The training examples' embeddings are kept with the model (`known.npy`, float16)
and searched exactly with one matrix product: a few thousand to tens of
thousands of rows take well under a millisecond per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KNOWN_FILE = "known.npy"
KNOWN_INTENTS_FILE = "known_intents.npy"
SEARCH_ROWS = 4096  # messages scored per product, to bound the similarity matrix's memory


@dataclass(frozen=True)
class KnownExamples:
    """The unit-length embeddings of the training examples and the index of each one's intent."""

    embeddings: np.ndarray  # (examples, dimensions), float16 on disk, float32 in memory
    intents: np.ndarray  # (examples,) label indices

    def nearest(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row, the cosine to the nearest known example and that example's intent."""
        similarity = np.empty(len(embeddings), dtype=np.float32)
        nearest = np.empty(len(embeddings), dtype=np.int64)
        for start in range(0, len(embeddings), SEARCH_ROWS):
            block = embeddings[start : start + SEARCH_ROWS] @ self.embeddings.T
            best = block.argmax(axis=1)
            similarity[start : start + SEARCH_ROWS] = block[np.arange(len(block)), best]
            nearest[start : start + SEARCH_ROWS] = self.intents[best]
        return similarity, nearest

    def save(self, folder: Path) -> None:
        np.save(folder / KNOWN_FILE, self.embeddings.astype(np.float16))
        np.save(folder / KNOWN_INTENTS_FILE, self.intents.astype(np.int32))

    @classmethod
    def load(cls, folder: Path) -> KnownExamples | None:
        """The saved examples, or None for a model saved without them (older versions)."""
        if not (folder / KNOWN_FILE).is_file():
            return None
        embeddings = np.load(folder / KNOWN_FILE, allow_pickle=False).astype(np.float32)
        intents = np.load(folder / KNOWN_INTENTS_FILE, allow_pickle=False).astype(np.int64)
        if len(embeddings) != len(intents):
            raise ValueError(f"{folder}: {KNOWN_FILE} and {KNOWN_INTENTS_FILE} differ in length")
        return cls(embeddings, intents)


def known_examples(
    embeddings: np.ndarray,
    intents: Sequence[str],
    labels: Sequence[str],
    out_of_scope_label: str | None,
) -> KnownExamples:
    """The in-scope training examples: a message close to a trained out-of-scope example
    is no more familiar for it."""
    index = {label: i for i, label in enumerate(labels)}
    keep = np.array([intent != out_of_scope_label for intent in intents], dtype=bool)
    targets = np.array([index[intent] for intent in intents], dtype=np.int64)
    return KnownExamples(embeddings[keep].astype(np.float32), targets[keep])


def quantile_threshold(familiarity: np.ndarray, quantile: float) -> float:
    """The familiarity that `quantile` of in-scope validation messages fall below: the rule
    for a company with no out-of-scope examples, where only known messages can be measured."""
    if len(familiarity) == 0:
        return -1.0
    return float(np.floor(np.quantile(familiarity, quantile) * 1000) / 1000)
