from pathlib import Path

import pytest

from assistant.cli import main
from assistant.core.errors import DataError
from assistant.evaluation.stories import load_stories, replay, report
from tests.cli.test_main import point_at

ROOT = Path(__file__).resolve().parents[2]

SLOT_FILLING = """
stories:
  - name: an order number asked for, then given
    steps:
      - customer: Where is my order?
        route: template
        intent: order_status
        asks_for: order_id
      - customer: It's PP-204817
        route: template
        asks_for: []
        slots: {order_id: PP-204817}
        status: bot
        reply_contains: PP-204817
  - name: a wrong expectation is reported at its step
    steps:
      - customer: Where is my order?
        route: template
      - customer: It's PP-204817
        route: handoff
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stories.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_stories_load_and_cover_every_kind_of_turn():
    stories = load_stories(ROOT / "data" / "stories.yml")
    assert len(stories) >= 30
    expected = [step.expected for story in stories for step in story.steps]
    routes = {e.get("route") for e in expected}
    assert {"template", "handoff", "agent", "refuse", "clarify"} <= routes
    assert any(e.get("slots") for e in expected) and any(e.get("asks_for") for e in expected)
    kinds = {e.get("handoff") for e in expected}
    assert {"asked_for_person", "always_human", "misunderstood"} <= kinds
    actions = {step.action for story in stories for step in story.steps}
    assert {"press", "agent"} <= actions
    assert {"away", "closed"} <= {story.team for story in stories}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("stories: [", "not valid YAML"),
        ("other: 1", "non-empty `stories:`"),
        ("stories:\n  - name: x\n", "`steps` must be a non-empty list"),
        ("stories:\n  - name: x\n    steps:\n      - route: template\n", "`customer` message"),
        ("stories:\n  - name: x\n    steps:\n      - {customer: hi, rout: x}\n", "unknown"),
        ("stories:\n  - name: x\n    steps:\n      - {press: button}\n", "talk_to_person"),
        ("stories:\n  - name: x\n    team: gone\n    steps:\n      - {customer: hi}\n", "team"),
    ],
)
def test_a_broken_stories_file_says_what_and_where(tmp_path, text, problem):
    with pytest.raises(DataError, match=problem):
        load_stories(write(tmp_path, text))


def test_stories_replay_turn_by_turn_and_a_failure_names_its_step(eager, tmp_path):
    stories = load_stories(write(tmp_path, SLOT_FILLING))
    passing, failing = (replay(eager, story) for story in stories)
    assert passing.passed and passing.turns == 2
    assert not failing.passed and failing.turns == 2
    assert failing.failure == "step 2 (\"It's PP-204817\"): route 'template', expected 'handoff'"
    printed = report([passing, failing])
    assert "PASS  an order number" in printed and "FAIL  a wrong expectation" in printed
    assert printed.endswith("1 of 2 stories passed.")


def test_assistant_test_exits_1_when_a_story_fails_and_leaves_the_log_alone(
    built_settings, tmp_path, monkeypatch, capsys
):
    point_at(built_settings, monkeypatch)
    log = built_settings.database_path
    before = log.stat().st_size if log.exists() else None
    failing = write(tmp_path, "stories:\n" + WRONG_STORY)
    assert main(["test", str(failing)]) == 1
    assert "0 of 1 stories passed." in capsys.readouterr().out
    assert (log.stat().st_size if log.exists() else None) == before


WRONG_STORY = """  - name: hello is not a refund
    steps:
      - customer: hello there
        intent: refund_status
"""


FALLBACK = """
stories:
  - name: no one is in, so an address is asked for and kept
    team: away
    steps:
      - press: talk_to_person
        route: handoff
        handoff: asked_for_person
        reply_contains: email address
      - customer: it is dana.lee@example.org
        route: agent
        contact: dana.lee@example.org
  - name: resolved by the team, the bot answers again
    steps:
      - customer: I want a human
        route: handoff
        status: waiting
      - agent: resolves
      - customer: where is my order PP-204817
        route: template
        status: resolved
  - name: off topic twice is refused twice, never handed off
    steps:
      - customer: will it rain
        route: refuse
      - customer: will it rain
        route: refuse
        status: bot
        options: 0
"""


def test_stories_press_buttons_resolve_and_set_who_is_in(demo_slice, tmp_path):
    from assistant.core.pipeline import Assistant
    from tests.fakes import fake_settings

    components = {
        "intent_classifier": "tests.fakes:KeywordClassifier",
        "retriever": "tests.fakes:WordOverlapRetriever",
        "conversation_log": "assistant.storage.store:ConversationStore",
    }
    settings = fake_settings(demo_slice, components=components, database_path=tmp_path / "log.db")
    assistant = Assistant.load(settings)
    results = [replay(assistant, story) for story in load_stories(write(tmp_path, FALLBACK))]
    assert [r.failure for r in results] == [None, None, None]
    assert ("agent", "[resolves the conversation]") in results[1].transcript
    assert assistant.staffing.unavailable() is None  # the story's team did not stay
