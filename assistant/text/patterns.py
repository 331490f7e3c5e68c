"""Regular expressions shared by slot extraction and PII redaction."""

import re

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# Card numbers: 13-19 digits, optionally grouped by spaces or dashes.
CARD_CANDIDATE = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# Phone numbers: an optional +country code, then 7+ digits with common separators; the
# first group may be a lone trunk or country digit, as in 1-800-555-0199.
PHONE = re.compile(
    r"(?<![\w-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}\b"
)
# Calendar dates (2026-11-23, 23.11.2026, 11/23/26), which the phone pattern also matches.
# Only real days and months count, so a phone number such as 12-34-5678 is not one.
_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
DATE = re.compile(
    rf"\d{{4}}-{_MONTH}-{_DAY}"
    rf"|(?:{_DAY}[./-]{_MONTH}|{_MONTH}[./-]{_DAY})[./-](?:\d{{4}}|\d{{2}})"
)
# Order numbers: PP-204817, PP204817, pp 204817, or "order #204817" / "order 204817".
ORDER_ID = re.compile(
    r"\b(?:PP[-\s]?(?P<prefixed>\d{6})|(?:order|purchase)\s*(?:number|no\.?|nr\.?)?\s*#?\s*(?P<bare>\d{6}))\b",
    re.IGNORECASE,
)
