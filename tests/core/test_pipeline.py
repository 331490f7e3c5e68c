import json
from types import SimpleNamespace

import pytest

from assistant.channels.explain import explain
from assistant.core.conversation import WITH_PEOPLE_REPLIES
from assistant.core.errors import MessageError, UnknownConversation
from assistant.core.pipeline import Assistant, drain
from assistant.core.records import ConversationStatus
from assistant.core.trace import public_reply
from assistant.core.types import Decision, Fallback, Route, TurnContext
from assistant.generation.capacity import BUSY_REASON, WritingCapacity
from assistant.storage.store import ConversationStore
from tests.conftest import with_settings, writing_assistant
from tests.fakes import WordOverlapRetriever, fake_settings


def test_reply_carries_its_trace_and_is_logged(assistant):
    reply = assistant.reply("How much does standard shipping cost?")
    assert reply.route in {"template", "retrieval", "generate", "handoff"}
    trace = reply.trace
    assert trace["route"] == reply.route
    assert trace["reason"]
    assert len(trace["intents"]) == 3
    # A confident template answer does not read the past questions, so none are looked for.
    assert len(trace["sources"]) == (3 if trace["searched"] else 0)
    assert trace["searched"] or reply.route == "template"
    assert trace["checks"]
    [turn] = assistant.store.turns(reply.conversation_id)
    assert turn["id"] == reply.turn_id
    assert turn["route"] == reply.route
    assert turn["model_version"] == assistant.model_version


def test_missing_order_number_is_asked_for_then_used(eager):
    first = eager.reply("Where is my order? It has not arrived yet.")
    assert first.intent == "order_status"
    assert first.trace["asked_for"] == ["order_id"]
    assert "PP-" in first.text
    second = eager.reply("It's pp 482913", first.conversation_id)
    assert second.route == "template"
    assert second.intent == "order_status"
    assert "PP-482913" in second.text
    assert "asked for last turn" in second.trace["reason"]


def test_order_number_is_remembered_within_a_conversation(eager):
    first = eager.reply("Has order PP-551903 shipped yet?")
    assert "PP-551903" in first.text
    again = eager.reply("where is my order", first.conversation_id)
    assert again.intent == "order_status"
    assert "PP-551903" in again.text


def test_email_in_a_message_is_never_stored(eager):
    reply = eager.reply("Where is my order PP-204817? Write to me at jo@example.com")
    [turn] = eager.store.turns(reply.conversation_id)
    assert "jo@example.com" not in turn["user_text"]
    assert "[EMAIL]" in turn["user_text"]
    assert "email" not in eager.store.state(reply.conversation_id).slots


def test_bad_messages_are_refused_and_nothing_logged_is_lost(assistant):
    reply = assistant.reply("hello there")
    for bad in ["", "   ", "x" * 5000, "\x00\x01"]:
        with pytest.raises(MessageError):
            assistant.reply(bad, reply.conversation_id)
    assert len(assistant.store.turns(reply.conversation_id)) == 1


def test_unknown_conversation_is_refused(assistant):
    with pytest.raises(UnknownConversation):
        assistant.reply("hello", "no-such-conversation")


def test_feedback_is_recorded(assistant):
    reply = assistant.reply("hi!")
    assistant.feedback(reply.turn_id, reply.conversation_id, -1)
    assert [f["rating"] for f in assistant.store.feedback(reply.turn_id)] == [-1]


def test_thresholds_chosen_at_training_apply_unless_configured(assistant, built_settings):
    from assistant.core.registry import policy_from
    from assistant.intents.rejection import RejectionPolicy

    chosen = RejectionPolicy(0.42, 0.07, {"greeting": 0.9})
    policy = policy_from(built_settings.routing, built_settings.intents, chosen)
    assert (policy.intent_threshold, policy.ambiguity_margin) == (0.42, 0.07)
    assert policy.threshold_for("greeting") == 0.9
    configured = built_settings.model_copy(update={"intent_threshold": 0.6})
    policy = policy_from(configured.routing, configured.intents, chosen)
    assert policy.intent_threshold == 0.6 and policy.threshold_for("greeting") == 0.6
    assert assistant.router.policy.intent_threshold == assistant.classifier.rejection.threshold


# Handoff: the bot steps aside while the support team has the conversation.


