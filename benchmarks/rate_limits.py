"""Rate limits under load: one abusive conversation is refused while everyone else chats on.

    python benchmarks/rate_limits.py [--conversations 64] [--turns 50] [--port 7872]

Starts `assistant serve` with the project's defaults (the models must be built:
`python launch.py --build-only`) on a log of its own, then, all from this machine:

- `--conversations` conversations of `--turns` turns each, seeded demo messages,
  each paced like a fast typist just inside `rate_per_conversation`;
- at the same time one abusive conversation sending as fast as it can;
- then a forger who, from a conversation of their own, rates every other turn id.

It reports the status codes each side got, whether every 429 carried
`Retry-After`, how many ratings the forger changed, and whether every
acknowledged turn is in the log. Writes benchmarks/results/rate_limits.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from limits import parse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from api_latency import sample_questions, start_server  # noqa: E402

from assistant.core.settings import load_settings  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402


def pace_seconds() -> float:
    """The gap between one conversation's messages that keeps it inside its rate."""
    rate = parse(load_settings().serving.rate_per_conversation)
    return rate.get_expiry() / rate.amount * 1.05


def converse(client: httpx.Client, messages: list[str], gap: float) -> dict:
    """One conversation; returns its statuses and the turns the server acknowledged."""
    statuses: Counter[int] = Counter()
    acknowledged: list[tuple[str, int]] = []
    conversation = None
    for message in messages:
        started = time.monotonic()
        response = client.post(
            "/api/chat", json={"message": message, "conversation_id": conversation}
        )
        statuses[response.status_code] += 1
        if response.status_code == 200:
            body = response.json()
            conversation = body["conversation_id"]
            acknowledged.append((conversation, body["turn_id"]))
        time.sleep(max(0.0, gap - (time.monotonic() - started)))
    return {"statuses": statuses, "acknowledged": acknowledged}


def abuse(client: httpx.Client, message: str, stop: threading.Event) -> dict:
    """One conversation sending without pause until `stop`."""
    first = client.post("/api/chat", json={"message": message}).json()
    conversation = first["conversation_id"]
    statuses: Counter[int] = Counter({200: 1})
    acknowledged = [(conversation, first["turn_id"])]
    retry_after_missing = 0
    while not stop.is_set():
        response = client.post(
            "/api/chat", json={"message": message, "conversation_id": conversation}
        )
        statuses[response.status_code] += 1
        if response.status_code == 200:
            acknowledged.append((conversation, response.json()["turn_id"]))
        elif response.status_code == 429 and "retry-after" not in response.headers:
            retry_after_missing += 1
        time.sleep(0.02)
    return {
        "statuses": statuses,
        "acknowledged": acknowledged,
        "retry_after_missing": retry_after_missing,
    }


def forge_ratings(client: httpx.Client, database: Path, attempts: int) -> dict:
    """Rate `attempts` turn ids from a conversation of one's own; count ratings changed."""
    own = client.post("/api/chat", json={"message": "hello"}).json()
    before = ratings(database)
    statuses: Counter[int] = Counter()
    for turn_id in range(1, attempts + 1):
        response = client.post(
            "/api/feedback",
            json={"turn_id": turn_id, "conversation_id": own["conversation_id"], "rating": "down"},
        )
        statuses[response.status_code] += 1
    after = ratings(database)
    others_changed = sum(
        1 for turn, rating in after.items() if turn != own["turn_id"] and before.get(turn) != rating
    )
    return {"attempts": attempts, "statuses": statuses, "other_turns_rated": others_changed}


def ratings(database: Path) -> dict[int, int]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT turn_id, rating FROM feedback").fetchall())


def missing_turns(database: Path, acknowledged: list[tuple[str, int]]) -> int:
    with sqlite3.connect(database) as db:
        stored = set(db.execute("SELECT conversation_id, id FROM turns").fetchall())
    return sum(1 for turn in acknowledged if turn not in stored)


def run(args: argparse.Namespace, database: Path) -> dict:
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{args.port}",
        timeout=120,
        limits=httpx.Limits(max_connections=args.conversations + 8),
    )
    messages = sample_questions(args.conversations * args.turns, args.seed)
    scripts = [messages[i :: args.conversations] for i in range(args.conversations)]
    gap, stop = pace_seconds(), threading.Event()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.conversations + 1) as pool:
        abuser = pool.submit(abuse, client, "where is my parcel", stop)
        people = list(pool.map(lambda script: converse(client, script, gap), scripts))
        stop.set()
        abusive = abuser.result()
    elapsed = time.perf_counter() - started
    forged = forge_ratings(client, database, args.forged_ratings)
    acknowledged = [t for p in people for t in p["acknowledged"]] + abusive["acknowledged"]
    return {
        "conversations": args.conversations,
        "turns_each": args.turns,
        "pace_s": round(gap, 2),
        "seconds": round(elapsed, 1),
        "people_statuses": dict(sum((p["statuses"] for p in people), Counter())),
        "abuser_statuses": dict(abusive["statuses"]),
        "abuser_429_without_retry_after": abusive["retry_after_missing"],
        "forged_ratings": {**forged, "statuses": dict(forged["statuses"])},
        "acknowledged_turns": len(acknowledged),
        "acknowledged_missing_from_log": missing_turns(database, acknowledged),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--forged-ratings", type=int, default=2000)
    parser.add_argument("--port", type=int, default=7872)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "conversations.db"
        server = start_server(args.port, {"ASSISTANT_DATABASE_PATH": str(database)})
        try:
            report = run(args, database)
        finally:
            server.terminate()
            server.wait(timeout=30)
    report |= {
        **run_facts(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "rate_limits.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{'who':<34}{'status codes':<40}")
    print(f"{f'{args.conversations} people x {args.turns} turns':<34}{report['people_statuses']}")
    print(f"{'one abusive conversation':<34}{report['abuser_statuses']}")
    print(f"{'forger rating others turns':<34}{report['forged_ratings']['statuses']}")
    print(
        f"ratings of other turns changed: {report['forged_ratings']['other_turns_rated']}; "
        f"429s without Retry-After: {report['abuser_429_without_retry_after']}; "
        f"acknowledged turns {report['acknowledged_turns']}, "
        f"missing from the log {report['acknowledged_missing_from_log']}; {report['seconds']} s"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
