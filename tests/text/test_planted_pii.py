"""The redactor on the planted-PII corpus: no planted value survives, order numbers and the
business's contacts do."""

from assistant.text.redaction import Redactor
from tests.pii_corpus import PUBLIC_CONTACTS, leaked, load_planted_pii

CORPUS = load_planted_pii()
REDACT = Redactor(PUBLIC_CONTACTS)


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200
    planted = [value for row in CORPUS for value in row.planted]
    assert any("dot" in v for v in planted) and any("\uff20" in v for v in planted)
    assert any(v[:2] in {"DE", "FR", "GB", "ES", "NL", "IT"} for v in planted)


def test_no_planted_value_survives_redaction():
    leaks = []
    for row in CORPUS:
        redacted = REDACT(row.message)
        leaks += [(value, redacted) for value in row.planted if leaked(row, value, redacted)]
    assert leaks == []


def test_order_numbers_and_public_contacts_are_kept():
    for row in CORPUS:
        redacted = REDACT(row.message)
        for value in row.kept:
            assert value in redacted
        for contact in PUBLIC_CONTACTS:
            assert (contact in redacted) == (contact in row.message)
