from assistant.channels.explain import explain

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
    assert "- top intent x p=0.400 < threshold 0.55" in text
    assert "order_id" in text
    assert text.endswith("*42 ms · intent:v1 index:abc*")


def test_empty_parts_say_none():
    text = explain({**TRACE, "sources": [], "checks": [], "slots_found": []}, 1, "v")
    assert "**Closest past questions:**\nnone" in text
    assert "- none" in text
    assert "Details found" not in text