@pytest.fixture(scope="module")
def cautious(assistant, built_settings):
    """The session's models behind a router that trusts no intent, so it hands off."""
    return with_settings(assistant, built_settings.model_copy(update={"intent_threshold": 1.0}))


def test_a_handoff_leaves_the_conversation_to_the_support_team(cautious, eager):
    from assistant.core.conversation import WITH_PEOPLE_REPLIES
    from assistant.core.records import ConversationStatus

    first = cautious.reply("Can you recommend a good pizza recipe for tonight?")
    assert first.route in ("refuse", "clarify") and first.status == "bot"  # the bot keeps it
    store = cautious.store
    conversation = first.conversation_id
    assert conversation not in [item.conversation_id for item in store.queue()]
    pressed = cautious.request_person(conversation)
    assert (pressed.route, pressed.status) == ("handoff", "waiting")
    assert store.conversation(conversation).handoff_kind == "asked_for_person"
    assert store.status(conversation) == ConversationStatus.WAITING
    assert [i.conversation_id for i in store.queue()].count(conversation) == 1

    waiting = eager.reply("Hello? How much is shipping?", conversation)
    assert (waiting.route, waiting.intent, waiting.status) == ("agent", None, "waiting")
    assert waiting.text == WITH_PEOPLE_REPLIES[ConversationStatus.WAITING]
    assert waiting.trace["route"] == "agent" and waiting.trace["intents"] == []

    store.agent_reply(conversation, "ana", "Hi, Ana here: standard shipping is $4.95.")
    with_agent = eager.reply("Thanks, and express?", conversation)
    assert (with_agent.route, with_agent.status) == ("agent", "with_agent")
    assert with_agent.text == WITH_PEOPLE_REPLIES[ConversationStatus.WITH_AGENT]
    authors = [m["author"] for m in store.history(conversation)]
    assert authors == [
        *("customer", "bot", "customer", "bot", "customer", "bot", "agent", "customer", "bot")
    ]

    store.resolve(conversation, "ana")
    again = eager.reply("How much does standard shipping cost?", conversation)
    assert again.route != "agent"
    assert again.intent is not None


def test_asking_for_a_human_enters_the_queue(eager, built_settings):
    from assistant.core.records import ConversationStatus
    from assistant.datasets.loading import load_dataset

    request = next(
        e.text for e in load_dataset(built_settings.data_dir).examples if e.intent == "human_agent"
    )
    reply = eager.reply(request)
    assert (reply.route, reply.intent) == ("handoff", "human_agent")
    conversation = eager.store.conversation(reply.conversation_id)
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.handoff_reason == "the customer asked for a person"


def _stream(assistant, message):
    *pieces, reply = assistant.reply_stream(message)
    assert all(isinstance(piece, str) for piece in pieces)
    return "".join(pieces), reply


def test_a_written_answer_streams_and_stands_when_it_passes(assistant, built_settings):
    writer = writing_assistant(assistant, built_settings, -1.0, 1.01)
    streamed, reply = _stream(writer, "How long does delivery take?")
    generation = reply.trace["generation"]
    assert streamed.strip() == generation["written"]
    verdict = generation["verdict"]
    if verdict["passed"]:
        assert (reply.route, reply.text) == ("generate", generation["written"])
    else:  # only an invented identifier can fail a check with threshold -1
        assert verdict["invented"] or "named" in verdict["reason"]
        assert reply.route == "handoff"
    [turn] = writer.store.turns(reply.conversation_id)
    assert turn["reply_text"] == reply.text


def test_a_reader_who_leaves_mid_answer_still_has_the_turn_logged(assistant, built_settings):
    writer = writing_assistant(assistant, built_settings, -1.0, 1.01)
    conversation_id = writer.store.start_conversation()
    events = writer.reply_stream("How long does delivery take?", conversation_id)
    first = next(events)
    assert isinstance(first, str)
    events.close()  # what a web server does when the client disconnects
    [turn] = writer.store.turns(conversation_id)
    assert turn["user_text"] == "How long does delivery take?"
    generation = json.loads(turn["trace"])["generation"]
    assert generation["written"].startswith(first.strip())
    assert turn["reply_text"] and turn["route"] == generation["used"]


