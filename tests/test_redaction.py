import pytest

from assistant.redaction import passes_luhn, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to maria.k@example.com please", "write to [EMAIL] please"),
        ("call +1 555 014 2233 after 5", "call [PHONE] after 5"),
        ("my mobile is 07700 900123", "my mobile is [PHONE]"),
        ("card 4111 1111 1111 1111 was charged", "card [CARD] was charged"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
    ],
)
def test_personal_data_is_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order PP-204817 has not arrived",
        "order #204817 please",
        "I bought 3 lamps in 2024 for 120 dollars",
        "ticket 1234 5678 9012 3456",  # 16 digits that fail the card checksum
    ],
)
def test_other_text_is_left_alone(text):
    assert redact(text) == text


def test_luhn_checksum():
    assert passes_luhn("4111111111111111")
    assert not passes_luhn("4111111111111112")
