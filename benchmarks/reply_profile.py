"""Where a reply's time goes: a profile of one reply at a time and of concurrent batches.

    python benchmarks/reply_profile.py [--replies 300] [--concurrent 64]

The built demo assistant (`python launch.py --build-only`) is loaded in this
process with a log of its own, and answers demo messages through
`Assistant.reply`, the call the server makes, first one at a time, then
`--concurrent` at once from as many threads (so the micro-batcher gathers them
and the log commits them in groups). Every thread is profiled (the callers, the
batcher's worker and the log's writer), and the time spent in each stage is
summed from the profile: the encoders' ONNX or PyTorch runs and tokenisers,
FAISS, the log (SQLite), redaction, and the rest. Writes
benchmarks/results/reply_profile.json and prints a table with the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
from assistant.core.pipeline import Assistant  # noqa: E402
from assistant.core.settings import Settings, load_settings  # noqa: E402
from assistant.datasets.loading import load_dataset  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402

SEED = 7
# Stages by where a function lives: the first pattern found in its file or name wins.
STAGES = (
    ("encoders (ONNX Runtime / PyTorch)", ("onnxruntime", "InferenceSession", "torch")),
    ("tokenisers", ("tokenizers", "tokenization_")),
    ("FAISS search", ("faiss",)),
    ("log (SQLite)", ("sqlite3", "storage/")),
    ("redaction", ("text/redaction", "re2", "phonenumbers", "stdnum")),
    ("waiting for company / work", ("threading.py", "queue.py", "_thread", "batching.py")),
)
OTHER = "rest of the assistant and Python"


class EveryThread:
    """A cProfile profiler in each thread started while it is on (the batcher's worker, the
    log's writer, a pool's callers), and in the calling thread inside `calling_thread()`."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_in_thread(self, *_: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append(profile)
        profile.enable()  # replaces this hook in the thread

    def __enter__(self) -> EveryThread:
        threading.setprofile(self._start_in_thread)
        return self

    def __exit__(self, *_: Any) -> None:
        threading.setprofile(None)

    @contextmanager
    def calling_thread(self) -> Iterator[None]:
        profile = cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()
        try:
            yield
        finally:
            profile.disable()

    def stats(self) -> pstats.Stats:
        return pstats.Stats(*self.profiles)


def stage_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for stage, patterns in STAGES:
        if any(pattern in where for pattern in patterns):
            return stage
    return OTHER


def by_stage(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) summed by stage, in seconds."""
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        stage = stage_of(filename, name)
        totals[stage] = totals.get(stage, 0.0) + own
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def top_functions(stats: pstats.Stats, count: int = 12) -> list[dict[str, Any]]:
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:count]  # type: ignore[attr-defined]
    return [
        {"function": f"{Path(f).name}:{line}:{name}", "own_s": round(own, 3), "calls": calls}
        for (f, line, name), (_, calls, own, _, _) in rows
    ]


def profile_run(settings: Settings, messages: list[str], workers: int) -> dict[str, Any]:
    """Replies to `messages` from `workers` threads (1: one at a time) by an assistant loaded
    afresh, so that its worker threads start under the profiler; loading is not profiled."""
    with EveryThread() as profiler:
        assistant = Assistant.load(settings)
        assistant.warm_up()
        started_ids = [assistant.store.start_conversation("api") for _ in range(workers)]
        conversations = [started_ids[i % workers] for i in range(len(messages))]
        with profiler.calling_thread():
            started = time.perf_counter()
            if workers == 1:
                for message, conversation in zip(messages, conversations, strict=True):
                    assistant.reply(message, conversation)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(assistant.reply, messages, conversations))
            wall = time.perf_counter() - started
    stats = profiler.stats()
    stages = by_stage(stats)
    busy = sum(seconds for stage, seconds in stages.items() if not stage.startswith("waiting"))
    return {
        "replies": len(messages),
        "threads_profiled": len(profiler.profiles),
        "wall_s": round(wall, 2),
        "wall_ms_per_reply": round(wall * 1000 / len(messages), 2),
        "busy_ms_per_reply_by_stage": {
            stage: round(seconds * 1000 / len(messages), 2)
            for stage, seconds in stages.items()
            if not stage.startswith("waiting")
        },
        "busy_share_by_stage": {
            stage: round(seconds / busy, 3)
            for stage, seconds in stages.items()
            if not stage.startswith("waiting")
        },
        "top_functions": top_functions(stats),
    }


def print_table(result: dict[str, Any]) -> None:
    for name in ("one_at_a_time", "concurrent"):
        run = result[name]
        print(f"\n{name.replace('_', ' ')}: {run['replies']} replies, "
              f"{run['wall_ms_per_reply']} ms wall per reply (under the profiler)")  # fmt: skip
        print("| stage | ms per reply | share |\n|---|---|---|")
        for stage, ms in run["busy_ms_per_reply_by_stage"].items():
            print(f"| {stage} | {ms} | {run['busy_share_by_stage'][stage]:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS / "reply_profile.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(database_path=Path(folder) / "profile.db")
        dataset = load_dataset(settings.data_dir)
        messages = [example.text for example in dataset.examples]
        random.Random(SEED).shuffle(messages)
        result = {
            **run_facts(),
            "encoder_runtime": settings.models.encoder_runtime,
            "one_at_a_time": profile_run(settings, messages[: args.replies], 1),
            "concurrent": profile_run(settings, messages[: args.replies * 2], args.concurrent),
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    main()
