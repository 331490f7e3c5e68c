"""Moving a large SQLite log into PostgreSQL: how long `assistant db copy` takes.

    python benchmarks/db_copy.py [--turns 100000] [--turns-per-conversation 5]
        [--chunk-rows 5000]

Builds a SQLite log of `--turns` synthetic turns (made by `ConversationStore`, then
filled straight with `executemany`): conversations of `--turns-per-conversation`
turns, each turn's customer and bot lines, and, in the share of conversations a
busy shop sees, handoffs with agent replies, ratings and their changes, intent
corrections, reuse reviews, sealed contact addresses, staff sessions and failed
sign-ins. The texts are made up here from templates. A throwaway PostgreSQL server
(`tests/postgres.py`: local, fsync off) is started, and `copy_log`, what the command
runs, copies the log into it; then it runs again, which must copy nothing. Writes
benchmarks/results/db_copy.json and prints a table per table.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
from assistant.storage.contacts import ContactVault  # noqa: E402
from assistant.storage.copying import CHUNK_ROWS, copy_log  # noqa: E402
from assistant.storage.store import ConversationStore  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402
from tests.postgres import PostgresServer, unavailable  # noqa: E402

SEED = 5
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
AGENTS = ("ana", "bo", "chidi", "dana")
CITIES = ("Leeds", "Porto", "Lyon", "Graz", "Malmo", "Cork", "Ghent", "Turin")
ITEMS = ("the oak side table", "a linen throw", "two ceramic mugs", "the pine bookshelf")
# intent: (customer's messages, the bot's reply); {order} {city} {item} {days} filled in.
INTENTS = {
    "order_status": (
        (
            "where is my order {order}",
            "hi, order {order} was meant to come {days} days ago and nothing yet",
            "can you tell me if {order} has left the warehouse",
        ),
        "Order {order} left our warehouse and should reach you within 3 working days.",
    ),
    "shipping_cost": (
        (
            "how much is delivery to {city}",
            "what would shipping {item} to {city} cost me",
            "is there free shipping on orders over 50",
        ),
        "Delivery to {city} is 4.95, and free on orders over 50.",
    ),
    "return_policy": (
        (
            "can I send back {item}, I bought it {days} days ago",
            "how do returns work if {item} arrived scratched",
            "I'd like to return {item}",
        ),
        "You can return anything unused within 30 days; start from the Returns page.",
    ),
    "change_address": (
        (
            "I moved, can I change the address on {order}",
            "please send {order} to my office in {city} instead",
        ),
        "Until an order ships you can change its address under My orders.",
    ),
    "human_agent": (
        ("can I talk to a person please", "I need a human, this is about {order}"),
        "I am passing you to a member of our team.",
    ),
}
AGENT_REPLIES = (
    "I have checked {order}: the courier has it and it will arrive tomorrow.",
    "Sorry about {item}; I have booked a free collection for Thursday.",
    "Done, {order} now goes to the new address in {city}.",
)


def fill(template: str, rng: random.Random) -> str:
    return template.format(
        order=f"PP-{rng.randint(10_000, 99_999)}",
        city=rng.choice(CITIES),
        item=rng.choice(ITEMS),
        days=rng.randint(2, 12),
    )


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


class SyntheticLog:
    """The rows of a log, table by table, made up conversation by conversation."""

    def __init__(self, rng: random.Random, vault: ContactVault) -> None:
        self.rng, self.vault = rng, vault
        self.rows: dict[str, list[tuple]] = {}
        self.next_id: dict[str, int] = {}

    def add(self, table: str, *values: Any) -> int:
        """Append a row with an integer id first; returns the id."""
        row_id = self.next_id.get(table, 1)
        self.next_id[table] = row_id + 1
        self.rows.setdefault(table, []).append((row_id, *values))
        return row_id

    def conversation(self, index: int, turns: int) -> None:
        rng = self.rng
        conversation_id = f"{rng.getrandbits(128):032x}"
        began = START + timedelta(seconds=index * 37 + rng.randint(0, 30))
        handed_off = rng.random() < 0.08
        moment, last_turn = began, 0
        for position in range(1, turns + 1):
            moment += timedelta(seconds=rng.randint(8, 90))
            wants_person = handed_off and position == turns
            last_turn = self.turn(conversation_id, position, moment, wants_person)
        status, agent, resolved_at, handoff = "bot", None, None, (None, None, None)
        if handed_off:
            agent = rng.choice(AGENTS)
            handoff = ("asked for a person", stamp(moment), "asked_for_person")
            status, resolved_at = self.desk(conversation_id, last_turn, agent, moment)
        contact = None
        if handed_off and rng.random() < 0.2:
            contact = self.vault.seal(f"customer{index}@example.net")
        reason, handoff_at, kind = handoff
        self.rows.setdefault("conversations", []).append(
            (
                conversation_id,
                rng.choice(("chat", "chat", "api")),
                stamp(began),
                stamp(moment),
                None,
                "{}",
                status,
                reason,
                handoff_at,
                agent,
                resolved_at,
                rng.choice((0, 0, 0, 1)),
                None,
                0,
                kind,
                contact,
            )
        )

    def turn(self, conversation_id: str, position: int, moment: datetime, person: bool) -> int:
        rng = self.rng
        intent = "human_agent" if person else rng.choice(list(INTENTS))
        questions, answer = INTENTS[intent]
        user_text, reply_text = fill(rng.choice(questions), rng), fill(answer, rng)
        route = "handoff" if person else rng.choice(("template", "retrieval", "generated"))
        confidence = round(rng.uniform(0.35, 0.99), 4)
        sources = [{"question": user_text, "answer": reply_text, "score": confidence}]
        trace = {"route": route, "intent": intent, "confidence": confidence, "checks": []}
        turn_id = self.add(
            "turns",
            conversation_id,
            position,
            stamp(moment),
            user_text,
            reply_text,
            route,
            intent,
            confidence,
            f"{route} for {intent}",
            json.dumps(sources),
            json.dumps(trace),
            round(rng.uniform(8, 140), 2),
            "intent:v7",
        )
        for author, text in (("customer", user_text), ("bot", reply_text)):
            self.add("messages", conversation_id, turn_id, author, None, text, stamp(moment))
        if rng.random() < 0.06:
            self.rate(conversation_id, turn_id, moment)
        return turn_id

    def rate(self, conversation_id: str, turn_id: int, moment: datetime) -> None:
        ratings = [self.rng.choice((1, -1))]
        if self.rng.random() < 0.15:
            ratings.append(-ratings[0])
        old = None
        for rating in ratings:
            self.add("feedback_changes", turn_id, conversation_id, old, rating, stamp(moment))
            old = rating
        self.add("feedback", turn_id, rating, None, stamp(moment), conversation_id)

    def desk(
        self, conversation_id: str, turn_id: int, agent: str, moment: datetime
    ) -> tuple[str, str | None]:
        """An agent takes the conversation and replies; most are resolved, some reviewed."""
        rng, at = self.rng, stamp(moment + timedelta(minutes=3))
        self.add("agent_actions", conversation_id, turn_id, "taken", agent, at, "{}")
        reply = fill(rng.choice(AGENT_REPLIES), rng)
        message = self.add("messages", conversation_id, turn_id, "agent", agent, reply, at)
        payload = json.dumps({"text": reply, "message_id": message})
        self.add("agent_actions", conversation_id, turn_id, "reply_sent", agent, at, payload)
        if rng.random() < 0.3:
            correction = json.dumps({"old": "human_agent", "new": "order_status"})
            self.add(
                "agent_actions", conversation_id, turn_id, "intent_corrected", agent, at, correction
            )
        if rng.random() < 0.4:
            approved = rng.random() < 0.7
            pair = ("Where is my order?", reply) if approved else (None, None)
            review = (message, turn_id, conversation_id, int(approved), "sam", at, *pair)
            self.add("reuse_reviews", *review)
        if rng.random() < 0.8:
            self.add("agent_actions", conversation_id, turn_id, "resolved", agent, at, "{}")
            return "resolved", at
        return "with_agent", None


COLUMNS = {
    "conversations": "id, channel, created_at, updated_at, pending_intent, slots, status, "
    "handoff_reason, handoff_at, assigned_to, resolved_at, misunderstood, last_digest, "
    "awaiting_contact, handoff_kind, contact",
    "turns": "id, conversation_id, position, created_at, user_text, reply_text, route, intent, "
    "confidence, reason, sources, trace, latency_ms, model_version",
    "messages": "id, conversation_id, turn_id, author, agent, text, created_at",
    "feedback": "id, turn_id, rating, comment, created_at, conversation_id",
    "feedback_changes": "id, turn_id, conversation_id, old_rating, new_rating, created_at",
    "agent_actions": "id, conversation_id, turn_id, kind, actor, created_at, payload",
    "reuse_reviews": "id, message_id, turn_id, conversation_id, approved, actor, created_at, "
    "question, answer",
    "staff_sessions": "token_hash, name, page, issued_at",
    "sign_in_failures": "id, name, failed_at",
}


def staff_rows(rng: random.Random) -> Iterator[tuple[str, tuple]]:
    issued = START.timestamp() + 86_400
    for index in range(60):
        page = "agent" if index % 4 else "admin"
        row = (f"{rng.getrandbits(256):064x}", rng.choice(AGENTS), page, issued + index * 300)
        yield "staff_sessions", row
    for index in range(250):
        yield "sign_in_failures", (index + 1, f"guess{index % 17}", issued + index * 7.5)


def build_log(path: Path, turns: int, per_conversation: int) -> dict[str, int]:
    """A log of `turns` made-up turns at `path`; returns its rows per table."""
    ConversationStore(path).close()
    rng = random.Random(SEED)
    log = SyntheticLog(rng, ContactVault.beside(path))
    for index in range(-(-turns // per_conversation)):
        log.conversation(index, min(per_conversation, turns - index * per_conversation))
    for table, row in staff_rows(rng):
        log.rows.setdefault(table, []).append(row)
    with sqlite3.connect(path) as db:
        for table, columns in COLUMNS.items():
            rows = log.rows.get(table, [])
            marks = ", ".join("?" for _ in columns.split(","))
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    return {table: len(log.rows.get(table, [])) for table in COLUMNS}


def timed_copy(source: Path, target: str, chunk_rows: int) -> tuple[float, list]:
    started = time.perf_counter()
    report = copy_log(source, target, chunk_rows=chunk_rows)
    return time.perf_counter() - started, report


def run(args: argparse.Namespace, folder: Path, server: PostgresServer) -> dict[str, Any]:
    source, target = folder / "conversations.db", server.database_url()
    started = time.perf_counter()
    built = build_log(source, args.turns, args.turns_per_conversation)
    build_seconds = time.perf_counter() - started
    seconds, report = timed_copy(source, target, args.chunk_rows)
    rerun_seconds, rerun = timed_copy(source, target, args.chunk_rows)
    rows = sum(table.copied for table in report)
    return {
        "turns": args.turns,
        "turns_per_conversation": args.turns_per_conversation,
        "chunk_rows": args.chunk_rows,
        "sqlite_mb": round(source.stat().st_size / 2**20, 1),
        "build_seconds": round(build_seconds, 1),
        "tables": {
            table.table: {
                "sqlite": table.source_rows,
                "postgresql": table.target_rows,
                "copied": table.copied,
            }
            for table in report
        },
        "rows_built": built,
        "rows_copied": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "turns_per_s": round(args.turns / seconds),
        "counts_equal": all(table.complete for table in report),
        "rerun_seconds": round(rerun_seconds, 2),
        "rerun_rows_copied": sum(table.copied for table in rerun),
    }


def print_table(result: dict[str, Any]) -> None:
    print("\n| table | SQLite | PostgreSQL | copied |\n|---|---|---|---|")
    for name, counts in result["tables"].items():
        print(
            f"| {name} | {counts['sqlite']:,} | {counts['postgresql']:,} | {counts['copied']:,} |"
        )
    print(
        f"\n{result['rows_copied']:,} rows ({result['turns']:,} turns, "
        f"{result['sqlite_mb']} MB of SQLite) in {result['seconds']} s: "
        f"{result['rows_per_s']:,} rows/s, {result['turns_per_s']:,} turns/s; counts equal: "
        f"{result['counts_equal']}; a rerun took {result['rerun_seconds']} s and copied "
        f"{result['rerun_rows_copied']} rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--turns-per-conversation", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    parser.add_argument("--output", type=Path, default=RESULTS / "db_copy.json")
    args = parser.parse_args()
    reason = unavailable()
    if reason is not None:
        sys.exit(f"cannot start PostgreSQL: {reason}")
    server = PostgresServer().start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            result = run(args, Path(folder), server)
    finally:
        server.stop()
    result = {
        **run_facts(),
        "postgresql": "local server from tests/postgres.py (fsync off), over TCP on loopback",
        **result,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    main()
