"""Reply latency through `POST /api/chat` on a real server, over demo questions.

    python benchmarks/api_latency.py [--questions 200] [--concurrency 1] [--port 7871]

Starts `assistant serve` on a local port (the models must be built: run
`python launch.py --build-only` first), sends a fixed, seeded sample of demo
customer messages, one new conversation each, and reports client-side round-trip
and server-side latency percentiles. Writes benchmarks/results/api_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from assistant.datasets.loading import load_intent_examples  # noqa: E402


def sample_questions(count: int, seed: int) -> list[str]:
    """`count` demo messages, seeded; each once while there are enough of them."""
    texts = [example.text for example in load_intent_examples(ROOT / "data" / "intents.csv")]
    rng = random.Random(seed)
    if count <= len(texts):
        return rng.sample(texts, count)
    return rng.sample(texts, len(texts)) + rng.choices(texts, k=count - len(texts))


def start_server(port: int, environment: dict[str, str] | None = None) -> subprocess.Popen:
    """`assistant serve` on `port`, with `environment` added to this one's."""
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **(environment or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                "the server exited; build the models first: python launch.py --build-only"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the server did not become ready within 120 s")


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.array(values)
    return {
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
        "mean": round(statistics.fmean(values), 1),
        "max": round(float(array.max()), 1),
    }


def run(questions: list[str], port: int, concurrency: int) -> dict:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def ask(message: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = client.post("/api/chat", json={"message": message})
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000, response.json()

    for message in questions[:5]:  # let connections and caches settle
        ask(message)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(ask, questions))
    elapsed = time.perf_counter() - started
    return {
        "questions": len(questions),
        "concurrency": concurrency,
        "round_trip_ms": percentiles([latency for latency, _ in results]),
        "server_ms": percentiles([body["latency_ms"] for _, body in results]),
        "throughput_per_s": round(len(questions) / elapsed, 1),
        "routes": dict(Counter(body["route"] for _, body in results)),
        "model_version": results[0][1]["model_version"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    server = start_server(args.port)
    try:
        report = run(sample_questions(args.questions, args.seed), args.port, args.concurrency)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"api_latency_c{args.concurrency}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{'measure':<22}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'max ms':>10}")
    for name in ("round_trip_ms", "server_ms"):
        row = report[name]
        print(f"{name:<22}{row['p50']:>10}{row['p95']:>10}{row['mean']:>10}{row['max']:>10}")
    print(
        f"{report['questions']} questions, concurrency {args.concurrency}: "
        f"{report['throughput_per_s']} replies/s; routes {report['routes']}"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
