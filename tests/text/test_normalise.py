import pytest

from assistant.core.errors import MessageError
from assistant.text.normalise import normalise_message


def test_keeps_ordinary_text_and_collapses_whitespace():
    assert normalise_message("  Where is   my\norder?\t", 100) == "Where is my order?"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t ", "\x00\x07"])
def test_empty_messages_are_refused(raw):
    with pytest.raises(MessageError, match="empty"):
        normalise_message(raw, 100)


def test_control_and_invisible_characters_are_removed():
    assert normalise_message("re\x00fund\u200b please\x1b[31m", 100) == "refund please[31m"


def test_over_long_message_says_the_limit():
    with pytest.raises(MessageError, match="1,200 characters long; the limit is 1,000"):
        normalise_message("a" * 1200, 1000)


def test_unicode_is_normalised_to_nfc():
    decomposed = "cafe\u0301"
    assert normalise_message(decomposed, 100) == "caf\u00e9"


def test_non_text_is_refused():
    with pytest.raises(MessageError, match="must be text"):
        normalise_message(None, 100)


def test_a_value_far_over_the_limit_is_refused_before_any_per_character_work(monkeypatch):
    from assistant.text import normalise

    def per_character_work(*args):
        raise AssertionError("the raw value was normalised")

    monkeypatch.setattr(normalise, "normalize", per_character_work)
    monkeypatch.setattr(normalise, "category", per_character_work)
    with pytest.raises(MessageError, match="4,001 characters long; the limit is 1,000"):
        normalise_message("a" * 4001, 1000)


def test_agent_replies_and_history_lines_are_normalised_and_checked():
    from assistant.text.normalise import normalise_text

    assert normalise_text("order   \n\t 204817\x00 ", 100) == "order 204817"
    assert normalise_text("  ", 100) == ""
    with pytest.raises(MessageError, match="the limit is 100"):
        normalise_text("order" + " " * 50 + "x" * 100, 100)
