"""The redactor on the planted-PII corpus: no planted value survives, order numbers and the
business's contacts do."""

import unicodedata

from assistant.text.redaction import Redactor, digits_of
from tests.pii_corpus import PUBLIC_CONTACTS, load_planted_pii

CORPUS = load_planted_pii()
REDACT = Redactor(PUBLIC_CONTACTS)


def leaked_digits(planted: str, redacted: str, kept: list[str]) -> bool:
    """Whether 6 consecutive digits of `planted` are still in `redacted` (a partial leak
    such as "4111 1111" counts), once the kept order number and contacts are left out."""
    for keep in [*kept, *PUBLIC_CONTACTS]:
        redacted = redacted.replace(keep, " ")
    digits, rest = digits_of(planted), digits_of(unicodedata.normalize("NFKC", redacted))
    return any(digits[i : i + 6] in rest for i in range(len(digits) - 5))


def leaked_name(planted: str, redacted: str) -> bool:
    name = unicodedata.normalize("NFKC", planted).split("@")[0].split(" ")[0].split("(")[0]
    return name.lower() in unicodedata.normalize("NFKC", redacted).lower()


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200
    planted = [value for row in CORPUS for value in row.planted]
    assert any("dot" in v for v in planted) and any("\uff20" in v for v in planted)
    assert any(v[:2] in {"DE", "FR", "GB", "ES", "NL", "IT"} for v in planted)


def test_no_planted_value_survives_redaction():
    leaks = []
    for row in CORPUS:
        redacted = REDACT(row.message)
        for value in row.planted:
            is_email = (
                "@" in unicodedata.normalize("NFKC", value) or " at " in value or "(at)" in value
            )
            if (
                leaked_name(value, redacted)
                if is_email
                else leaked_digits(value, redacted, row.kept)
            ):
                leaks.append((value, redacted))
    assert leaks == []


def test_order_numbers_and_public_contacts_are_kept():
    for row in CORPUS:
        redacted = REDACT(row.message)
        for value in row.kept:
            assert value in redacted
        for contact in PUBLIC_CONTACTS:
            assert (contact in redacted) == (contact in row.message)
