"""Checks a generated answer must pass before it stands: no invented identifiers, close to
the past answers it was written from, and about the question it answers.

While an answer streams, `StreamGuard` releases it word by word and stops at the
first identifier (order number, amount, date, email, URL) found in none of the
given texts, so an invented one is never shown. Closeness to the retrieved
answers, and to the question, can only be judged on the whole answer, by
`check_answer`: an answer copied from past answers is close to them whether or not
it answers the question asked.
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
    relevance: float | None = None  # the answer's similarity to the question
    relevance_threshold: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_answer(
    answer: str,
    contexts: Sequence[str],
    given: Sequence[str],
    encode: Encode,
    threshold: float,
    question: str = "",
    relevance_threshold: float | None = None,
    encode_contexts: Encode | None = None,
) -> Verdict:
    """Pass `answer` only if every identifier in it is in `given` or `contexts`, it is at
    least `threshold` similar to one of the `contexts` and, with a `relevance_threshold`,
    at least that similar to the `question`. `encode_contexts` embeds the contexts, past
    answers that recur (one that remembers them); by default `encode` does, in its pass."""
    if not answer.strip():
        return Verdict(False, "the generator wrote nothing")
    invented = invented_identifiers(answer, [*given, *contexts])
    if invented:
        return Verdict(
            False, f"it names {', '.join(invented)}, found in no input", invented=tuple(invented)
        )
    asked = [question] if relevance_threshold is not None else []
    if encode_contexts is None:
        vectors = encode([answer, *asked, *contexts])  # one pass for every comparison
        context_vectors = vectors[1 + len(asked) :]
    else:
        vectors = encode([answer, *asked])
        context_vectors = encode_contexts(contexts) if contexts else vectors[:0]
    similarity = float((context_vectors @ vectors[0]).max()) if contexts else 0.0
    if similarity < threshold:
        return Verdict(
            False,
            f"similarity to the past answers {similarity:.3f} < {threshold:.3f}",
            similarity,
            threshold,
        )
    grounded = f"grounded: similarity {similarity:.3f} >= {threshold:.3f}"
    if relevance_threshold is None:
        return Verdict(True, grounded, similarity, threshold)
    relevance = float(vectors[1] @ vectors[0])
    passed = relevance >= relevance_threshold
    comparison = ">=" if passed else "<"
    return Verdict(
        passed,
        f"{grounded + ', ' if passed else ''}similarity to the question {relevance:.3f} "
        f"{comparison} {relevance_threshold:.3f}",
        similarity,
        threshold,
        relevance=relevance,
        relevance_threshold=relevance_threshold,
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
