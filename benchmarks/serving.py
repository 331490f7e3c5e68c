"""Serving speed on this machine: the encoder floor, then a real server over HTTP.

    python benchmarks/serving.py [--clients 1 8 32 64] [--turns 50] [--port 7873]
    python benchmarks/serving.py --soak-minutes 10      # memory over a long run
    python benchmarks/serving.py --layouts sqlite postgresql postgresql:2  # behind HAProxy

The models must be built (`python launch.py --build-only`). In one run it measures:

1. the floor: one encoder pass for one message, and batched sentences a second, for
   the intent model and the sentence encoder as the server loads them;
2. a server (`assistant serve` on a copy-free, empty log of its own) over HTTP, with
   1, 8, 32 and 64 concurrent conversations of `--turns` turns each: a fixed, seeded
   mix of demo messages, about 10 % of which reach the answer writer. For each level:
   replies/s, round-trip p50/p95/p99, the server's own latency, errors, acknowledged
   turns missing from the log afterwards, the server's resident memory, the CPU time it
   spent a reply (all its threads), and each figure's ratio to the floor (a reply
   always runs the intent model, and the sentence encoder only when routing reads its
   closest past questions: the floor for a level counts the share that did). Before the
   levels, warm start: from process start until the server answers, and until its
   answer writer (loaded in the background) is in service too, the median of
   `--starts` starts;
3. the web chat page itself: 32 concurrent customers, each in a browser session of its
   own, sending messages as a browser sends them (every event the page runs for a
   message, over Gradio's HTTP protocol), beside the API's figures.

`--layouts` measures several layouts in turn, in one run: `sqlite` (one server, the
default), `postgresql` (one server, the log on a PostgreSQL server of the benchmark's
own, with durable commits), `postgresql:2` (two servers on that log behind HAProxy
with deploy/haproxy.cfg, as DEPLOY.md lays them out, each given half the cores for its
models; the conversations go through the balancer).

Writes benchmarks/results/serving.json (machine, date and command inside) and prints a
table. The load generator is asyncio on raw keep-alive HTTP/1.1, so that it spends as
little of the machine as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

WRITTEN_SHARE = 0.10  # of turns that reach the answer writer
PROBE_MESSAGES = 600


def machine() -> dict[str, Any]:
    return {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python " + " ".join(sys.argv),
    }


def percentile_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    array = np.array(values)
    return {name: round(float(np.percentile(array, q)), 2) for name, q in
            (("p50", 50), ("p95", 95), ("p99", 99))}  # fmt: skip


# 1. The floor ---------------------------------------------------------------------------

ENCODER_PASSES = ("intent model", "sentence encoder")  # every reply; only those searched


def encoder_floor(texts: list[str]) -> dict[str, Any]:
    """One pass for one message and batched sentences/s, per model, as the server loads
    them; and what a reply's two passes allow at most."""
    from assistant.core.base_models import limit_model_threads
    from assistant.core.registry import Models
    from assistant.core.settings import load_settings

    settings = load_settings()
    limit_model_threads(settings.serving.model_threads)
    models = Models.load(settings)
    passes = {
        ENCODER_PASSES[0]: lambda batch: models.classifier.assess(batch),
        ENCODER_PASSES[1]: lambda batch: models.retriever.encode(batch),
    }
    floor: dict[str, Any] = {}
    for name, run in passes.items():
        for text in texts[:20]:
            run([text])
        single = []
        for text in texts[:200]:
            started = time.perf_counter()
            run([text])
            single.append((time.perf_counter() - started) * 1000)
        batch = texts[:512]
        started = time.perf_counter()
        for start in range(0, len(batch), 64):
            run(batch[start : start + 64])
        floor[name] = {
            "one_message_ms_p50": round(statistics.median(single), 2),
            "batched_sentences_per_s": round(len(batch) / (time.perf_counter() - started), 1),
        }
    rates = [floor[name]["batched_sentences_per_s"] for name in passes]
    floor["replies_per_s"] = round(1 / sum(1 / rate for rate in rates), 1)
    floor["one_reply_ms"] = round(sum(floor[name]["one_message_ms_p50"] for name in passes), 2)
    floor["model_version"] = models.versions.describe()
    return floor


