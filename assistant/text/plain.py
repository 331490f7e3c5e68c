"""Other people's words shown in Markdown as written: never a link, an image or markup."""

from __future__ import annotations

import html

from assistant.text.patterns import MARKDOWN_SPECIAL


def plain_text(value: object) -> str:
    """`value` as Markdown that shows it as written, on one line."""
    text = " ".join(str(value).split())  # no newline may start a heading, list or block
    text = MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return text.replace(":", "&#58;")  # a bare URL is not linked either
