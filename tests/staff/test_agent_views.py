from assistant.staff.agent_views import VIEW_SIZE, load_queue, refresh
from tests.staff.conftest import AS_AGENT, HANDOFF_MESSAGE, is_skip, opened


def test_the_queue_shows_a_handed_off_conversation_with_reason_and_time(staffed, handed_off):
    queue = load_queue(staffed, AS_AGENT)
    row = queue[queue["conversation"] == handed_off].iloc[0]
    assert row["kind"] == "handed off"
    assert row["why"].startswith("handed off:")
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
