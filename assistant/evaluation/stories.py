"""Conversation tests: multi-turn stories replayed through the assistant, turn by turn.

A stories file (YAML) lists conversations, each a name and its steps: what the
customer writes, and what must then hold. Any of these may be expected:

```yaml
stories:
  - name: an order number asked for, then given
    steps:
      - customer: Where is my order?
        route: template
        intent: order_status
        asks_for: order_id
      - customer: It's PP-204817
        route: template
        slots: {order_id: PP-204817}
        status: bot
```

`route`, `intent` and `status` are compared with the reply's; `asks_for` with the
details the reply asks for; `slots` with what the conversation remembers after
the turn; `reply_contains` with the reply's text; `options` with the choices a
clarifying question offers (a number, or the list); `handoff` with why it was
handed off (`asked_for_person`, `always_human`, `misunderstood`); `contact` with
the email address the customer left. Instead of `customer`, a step may be
`press: talk_to_person` (the chat's button) or `agent: resolves` (a person hands
the conversation back to the bot). A story may say `team: away` (no agent signed
in) or `team: closed` (outside support hours); by default someone is there. Each
story runs in a conversation of its own, on a log of its own, so replays never
reach the real log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.core.errors import DataError
from assistant.core.seams import ConversationLog
from assistant.core.types import Reply

EXPECTATIONS = (
    "route",
    "intent",
    "status",
    "asks_for",
    "slots",
    "reply_contains",
    "options",
    "handoff",
    "contact",
)
ACTIONS = {"press": ("talk_to_person",), "agent": ("resolves",)}
TEAMS = {"here": None, "away": "no_agent", "closed": "outside_hours"}
STORY_AGENT = "story-agent"


@dataclass(frozen=True)
class Step:
    customer: str | None  # None: the step is an action
    expected: dict[str, Any]
    action: str | None = None  # "press" or "agent"


@dataclass(frozen=True)
class Story:
    name: str
    steps: tuple[Step, ...]
    team: str = "here"


class FixedTeam:
    """The story's staffing (`assistant.core.seams.Staffing`): always the same answer."""

    def __init__(self, why: str | None) -> None:
        self.why = why

    def unavailable(self) -> str | None:
        return self.why


@dataclass
class StoryResult:
    name: str
    turns: int = 0
    failure: str | None = None  # the first step that did not hold, and how
    transcript: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failure is None


