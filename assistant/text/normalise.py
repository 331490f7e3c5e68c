"""Validation and normalisation of incoming text: customer messages, agent replies and the
history lines `/api/suggest` is given. Text is normalised and length-checked here, before
any pattern sees it."""

from __future__ import annotations

from unicodedata import category, normalize

from assistant.core.errors import MessageError
from assistant.text.patterns import WHITESPACE

# A raw value longer than this many times the limit is refused before any per-character
# work: dropping control characters and collapsing whitespace can shorten a text, but not
# a 100 MB one down to the limit.
RAW_LENGTH_FACTOR = 4
_DROPPED = {"Cc", "Cf", "Cs", "Co"}


def normalise_message(raw: object, max_chars: int) -> str:
    """Return the cleaned message, or raise `MessageError` saying what is wrong.

    Control and format characters are dropped (they break logs and terminals and
    can hide text), whitespace is collapsed, and Unicode is put in NFC form so the
    same words always reach the models as the same characters.
    """
    text = _cleaned(raw, max_chars)
    if not text:
        raise MessageError("The message is empty. Please type a question.")
    return text


def normalise_text(raw: object, max_chars: int) -> str:
    """`raw` cleaned as a message is (maybe empty), for an agent's reply or a history line."""
    return _cleaned(raw, max_chars)


def _cleaned(raw: object, max_chars: int) -> str:
    if not isinstance(raw, str):
        raise MessageError("The message must be text.")
    if len(raw) > RAW_LENGTH_FACTOR * max_chars:
        _too_long(len(raw), max_chars)
    text = normalize("NFC", raw)
    text = "".join(
        " " if char in "\t\n\r" else char
        for char in text
        if char in "\t\n\r" or category(char) not in _DROPPED
    )
    text = WHITESPACE.sub(" ", text).strip()
    if len(text) > max_chars:
        _too_long(len(text), max_chars)
    return text


def _too_long(length: int, max_chars: int) -> None:
    raise MessageError(
        f"The message is {length:,} characters long; the limit is {max_chars:,}. "
        "Please shorten it or split it into several messages."
    )
