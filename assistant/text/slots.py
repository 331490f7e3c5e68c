"""Slot values in a message: the details (order number, email) a template is filled with."""

from __future__ import annotations

from collections.abc import Callable

from assistant.text.patterns import EMAIL, ORDER_ID


def _order_id(text: str) -> str | None:
    match = ORDER_ID.search(text)
    if match is None:
        return None
    return f"PP-{match.group('prefixed') or match.group('bare')}"


def _email(text: str) -> str | None:
    match = EMAIL.search(text)
    return match.group() if match else None


# Each slot a template may use, and how its value is found in a message.
SLOT_EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "order_id": _order_id,
    "email": _email,
}


def extract_slots(text: str) -> dict[str, str]:
    """All slot values present in a message, normalised (order numbers as PP-123456)."""
    found = {name: extract(text) for name, extract in SLOT_EXTRACTORS.items()}
    return {name: value for name, value in found.items() if value is not None}
