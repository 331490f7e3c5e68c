"""Removal of personal data (emails, phone numbers, card numbers) before storage."""

from __future__ import annotations

import re

from assistant.patterns import CARD_CANDIDATE, EMAIL, ORDER_ID, PHONE

EMAIL_MASK = "[EMAIL]"
PHONE_MASK = "[PHONE]"
CARD_MASK = "[CARD]"


def passes_luhn(digits: str) -> bool:
    """The checksum every payment card number satisfies; it keeps other numbers intact."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD_MASK if 13 <= len(digits) <= 19 and passes_luhn(digits) else match.group()


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return PHONE_MASK if 7 <= len(digits) <= 15 else match.group()


def redact(text: str) -> str:
    """Replace emails, card numbers and phone numbers with placeholders.

    Order numbers are not personal data and the support team needs them, so they
    are shielded from the phone pattern, which would otherwise match them.
    """
    text = EMAIL.sub(EMAIL_MASK, text)
    text = CARD_CANDIDATE.sub(_mask_card, text)
    shielded: list[str] = []

    def shield(match: re.Match[str]) -> str:
        shielded.append(match.group())
        return f"\x00{len(shielded) - 1}\x00"

    text = ORDER_ID.sub(shield, text)
    text = PHONE.sub(_mask_phone, text)
    return re.sub(r"\x00(\d+)\x00", lambda m: shielded[int(m.group(1))], text)
