"""Identifiers in a text: the facts a generated answer must never invent.

Order numbers, amounts, dates, times, phone numbers, emails and URLs all either
contain digits or are emails or URLs, so those three shapes cover them. Numbers
are compared by their digits ("PP-204817" and "order 204817" name the same
order; "£4.95" and "4.95" the same amount). The numbers of an ordered list
("1. Sign in") are layout, not facts, and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.text.patterns import EMAIL, LIST_MARKER, NUMBER, URL

TRAILING_PUNCTUATION = ".,;:!?)]}'\""


def find_identifiers(text: str) -> set[str]:
    """Every identifier in `text`, normalised: `url:...`, `email:...` or `number:...`."""
    found: set[str] = set()
    for match in URL.finditer(text):
        found.add("url:" + match.group().rstrip(TRAILING_PUNCTUATION).lower())
    text = URL.sub(" ", text)
    for match in EMAIL.finditer(text):
        found.add("email:" + match.group().lower())
    text = LIST_MARKER.sub(" ", EMAIL.sub(" ", text))
    for match in NUMBER.finditer(text):
        found.add("number:" + match.group().replace(",", ""))
    return found


def invented_identifiers(text: str, given: Iterable[str]) -> list[str]:
    """Identifiers in `text` that appear in none of the `given` texts, sorted."""
    allowed: set[str] = set()
    for source in given:
        allowed |= find_identifiers(source)
    return sorted(find_identifiers(text) - allowed)