# 2. The server ---------------------------------------------------------------------------


def answering(health: dict) -> bool:
    return True


def writer_loaded(health: dict) -> bool:
    """Loaded or failed; a server from before the writer loaded in the background says nothing."""
    return health.get("writer", "ready") != "loading"


class Server:
    """`assistant serve` on `port` with the log in `log` (settings as environment
    variables), or else an empty one of its own in `folder`."""

    def __init__(
        self, port: int, folder: Path, root: Path = ROOT, log: dict[str, str] | None = None
    ) -> None:
        self.port, self.database = port, folder / "serving.db"
        environment = {
            **os.environ,
            "ASSISTANT_DATABASE_PATH": str(self.database),
            **(log or {}),
            # A benchmark conversation sends 50 turns in seconds: no per-conversation limit,
            # and none per address (behind a balancer this machine is no longer exempt).
            "ASSISTANT_SERVING__RATE_PER_CONVERSATION": "1000000/minute",
            "ASSISTANT_SERVING__RATE_PER_ADDRESS": "1000000/minute",
            "ASSISTANT_SERVING__RELOAD_CHECK_SECONDS": "0",
        }
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
            cwd=root,
            env={**environment, "PYTHONPATH": str(root)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Answering (warm start), then with its answer writer loaded too (the levels need it).
        self.warm_start_s = round(self._wait_until(started, answering), 2)
        self.writer_ready_s = round(self._wait_until(started, writer_loaded), 2)

    def _wait_until(self, started: float, ready: Callable[[dict], bool]) -> float:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("the server exited; build first: python launch.py --build-only")
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/api/health", timeout=1)
                if response.is_success and ready(response.json()):
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit("the server did not become ready within 180 s")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now and at its peak, from /proc (Linux)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {
            key: round(int(values[field].split()[0]) / 1024, 1)
            for key, field in (("rss_mb", "VmRSS"), ("peak_rss_mb", "VmHWM"))
        }

    def cpu_seconds(self) -> float:
        """CPU time the server has used, all its threads together, from /proc (Linux)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, payload: dict
) -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, json.loads(await reader.readexactly(length)) if length else {}


async def conversation(port: int, messages: list[str], results: list[dict]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conversation_id = None
    try:
        for message in messages:
            started = time.perf_counter()
            try:
                status, reply = await post(
                    reader, writer, "/api/chat",
                    {"message": message, "conversation_id": conversation_id},
                )  # fmt: skip
            except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError) as error:
                results.append({"error": type(error).__name__})
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                results.append({"error": status, "ms": elapsed})
                continue
            conversation_id = reply["conversation_id"]
            results.append(
                {
                    "ms": elapsed,
                    "server_ms": reply["latency_ms"],
                    "route": reply["route"],
                    "searched": reply["trace"].get("searched", True),
                    "conversation_id": conversation_id,
                    "turn_id": reply["turn_id"],
                }
            )
    finally:
        writer.close()


def run_level(port: int, scripts: list[list[str]]) -> tuple[list[dict], float]:
    async def everyone() -> list[dict]:
        results: list[dict] = []
        await asyncio.gather(*(conversation(port, script, results) for script in scripts))
        return results

    started = time.perf_counter()
    results = asyncio.run(everyone())
    return results, time.perf_counter() - started


class Fleet:
    """The servers measured: one, on its own log (SQLite or PostgreSQL), or `count` on one
    PostgreSQL log behind HAProxy, as DEPLOY.md lays them out. `port` is where the
    conversations go; `database` where the log is."""

    def __init__(self, count: int, database: str, folder: Path, root: Path, port: int) -> None:
        self._postgres, self.balancer, log = None, None, {}
        self.database: Path | str = folder / "serving.db"
        if database == "postgresql":
            from tests import postgres

            self._postgres = postgres.PostgresServer(durable=True).start()
            self.database = self._postgres.database_url()
            log["ASSISTANT_DATABASE_URL"] = self.database
        if count > 1:  # each replica's models on its share of the cores
            log["ASSISTANT_MODEL_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
        self.servers: list[Server] = []
        try:
            for n in range(count):
                self.servers.append(Server(port + n, folder, root, log))
            if count > 1:
                from tests import deployment_harness

                self.balancer = deployment_harness.start_haproxy(self.servers, folder / "lb")
        except BaseException:
            self.stop()
            raise
        self.port = self.balancer.port if self.balancer else port
        self.warm_start_s = max(server.warm_start_s for server in self.servers)
        self.writer_ready_s = max(server.writer_ready_s for server in self.servers)

    def memory_mb(self) -> dict[str, float]:
        """The servers' resident memory together, now and at their peaks."""
        each = [server.memory_mb() for server in self.servers]
        return {key: round(sum(memory[key] for memory in each), 1) for key in each[0]}

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for server in self.servers:
            server.stop()
        if self._postgres is not None:
            self._postgres.stop()


def missing_turns(database: Path | str, results: list[dict]) -> int:
    """Acknowledged turns (a 200 with a turn id) not in the log."""
    acknowledged = {(r["conversation_id"], r["turn_id"]) for r in results if "turn_id" in r}
    sql = "SELECT conversation_id, id FROM turns"
    if isinstance(database, str):
        import psycopg

        with psycopg.connect(database) as connection:
            logged = {tuple(row) for row in connection.execute(sql)}
    else:
        with sqlite3.connect(database) as connection:
            logged = set(connection.execute(sql))
    return len(acknowledged - logged)


def probe_routes(port: int, candidates: list[str]) -> dict[str, list[str]]:
    """Each candidate's route as a conversation's first message, asked of the server.
    A message the router gave the writer counts as "generate" when its written answer
    passed the checks and when it failed them and got the closest past answer instead:
    either way the writer did the work. (One that got a clarifying question instead is
    left as "clarify", like every message that asks back.)"""

    async def ask_all() -> dict[str, list[str]]:
        routes: dict[str, list[str]] = {}
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for message in candidates:
            status, reply = await post(reader, writer, "/api/chat", {"message": message})
            if status == 200:
                route = reply["route"]
                if "generation" in reply.get("trace", {}) and route != "clarify":
                    route = "generate"
                routes.setdefault(route, []).append(message)
        writer.close()
        return routes

    return asyncio.run(ask_all())


def conversation_scripts(
    routes: dict[str, list[str]],
    clients: int,
    turns: int,
    seed: int,
    written_share: float = WRITTEN_SHARE,
) -> list[list[str]]:
    """Seeded conversations: answered messages (template, retrieval), and about
    `written_share` that reach the writer. Messages that hand off or ask back are left
    out: a conversation with people, or asked twice, stops being the bot's."""
    rng = random.Random(seed)
    answered = routes.get("template", []) + routes.get("retrieval", [])
    written = routes.get("generate", [])
    scripts = []
    for _ in range(clients):
        script = []
        for _ in range(turns):
            pool = written if written and rng.random() < written_share else answered
            script.append(rng.choice(pool))
        scripts.append(script)
    return scripts


def summarise(
    results: list[dict], seconds: float, cpu_seconds: float, server: Fleet, floor: dict | None
) -> dict[str, Any]:
    """One level's figures; `cpu_seconds` is the CPU time the servers spent on it."""
    answered = [r for r in results if "turn_id" in r]
    template = [r["server_ms"] for r in answered if r["route"] == "template"]
    summary: dict[str, Any] = {
        "turns": len(results),
        "replies_per_s": round(len(answered) / seconds, 1),
        "round_trip_ms": percentile_ms([r["ms"] for r in answered]),
        "server_ms": percentile_ms([r["server_ms"] for r in answered]),
        "server_template_ms": percentile_ms(template),
        "errors": sum(1 for r in results if "error" in r),
        "errors_by_kind": dict(Counter(str(r["error"]) for r in results if "error" in r)),
        "missing_turns": missing_turns(server.database, results),
        "routes": dict(Counter(r["route"] for r in answered)),
        "server_cpu_ms_per_reply": round(cpu_seconds / max(1, len(answered)) * 1000, 2),
        **server.memory_mb(),
    }
    if floor:
        # A reply runs the sentence encoder only when routing read its past questions.
        searched = sum(1 for r in answered if r["searched"]) / max(1, len(answered))
        rates = [floor[name]["batched_sentences_per_s"] for name in ENCODER_PASSES]
        summary["searched_share"] = round(searched, 3)
        summary["floor_for_this_mix"] = round(1 / (1 / rates[0] + searched / rates[1]), 1)
        summary["throughput_vs_floor"] = round(
            summary["replies_per_s"] / summary["floor_for_this_mix"], 3
        )
        summary["p50_vs_floor"] = round(summary["round_trip_ms"]["p50"] / floor["one_reply_ms"], 2)
    return summary


def candidate_messages(seed: int) -> list[str]:
    from assistant.datasets.loading import load_dataset

    dataset = load_dataset(ROOT / "data")
    texts = [e.text for e in dataset.examples] + [pair.question for pair in dataset.qa_pairs]
    rng = random.Random(seed)
    return rng.sample(texts, min(PROBE_MESSAGES, len(texts)))


# 3. The chat page ------------------------------------------------------------------------


def chat_page(
    server: Fleet, messages: list[str], customers: int, turns: int, ticks: int
) -> dict[str, Any]:
    """`customers` concurrent customers on the chat page, each in a browser session of its
    own sending `turns` messages, each message running the events a browser runs for it
    (`benchmarks/page_customers.py`): queued, run and streamed back by Gradio. Then each
    page's poll timer fires `ticks` times, as it does while a customer reads.

    They speak Gradio's HTTP protocol directly from one asyncio loop: the Gradio client
    spends about three times the server's CPU a turn, and on two shared cores it
    measured itself."""
    from benchmarks.page_customers import PageCrowd

    crowd = PageCrowd(f"http://127.0.0.1:{server.port}", customers)
    cpu, client_cpu = server.cpu_seconds(), time.process_time()
    run = crowd.converse(messages, turns)
    cpu, client_cpu = server.cpu_seconds() - cpu, time.process_time() - client_cpu
    replies = max(1, customers * turns)
    report = {
        "customers": customers,
        "turns": customers * turns,
        "events_a_message": run["events_a_message"],
        "events": run["events"],
        "replies_per_s": round(len(run["latencies_ms"]) / run["seconds"], 1),
        "round_trip_ms": percentile_ms(run["latencies_ms"]),
        "errors": run["errors"],
        "server_cpu_ms_per_reply": round(cpu / replies * 1000, 2),
        # The customers' own CPU a reply (they share the machine with the server).
        "client_cpu_ms_per_reply": round(client_cpu / replies * 1000, 2),
    }
    if ticks:
        cpu = server.cpu_seconds()
        waited = crowd.wait(ticks)
        cpu = server.cpu_seconds() - cpu
        report["poll_ticks"] = {
            "ticks": waited["ticks"],
            "errors": waited["errors"],
            "server_cpu_ms_per_tick": round(cpu / max(1, waited["ticks"]) * 1000, 2),
        }
    return report


# -----------------------------------------------------------------------------------------


def soak(server: Fleet, scripts_for, minutes: float, clients: int) -> dict[str, Any]:
    """`clients` conversations again and again for `minutes`; memory after each round."""
    samples, deadline, rounds = [], time.monotonic() + minutes * 60, 0
    replies = errors = missing = 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        results, _ = run_level(server.port, scripts_for(clients, rounds))
        replies += sum(1 for r in results if "turn_id" in r)
        errors += sum(1 for r in results if "error" in r)
        missing += missing_turns(server.database, results)
        rounds += 1
        samples.append((round((time.monotonic() - started) / 60, 2), server.memory_mb()["rss_mb"]))
    minutes_seen, rss = zip(*samples, strict=True)
    slope = float(np.polyfit(minutes_seen, rss, 1)[0]) if len(samples) > 2 else 0.0
    second_half = rss[len(rss) // 2 :]
    return {
        "minutes": minutes,
        "clients": clients,
        "rounds": rounds,
        "replies": replies,
        "errors": errors,
        "missing_turns": missing,
        "rss_mb": list(rss),
        "rss_growth_mb_per_min": round(slope, 2),
        "rss_second_half_range_mb": round(max(second_half) - min(second_half), 1),
    }


def print_table(report: dict[str, Any]) -> None:
    floor = report.get("floor")
    if floor:
        print("\nEncoder floor                 one message ms   batched sentences/s")
        for name in ENCODER_PASSES:
            row = floor[name]
            print(f"{name:<30}{row['one_message_ms_p50']:>14}{row['batched_sentences_per_s']:>22}")
        print(f"a reply's two passes at most: {floor['replies_per_s']} replies/s, "
              f"{floor['one_reply_ms']} ms; with the intent model's alone: "
              f"{floor[ENCODER_PASSES[0]]['batched_sentences_per_s']} replies/s")  # fmt: skip
    print("\nclients  replies/s    p50 ms    p95 ms    p99 ms  server p50  errors  missing  RSS MB"
          "  vs floor  CPU ms/reply  searched")  # fmt: skip
    for clients, row in report["levels"].items():
        trip = row["round_trip_ms"]
        print(
            f"{clients:>7}{row['replies_per_s']:>11}{trip['p50']:>10}{trip['p95']:>10}"
            f"{trip['p99']:>10}{row['server_ms']['p50']:>12}{row['errors']:>8}"
            f"{row['missing_turns']:>9}{row['rss_mb']:>8}{row.get('throughput_vs_floor', ''):>10}"
            f"{row.get('server_cpu_ms_per_reply', ''):>14}{row.get('searched_share', ''):>10}"
        )
    one = report["levels"].get("1")
    if one:
        print(f"single conversation, template route: server p50 "
              f"{one['server_template_ms']['p50']} ms")  # fmt: skip
    starts = report.get("warm_starts")
    if starts:
        print(f"warm start, median of {len(starts['answering_s'])}: "
              f"{starts['median_answering_s']} s (answer writer loaded at "
              f"{starts['median_writer_ready_s']} s)")  # fmt: skip
    print(f"warm start of the measured server: {report['warm_start_s']} s (answer writer "
          f"loaded at {report.get('writer_ready_s')} s)")  # fmt: skip
    page = report.get("chat_page")
    if page:
        trip = page["round_trip_ms"]
        print(f"chat page, {page['customers']} customers "
              f"({page.get('events_a_message', 1)} events a message): "
              f"{page['replies_per_s']} replies/s, "
              f"p50 {trip['p50']} ms, p95 {trip['p95']} ms, errors {page['errors']}, "
              f"server CPU {page.get('server_cpu_ms_per_reply')} ms a reply, "
              f"customers' CPU {page.get('client_cpu_ms_per_reply')} ms a reply")  # fmt: skip
        ticks = page.get("poll_ticks")
        if ticks:
            cost = ticks["server_cpu_ms_per_tick"]
            print(f"  then {ticks['ticks']} poll ticks: server CPU {cost} ms a tick, "
                  f"errors {ticks['errors']}")  # fmt: skip
    if report.get("soak"):
        s = report["soak"]
        print(f"soak {s['minutes']} min x {s['clients']}: RSS {s['rss_mb'][0]} -> "
              f"{s['rss_mb'][-1]} MB, {s['rss_growth_mb_per_min']} MB/min, {s['replies']} "
              f"replies, {s['errors']} errors, {s['missing_turns']} missing")  # fmt: skip


def measure(args: argparse.Namespace, layout: str, floor: dict | None) -> dict[str, Any]:
    """Every level (and the chat page and soak, when asked) on the servers of `layout`."""
    database, _, count = layout.partition(":")
    replicas = int(count or 1)
    report: dict[str, Any] = {"layout": layout, "replicas": replicas, "database": database}
    candidates = candidate_messages(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        server = Fleet(replicas, database, Path(folder), args.server_root, args.port)
        try:
            report["warm_start_s"] = server.warm_start_s
            report["writer_ready_s"] = server.writer_ready_s
            routes = probe_routes(server.port, candidates)
            report["probe_routes"] = {route: len(found) for route, found in routes.items()}

            def scripts_for(clients: int, round_number: int = 0) -> list[list[str]]:
                seed = args.seed * 1000 + clients + round_number
                return conversation_scripts(routes, clients, args.turns, seed, args.written_share)

            report["levels"] = {}
            for clients in args.clients:
                cpu_before = server.cpu_seconds()
                results, seconds = run_level(server.port, scripts_for(clients))
                cpu = server.cpu_seconds() - cpu_before
                report["levels"][str(clients)] = summarise(results, seconds, cpu, server, floor)
                print(f"{replicas} server(s), {clients} conversations: "
                      f"{report['levels'][str(clients)]['replies_per_s']} replies/s",
                      flush=True)  # fmt: skip
            if args.page_customers and replicas == 1:
                answered = routes.get("template", []) + routes.get("retrieval", [])
                report["chat_page"] = chat_page(
                    server, answered, args.page_customers, args.page_turns, args.page_ticks
                )
            if args.soak_minutes:
                report["soak"] = soak(server, scripts_for, args.soak_minutes, 32)
            report["server_memory_mb"] = server.memory_mb()
        finally:
            server.stop()
    return report


def warm_starts(args: argparse.Namespace) -> dict[str, Any]:
    """`--starts` starts of a server, each stopped once its answer writer is loaded: start-up
    time varies from one start to the next by more than a change to it is worth."""
    answering, writer = [], []
    for _ in range(args.starts):
        with tempfile.TemporaryDirectory() as folder:
            server = Server(args.port, Path(folder), args.server_root)
            server.stop()
        answering.append(server.warm_start_s)
        writer.append(server.writer_ready_s)
    return {
        "answering_s": answering,
        "writer_ready_s": writer,
        "median_answering_s": round(statistics.median(answering), 2),
        "median_writer_ready_s": round(statistics.median(writer), 2),
    }


def layout_name(text: str) -> str:
    """`sqlite`, `postgresql` or `postgresql:N`; several servers need the log they share."""
    database, _, count = text.partition(":")
    if database not in ("sqlite", "postgresql") or (count and not count.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: sqlite, postgresql or postgresql:N")
    if database == "sqlite" and int(count or 1) > 1:
        raise argparse.ArgumentTypeError("several servers share a PostgreSQL log: postgresql:N")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--port", type=int, default=7873)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-floor", action="store_true", help="skip the encoder floor")
    parser.add_argument("--page-customers", type=int, default=32, help="0: skip the chat page")
    parser.add_argument("--page-turns", type=int, default=5)
    parser.add_argument(
        "--page-ticks", type=int, default=5, help="poll ticks per open page after its turns"
    )
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--starts", type=int, default=5, help="warm starts measured (median)")
    parser.add_argument(
        "--written-share", type=float, default=WRITTEN_SHARE, help="turns for the answer writer"
    )
    parser.add_argument(
        "--layouts", nargs="+", default=["sqlite"], type=layout_name,
        help="sqlite, postgresql or postgresql:N (N servers behind HAProxy), each in turn",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.json")
    parser.add_argument(
        "--server-root", type=Path, default=ROOT, help="serve from this checkout (before/after)"
    )
    args = parser.parse_args()

    report: dict[str, Any] = machine()
    report["server_root"] = str(args.server_root)
    report["written_share"] = args.written_share
    floor = None if args.no_floor else encoder_floor(candidate_messages(args.seed))
    report["floor"] = floor
    if args.starts:
        report["warm_starts"] = warm_starts(args)
    layouts = [measure(args, layout, floor) for layout in args.layouts]
    report.update(layouts[0])  # the first layout's figures where they always were
    if len(layouts) > 1:
        report["layouts"] = {layout["layout"]: layout for layout in layouts}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for layout in layouts:
        print(f"\n{layout['replicas']} server(s), the log in {layout['database']}")
        print_table({**report, **layout})
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
