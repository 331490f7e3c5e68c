"""Customers on the chat page, driven as their browsers drive it.

A browser tab keeps one Gradio session for its whole conversation. Sending a message
runs the textbox's `submit` event and then, one after another, each `.then` event
chained after it, as the page's own script does: each is a POST to
`/gradio_api/queue/join` with the values the page holds for that event's inputs
(the chat's history among them), then a read of the session's event stream to that
event's completion, whose outputs the page keeps. State the server holds for the
session (the conversation id, the turn ids) is sent as null, as the browser sends it.

The chain is read from the page's `/config`, so the same customers measure any layout
of the page's events: one event a message, or several. So is the poll timer's tick,
which an open page runs every few seconds for as long as the customer stays.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

MESSAGE_BOX = "message"  # the textbox's elem_id


@dataclass(frozen=True)
class Step:
    """One server event of a chain: its index, the component that triggered it, its inputs
    and outputs (component ids)."""

    fn_index: int
    trigger_id: int | None
    inputs: list[int]
    outputs: list[int]


@dataclass(frozen=True)
class PageLayout:
    """What a browser reads from `/config`: the components' first values and the chain of
    events that sending a message runs."""

    initial: dict[int, Any]
    message_box: int
    chain: list[Step]
    tick: Step | None  # the poll timer's event

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PageLayout:
        components = {c["id"]: c for c in config["components"]}
        box = next(c["id"] for c in components.values() if c["props"].get("elem_id") == MESSAGE_BOX)
        dependencies = config["dependencies"]
        first = next(d for d in dependencies if [box, "submit"] in d["targets"])
        chain = [first]
        while follow := [d for d in dependencies if d.get("trigger_after") == chain[-1]["id"]]:
            chain.append(follow[0])
        initial = {i: c["props"].get("value") for i, c in components.items()}
        steps = [_step(d, box if d is first else None) for d in chain]
        timers = {c["id"] for c in components.values() if c["type"] == "timer"}
        tick = next(
            (
                _step(d, target)
                for d in dependencies
                for target, event in d["targets"]
                if event == "tick" and target in timers
            ),
            None,
        )
        return cls(initial, box, steps, tick)


def _step(dependency: dict[str, Any], trigger: int | None) -> Step:
    return Step(dependency["id"], trigger, dependency["inputs"], dependency["outputs"])


@dataclass
class PageCustomer:
    """One browser tab: its session and the values its page holds."""

    base: str
    layout: PageLayout
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:11])
    values: dict[int, Any] = field(init=False)
    events: int = 0

    def __post_init__(self) -> None:
        self.values = dict(self.layout.initial)

    async def send(self, client: httpx.AsyncClient, message: str) -> bool:
        """Type `message` and press Enter; True when every event of the chain completed."""
        self.values[self.layout.message_box] = message
        for step in self.layout.chain:
            outputs = await self._run(client, step)
            if outputs is None:
                return False
            self._keep(step, outputs)
        return True

    async def tick(self, client: httpx.AsyncClient) -> bool:
        """The poll timer fires; True when its event completed."""
        step = self.layout.tick
        outputs = None if step is None else await self._run(client, step)
        if outputs is None:
            return False
        self._keep(step, outputs)
        return True

    async def _run(self, client: httpx.AsyncClient, step: Step) -> list[Any] | None:
        body = {
            "data": [self.values.get(i) for i in step.inputs],
            "event_data": None,
            "fn_index": step.fn_index,
            "trigger_id": step.trigger_id,
            "session_hash": self.session,
        }
        joined = await client.post(f"{self.base}/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return None
        self.events += 1
        event_id = joined.json()["event_id"]
        url = f"{self.base}/gradio_api/queue/data"
        async with client.stream("GET", url, params={"session_hash": self.session}) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                message = json.loads(line.removeprefix("data: "))
                if message.get("msg") == "process_completed" and message["event_id"] == event_id:
                    return message["output"].get("data") if message.get("success") else None
        return None

    def _keep(self, step: Step, outputs: list[Any]) -> None:
        """The page's values after an event: a value replaces, an update sets its value if
        it has one, a skip leaves the value as it was."""
        for component, value in zip(step.outputs, outputs, strict=False):
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" in value:
                    self.values[component] = value["value"]
            else:
                self.values[component] = value


async def fetch_layout(base: str) -> PageLayout:
    async with httpx.AsyncClient(timeout=30) as client:
        config = (await client.get(f"{base}/config")).json()
    return PageLayout.from_config(config)


class PageCrowd:
    """`customers` tabs open on the page at once."""

    def __init__(self, base: str, customers: int) -> None:
        self.layout = asyncio.run(fetch_layout(base))
        self.tabs = [PageCustomer(base, self.layout) for _ in range(customers)]

    def converse(self, messages: list[str], turns: int) -> dict[str, Any]:
        """Each tab holds one conversation of `turns` messages, drawn from `messages`."""

        async def customer(index: int, latencies: list[float]) -> int:
            rng, errors, tab = random.Random(index), 0, self.tabs[index]
            async with httpx.AsyncClient(timeout=120) as client:
                for _ in range(turns):
                    started = time.perf_counter()
                    try:
                        answered = await tab.send(client, rng.choice(messages))
                    except httpx.HTTPError:
                        answered = False
                    if answered:
                        latencies.append((time.perf_counter() - started) * 1000)
                    errors += not answered
            return errors

        async def everyone() -> tuple[list[float], list[int]]:
            latencies: list[float] = []
            tabs = range(len(self.tabs))
            return latencies, await asyncio.gather(*(customer(n, latencies) for n in tabs))

        started = time.perf_counter()
        latencies, errors = asyncio.run(everyone())
        return {
            "seconds": time.perf_counter() - started,
            "latencies_ms": latencies,
            "errors": sum(errors),
            "events": sum(tab.events for tab in self.tabs),
            "events_a_message": len(self.layout.chain),
        }

    def wait(self, ticks: int) -> dict[str, Any]:
        """Each tab's poll timer fires `ticks` times, one tick after another (a browser
        waits seconds between them): what open pages cost while their customers read."""

        async def tab_ticks(tab: PageCustomer) -> int:
            async with httpx.AsyncClient(timeout=120) as client:
                return sum([not await tab.tick(client) for _ in range(ticks)])

        async def everyone() -> list[int]:
            return await asyncio.gather(*(tab_ticks(tab) for tab in self.tabs))

        started = time.perf_counter()
        errors = asyncio.run(everyone())
        return {
            "seconds": time.perf_counter() - started,
            "ticks": ticks * len(self.tabs),
            "errors": sum(errors),
        }
