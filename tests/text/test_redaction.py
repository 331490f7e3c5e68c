import pytest

from assistant.text.redaction import Redactor, passes_luhn, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to maria.k@example.com please", "write to [EMAIL] please"),
        ("call +1 555 014 2233 after 5", "call [PHONE] after 5"),
        ("my mobile is 07700 900123", "my mobile is [PHONE]"),
        ("ring 1-800-555-0199 today", "ring [PHONE] today"),
        ("or 212-345-6789, not a date", "or [PHONE], not a date"),
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
        "it was delivered on 2026-11-23, not 23.11.2026 or 11/23/26",
        "ticket 1234 5678 9012 3456",  # 16 digits that fail the card checksum
    ],
)
def test_other_text_is_left_alone(text):
    assert redact(text) == text


def test_luhn_checksum():
    assert passes_luhn("4111111111111111")
    assert not passes_luhn("4111111111111112")


def test_the_business_own_contacts_are_kept_however_written():
    keep = Redactor(["help@shop.example", "+1 555 0142"])
    text = "Mail HELP@shop.example or call +1 555 0142 (in the US: 555 0142 or 555-0142)"
    assert keep(text) == text
    assert redact(text) == "Mail [EMAIL] or call [PHONE] (in the US: [PHONE] or [PHONE])"


def test_personal_data_is_masked_beside_public_contacts():
    keep = Redactor(["help@shop.example", "+1 555 0142"])
    text = "I'm jo@example.com on +1 555 014 2233; you said help@shop.example"
    assert keep(text) == "I'm [EMAIL] on [PHONE]; you said help@shop.example"


@pytest.mark.parametrize("contact", ["helpdesk", "12 34", "help@"])
def test_a_public_contact_must_be_an_email_or_a_phone_number(contact):
    with pytest.raises(ValueError, match="neither an email address nor a phone number"):
        Redactor([contact])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("pay to gb82west12345698765432", "pay to [IBAN]"),
        ("card 4111.1111.1111.1111", "card [CARD]"),
        ("visa 4111 1111 1111 1112 (a typo)", "visa [CARD] (a typo)"),
        ("write jane dot doe at example dot com", "write [EMAIL]"),
        ("jane(at)example(dot)com", "[EMAIL]"),
        ("jane [at] example [dot] com", "[EMAIL]"),
        ("jane @ example.com", "[EMAIL]"),
        ("jane\uff20example.com", "[EMAIL]"),
        ("\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58.com ok", "[EMAIL] ok"),
        ("call 0049 30 901820 or +33 1 23 45 67 89", "call [PHONE] or [PHONE]"),
    ],
)
def test_data_the_hand_rules_missed_is_masked(text, expected):
    assert redact(text) == expected


def test_a_web_address_after_at_is_not_an_email():
    assert redact("visit us at pebbleandpine.example") == "visit us at pebbleandpine.example"


def test_an_unknown_phone_region_is_refused():
    with pytest.raises(ValueError, match="unknown phone region"):
        Redactor([], ["XX"])


def test_text_with_too_few_digits_for_a_number_skips_the_phone_parser(monkeypatch):
    """The slow phone parser sees only runs that hold enough digits for a phone number."""
    import phonenumbers

    def parser_called(*args, **kwargs):
        raise AssertionError("the phone parser was consulted")

    monkeypatch.setattr(phonenumbers, "PhoneNumberMatcher", parser_called)
    for text in ("familiar (0.91 against 0.783)", "3 lamps for 120.50", "(0.5) 0.25 0.125"):
        assert redact(text) == text
    with pytest.raises(AssertionError, match="phone parser"):
        redact("call 0207 946 0958")
