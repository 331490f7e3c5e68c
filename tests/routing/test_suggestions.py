import pytest

from assistant.core.errors import MessageError
from assistant.datasets.loading import load_dataset
from assistant.routing.suggestions import history_slots, suggest


def test_three_ranked_suggestions_with_their_traces(eager, built_settings):
    pair = next(
        p for p in load_dataset(built_settings.data_dir).qa_pairs if p.intent == "shipping_cost"
    )
    suggestions = suggest(eager, pair.question)
    assert len(suggestions) == 3
    assert len({s.text for s in suggestions}) == 3
    first = suggestions[0]  # the bot's own choice
    assert first.route in {"template", "retrieval"}
    assert first.intent == "shipping_cost"
    templates = eager.router.templates
    assert first.text in {templates.get("shipping_cost").text, pair.answer}
    assert pair.answer in {s.text for s in suggestions}
    for suggestion in suggestions:
        assert suggestion.trace["route"] == suggestion.route
        assert suggestion.trace["reason"]
        assert suggestion.trace["sources"]
        assert 0.0 <= suggestion.score <= 1.0001
        if suggestion.route == "retrieval":
            [source] = suggestion.sources
            assert source["answer"] == suggestion.text
            assert source["score"] == suggestion.score
    alternatives = suggestions[1:]
    assert [s.score for s in alternatives] == sorted((s.score for s in alternatives), reverse=True)


def test_details_from_the_history_fill_templates(eager):
    history = [
        {"role": "customer", "text": "Hi, my order is PP-551903"},
        {"role": "bot", "text": "Hello! PP-999999 is an example."},
    ]
    assert history_slots(history) == {"order_id": "PP-551903"}
    suggestions = suggest(eager, "Where is my order? It has not arrived yet.", history)
    order = next(s for s in suggestions if s.intent == "order_status" and s.route == "template")
    assert "PP-551903" in order.text
    assert "PP-999999" not in order.text


def test_no_handoff_reply_is_suggested(eager):
    for suggestion in suggest(eager, "I want to speak to a real person"):
        assert suggestion.route != "handoff"
        assert suggestion.intent not in eager.router.policy.handoff_intents or (
            suggestion.route == "retrieval"
        )


def test_a_bad_message_is_refused(eager):
    with pytest.raises(MessageError):
        suggest(eager, "   ")
