from dataclasses import replace

import pytest

from assistant.core.types import IntentScore, Route, Source, TurnContext
from assistant.routing.router import Router, RoutingPolicy
from assistant.routing.templates import Template, TemplateBook

POLICY = RoutingPolicy(
    intent_threshold=0.5,
    ambiguity_margin=0.2,
    retrieval_threshold=0.8,
    handoff_intents=frozenset({"human_agent"}),
    out_of_scope_label="out_of_scope",
)
BOOK = TemplateBook(
    {
        "order_status": Template("order_status", "Order {order_id} is on its way.", ("order_id",)),
        "shipping_cost": Template("shipping_cost", "Shipping is free over $50.", ()),
        "human_agent": Template("human_agent", "A colleague will join shortly.", ()),
    },
    {"order_id": "What is your order number?"},
    {"out_of_scope": "Not something I can help with.", "low_confidence": "Let me find someone."},
)
PAST = Source("how much is delivery", "Delivery is $4.95.", "shipping_cost", 0.9)


@pytest.fixture
def router():
    return Router(POLICY, BOOK)


def scores(*pairs):
    return [IntentScore(intent, p) for intent, p in pairs]


def test_confident_intent_with_template_fills_it(router):
    decision = router.decide(
        TurnContext(
            scores(("order_status", 0.9), ("shipping_cost", 0.05)), [], {"order_id": "PP-1"}
        )
    )
    assert decision.route is Route.TEMPLATE
    assert decision.reply == "Order PP-1 is on its way."
    assert decision.intent == "order_status"
    assert decision.confidence == 0.9


def test_missing_slot_is_asked_for(router):
    decision = router.decide(TurnContext(scores(("order_status", 0.9)), [], {}))
    assert decision.route is Route.TEMPLATE
    assert decision.reply == "What is your order number?"
    assert decision.asked_for == ("order_id",)


def test_slot_given_on_next_turn_fills_the_pending_template(router):
    unclear = scores(("shipping_cost", 0.3), ("order_status", 0.25))
    decision = router.decide(TurnContext(unclear, [], {"order_id": "PP-7"}, "order_status"))
    assert decision.route is Route.TEMPLATE
    assert decision.reply == "Order PP-7 is on its way."
    assert "asked for last turn" in decision.reason


def test_pending_slot_not_given_falls_back_to_normal_routing(router):
    decision = router.decide(
        TurnContext(scores(("shipping_cost", 0.95)), [], {}, pending_intent="order_status")
    )
    assert decision.intent == "shipping_cost"
    assert any("does not give the slot" in check for check in decision.checks)


def test_asking_for_a_human_hands_off(router):
    decision = router.decide(TurnContext(scores(("human_agent", 0.8)), [PAST], {}))
    assert decision.route is Route.HANDOFF
    assert decision.reply == "A colleague will join shortly."
    assert decision.reason == "the customer asked for a person"


def test_out_of_scope_is_refused_and_stays_with_the_bot(router):
    decision = router.decide(TurnContext(scores(("out_of_scope", 0.7)), [], {}))
    assert decision.route is Route.REFUSE
    assert decision.reply == "Not something I can help with."
    assert decision.handoff is None


def test_ambiguous_intents_use_a_close_past_question(router):
    ambiguous = scores(("shipping_cost", 0.55), ("order_status", 0.45))
    decision = router.decide(TurnContext(ambiguous, [PAST], {}))
    assert decision.route is Route.RETRIEVAL
    assert decision.reply == "Delivery is $4.95."
    assert any("margin over runner-up 0.100 < 0.2" in check for check in decision.checks)


def test_low_confidence_and_no_close_question_asks_which_was_meant(router):
    far = Source("q", "a", "shipping_cost", 0.5)
    unsure = scores(("shipping_cost", 0.3), ("order_status", 0.25))
    decision = router.decide(TurnContext(unsure, [far], {}))
    assert decision.route is Route.CLARIFY
    assert decision.options == ("Shipping cost", "Order status")
    assert (
        decision.reply
        == 'Sorry, I\'m not sure I understood. Did you mean "Shipping cost" or "Order status"?'
    )

    assert any("closest past question cosine 0.500 < 0.8" in check for check in decision.checks)


def test_confident_intent_without_template_uses_retrieval(router):
    decision = router.decide(TurnContext(scores(("gift_card", 0.9)), [PAST], {}))
    assert decision.route is Route.RETRIEVAL
    assert "no template for intent gift_card" in decision.checks


def test_per_intent_threshold_replaces_the_shared_one():
    from dataclasses import replace

    strict = replace(POLICY, ambiguity_margin=0.0, intent_thresholds={"shipping_cost": 0.95})
    decision = Router(strict, BOOK).decide(TurnContext(scores(("shipping_cost", 0.9)), [], {}))
    assert decision.route is Route.CLARIFY
    assert "top intent shipping_cost p 0.900 < 0.95" in decision.checks
    relaxed = Router(strict, BOOK).decide(TurnContext(scores(("order_status", 0.9)), [], {}))
    assert relaxed.route is Route.TEMPLATE  # other intents keep the shared threshold


WRITING = replace(POLICY, generation_threshold=0.5, fallback_retrieval_threshold=0.65)
RELATED = Source("do you ship abroad", "We ship to 30 countries.", "shipping_cost", 0.7)


def test_a_related_past_question_routes_to_the_generator():
    context = TurnContext(scores(("shipping_cost", 0.3)), [RELATED], {})
    decision = Router(WRITING, BOOK).decide(context)
    assert decision.route is Route.GENERATE
    assert decision.reply == "" and decision.intent == "shipping_cost"
    assert Router(POLICY, BOOK).decide(context).route is Route.CLARIFY  # no generator loaded


def test_an_unrelated_message_is_not_written_for():
    far = Source("do you ship abroad", "We ship to 30 countries.", "shipping_cost", 0.4)
    decision = Router(WRITING, BOOK).decide(TurnContext(scores(("shipping_cost", 0.3)), [far], {}))
    assert decision.route is Route.CLARIFY


def test_a_written_answer_stands_or_its_fallback_decided_with_it():
    router = Router(WRITING, BOOK)
    context = TurnContext(scores(("shipping_cost", 0.3)), [RELATED], {})
    written = router.decide(context)
    kept = written.settle("We ship abroad.", True, "grounded")
    assert (kept.route, kept.reply) == (Route.GENERATE, "We ship abroad.")
    fallback = written.settle("x", False, "similarity 0.1 < 0.3")
    assert (fallback.route, fallback.reply) == (Route.RETRIEVAL, RELATED.answer)
    assert "similarity 0.1 < 0.3" in fallback.reason
    weaker = TurnContext(context.intents, [Source(**{**RELATED.__dict__, "score": 0.6})], {})
    question = router.decide(weaker).settle("x", False, "it named number:9")
    assert question.route is Route.CLARIFY
    assert question.options == ("Shipping cost",)
