"""Invariants of redaction: generated personal data embedded in random text is always
masked; order numbers and the business's contacts are always kept."""

from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban, luhn

from assistant.text.redaction import Redactor, digits_of

PUBLIC = ["help@pebbleandpine.example", "+1 555 0142"]
REDACT = Redactor(PUBLIC)
words = st.lists(
    st.sampled_from(["my", "order", "refund", "is", "late", "please", "thanks", "the"])
)
text_around = words.map(" ".join)


@st.composite
def cards(draw):
    length = draw(st.sampled_from([13, 15, 16, 19]))
    body = draw(st.text("0123456789", min_size=length - 2, max_size=length - 2))
    number = "4" + body + luhn.calc_check_digit("4" + body)
    separator = draw(st.sampled_from([" ", "-", ".", ""]))
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


@st.composite
def ibans(draw):
    bban = draw(st.text("0123456789", min_size=18, max_size=18))
    number = "DE" + iban.calc_check_digits("DE00" + bban) + bban
    return draw(st.sampled_from([iban.format(number), number, number.lower()]))


emails = st.builds(
    lambda name, host, form: form.format(name=name, host=host),
    st.from_regex(r"[a-z]{2,8}", fullmatch=True),
    st.from_regex(r"[a-z]{3,8}", fullmatch=True),
    st.sampled_from(
        [
            "{name}@{host}.com",
            "{name} dot x at {host} dot com",
            "{name}(at){host}(dot)com",
            "{name}\uff20{host}.com",
        ]
    ),
)
phones = st.builds(
    lambda area, line, form: form.format(area=area, line=line),
    st.sampled_from(["212", "415", "617"]),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.sampled_from(
        ["({area}) 555-{line}", "+1 {area} 555 {line}", "{area}.555.{line}", "+44 20 7946 {line}"]
    ),
)


def embedded(value: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(text_around, value, text_around).map(lambda t: (f"{t[0]} {t[1]} {t[2]}", t[1]))


@settings(max_examples=30, deadline=None)
@given(st.one_of(embedded(cards()), embedded(ibans()), embedded(phones)))
def test_a_generated_number_is_always_masked(case):
    text, value = case
    assert digits_of(value)[-6:] not in digits_of(REDACT(text))


@settings(max_examples=30, deadline=None)
@given(embedded(emails))
def test_a_generated_email_is_always_masked(case):
    text, value = case
    assert "[EMAIL]" in REDACT(text) and value not in REDACT(text)


@settings(max_examples=30, deadline=None)
@given(
    text_around,
    st.integers(100000, 999999),
    st.sampled_from(["PP-{}", "PP{}", "order #{}", "order {}"]),
    st.sampled_from([*PUBLIC, "HELP@pebbleandpine.example", "555 0142", "+15550142"]),
)
def test_order_numbers_and_public_contacts_are_always_kept(words_, number, form, contact):
    text = f"{words_} {form.format(number)} {words_} {contact}."
    assert REDACT(text) == text