def load_stories(path: Path) -> list[Story]:
    """The stories in `path`; raises `DataError` naming what is wrong and where."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(path, f"cannot read the stories file: {error.strerror}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DataError(path, f"not valid YAML ({error})", line) from error
    stories = document.get("stories") if isinstance(document, dict) else None
    if not isinstance(stories, list) or not stories:
        raise DataError(path, "needs a non-empty `stories:` list")
    return [_story(entry, number, path) for number, entry in enumerate(stories, start=1)]


def _story(entry: Any, number: int, path: Path) -> Story:
    where = f"story {number}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise DataError(path, f"{where}: each story needs a `name` and `steps`")
    steps = entry.get("steps")
    if not isinstance(steps, list) or not steps:
        raise DataError(path, f"{where} ({entry['name']}): `steps` must be a non-empty list")
    team = entry.get("team", "here")
    if team not in TEAMS:
        raise DataError(path, f"{where}: `team` must be one of {', '.join(TEAMS)}")
    parsed = (_step(step, path, f"{where}, step {i}") for i, step in enumerate(steps, start=1))
    return Story(entry["name"], tuple(parsed), team)


def _step(entry: Any, path: Path, where: str) -> Step:
    if not isinstance(entry, dict):
        raise DataError(path, f"{where}: each step needs a `customer` message or an action")
    action = next((key for key in ACTIONS if key in entry), None)
    if action is not None and entry[action] not in ACTIONS[action]:
        raise DataError(path, f"{where}: `{action}` must be {', '.join(ACTIONS[action])}")
    if action is None and not isinstance(entry.get("customer"), str):
        raise DataError(path, f"{where}: each step needs a `customer` message or an action")
    unknown = set(entry) - {"customer", *ACTIONS, *EXPECTATIONS}
    if unknown:
        raise DataError(
            path,
            f"{where}: unknown expectation {', '.join(sorted(unknown))}; "
            f"known: {', '.join(EXPECTATIONS)}",
        )
    expected = {key: entry[key] for key in EXPECTATIONS if key in entry}
    return Step(entry.get("customer") if action is None else None, expected, action)


def replay(assistant: Any, story: Story) -> StoryResult:
    """Play `story` through `assistant` (an `Assistant`, or anything with `reply`,
    `request_person`, `staffing` and a `store`)."""
    result = StoryResult(story.name)
    conversation_id = None
    staffing, assistant.staffing = assistant.staffing, FixedTeam(TEAMS[story.team])
    try:
        for number, step in enumerate(story.steps, start=1):
            said, reply = _play(assistant, step, conversation_id)
            result.turns = number
            result.transcript.append(said)
            if reply is None:
                continue
            conversation_id = reply.conversation_id
            result.transcript.append(("bot", reply.text))
            mismatch = _mismatch(step.expected, reply, assistant.store)
            if mismatch:
                result.failure = f"step {number} ({said[1]!r}): {mismatch}"
                break
    finally:
        assistant.staffing = staffing
    return result


def _play(
    assistant: Any, step: Step, conversation_id: str | None
) -> tuple[tuple[str, str], Reply | None]:
    """Perform one step: what was said or done, and the bot's reply (None for an agent's)."""
    if step.action == "press":
        return ("customer", "[presses Talk to a person]"), assistant.request_person(conversation_id)
    if step.action == "agent":
        if conversation_id is None:
            raise DataError(Path("stories"), "an agent step needs a conversation before it")
        assistant.store.resolve(conversation_id, STORY_AGENT)
        return ("agent", "[resolves the conversation]"), None
    return ("customer", step.customer or ""), assistant.reply(step.customer, conversation_id)


def _mismatch(expected: dict[str, Any], reply: Reply, store: ConversationLog) -> str | None:
    actual: dict[str, Any] = {
        "route": reply.route,
        "intent": reply.intent,
        "status": reply.status,
        "asks_for": reply.trace.get("asked_for", []),
    }
    for key in ("route", "intent", "status"):
        if key in expected and expected[key] != actual[key]:
            return f"{key} {actual[key]!r}, expected {expected[key]!r}"
    if "asks_for" in expected:
        wanted = expected["asks_for"]
        wanted = [wanted] if isinstance(wanted, str) else list(wanted or [])
        if sorted(wanted) != sorted(actual["asks_for"]):
            return f"asks for {actual['asks_for']}, expected {wanted}"
    if "slots" in expected:
        remembered = store.state(reply.conversation_id).slots
        missing = {k: v for k, v in expected["slots"].items() if remembered.get(k) != v}
        if missing:
            return f"remembers {remembered}, expected {expected['slots']}"
    wanted_text = expected.get("reply_contains")
    if wanted_text and wanted_text.lower() not in reply.text.lower():
        return f"reply {reply.text!r} lacks {wanted_text!r}"
    return _fallback_mismatch(expected, reply, store)


def _fallback_mismatch(
    expected: dict[str, Any], reply: Reply, store: ConversationLog
) -> str | None:
    """The expectations about not knowing: the options offered, the handoff's kind, and
    the contact address left."""
    if "options" in expected:
        wanted = expected["options"]
        matches = (
            len(reply.options) == wanted
            if isinstance(wanted, int)
            else (list(reply.options) == list(wanted))
        )
        if not matches:
            return f"offers {reply.options}, expected {wanted}"
    if "handoff" in expected and reply.trace.get("handoff") != expected["handoff"]:
        return f"handoff {reply.trace.get('handoff')!r}, expected {expected['handoff']!r}"
    if "contact" in expected:
        left = store.conversation(reply.conversation_id).contact
        if left != expected["contact"]:
            return f"contact {left!r}, expected {expected['contact']!r}"
    return None


def report(results: list[StoryResult]) -> str:
    """One line per story, then the count."""
    lines = []
    for result in results:
        lines.append(f"{'PASS' if result.passed else 'FAIL'}  {result.name}")
        if result.failure:
            lines.append(f"      {result.failure}")
    passed = sum(result.passed for result in results)
    lines.append(f"{passed} of {len(results)} stories passed.")
    return "\n".join(lines)
