"""Not knowing: refusal, clarifying question, and the handoffs that follow (fallback.py)."""

from dataclasses import replace

from assistant.core.records import HandoffKind
from assistant.core.types import IntentScore, Route, Source, TurnContext
from assistant.routing.fallback import misunderstood_after
from assistant.routing.router import Router
from assistant.routing.templates import Template, TemplateBook
from tests.routing.test_router import BOOK, POLICY

FAMILIAR = replace(
    POLICY,
    familiarity_threshold=0.6,
    always_human_intents=frozenset({"complaint"}),
    misunderstood_before_handoff=2,
)
NAMED = TemplateBook(
    {**BOOK.templates, "complaint": Template("complaint", "I'm sorry to hear that.", ())},
    BOOK.slot_prompts,
    {"clarify": "Did you mean {options}?"},
    {"order_status": "Track an order"},
)


def scores(*pairs):
    return [IntentScore(intent, p) for intent, p in pairs]


def decide(context, policy=FAMILIAR, book=NAMED):
    return Router(policy, book).decide(context)


def test_a_confident_but_unfamiliar_message_is_refused_with_its_signal_checked():
    confident = scores(("shipping_cost", 0.95), ("order_status", 0.01))
    decision = decide(TurnContext(confident, [], {}, familiarity=0.31))
    assert decision.route is Route.REFUSE
    assert "nearest known example cosine 0.310 < 0.6" in decision.checks
    assert decision.handoff is None
    familiar = decide(TurnContext(confident, [], {}, familiarity=0.8))
    assert familiar.route is Route.TEMPLATE


def test_an_unfamiliar_message_close_to_a_past_question_reuses_its_answer():
    close = Source("how much is delivery", "Delivery is $4.95.", "shipping_cost", 0.9)
    decision = decide(TurnContext(scores(("shipping_cost", 0.4)), [close], {}, familiarity=0.2))
    assert decision.route is Route.RETRIEVAL


def test_without_a_familiarity_measure_the_check_is_skipped():
    confident = scores(("shipping_cost", 0.95))
    assert decide(TurnContext(confident, [], {}, familiarity=None)).route is Route.TEMPLATE


def test_the_clarifying_question_offers_the_two_likeliest_answerable_intents_by_name():
    unsure = scores(("out_of_scope", 0.3), ("order_status", 0.3), ("shipping_cost", 0.2))
    decision = decide(TurnContext(unsure, [], {}, familiarity=0.9))
    assert decision.route is Route.CLARIFY
    assert decision.options == ("Track an order", "Shipping cost")
    assert decision.reply == 'Did you mean "Track an order" or "Shipping cost"?'


def test_the_second_misunderstanding_running_hands_off():
    unsure = scores(("shipping_cost", 0.3), ("order_status", 0.25))
    first = TurnContext(unsure, [], {}, familiarity=0.9, misunderstood=0)
    assert decide(first).route is Route.CLARIFY
    second = replace(first, misunderstood=1)
    decision = decide(second)
    assert decision.route is Route.HANDOFF
    assert decision.handoff is HandoffKind.MISUNDERSTOOD
    assert decision.options == ()


def test_a_repeated_message_or_a_refusal_does_not_count_toward_a_handoff():
    unsure = scores(("shipping_cost", 0.3), ("order_status", 0.25))
    repeated = TurnContext(unsure, [], {}, familiarity=0.9, misunderstood=1, repeated=True)
    assert decide(repeated).route is Route.CLARIFY
    spam = TurnContext(scores(("shipping_cost", 0.99)), [], {}, familiarity=0.1, misunderstood=1)
    refused = decide(spam)
    assert refused.route is Route.REFUSE
    assert misunderstood_after(refused, spam) == 1  # kept, not raised
    understood = decide(TurnContext(scores(("shipping_cost", 0.99)), [], {}, familiarity=0.9))
    assert misunderstood_after(understood, spam) == 0


def test_an_always_human_intent_hands_off_with_its_template_first():
    decision = decide(TurnContext(scores(("complaint", 0.9)), [], {}, familiarity=0.9))
    assert decision.route is Route.HANDOFF
    assert decision.handoff is HandoffKind.ALWAYS_HUMAN
    assert decision.reply.startswith("I'm sorry to hear that.")


def test_asking_for_a_person_is_the_most_urgent_handoff():
    decision = decide(TurnContext(scores(("human_agent", 0.9)), [], {}, familiarity=0.9))
    assert decision.handoff is HandoffKind.ASKED
    assert HandoffKind.ASKED.priority < HandoffKind.ALWAYS_HUMAN.priority
    assert HandoffKind.ALWAYS_HUMAN.priority < HandoffKind.MISUNDERSTOOD.priority
