"""Validation and normalisation of incoming customer messages."""

from __future__ import annotations

import re
import unicodedata

from assistant.core.errors import MessageError

_WHITESPACE = re.compile(r"\s+")


def normalise_message(raw: object, max_chars: int) -> str:
    """Return the cleaned message, or raise `MessageError` saying what is wrong.

    Control and format characters are dropped (they break logs and terminals and
    can hide text), whitespace is collapsed, and Unicode is put in NFC form so the
    same words always reach the models as the same characters.
    """
    if not isinstance(raw, str):
        raise MessageError("The message must be text.")
    text = unicodedata.normalize("NFC", raw)
    text = "".join(
        " " if char in "\t\n\r" else char
        for char in text
        if char in "\t\n\r" or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co"}
    )
    text = _WHITESPACE.sub(" ", text).strip()
    if not text:
        raise MessageError("The message is empty. Please type a question.")
    if len(text) > max_chars:
        raise MessageError(
            f"The message is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Please shorten it or split it into several messages."
        )
    return text
