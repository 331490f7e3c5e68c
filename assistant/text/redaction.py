"""Removal of personal data (emails, phone numbers, card numbers, IBANs) before storage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import phonenumbers
from phonenumbers import SUPPORTED_REGIONS

from assistant.text.folding import fold
from assistant.text.patterns import DATE, EMAIL, ORDER_ID
from assistant.text.pii import (
    CARD_DIGITS,
    PHONE_DIGITS,
    Span,
    canonical_email,
    card_spans,
    digit_count,
    digits_of,
    email_spans,
    iban_spans,
    passes_luhn,
    phone_spans,
)

__all__ = ["Redactor", "digits_of", "passes_luhn", "redact"]

EMAIL_MASK = "[EMAIL]"
PHONE_MASK = "[PHONE]"
CARD_MASK = "[CARD]"
IBAN_MASK = "[IBAN]"
# The business is in the US and ships to Canada, the UK, the EU and Australia (data/FACTS.md).
DEFAULT_PHONE_REGIONS = ("US", "GB", "IE", "AU", "DE", "FR", "ES", "IT", "NL")
BLANK = "\x00"  # stands in for a span already judged, so no later finder sees it


class Redactor:
    """Masks emails, IBANs, card numbers and phone numbers, except the business's own.

    `public_contacts` are the support email addresses and phone numbers agents
    and answers give customers; masking them would send "[PHONE]" to a customer.
    A contact is kept however it is written (an email in any case or spelled out,
    a phone number with any separators, with or without the country code).
    `phone_regions` say how a number without a country code is read; the first is
    the default (see `pii.phone_spans`).
    """

    def __init__(
        self,
        public_contacts: Iterable[str] = (),
        phone_regions: Iterable[str] = DEFAULT_PHONE_REGIONS,
    ) -> None:
        self._regions = tuple(region.upper() for region in phone_regions) or DEFAULT_PHONE_REGIONS
        unknown = [region for region in self._regions if region not in SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone region(s) {unknown}: use ISO codes such as US, GB")
        self._emails: set[str] = set()
        self._phones: set[str] = set()
        for contact in public_contacts:
            contact = contact.strip()
            if EMAIL.fullmatch(contact):
                self._emails.add(canonical_email(contact))
            elif self._is_phone(contact):
                self._phones.add(digits_of(contact))
            else:
                raise ValueError(
                    f"public contact {contact!r} is neither an email address nor a phone number"
                )

    def __call__(self, text: str) -> str:
        """Replace personal data with placeholders.

        Matching runs on the text's NFKC form (a full-width at sign is "@"); the original
        characters of each match are replaced. Order numbers and dates are not
        personal data and the support team needs them, so no finder sees them.
        """
        folded = fold(text)
        work, masks = folded.text, []
        for find in self._finders(digit_count(work)):
            found = list(find(work))
            masks += [(span, mask) for span, mask in found if mask]
            work = _blank(work, [span for span, _ in found])
        spans = sorted((folded.original_span(*span), mask) for span, mask in masks)
        return _replace(text, spans)

    def _finders(self, digits: int) -> list[Callable[[str], Iterable[tuple[Span, str]]]]:
        """The finders that could match a text with `digits` digits (`pii.digit_count`): a
        card or phone number needs more digits than most texts hold (the trace's reasons,
        template answers), and the phone finder is the slowest step of the log's writes."""
        finders: list[Callable[[str], Iterable[tuple[Span, str]]]] = [
            self._emails_in,
            lambda t: ((span, IBAN_MASK) for span in iban_spans(t)),
        ]
        if digits >= CARD_DIGITS.start:
            finders.append(lambda t: ((span, CARD_MASK) for span in card_spans(t)))
        if digits >= PHONE_DIGITS.start:
            finders.append(self._phones_in)
        return finders

    def _emails_in(self, text: str) -> Iterator[tuple[Span, str]]:
        for start, end in email_spans(text):
            public = canonical_email(text[start:end]) in self._emails
            yield (start, end), "" if public else EMAIL_MASK

    def _phones_in(self, text: str) -> Iterator[tuple[Span, str]]:
        shielded = _blank(text, [m.span() for p in (ORDER_ID, DATE) for m in p.finditer(text)])
        for span, digits in phone_spans(shielded, self._regions):
            public = any(phone.endswith(digits) for phone in self._phones)
            yield span, "" if public else PHONE_MASK

    def _is_phone(self, contact: str) -> bool:
        if len(digits_of(contact)) not in PHONE_DIGITS:
            return False
        try:
            number = phonenumbers.parse(contact, self._regions[0])
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.is_possible_number(number)


def _blank(text: str, spans: Iterable[Span]) -> str:
    """`text` with each span overwritten, keeping every other character where it was."""
    pieces, last = [], 0
    for start, end in sorted(spans):
        start = max(start, last)
        if start < end:
            pieces += [text[last:start], BLANK * (end - start)]
            last = end
    return "".join([*pieces, text[last:]])


def _replace(text: str, spans: list[tuple[Span, str]]) -> str:
    pieces, last = [], 0
    for (start, end), mask in spans:
        if start < last:
            continue  # folded spans never overlap; this guards the mapping back
        pieces += [text[last:start], mask]
        last = end
    return "".join([*pieces, text[last:]])


def redact(text: str) -> str:
    """`text` with all personal data masked, no contact kept."""
    return Redactor()(text)
