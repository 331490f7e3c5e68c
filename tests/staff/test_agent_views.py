from assistant.core.records import Conversation, ConversationStatus, HandoffKind
from assistant.staff.agent_views import VIEW_SIZE, header, load_queue, refresh
from assistant.text.plain import plain_text
from tests.staff.conftest import AS_AGENT, HANDOFF_MESSAGE, is_skip, opened

CONTACT_NOTE = "(left because no one was available)"


def test_the_queue_shows_a_handed_off_conversation_with_reason_and_time(staffed, handed_off):
    queue = load_queue(staffed, AS_AGENT)
    row = queue[queue["conversation"] == handed_off].iloc[0]
    assert row["kind"] == "handed off"
    assert row["why"] == "asked for a person"
    assert row["since"].endswith(" UTC")
    assert row["status"] == "waiting"
    assert row["customer said"] == HANDOFF_MESSAGE


def test_opening_shows_the_history_and_three_suggestions(staffed, handed_off):
    page = opened(staffed, handed_off)
    turn = staffed.store.turns(handed_off)[0]
    assert page["selected"] == {
        "id": handed_off,
        "status": "waiting",
        "last_line": staffed.store.messages_since(handed_off)[-1]["id"],
    }
    assert "waiting for an agent" in page["title"]
    customer, bot = page["history"]
    assert customer["role"] == "user"
    assert (
        f"turn {turn['id']} · intent {turn['intent']} ({turn['confidence']:.2f})"
        in (customer["content"])
    )
    assert bot["content"].startswith("**Bot:**")
    assert page["turn"].value == turn["id"]
    assert len(page["offered"]) == 3
    pairs = zip(page["offered"], page["cards"], strict=True)
    for rank, (suggestion, card) in enumerate(pairs, start=1):
        assert suggestion["rank"] == rank
        assert {"text", "route", "intent", "score"} <= suggestion.keys()
        assert f"route `{suggestion['route']}`" in card
        assert f"score {suggestion['score']:.2f}" in card
        assert "Sources:" in card
    assert (page["reply_box"], page["picked"]) == ("", None)


def test_refresh_redraws_only_when_the_conversation_changed(staffed, handed_off):
    page = opened(staffed, handed_off)
    assert all(is_skip(value) for value in refresh(staffed, page["selected"], AS_AGENT))
    staffed.reply("Are you there?", handed_off)
    values = refresh(staffed, page["selected"], AS_AGENT)
    assert len(values) == VIEW_SIZE
    assert "Are you there?" in values[2][-2]["content"]


def test_the_view_says_why_it_was_handed_off_and_shows_the_contact_left(staffed, handed_off):
    page = opened(staffed, handed_off)
    assert "Handed off (the customer asked for a person)" in page["title"]
    assert "Contact:" not in page["title"]
    staffed.store.save_contact(handed_off, "jo.doe@example.com")
    title = opened(staffed, handed_off)["title"]
    assert f"Contact: {plain_text('jo.doe@example.com')} {CONTACT_NOTE}" in title


def waiting(**changes) -> Conversation:
    values = dict(
        id="c1",
        status=ConversationStatus.WAITING,
        handoff_reason="2 messages running were not understood",
        handoff_at="2025-01-31T10:00:00.000+00:00",
        assigned_to=None,
        resolved_at=None,
        handoff_kind=HandoffKind.MISUNDERSTOOD,
        contact=None,
    )
    values.update(changes)
    return Conversation(**values)


def test_the_header_names_the_kind_and_shows_the_contact_as_plain_text():
    text = header(waiting(contact="<img src=x onerror=alert(1)>[a](http://e.example)@x.com"))
    assert "Handed off (the bot did not understand): 2 messages running" in text
    contact_line = text.split("Contact: ")[1]
    assert contact_line.endswith(CONTACT_NOTE)
    assert "<img" not in text and "](" not in text and "http://" not in text
    assert "&lt;img" in contact_line


def test_a_handoff_without_a_kind_or_contact_shows_only_its_reason():
    text = header(waiting(handoff_kind=None, handoff_reason="customer phoned"))
    assert text.endswith("  \nHanded off: customer phoned")
    assert header(waiting(status=ConversationStatus.BOT, handoff_reason=None)).endswith(
        "with the bot"
    )
