"""Checks a generated answer must pass before it stands: no invented identifiers, close to
the past answers it was written from.

While an answer streams, `StreamGuard` releases it word by word and stops at the
first identifier (order number, amount, date, email, URL) found in none of the
given texts, so an invented one is never shown. Closeness to the retrieved
answers can only be judged on the whole answer, by `check_answer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from assistant.text.identifiers import find_identifiers, invented_identifiers

Encode = Callable[[Sequence[str]], np.ndarray]  # texts -> unit-length embeddings


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    similarity: float | None = None
    threshold: float | None = None
    invented: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def context_similarity(encode: Encode, answer: str, contexts: Sequence[str]) -> float:
    """Cosine similarity between the answer and the closest of the past answers."""
    if not contexts:
        return 0.0
    vectors = encode([answer, *contexts])
    return float((vectors[1:] @ vectors[0]).max())


def check_answer(
    answer: str,
    contexts: Sequence[str],
    given: Sequence[str],
    encode: Encode,
    threshold: float,
) -> Verdict:
    """Pass `answer` only if every identifier in it is in `given` or `contexts`
    and it is at least `threshold` similar to one of the `contexts`."""
    if not answer.strip():
        return Verdict(False, "the generator wrote nothing")
    invented = invented_identifiers(answer, [*given, *contexts])
    if invented:
        return Verdict(
            False, f"it names {', '.join(invented)}, found in no input", invented=tuple(invented)
        )
    similarity = context_similarity(encode, answer, contexts)
    if similarity < threshold:
        return Verdict(
            False,
            f"similarity to the past answers {similarity:.3f} < {threshold:.3f}",
            similarity,
            threshold,
        )
    return Verdict(
        True, f"grounded: similarity {similarity:.3f} >= {threshold:.3f}", similarity, threshold
    )


class StreamGuard:
    """Releases streamed text up to each whitespace, withholding any invented identifier."""

    def __init__(self, given: Sequence[str]) -> None:
        self.allowed: set[str] = set()
        for text in given:
            self.allowed |= find_identifiers(text)
        self.released = ""
        self.pending = ""
        self.invented: tuple[str, ...] = ()

    @property
    def tripped(self) -> bool:
        return bool(self.invented)

    def feed(self, piece: str) -> str:
        """Add streamed text; return the part now safe to show (maybe empty)."""
        if self.tripped:
            return ""
        self.pending += piece
        cut = max(self.pending.rfind(" "), self.pending.rfind("\n"))
        if cut < 0:
            return ""
        # The whitespace goes out with the word before it, so "1." is seen as a list marker.
        ready, self.pending = self.pending[: cut + 1], self.pending[cut + 1 :]
        return self._release(ready)

    def finish(self) -> str:
        """Release what is left at the end of the stream."""
        if self.tripped:
            return ""
        rest, self.pending = self.pending, ""
        return self._release(rest)

    def _release(self, text: str) -> str:
        invented = find_identifiers(self.released + text) - self.allowed
        if invented:
            self.invented = tuple(sorted(invented))
            return ""
        self.released += text
        return text
