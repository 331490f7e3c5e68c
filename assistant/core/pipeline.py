"""One customer message in, one traced reply out.

message -> validate -> classify -> route -> (write) -> reply -> log, with no return
to an earlier step: the router decides once, searching the past questions only if a
rule it weighs reads them (a confident template answer never does), and a written answer
that fails its checks is replaced by the fallback decided with it. The pipeline
talks to each concern through its seam (`assistant.core.seams`). A handoff puts the
conversation in the agent queue; while it waits for or is with an agent, the bot only
logs the customer's messages and says a person has it. When no one can take it (outside
support hours, no agent signed in) the customer is told so and asked for an email
address, which is kept, protected, for the agents.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from assistant.core.base_models import limit_model_threads
from assistant.core.components import build_component
from assistant.core.conversation import (
    CONTACT_SAVED_REPLY,
    NO_ONE_REPLIES,
    PRESSED_FOR_PERSON,
    message_digest,
    next_state,
    people_record,
    reply_to,
)
from assistant.core.records import (
    ConversationState,
    ConversationStatus,
    HandoffKind,
    RequestKey,
    TurnRecord,
)
from assistant.core.registry import Models
from assistant.core.retries import RequestsInFlight, answer_once
from assistant.core.seams import (
    AnswerWriter,
    ConversationLog,
    IntentClassifier,
    Retriever,
    Staffing,
)
from assistant.core.settings import Settings
from assistant.core.stream import ReplyStream
from assistant.core.trace import build_trace
from assistant.core.types import (
    Decision,
    Reply,
    ReplyEvent,
    Route,
    SearchedOnRead,
    TurnContext,
)
from assistant.generation.answering import write_answer
from assistant.generation.capacity import WritingCapacity
from assistant.lifecycle.releases import ModelVersions
from assistant.routing.router import DEFAULT_HUMAN_REPLY as DEFAULT_PERSON_REPLY
from assistant.routing.router import Router
from assistant.routing.templates import TemplateBook
from assistant.staff.availability import TeamAvailability
from assistant.text.normalise import normalise_message
from assistant.text.slots import extract_slots

T = TypeVar("T")


class Assistant:
    """The loaded models, templates and log, answering messages."""

    def __init__(
        self,
        settings: Settings,
        classifier: IntentClassifier,
        retriever: Retriever,
        templates: TemplateBook,
        store: ConversationLog,
        generator: AnswerWriter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.models = Models.assemble(settings, classifier, retriever, templates, generator)
        self._switching = threading.Lock()
        # Who can take a handoff: the support hours here; the server adds who is signed in.
        self.staffing: Staffing = TeamAvailability(settings.routing.support_hours)
        serving = settings.serving
        self.writing = WritingCapacity(serving.generation_workers, serving.generation_queue)
        self.writer_pending = False  # loaded without its configured writer, to add later
        self._in_flight = RequestsInFlight()

    @classmethod
    def load(cls, settings: Settings, writer: bool = True) -> Assistant:
        """Load built artifacts; raises `ArtifactError` saying how to build what is missing.
        Without `writer` no answer is written until `add_writer`."""
        models = Models.load(settings, writer=writer)
        limit_model_threads(settings.serving.model_threads)
        assistant = cls(
            settings,
            models.classifier,
            models.retriever,
            models.router.templates,
            build_component(settings, "conversation_log"),
            models.generator,
        )
        assistant.writer_pending = not writer and settings.generator.enabled
        return assistant

    # The serving set's parts, for callers that answer with whatever is live.
    @property
    def classifier(self) -> IntentClassifier:
        return self.models.classifier

    @property
    def retriever(self) -> Retriever:
        return self.models.retriever

    @property
    def router(self) -> Router:
        return self.models.router

    @property
    def generator(self) -> AnswerWriter | None:
        return self.models.generator

    @property
    def model_version(self) -> str:
        return self.models.versions.describe()

    def warm_up(self) -> None:
        self.models.warm_up()

    def add_writer(self) -> None:
        """Put the writer left out by `load(writer=False)` into service (see
        `Models.with_writer`); raises `ArtifactError` when it cannot be loaded. Until then
        each message takes the route it would take with writing off."""
        with self._switching:
            if self.writer_pending and self.models.generator is None:
                models = self.models.with_writer(self.settings)
                limit_model_threads(self.settings.serving.model_threads)  # now PyTorch's too
                models.warm_up()
                self.models = models
            self.writer_pending = False

    def switch_to(self, versions: ModelVersions) -> bool:
        """Load `versions` beside the serving models, warm them up, then swap them in.

        Replies under way finish with the models they started with; returns False
        when `versions` already serve. Raises `ArtifactError` and keeps the serving
        models when the new ones cannot be loaded.
        """
        with self._switching:
            if versions == self.models.versions:
                return False
            current = self.models
            models = Models.load(self.settings, versions, current.router.templates, current)
            limit_model_threads(self.settings.serving.model_threads)
            models.warm_up()
            self.models = models  # one reference assignment: atomic for readers
            return True

    def reply(
        self, message: object, conversation_id: str | None = None, request: RequestKey | None = None
    ) -> Reply:
        """Answer one message; raises `MessageError` or `UnknownConversation` for bad input."""
        return self.reply_stream(message, conversation_id, request).final()

    def reply_stream(
        self, message: object, conversation_id: str | None = None, request: RequestKey | None = None
    ) -> ReplyStream:
        """Answer one message as a stream of events: a written answer's text as it is
        generated, then the final `Reply` (see `assistant.core.stream`).

        Bad input raises here, before any event. A reader who stops listening (closes
        the stream) mid-answer loses nothing from the log: the answer is finished and
        checked unseen, and the turn logged as usual. With `request`, a client's
        idempotency key, a request already answered gets its logged reply alone, and one
        being answered raises `RequestInFlight` (see `assistant.core.retries`).
        """
        if request is None:
            return ReplyStream(self._events(message, conversation_id, None))
        answer = partial(self._events, message, conversation_id, request)
        return ReplyStream(answer_once(request, self._in_flight, self.store, answer))

    def _events(
        self, message: object, conversation_id: str | None, request: RequestKey | None
    ) -> Generator[ReplyEvent, None, None]:
        started = time.perf_counter()
        models = self.models
        text = normalise_message(message, self.settings.serving.max_message_chars)
        if conversation_id is None:
            conversation_id = self.store.start_conversation()
            state, status = ConversationState(), ConversationStatus.BOT
        else:
            state, status = self.store.opening(conversation_id)
            if status.with_people:
                version = models.versions.describe()
                yield self._leave_to_agent(
                    text, conversation_id, state, status, version, started, request
                )
                return
        prediction = models.encoder.classify(text)
        sources = SearchedOnRead(lambda: models.encoder.search(text))
        intents = prediction.intents
        found_slots = extract_slots(text)
        slots = {**state.slots, **found_slots}
        digest = message_digest(text)
        context = TurnContext(
            intents,
            sources,
            slots,
            state.pending_intent,
            prediction.familiarity,
            state.misunderstood,
            repeated=digest == state.last_digest,
        )
        decision = self._when_no_one_can_take(models.router.decide(context), models)
        generation, listening = None, True
        if decision.route is Route.GENERATE:
            writing = self.write_answer(text, context, decision, models)
            while True:  # pieces pass through as they come; the last holds the settled reply
                try:
                    piece = next(writing)
                except StopIteration as done:
                    decision, generation = done.value
                    break
                try:
                    yield piece
                except GeneratorExit:  # the reader left: finish unseen, so the turn is logged
                    decision, generation = drain(writing)
                    listening = False
                    break
        trace = build_trace(
            decision,
            prediction,
            sources.found(),
            sorted(found_slots),
            models.router.policy,
            searched=sources.searched,
        )
        if generation is not None:
            trace["generation"] = generation
        version = models.versions.describe()
        after = next_state(decision, slots, context, digest)
        reply = self._log(
            text, conversation_id, decision, trace, after, state, version, started, request
        )
        if listening:
            yield reply

    def _when_no_one_can_take(self, decision: Decision, models: Models) -> Decision:
        """A handoff when no one can take it: say so, and ask for an email address."""
        why = self.staffing.unavailable() if decision.route is Route.HANDOFF else None
        if why is None:
            return decision
        messages = models.router.templates.messages
        return replace(
            decision,
            reply=f"{decision.reply} {messages.get(why, NO_ONE_REPLIES[why])}",
            reason=f"{decision.reason}; no one can take it now ({why.replace('_', ' ')})",
            asked_for=("email",),
        )

    def request_person(self, conversation_id: str | None = None) -> Reply:
        """The customer pressed the chat's "talk to a person" control: hand off at once."""
        started = time.perf_counter()
        models = self.models
        if conversation_id is None:
            conversation_id = self.store.start_conversation()
        state, status = self.store.opening(conversation_id)
        version = models.versions.describe()
        if status.with_people:
            record = people_record(PRESSED_FOR_PERSON, conversation_id, state, status, version, 0.0)
            return reply_to(record, self.store.log_turn(record), status)
        decision = Decision(
            Route.HANDOFF,
            models.router.templates.messages.get("talk_to_person", DEFAULT_PERSON_REPLY),
            None,
            0.0,
            "the customer pressed \u201cTalk to a person\u201d",
            handoff=HandoffKind.ASKED,
        )
        decision = self._when_no_one_can_take(decision, models)
        trace = build_trace(decision, None, [], [], models.router.policy, searched=False)
        after = next_state(decision, state.slots, TurnContext([], [], state.slots), None)
        return self._log(
            PRESSED_FOR_PERSON, conversation_id, decision, trace, after, state, version, started
        )

    def write_answer(
        self, text: str, context: TurnContext, decision: Decision, models: Models | None = None
    ) -> Generator[str, None, tuple[Decision, dict[str, Any]]]:
        """Stream the generator's answer through the identifier guard, then check it whole
        (`assistant.generation.answering`)."""
        return write_answer(self.writing, models or self.models, text, context, decision)

    def _log(
        self,
        text: str,
        conversation_id: str,
        decision: Decision,
        trace: dict[str, Any],
        after: ConversationState,
        state: ConversationState,
        model_version: str,
        started: float,
        request: RequestKey | None = None,
    ) -> Reply:
        """Log the bot's reply, unless an agent took (or was handed) the conversation since
        its status was read: the store re-reads it in the write's transaction, and then the
        message is kept for the agent and the customer told a person has it."""
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        handoff = decision.route == Route.HANDOFF.value
        record = TurnRecord(
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
            model_version=model_version,
            next_state=after,
            handoff_reason=decision.reason if handoff else None,
            handoff_kind=decision.handoff if handoff else None,
            request=request,
        )

        def for_people(status: ConversationStatus) -> TurnRecord:
            record = people_record(text, conversation_id, state, status, model_version, latency_ms)
            return replace(record, request=request)

        turn_id, status = self.store.log_bot_turn(record, for_people)
        if status.with_people:
            return reply_to(for_people(status), turn_id, status)
        status = ConversationStatus.WAITING if handoff else status
        return Reply(
            decision.reply,
            decision.route.value,
            decision.intent,
            round(decision.confidence, 4),
            conversation_id,
            turn_id,
            trace,
            latency_ms,
            model_version,
            status.value,
            list(decision.options),
        )

    def _leave_to_agent(
        self,
        text: str,
        conversation_id: str,
        state: ConversationState,
        status: ConversationStatus,
        model_version: str,
        started: float,
        request: RequestKey | None = None,
    ) -> Reply:
        """Log the message for the agent without routing it; tell the customer a person has it,
        or, if they were asked for an email address and gave one, that it is kept."""
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        record = people_record(text, conversation_id, state, status, model_version, latency_ms)
        record = replace(record, request=request)
        email = extract_slots(text).get("email") if state.awaiting_contact else None
        if email is not None:
            self.store.save_contact(conversation_id, email)
            messages = self.models.router.templates.messages
            record = replace(
                record,
                reply_text=messages.get("contact_saved", CONTACT_SAVED_REPLY),
                next_state=replace(state, awaiting_contact=False),
            )
        return reply_to(record, self.store.log_turn(record), status)

    def feedback(self, turn_id: int, conversation_id: str, rating: int) -> int:
        """Rate a turn of `conversation_id`; raises `UnknownTurn` for one of another."""
        return self.store.add_feedback(turn_id, conversation_id, rating)


def drain(stream: Generator[Any, None, T]) -> T:
    """Run a generator to its end and return its return value."""
    while True:
        try:
            next(stream)
        except StopIteration as stop:
            return stop.value
