"""Choosing how to answer one message: template, retrieval, writing, refusal, a clarifying
question or a handoff, with the reasons.

Pure logic over the classifier's and retriever's outputs, so every branch is
easy to test. Rules are tried in order; the first that applies decides, once.
A message out of scope is refused and one the bot is unsure of gets a
clarifying question; it is handed to a person only when the customer asks, on
an intent always left to people, or after repeated misunderstandings
(`fallback.py`).
The generate route says that an answer should be written and, decided with it,
what replaces the answer if it fails its checks (`Decision.fallback`): the
closest past answer when it is close enough, else a clarifying question. The pipeline settles
the decision once the answer is written (`Decision.settle`), without coming back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from assistant.core.records import HandoffKind
from assistant.core.types import Decision, Fallback, IntentScore, Route, TurnContext
from assistant.routing.fallback import always_human, clarification, escalate, refusal
from assistant.routing.templates import Template, TemplateBook

DEFAULT_HUMAN_REPLY = "I'm connecting you with a member of our support team."
UNMEASURED = -1.0  # a familiarity threshold every message passes


@dataclass(frozen=True)
class RoutingPolicy:
    intent_threshold: float
    ambiguity_margin: float
    retrieval_threshold: float
    handoff_intents: frozenset[str]
    out_of_scope_label: str
    intent_thresholds: Mapping[str, float] = field(default_factory=dict)  # per-intent overrides
    generation_threshold: float | None = None  # None: no generator is loaded
    fallback_retrieval_threshold: float = 1.0
    familiarity_threshold: float = UNMEASURED  # below: the message is out of scope
    always_human_intents: frozenset[str] = frozenset()
    misunderstood_before_handoff: int = 2
    # Below these the bot asks rather than answers, whatever thresholds training chose.
    clarify_below: float = 0.0
    clarify_margin: float = 0.0

    def threshold_for(self, intent: str) -> float:
        return max(self.intent_thresholds.get(intent, self.intent_threshold), self.clarify_below)

    @property
    def margin(self) -> float:
        return max(self.ambiguity_margin, self.clarify_margin)


Rule = Callable[[TurnContext, list[str]], Decision | None]


class Router:
    def __init__(self, policy: RoutingPolicy, templates: TemplateBook) -> None:
        self.policy = policy
        self.templates = templates
        self.rules: list[Rule] = [
            self._answer_to_slot_question,
            self._human_requested,
            self._always_human,
            self._out_of_scope,
            self._unfamiliar,
            self._template,
            self._retrieval,
            self._generate,
        ]

    def decide(self, context: TurnContext) -> Decision:
        limit = self.policy.misunderstood_before_handoff
        return escalate(self._first_that_applies(context), context, limit, self.templates)

    def _first_that_applies(self, context: TurnContext) -> Decision:
        checks: list[str] = []
        for rule in self.rules:
            decision = rule(context, checks)
            if decision is not None:
                return decision
        return self._clarify(
            context, "no confident intent with a template and no close past question", checks
        )

    def _clarify(self, context: TurnContext, reason: str, checks: list[str]) -> Decision:
        answerable = frozenset(self.templates.templates) - {self.policy.out_of_scope_label}
        return clarification(self.templates, list(context.intents), reason, checks, answerable)

    def _confident_top(self, context: TurnContext, checks: list[str]) -> IntentScore | None:
        """The top intent if it clears the absolute threshold and the ambiguity margin."""
        if not context.intents:
            return None
        top = context.intents[0]
        runner_up = context.intents[1].probability if len(context.intents) > 1 else 0.0
        threshold = self.policy.threshold_for(top.intent)
        if not _check(checks, f"top intent {top.intent} p", top.probability, threshold):
            return None
        margin = top.probability - runner_up
        distinct = _check(checks, "margin over runner-up", margin, self.policy.margin)
        return top if distinct else None

    def _answer_to_slot_question(self, context: TurnContext, checks: list[str]) -> Decision | None:
        if context.pending_intent is None:
            return None
        template = self.templates.get(context.pending_intent)
        if template is None or template.missing(context.slots):
            checks.append(f"pending {context.pending_intent}: this message does not give the slot")
            return None
        return self._filled(
            template,
            context,
            _probability_of(context, template.intent),
            reason=f"the customer gave the {', '.join(template.slots)} asked for last turn",
            checks=checks,
        )

    def _human_requested(self, context: TurnContext, checks: list[str]) -> Decision | None:
        top = self._confident_top(context, checks)
        if top is None or top.intent not in self.policy.handoff_intents:
            return None
        template = self.templates.get(top.intent)
        reply = template.text if template and not template.slots else DEFAULT_HUMAN_REPLY
        return Decision(
            Route.HANDOFF,
            reply,
            top.intent,
            top.probability,
            "the customer asked for a person",
            checks,
            handoff=HandoffKind.ASKED,
        )

    def _always_human(self, context: TurnContext, checks: list[str]) -> Decision | None:
        top = self._confident_top(context, [])  # already recorded by _human_requested
        if top is None or not self._familiar(context, []):
            return None
        return always_human(self.templates, top, checks, self.policy.always_human_intents)

    def _out_of_scope(self, context: TurnContext, checks: list[str]) -> Decision | None:
        """The top intent is the trained out-of-scope class."""
        if not context.intents or context.intents[0].intent != self.policy.out_of_scope_label:
            return None
        top = context.intents[0]
        threshold = self.policy.threshold_for(top.intent)
        if not _check(checks, "out-of-scope p", top.probability, threshold):
            return None
        if self._close_past_question(context, checks):
            return None
        return refusal(self.templates, context, "the message is out of scope", checks)

    def _close_past_question(self, context: TurnContext, checks: list[str]) -> bool:
        """A past question close enough to reuse its answer outweighs a refusal."""
        if context.sources and context.sources[0].score >= self.policy.retrieval_threshold:
            checks.append("judged out of scope, but a past question is close enough to reuse")
            return True
        return False

    def _unfamiliar(self, context: TurnContext, checks: list[str]) -> Decision | None:
        """Unlike every example the classifier learned, and no past question is close."""
        if self._familiar(context, checks) or self._close_past_question(context, checks):
            return None
        return refusal(
            self.templates, context, "the message is unlike anything the assistant knows", checks
        )

    def _familiar(self, context: TurnContext, checks: list[str]) -> bool:
        threshold = self.policy.familiarity_threshold
        if context.familiarity is None or threshold <= UNMEASURED:
            return True
        return _check(checks, "nearest known example cosine", context.familiarity, threshold)

    def _template(self, context: TurnContext, checks: list[str]) -> Decision | None:
        top = self._confident_top(context, [])  # already recorded by _human_requested
        if top is None or not self._familiar(context, []):
            return None
        template = self.templates.get(top.intent)
        if template is None:
            checks.append(f"no template for intent {top.intent}")
            return None
        missing = template.missing(context.slots)
        if missing:
            checks.append(f"template needs {missing}: not in the message, asking")
            return Decision(
                Route.TEMPLATE,
                self.templates.prompt_for(missing[0]),
                top.intent,
                top.probability,
                f"confident intent {top.intent}; its template needs {', '.join(missing)}",
                checks,
                asked_for=tuple(missing),
            )
        return self._filled(
            template, context, top.probability, f"confident intent {top.intent}", checks
        )

    def _retrieval(self, context: TurnContext, checks: list[str]) -> Decision | None:
        if not context.sources:
            return None
        best = context.sources[0]
        threshold = self.policy.retrieval_threshold
        if not _check(checks, "closest past question cosine", best.score, threshold):
            return None
        return Decision(
            Route.RETRIEVAL,
            best.answer,
            best.intent,
            _probability_of(context, best.intent),
            f"a past question is close (cosine {best.score:.3f}); reusing its agent answer",
            checks,
        )

    def _generate(self, context: TurnContext, checks: list[str]) -> Decision | None:
        threshold = self.policy.generation_threshold
        if threshold is None or not context.sources:
            return None
        best = context.sources[0]
        if not _check(checks, "closest past question cosine (to write)", best.score, threshold):
            return None
        return Decision(
            Route.GENERATE,
            "",
            best.intent,
            _probability_of(context, best.intent),
            f"related past questions (cosine {best.score:.3f}) but none close enough to reuse; "
            "writing an answer from their answers",
            checks,
            fallback=self._if_written_answer_fails(context),
        )

    def _if_written_answer_fails(self, context: TurnContext) -> Fallback:
        """The closest past answer if its question is close enough, else a clarifying
        question."""
        best = context.sources[0]
        checks: list[str] = []
        threshold = self.policy.fallback_retrieval_threshold
        if _check(checks, "closest past question cosine (fallback)", best.score, threshold):
            return Fallback(
                Route.RETRIEVAL, best.answer, "; reusing the closest past answer instead", checks
            )
        question = self._clarify(context, "", [])
        return Fallback(
            Route.CLARIFY,
            question.reply,
            " and no past answer is close enough to reuse",
            checks,
            question.options,
        )

    def _filled(
        self,
        template: Template,
        context: TurnContext,
        probability: float,
        reason: str,
        checks: list[str],
    ) -> Decision:
        return Decision(
            Route.TEMPLATE,
            template.fill(context.slots),
            template.intent,
            probability,
            reason,
            checks,
        )


def _check(checks: list[str], label: str, value: float, threshold: float) -> bool:
    """Compare a score with its threshold, recording the comparison for the trace."""
    passed = value >= threshold
    checks.append(f"{label} {value:.3f} {'>=' if passed else '<'} {threshold}")
    return passed


def _probability_of(context: TurnContext, intent: str) -> float:
    return next((s.probability for s in context.intents if s.intent == intent), 0.0)
