"""Where personal data is in a (folded) text: emails, card numbers, IBANs, phone numbers.

Each finder returns (start, end) spans. Candidates are found by RE2 patterns, in time
linear in the text; checksums (Luhn, IBAN mod 97) and the phonenumbers library then
judge each candidate, which is short, so the whole search stays linear.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import phonenumbers
import stdnum
from stdnum import iban

from assistant.text.patterns import (
    CARD_WORD,
    DIGIT_GROUP,
    DIGIT_RUN,
    EMAIL,
    EMAIL_OBFUSCATED,
    EMAIL_TAIL,
    IBAN_START,
    NON_DIGIT,
    PHONE_CANDIDATE,
    REGISTRY_FIELD_LENGTH,
)

Span = tuple[int, int]
CARD_DIGITS = range(13, 20)
CARD_WORD_REACH = 30  # characters before a digit run searched for "card", "visa", ...
PHONE_DIGITS = range(7, 16)


def digits_of(text: str) -> str:
    return NON_DIGIT.sub("", text)


def digit_count(text: str) -> int:
    """At least as many digits as `digits_of` keeps (`str.isdigit` also counts non-ASCII
    ones), without a regular expression: a cheap test of whether a text could hold a card
    or phone number before the slow finders look."""
    return sum(map(str.isdigit, text))


def passes_luhn(digits: str) -> bool:
    """The checksum every payment card number satisfies; it keeps other numbers intact."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def email_spans(text: str) -> Iterator[Span]:
    """Plain emails, then spelled-out ones ("jane dot doe at example dot com")."""
    for match in EMAIL.finditer(text):
        yield match.span()
    for match in EMAIL_OBFUSCATED.finditer(text):
        start, end = match.span()
        tail = EMAIL_TAIL.match(text, end)
        yield start, tail.end() if tail else end


def canonical_email(text: str) -> str:
    """An email however written, as name@domain in lower case."""
    text = text.lower()
    for spelled, plain in (
        ("(at)", "@"),
        ("[at]", "@"),
        (" at ", "@"),
        ("(dot)", "."),
        ("[dot]", "."),
    ):
        text = text.replace(spelled, plain)
    return "".join(text.replace(" dot ", ".").split())


def card_spans(text: str) -> Iterator[Span]:
    """Card numbers in any grouping: a Luhn-valid 13-19 digits within a run of digit
    groups, or 13-19 digits just after a card word even when the checksum fails (a typo)."""
    for run in DIGIT_RUN.finditer(text):
        groups = [
            (m.start() + run.start(), m.end() + run.start())
            for m in DIGIT_GROUP.finditer(run.group())
        ]
        before = text[max(0, run.start() - CARD_WORD_REACH) : run.start()]
        if CARD_WORD.search(before):
            span = _leading_digits(text, groups)
            if span:
                yield span
                continue
        yield from _luhn_windows(text, groups)


def _leading_digits(text: str, groups: list[Span]) -> Span | None:
    """The first groups of a run holding 13-19 digits, the longest such."""
    total, best = 0, None
    for start, end in groups:
        total += end - start
        if total > CARD_DIGITS.stop - 1:
            break
        if total in CARD_DIGITS:
            best = (groups[0][0], end)
    return best


def _luhn_windows(text: str, groups: list[Span]) -> Iterator[Span]:
    """Consecutive groups of a run whose 13-19 digits pass Luhn, longest first, left to right."""
    index = 0
    while index < len(groups):
        found = None
        digits = ""
        for last in range(index, len(groups)):
            start, end = groups[last]
            digits += text[start:end]
            if len(digits) > CARD_DIGITS.stop - 1:
                break
            if len(digits) in CARD_DIGITS and passes_luhn(digits):
                found = last
        if found is None:
            index += 1
            continue
        yield groups[index][0], groups[found][1]
        index = found + 1


@cache
def iban_lengths() -> dict[str, int]:
    """Each country's IBAN length, from the IBAN registry python-stdnum ships."""
    lengths: dict[str, int] = {}
    registry = Path(stdnum.__file__).parent / "iban.dat"
    for line in registry.read_text(encoding="utf-8").splitlines():
        if line[:2].isalpha() and 'bban="' in line:
            structure = line.split('bban="', 1)[1].split('"', 1)[0]
            lengths[line[:2]] = 4 + sum(int(n) for n in REGISTRY_FIELD_LENGTH.findall(structure))
    return lengths


def iban_spans(text: str) -> Iterator[Span]:
    """IBANs of any country, grouped by spaces or dashes or not, valid by checksum."""
    taken = 0
    for start in IBAN_START.finditer(text):
        if start.start() >= taken and (span := _iban_at(text, start.start())):
            yield span
            taken = span[1]


def _iban_at(text: str, start: int) -> Span | None:
    """The IBAN starting at `start`: the country's number of letters and digits, with at
    most one space or dash between them, passing the checksum."""
    length = iban_lengths().get(text[start : start + 2].upper())
    if length is None:
        return None
    compact, index = [], start
    while index < len(text) and len(compact) < length:
        char = text[index]
        if char.isascii() and char.isalnum():
            compact.append(char)
        elif char not in " -" or not compact or not text[index - 1].isalnum():
            break
        index += 1
    if len(compact) == length and iban.is_valid("".join(compact).upper()):
        return start, index
    return None


def phone_spans(text: str, regions: tuple[str, ...]) -> Iterator[tuple[Span, str]]:
    """Phone numbers, as the phonenumbers library reads them, with their digits.

    The first region is the default: any number possible there counts. A number possible
    in another region counts when written with its trunk prefix 0 (07700 900123), which
    numbers of the North American plan never start with. "00" is read as "+".
    """
    for candidate in PHONE_CANDIDATE.finditer(text):
        raw, offset = candidate.group(), candidate.start()
        if digit_count(raw) < PHONE_DIGITS.start:
            continue  # too few digits for any number it holds ("0.91"): skip the slow parse
        if raw.startswith("00"):
            raw, offset = "+" + raw[2:], offset + 1
        for start, end in _phones_in(raw, regions):
            digits = digits_of(raw[start:end])
            if len(digits) in PHONE_DIGITS:
                start = start - 1 if start == 0 and offset > candidate.start() else start
                yield (offset + start, offset + end), digits


def _phones_in(text: str, regions: tuple[str, ...]) -> list[Span]:
    leniency = phonenumbers.Leniency.POSSIBLE
    national = text.lstrip("(").startswith("0") or " 0" in text
    for number, region in enumerate(regions if national else regions[:1]):
        found = [
            (m.start, m.end)
            for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency)
            if number == 0 or m.raw_string.lstrip("(").startswith(("0", "+"))
        ]
        if found:
            return found
    return []
