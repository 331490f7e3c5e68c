from markdown_it import MarkdownIt

from assistant.text.plain import plain_text

RENDER = MarkdownIt("commonmark", {"html": True})
PLANTED = [
    "[click](http://evil.example)",
    "![x](http://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "<b>free</b> *now* # heading",
    '=HYPERLINK("http://evil.example")',
]


def test_words_render_as_written_never_as_links_images_or_markup():
    for planted in PLANTED:
        shown = RENDER.render(plain_text(planted))
        assert "<a " not in shown and "<img" not in shown and "<b>" not in shown
        assert "<em>" not in shown and "<h1>" not in shown
        literal = planted.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        assert literal in shown


def test_a_newline_cannot_start_a_block():
    shown = RENDER.render(plain_text("hello\n# big\n- item"))
    assert "<h1>" not in shown and "<li>" not in shown
