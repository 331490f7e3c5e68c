"""Failover of stateless replicas: one killed with SIGKILL under load, behind each balancer.

    python benchmarks/replicas.py [--conversations 64] [--turns 6] [--repeat 3]
                                  [--balancers haproxy nginx] [--built FOLDER]

The same harness as tests/test_deployment.py (tests/deployment_harness.py): a PostgreSQL
server of its own, two `assistant serve` replicas sharing one models folder, and HAProxy
and nginx with the configs in deploy/. For each balancer, `--conversations` customers
send `--turns` messages each through it: once with no kill, to compare with, then
`--repeat` times killing one replica with SIGKILL once a third of the replies are in
(the replicas take turns). It counts requests, errors a customer saw (and which were
replies cut off after they began), acknowledged turns missing from PostgreSQL
afterwards, turns logged that no customer saw acknowledged, the failover time (from the
kill until a request sent after it succeeds), and for HAProxy the seconds until its
health checks took the replica out and how many requests it sent to the other replica.
The killed replica is started again before the next run.

The models are the tests' small ones, trained on a slice of the demo data into a
temporary folder (about 2 minutes on 2 cores), or those under `--built` (a folder
with data/, models/ and index/ as the tests build them), so the figures are about the
deployment, not the models. Writes benchmarks/results/replicas.json (machine, date and
command inside) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
from benchmarks.run_facts import run_facts  # noqa: E402
from tests import deployment_harness as harness  # noqa: E402
from tests import postgres  # noqa: E402
from tests.conftest import slice_settings, write_demo_slice  # noqa: E402

REPLICAS = 2


def built_settings(folder: Path, built: Path | None):
    """Settings on the tests' small models: those under `built`, or trained now."""
    from assistant.datasets.loading import load_dataset
    from assistant.lifecycle.build import ensure_artifacts

    if built is not None:
        return slice_settings(built, database_url="")
    write_demo_slice(folder / "data")
    settings = slice_settings(folder, database_url="")
    print("Training the small models on the demo slice...", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's log lines, off the table
        ensure_artifacts(load_dataset(settings.data_dir), settings, announce=lambda _: None)
    return settings


def start_balancer(kind: str, replicas: list[harness.Replica], folder: Path) -> harness.Balancer:
    start = harness.start_haproxy if kind == "haproxy" else harness.start_nginx
    return start(replicas, folder / kind)


def one_run(
    balancer: harness.Balancer,
    replicas: list[harness.Replica],
    victim: harness.Replica | None,
    database_url: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One load, killing `victim` a third of the way through (None: no kill, the
    baseline); the figures of the run."""
    harness.wait_until_checked_up(balancer, replicas)
    taken_out: dict[str, float | None] = {}

    def kill() -> None:
        assert victim is not None
        killed = time.monotonic()
        victim.kill()
        if balancer.kind == "haproxy":
            taken_out["seconds"] = harness.seconds_until_down(balancer, victim, killed)

    before = retries(balancer)
    kill_after = args.kill_after or args.conversations * args.turns // 3
    result = harness.run_load(
        balancer.url, args.conversations, args.turns, kill_after, kill if victim else None
    )
    logged = harness.logged_turns(database_url, result.conversation_ids.values())
    acknowledged = set(result.acknowledged)
    figures = {
        "balancer": balancer.kind,
        "killed": victim.name if victim else "none",
        **result.summary(),
        "lost_turns": len(acknowledged - logged),
        "logged_unacknowledged_turns": len(logged - acknowledged),
    }
    if balancer.kind == "haproxy" and victim is not None:
        after = retries(balancer)
        figures["health_check_took_it_out_seconds"] = taken_out.get("seconds")
        figures["balancer_retries"] = after[0] - before[0]
        figures["balancer_redispatches"] = after[1] - before[1]
    return figures


def retries(balancer: harness.Balancer) -> tuple[int, int]:
    """HAProxy's retries and redispatches so far on the API backend."""
    if balancer.kind != "haproxy":
        return 0, 0
    row = harness.haproxy_server(balancer, "api", "BACKEND")
    return int(row.get("wretr") or 0), int(row.get("wredis") or 0)


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    settings = built_settings(folder / "built", args.built)
    server = postgres.PostgresServer().start()
    try:
        database_url = server.database_url()
        config = harness.write_replica_config(folder / "assistant.toml", [], ["127.0.0.1"])
        key = Fernet.generate_key().decode("ascii")
        environment = harness.replica_environment(settings, database_url, key, config)
        started = time.monotonic()
        replicas = harness.start_replicas(REPLICAS, environment, folder)
        replicas_ready = round(time.monotonic() - started, 1)
        with harness.stopping(*replicas):
            runs = []
            for kind in args.balancers:
                balancer = start_balancer(kind, replicas, folder)
                with harness.stopping(balancer):
                    runs.append(one_run(balancer, replicas, None, database_url, args))
                    print(row(runs[-1]), flush=True)
                    for repeat in range(args.repeat):
                        victim = replicas[repeat % REPLICAS]
                        runs.append(one_run(balancer, replicas, victim, database_url, args))
                        print(row(runs[-1]), flush=True)
                        restarted = time.monotonic()
                        harness.wait_until_healthy([victim.start()])
                        runs[-1]["restart_seconds"] = round(time.monotonic() - restarted, 1)
    finally:
        server.stop()
    return {"replicas": REPLICAS, "replicas_ready_seconds": replicas_ready, "runs": runs}


HEADER = (
    f"{'balancer':<9}{'killed':<10}{'requests':>9}{'errors':>7}{'cut':>5}{'lost':>6}"
    f"{'extra':>7}{'failover s':>12}{'out s':>7}{'retried':>9}{'p50 ms':>8}{'p99 ms':>8}"
)


def row(figures: dict[str, Any]) -> str:
    latency = figures["latency_ms"]
    out = figures.get("health_check_took_it_out_seconds")
    retried = figures.get("balancer_redispatches")
    return (
        f"{figures['balancer']:<9}{figures['killed']:<10}{figures['requests']:>9}"
        f"{figures['errors']:>7}{figures['cut_mid_response']:>5}{figures['lost_turns']:>6}"
        f"{figures['logged_unacknowledged_turns']:>7}{figures['failover_seconds']!s:>12}"
        f"{'-' if out is None else out:>7}{'-' if retried is None else retried:>9}"
        f"{latency.get('p50', 0):>8}{latency.get('p99', 0):>8}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3, help="runs per balancer")
    parser.add_argument("--kill-after", type=int, help="replies before the kill (a third)")
    parser.add_argument("--balancers", nargs="+", default=["haproxy", "nginx"])
    parser.add_argument("--built", type=Path, help="a folder of built small models")
    args = parser.parse_args()
    missing = harness.missing_for_replicas()
    if "nginx" in args.balancers and harness.missing_nginx():
        missing = missing or harness.missing_nginx()
    if missing:
        sys.exit(f"cannot run: {missing}")
    with tempfile.TemporaryDirectory(prefix="replicas-") as folder:
        print(HEADER, flush=True)
        report = run(args, Path(folder))
    report |= {
        "conversations": args.conversations,
        "turns": args.turns,
        "columns": {
            "errors": "requests a customer saw fail (none retried by the load generator)",
            "cut": "of those, replies cut off after they began (not retryable)",
            "lost": "acknowledged turns missing from PostgreSQL afterwards",
            "extra": "turns logged that no customer saw acknowledged",
            "failover s": "from the kill until a request sent after it succeeded",
            "out s": "until HAProxy's health checks took the killed replica out",
            "retried": "requests HAProxy sent to the other replica",
        },
        **run_facts(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "replicas.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