def test_a_failed_check_falls_back_to_the_closest_past_answer(assistant, built_settings):
    _, reply = _stream(
        writing_assistant(assistant, built_settings, 2.0, -1.0), "How long does delivery take?"
    )
    assert reply.route == "retrieval"
    assert reply.text == reply.trace["sources"][0]["answer"]
    assert not reply.trace["generation"]["verdict"]["passed"]
    assert reply.trace["generation"]["used"] == "retrieval"
    assert "failed its check" in reply.trace["reason"]


def test_a_failed_check_with_no_close_past_answer_asks_what_was_meant(assistant, built_settings):
    _, reply = _stream(
        writing_assistant(assistant, built_settings, 2.0, 1.01), "How long does delivery take?"
    )
    assert (reply.route, reply.status) == ("clarify", "bot")
    assert reply.trace["generation"]["used"] == "clarify"
    assert reply.options and reply.options == reply.trace["options"]


def test_a_busy_answer_writer_gives_the_fallback_and_a_trace_every_channel_can_show(
    assistant, built_settings
):
    writer = writing_assistant(assistant, built_settings, -1.0, -1.0)
    writer.writing = WritingCapacity(workers=1, waiting=0)
    with writer.writing.turn() as admitted:  # the one writer is taken
        assert admitted
        _, reply = _stream(writer, "How long does delivery take?")
    assert reply.route == "retrieval" and reply.text == reply.trace["sources"][0]["answer"]
    generation = reply.trace["generation"]
    assert (generation["verdict"]["passed"], generation["verdict"]["reason"]) == (
        False,
        BUSY_REASON,
    )
    assert generation["used"] == "retrieval"
    assert reply.trace["reason"].startswith(f"no answer was written ({BUSY_REASON})")
    shown = public_reply(reply)["trace"]["generation"]
    assert shown == {"verdict": {"passed": False, "reason": BUSY_REASON}, "used": "retrieval"}
    assert BUSY_REASON in explain(reply.trace, reply.latency_ms, reply.model_version)


# Without trained models: the pipeline over the fakes in tests/fakes.py.


@pytest.fixture
def plain(demo_slice):
    return Assistant.load(fake_settings(demo_slice))


def test_a_missing_slot_is_asked_for_then_filled_next_turn(plain):
    asked = plain.reply("I want to track my order")
    assert (asked.route, asked.trace["asked_for"]) == ("template", ["order_id"])
    filled = plain.reply("It is PP-204817", asked.conversation_id)
    assert filled.route == "template" and "PP-204817" in filled.text


def test_a_handed_off_conversation_is_left_to_the_support_team(plain):
    handed = plain.reply("I want to talk to a human")
    assert (handed.route, handed.status) == ("handoff", "waiting")
    later = plain.reply("Hello?", handed.conversation_id)
    assert (later.route, later.status) == ("agent", "waiting")


def test_a_bad_message_is_refused_before_any_event(plain):
    with pytest.raises(MessageError):
        plain.reply_stream("   ")
    assert plain.store.records == []


class TakenBeforeTheWrite(ConversationStore):
    """A log in which an agent takes the conversation just after the bot reads its status."""

    def opening(self, conversation_id):
        read = super().opening(conversation_id)
        self.take(conversation_id, "ana")
        return read


def test_a_conversation_taken_between_the_read_and_the_write_is_left_to_the_agent(plain, tmp_path):
    store = TakenBeforeTheWrite(tmp_path / "log.db")
    racing = Assistant(
        plain.settings, plain.classifier, plain.retriever, plain.router.templates, store
    )
    conversation_id = store.start_conversation()
    reply = racing.reply("How much is shipping?", conversation_id)
    assert (reply.route, reply.status) == ("agent", "with_agent")
    assert reply.text == WITH_PEOPLE_REPLIES[ConversationStatus.WITH_AGENT]
    [turn] = store.turns(conversation_id)
    assert (turn["route"], turn["user_text"]) == ("agent", "How much is shipping?")
    assert turn["reply_text"] == reply.text


class InventingWriter:
    """An answer writer that makes up an order number."""

    limits = SimpleNamespace(context_answers=2)
    grounding_threshold = -1.0
    version = "inventing-1"

    def stream(self, question, contexts, stop=None):
        yield from ["Your order ", "PP-999999 ", "ships today."]

    def generate(self, question, contexts):
        return "".join(self.stream(question, contexts))


