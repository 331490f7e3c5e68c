"""One customer message in, one traced reply out: the flow in DESIGN.md.

validate -> classify intent -> retrieve past answers -> route -> log (redacted).
A handoff puts the conversation in the agent queue; while it waits for or is with
an agent, the bot only logs the customer's messages and says a person has it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from assistant.build import load_templates, qa_checksum
from assistant.config import Settings
from assistant.data import load_dataset
from assistant.intents import IntentClassifier
from assistant.messages import normalise_message
from assistant.rejection import RejectionPolicy
from assistant.retrieval import Retriever
from assistant.router import Decision, IntentScore, Router, RoutingPolicy, Source, TurnContext
from assistant.store import (
    AGENT_ROUTE,
    HANDOFF_ROUTE,
    ConversationState,
    ConversationStatus,
    ConversationStore,
    TurnRecord,
)
from assistant.templates import TemplateBook, extract_slots

# Slot values that are personal data are used within a turn but never remembered.
PERSONAL_SLOTS = frozenset({"email"})
WARM_UP_MESSAGE = "Where is my order?"
WITH_PEOPLE_REPLIES = {
    ConversationStatus.WAITING: (
        "You're in the queue for a member of our support team, who will reply here shortly."
    ),
    ConversationStatus.WITH_AGENT: (
        "A member of our support team has your conversation and will reply here."
    ),
}


@dataclass(frozen=True)
class Reply:
    text: str
    route: str
    intent: str | None
    confidence: float
    conversation_id: str
    turn_id: int
    trace: dict[str, Any]
    latency_ms: float
    model_version: str
    status: str = ConversationStatus.BOT.value  # who answers next: see `ConversationStatus`

    def to_dict(self) -> dict[str, Any]:
        return {"reply": self.text, **{k: v for k, v in asdict(self).items() if k != "text"}}


class Assistant:
    """The loaded models, templates and log, answering messages."""

    def __init__(
        self,
        settings: Settings,
        classifier: IntentClassifier,
        retriever: Retriever,
        templates: TemplateBook,
        store: ConversationStore,
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.retriever = retriever
        self.store = store
        self.router = Router(policy_from(settings, classifier.rejection), templates)

    @classmethod
    def load(cls, settings: Settings) -> Assistant:
        """Load built artifacts; raises `ArtifactError` saying how to build what is missing."""
        dataset = load_dataset(settings.data_dir)
        return cls(
            settings,
            IntentClassifier.load(
                settings.intent_models_dir, settings.device, int8=settings.intent_int8
            ),
            Retriever.load(settings.qa_index_dir, settings, qa_checksum(dataset)),
            load_templates(settings),
            ConversationStore(settings.database_path),
        )

    @property
    def model_version(self) -> str:
        return f"intent:{self.classifier.version} index:{self.retriever.version}"

    def warm_up(self) -> None:
        """Run each model once so the first customer does not pay for lazy initialisation."""
        self.classifier.predict([WARM_UP_MESSAGE])
        self.retriever.search([WARM_UP_MESSAGE])

    def reply(self, message: object, conversation_id: str | None = None) -> Reply:
        """Answer one message; raises `MessageError` or `UnknownConversation` for bad input."""
        started = time.perf_counter()
        text = normalise_message(message, self.settings.max_message_chars)
        if conversation_id is None:
            conversation_id = self.store.start_conversation()
            state, status = ConversationState(), ConversationStatus.BOT
        else:
            state = self.store.state(conversation_id)
            status = self.store.status(conversation_id)
            if status.with_people:
                return self._leave_to_agent(text, conversation_id, state, status, started)
        intents = self.classifier.predict([text], self.settings.top_k_intents)[0]
        sources = self.retriever.search([text], self.settings.top_k_sources)[0]
        found_slots = extract_slots(text)
        slots = {**state.slots, **found_slots}
        decision = self.router.decide(TurnContext(intents, sources, slots, state.pending_intent))
        trace = build_trace(decision, intents, sources, sorted(found_slots), self.router.policy)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        turn_id = self.store.log_turn(
            TurnRecord(
                conversation_id=conversation_id,
                user_text=text,
                reply_text=decision.reply,
                route=decision.route.value,
                intent=decision.intent,
                confidence=decision.confidence,
                reason=decision.reason,
                sources=trace["sources"],
                trace=trace,
                latency_ms=latency_ms,
                model_version=self.model_version,
                next_state=next_state(decision, slots),
                handoff_reason=decision.reason if decision.route == HANDOFF_ROUTE else None,
            )
        )
        return Reply(
            decision.reply,
            decision.route.value,
            decision.intent,
            round(decision.confidence, 4),
            conversation_id,
            turn_id,
            trace,
            latency_ms,
            self.model_version,
            (ConversationStatus.WAITING if decision.route == HANDOFF_ROUTE else status).value,
        )

    def _leave_to_agent(
        self,
        text: str,
        conversation_id: str,
        state: ConversationState,
        status: ConversationStatus,
        started: float,
    ) -> Reply:
        """Log the message for the agent without routing it; tell the customer a person has it."""
        reply = WITH_PEOPLE_REPLIES[status]
        reason = f"the conversation is {status.value.replace('_', ' ')}: the support team answers"
        trace = {
            "route": AGENT_ROUTE,
            "reason": reason,
            "checks": [],
            "intents": [],
            "sources": [],
            "slots_found": [],
            "asked_for": [],
        }
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        turn_id = self.store.log_turn(
            TurnRecord(
                conversation_id=conversation_id,
                user_text=text,
                reply_text=reply,
                route=AGENT_ROUTE,
                intent=None,
                confidence=0.0,
                reason=reason,
                sources=[],
                trace=trace,
                latency_ms=latency_ms,
                model_version=self.model_version,
                next_state=state,
            )
        )
        return Reply(
            reply,
            AGENT_ROUTE,
            None,
            0.0,
            conversation_id,
            turn_id,
            trace,
            latency_ms,
            self.model_version,
            status.value,
        )

    def feedback(self, turn_id: int, rating: int) -> int:
        return self.store.add_feedback(turn_id, rating)


def policy_from(settings: Settings, chosen: RejectionPolicy) -> RoutingPolicy:
    """Routing thresholds: those set in the settings, else those chosen at training."""
    threshold_set = settings.intent_threshold is not None
    return RoutingPolicy(
        intent_threshold=settings.intent_threshold if threshold_set else chosen.threshold,
        ambiguity_margin=(
            chosen.margin if settings.ambiguity_margin is None else settings.ambiguity_margin
        ),
        retrieval_threshold=settings.retrieval_threshold,
        handoff_intents=frozenset(settings.handoff_intents),
        out_of_scope_label=settings.out_of_scope_label,
        intent_thresholds={} if threshold_set else chosen.per_intent,
    )


def next_state(decision: Decision, slots: dict[str, str]) -> ConversationState:
    remembered = {name: value for name, value in slots.items() if name not in PERSONAL_SLOTS}
    pending = decision.intent if decision.asked_for else None
    return ConversationState(pending, remembered)


def build_trace(
    decision: Decision,
    intents: list[IntentScore],
    sources: list[Source],
    slots_found: list[str],
    policy: RoutingPolicy,
) -> dict[str, Any]:
    """Everything needed to see why this reply was given; read by the UI, API and reviews."""
    return {
        "route": decision.route.value,
        "reason": decision.reason,
        "checks": decision.checks,
        "intents": [{"intent": s.intent, "probability": round(s.probability, 4)} for s in intents],
        "sources": [
            {
                "question": s.question,
                "answer": s.answer,
                "intent": s.intent,
                "score": round(s.score, 4),
            }
            for s in sources
        ],
        "slots_found": slots_found,
        "asked_for": list(decision.asked_for),
        "thresholds": {
            "intent": policy.intent_threshold,
            "ambiguity_margin": policy.ambiguity_margin,
            "retrieval": policy.retrieval_threshold,
        },
    }
