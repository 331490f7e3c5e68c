"""Compatibility folding for matching: full-width and other look-alike forms in plain form.

"jane\uff20example.com" (a full-width at sign) and full-width digits are the same email and
card number as their ASCII forms. The redactor finds personal data in the NFKC form of a text
and masks the matching span of the original, so `Folded` keeps where each character came from.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

REPLACEMENT = "\ufffd"  # stands in for a lone surrogate, which no pattern engine can read


@dataclass(frozen=True)
class Folded:
    text: str  # the NFKC form, character by character
    origins: tuple[int, ...] | None  # origins[i]: the original index of text[i]; None: same

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that folded to text[start:end]."""
        if self.origins is None:
            return start, end
        return self.origins[start], self.origins[end - 1] + 1


def fold(text: str) -> Folded:
    """`text` in NFKC form, each character folded on its own so spans map back."""
    if text.isascii():
        return Folded(text, None)
    pieces = [_fold_char(char) for char in text]
    if all(len(piece) == 1 for piece in pieces):
        return Folded("".join(pieces), None)
    origins = tuple(index for index, piece in enumerate(pieces) for _ in piece)
    return Folded("".join(pieces), origins)


def _fold_char(char: str) -> str:
    if unicodedata.category(char) == "Cs":
        return REPLACEMENT
    return unicodedata.normalize("NFKC", char) or REPLACEMENT
