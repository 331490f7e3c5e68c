"""Removal of personal data (emails, phone numbers, card numbers) before storage."""

from __future__ import annotations

import re
from collections.abc import Iterable

from assistant.text.patterns import CARD_CANDIDATE, DATE, EMAIL, ORDER_ID, PHONE

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
    digits = digits_of(match.group())
    return CARD_MASK if 13 <= len(digits) <= 19 and passes_luhn(digits) else match.group()


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


class Redactor:
    """Masks emails, card numbers and phone numbers, except the business's own.

    `public_contacts` are the support email addresses and phone numbers agents
    and answers give customers; masking them would send "[PHONE]" to a customer.
    A phone number is kept however it is written (spaces, dashes, with or without
    the country code).
    """

    def __init__(self, public_contacts: Iterable[str] = ()) -> None:
        self._emails: set[str] = set()
        self._phones: set[str] = set()
        for contact in public_contacts:
            contact = contact.strip()
            if EMAIL.fullmatch(contact):
                self._emails.add(contact.lower())
            elif PHONE.fullmatch(contact) and len(digits_of(contact)) >= 7:
                self._phones.add(digits_of(contact))
            else:
                raise ValueError(
                    f"public contact {contact!r} is neither an email address nor a phone number"
                )

    def __call__(self, text: str) -> str:
        """Replace personal data with placeholders.

        Order numbers are not personal data and the support team needs them, so they
        are shielded from the phone pattern, which would otherwise match them.
        """
        text = EMAIL.sub(self._mask_email, text)
        text = CARD_CANDIDATE.sub(_mask_card, text)
        shielded: list[str] = []

        def shield(match: re.Match[str]) -> str:
            shielded.append(match.group())
            return f"\x00{len(shielded) - 1}\x00"

        text = ORDER_ID.sub(shield, text)
        text = PHONE.sub(self._mask_phone, text)
        return re.sub(r"\x00(\d+)\x00", lambda m: shielded[int(m.group(1))], text)

    def _mask_email(self, match: re.Match[str]) -> str:
        return match.group() if match.group().lower() in self._emails else EMAIL_MASK

    def _mask_phone(self, match: re.Match[str]) -> str:
        digits = digits_of(match.group())
        if (
            DATE.fullmatch(match.group())
            or not 7 <= len(digits) <= 15
            or self._is_public_phone(digits)
        ):
            return match.group()
        return PHONE_MASK

    def _is_public_phone(self, digits: str) -> bool:
        return any(public.endswith(digits) for public in self._phones)


def redact(text: str) -> str:
    """`text` with all personal data masked, no contact kept."""
    return Redactor()(text)