def test_the_reason_a_written_answer_failed_counts_invented_identifiers_without_naming_them(
    plain,
):
    writer = Assistant(
        plain.settings,
        plain.classifier,
        plain.retriever,
        plain.router.templates,
        plain.store,
        InventingWriter(),
    )
    fallback = Fallback(Route.HANDOFF, "A person will help.", "; handing off")
    decision = Decision(Route.GENERATE, "", "order_status", 0.9, "written", fallback=fallback)
    context = TurnContext([], [], {}, None)
    final, generation = drain(writer.write_answer("hi", context, decision))
    assert "999999" not in final.reason and "999999" not in " ".join(final.checks)
    assert "1 identifier found in no input" in final.reason
    assert generation["verdict"]["invented"]  # the full trace keeps which, for the staff


class CountingRetriever(WordOverlapRetriever):
    def __init__(self) -> None:
        super().__init__()
        self.searched: list[str] = []

    def search(self, texts, k=3):
        self.searched += texts
        return super().search(texts, k)


def test_a_template_answer_is_given_without_searching_the_past_questions(plain):
    retriever = CountingRetriever()
    counting = Assistant(
        plain.settings, plain.classifier, retriever, plain.router.templates, plain.store
    )
    template = counting.reply("I want to track my order")
    assert template.route == "template" and retriever.searched == []
    assert (template.trace["searched"], template.trace["sources"]) == (False, [])
    assert template.trace["signals"]["closest_past_question"] is None
    shown = explain(template.trace, template.latency_ms, template.model_version)
    assert "not looked for" in shown
    refused = counting.reply("Will it rain in Lisbon tomorrow?")
    assert refused.route == "refuse" and retriever.searched == ["Will it rain in Lisbon tomorrow?"]
    assert refused.trace["searched"] and refused.trace["sources"]
    assert refused.trace["signals"]["closest_past_question"] is not None


# Not knowing (routing/fallback.py) through the pipeline, over the fakes.


def test_an_off_topic_message_is_refused_and_the_bot_answers_the_next_one(plain):
    refused = plain.reply("Will it rain in Lisbon tomorrow?")
    assert (refused.route, refused.status) == ("refuse", "bot")
    assert refused.trace["signals"]["familiarity"] == 0.0
    later = plain.reply("I want to track my order", refused.conversation_id)
    assert later.route == "template" and later.status == "bot"


def test_off_topic_messages_never_hand_off_however_many(plain):
    assistant, conversation = plain, None
    for text in ["asdf qwerty", "asdf qwerty", "buy cheap watches", "zzz", "zzz"]:
        reply = assistant.reply(text, conversation)
        conversation = reply.conversation_id
        assert (reply.route, reply.status) == ("refuse", "bot")


def test_two_unclear_messages_running_hand_off_a_repeat_does_not_count(plain):
    unclear = "order or shipping, I mean delivery"
    first = plain.reply(unclear)
    assert first.route == "clarify" and len(first.options) == 2
    conversation = first.conversation_id
    repeated = plain.reply(unclear, conversation)
    assert (repeated.route, repeated.status) == ("clarify", "bot")
    second = plain.reply("track the order? shipping?", conversation)
    assert (second.route, second.status) == ("handoff", "waiting")
    assert second.trace["handoff"] == "misunderstood"


def test_with_no_one_available_the_customer_is_asked_for_an_email_which_is_kept(plain):
    from assistant.staff.availability import TeamAvailability

    plain.staffing = TeamAvailability(None, signed_in=lambda: False)
    handed = plain.request_person()
    assert (handed.route, handed.status) == ("handoff", "waiting")
    assert "email address" in handed.text
    conversation = handed.conversation_id
    given = plain.reply("sure, it's dana.lee@example.org", conversation)
    assert given.route == "agent" and "contact you at that address" in given.text
    assert plain.store.contacts[conversation] == "dana.lee@example.org"
    again = plain.reply("thanks", conversation)
    assert "contact you at that address" not in again.text  # asked and answered once


def test_pressing_talk_to_a_person_twice_does_not_queue_twice(plain):
    first = plain.request_person()
    second = plain.request_person(first.conversation_id)
    assert (second.route, second.status) == ("agent", "waiting")
