"""Regular expressions shared by slot extraction, identifiers and PII redaction.

Every pattern here sees customer, agent or log text, so every one is compiled by
RE2, whose matching time is linear in the text's length: no input can make one
backtrack. RE2 has no lookbehind; where a pattern needs context before a match,
the caller checks it (see `redaction`).
"""

from __future__ import annotations

import re2

compile_pattern = re2.compile

EMAIL = compile_pattern(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")

# Emails written to dodge a filter: "jane dot doe at example dot com", "jane(at)example(dot)com",
# "jane [at] example [dot] com", "jane @ example.com". A bare " at " counts only when a dot is
# spelled out too, so "visit us at pebbleandpine.example" stays a web address.
_OPEN, _CLOSE = r"[(\[{<]", r"[)\]}>]"
_SPELLED_AT = rf"\s*{_OPEN}\s*(?:at|@)\s*{_CLOSE}\s*"
_SPELLED_DOT = rf"(?:\s*{_OPEN}\s*(?:dot|\.)\s*{_CLOSE}\s*|\s+dot\s+)"
_DOT = rf"(?:\.|{_SPELLED_DOT})"
_LOCAL, _LABEL = r"[A-Za-z0-9_%+-]+", r"[A-Za-z0-9-]+"
_DOMAIN = rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[A-Za-z]{{2,}}"
_SPELLED_DOMAIN = rf"(?:{_LABEL}{_DOT})*{_LABEL}{_SPELLED_DOT}(?:{_LABEL}{_DOT})*[A-Za-z]{{2,}}"
_AT = rf"(?:\s*@\s*|{_SPELLED_AT})"
EMAIL_OBFUSCATED = compile_pattern(
    rf"(?i)\b{_LOCAL}(?:{_DOT}{_LOCAL})*(?:{_AT}{_DOMAIN}|\s+at\s+{_SPELLED_DOMAIN})\b"
)
# What follows a match when its "domain" was a dotted local part: "me at jane dot doe" then
# " at example dot com". The redactor extends the match over it.
EMAIL_TAIL = compile_pattern(rf"(?i)(?:{_AT}{_DOMAIN}|\s+at\s+{_SPELLED_DOMAIN})\b")

# A run of digit groups, as card numbers are written: 4111 1111 1111 1111, 4111-1111-...,
# 4111.1111...., 4111111111111111, 3782 822463 10005. Which part of a run is a card is
# decided in code; groups of one or two digits are not how cards are written, except last.
DIGIT_RUN = compile_pattern(r"\d{3,}(?:[ .-]\d{3,})*(?:[ .-]\d{1,2}\b)?")
DIGIT_GROUP = compile_pattern(r"\d+")
# Words that announce a card number, checked just before a digit run.
CARD_WORD = compile_pattern(
    r"(?i)\b(?:cards?|credit|debit|visa|master\s?card|mc|amex|american express|maestro"
    r"|discover|diners|jcb|cc|cvv|pan)\b"
)

# The start of an IBAN: country code and check digits. The letters and digits after it,
# grouped by spaces or dashes, the country's length and the checksum decide (see pii).
IBAN_START = compile_pattern(r"(?i)\b[A-Z]{2}\d{2}")

# A field's length in python-stdnum's IBAN registry ("8!n10!n": 8 digits, 10 digits).
REGISTRY_FIELD_LENGTH = compile_pattern(r"(\d+)!")

# Where a phone number may be: an optional + or (, then digit groups with the separators
# phone numbers are written with (after the first two groups, of two digits or more:
# +33 1 23 45 67 89), or 7-15 digits in one. The phonenumbers library decides which are phones.
PHONE_CANDIDATE = compile_pattern(
    r"[+(]?\d{1,5}(?:[ ().\-/]{1,3}\d)?(?:[ ().\-/]{1,3}\d{2,8}){1,5}\)?"
    r"|\+?\b\d{7,15}\b"
)

# Calendar dates (2026-11-23, 23.11.2026, 11/23/26), which look like phone numbers.
# Only real days and months count, so a phone number such as 12-34-5678 is not one.
_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
DATE = compile_pattern(
    rf"\b(?:\d{{4}}-{_MONTH}-{_DAY}"
    rf"|(?:{_DAY}[./-]{_MONTH}|{_MONTH}[./-]{_DAY})[./-](?:\d{{4}}|\d{{2}}))\b"
)

# Order numbers: PP-204817, PP204817, pp 204817, or "order #204817" / "order 204817".
ORDER_ID = compile_pattern(
    r"(?i)\b(?:PP[-\s]?(?P<prefixed>\d{6})"
    r"|(?:order|purchase)\s*(?:number|no\.?|nr\.?)?\s*#?\s*(?P<bare>\d{6}))\b"
)

# Identifiers (see identifiers.py). A list marker takes the whitespace after it (RE2 has no
# lookahead); it is replaced by a space.
URL = compile_pattern(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+")
LIST_MARKER = compile_pattern(r"(?m)^\s*\d{1,2}[.)]\s")
# A run of digits, with inner separators kept when digits follow them: 4.95, 12/03/2026, 24/7.
NUMBER = compile_pattern(r"\d+(?:[.,:/]\d+)*")

WHITESPACE = compile_pattern(r"\s+")
NON_DIGIT = compile_pattern(r"\D")
# Characters Markdown gives a meaning, escaped in other people's words (see text/plain.py).
MARKDOWN_SPECIAL = compile_pattern(r"([\\`*_{}\[\]()<>#+\-.!|~=^$])")

# Every pattern above, by name: the tests and benchmarks/patterns.py run each on hostile input.
ALL_PATTERNS = {
    name: value for name, value in dict(globals()).items() if isinstance(value, re2._Regexp)
}
