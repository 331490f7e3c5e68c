from markdown_it import MarkdownIt

from assistant.channels.explain import explain
from assistant.core.trace import public_trace

RENDER = MarkdownIt("commonmark", {"html": True})
PLANTED = [
    "[click](http://evil.example)",
    "![x](http://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
]

TRACE = {
    "route": "retrieval",
    "reason": "a past question is close",
    "checks": ["top intent x p=0.400 < threshold 0.55", "closest past question cosine 0.910"],
    "intents": [{"intent": "x", "probability": 0.4}, {"intent": "y", "probability": 0.3}],
    "sources": [{"question": "how much is it", "answer": "a", "intent": "x", "score": 0.91}],
    "slots_found": ["order_id"],
}


def test_explanation_lists_route_intents_sources_and_checks():
    text = explain(TRACE, 41.6, "intent:v1 index:abc")
    assert "**Route:** `retrieval`: a past question is close" in text
    assert "x 0.40 · y 0.30" in text
    assert "1. “how much is it” (cosine 0.91, x)" in text
    shown = RENDER.render(text)
    assert "<li>top intent x p=0.400 &lt; threshold 0.55</li>" in shown
    assert "order_id" in shown
    assert "<em>42 ms · intent:v1 index:abc</em>" in shown


def test_empty_parts_say_none():
    text = explain({**TRACE, "sources": [], "checks": [], "slots_found": []}, 1, "v")
    assert "**Closest past questions:**\nnone" in text
    assert "- none" in text
    assert "Details found" not in text


def test_other_peoples_words_show_as_written_never_as_links_images_or_html():
    for planted in PLANTED:
        source = {"question": planted, "answer": planted, "intent": "x", "score": 0.9}
        trace = {**TRACE, "reason": planted, "checks": [planted], "sources": [source]}
        shown = RENDER.render(explain(trace, 1, "v"))
        assert "<a " not in shown and "<img" not in shown
        literal = planted.replace("<", "&lt;").replace(">", "&gt;")
        assert shown.count(literal) == 3  # the reason, the past question and the check


def test_a_public_trace_shows_how_many_sources_and_their_scores_but_no_past_words():
    text = explain(public_trace(TRACE), 1, "v")
    assert "1. a past question (cosine 0.91, x)" in text
    assert "how much is it" not in text
