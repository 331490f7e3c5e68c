"""Time of every shared text pattern and of the redactor on hostile input.

    python benchmarks/patterns.py

Each pattern (assistant/text/patterns.py, all RE2) and the redactor run on adversarial
inputs (a pattern's prefix, then one filler repeated) of 1k, 10k and 100k characters; the
slowest input per size is reported. As the "before" figure, the old backtracking `re`
order-number pattern runs on "order" followed by spaces at 500, 1,000 and 2,000 characters.
Writes benchmarks/results/patterns.json and prints a table.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
from assistant.text.patterns import ALL_PATTERNS  # noqa: E402
from assistant.text.redaction import Redactor  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
PREFIXES = ("order", "PP-", "+", "@", "a@", " dot ", "(at)", "card ")
FILLERS = (" ", "1", "12 ", "123-", "1.", "DE89 ", "\uff11")
# The order-number pattern before RE2 (commit ac4e3ef), which backtracks cubically.
OLD_ORDER_ID = re.compile(
    r"\b(?:PP[-\s]?(?P<prefixed>\d{6})|(?:order|purchase)\s*(?:number|no\.?|nr\.?)?\s*#?\s*(?P<bare>\d{6}))\b",
    re.IGNORECASE,
)


def inputs(size: int) -> list[str]:
    return [(p + f * size)[:size] + "!" for p in PREFIXES for f in FILLERS]


def slowest(run, texts: list[str]) -> float:
    worst = 0.0
    for text in texts:
        start = time.perf_counter()
        run(text)
        worst = max(worst, time.perf_counter() - start)
    return worst


def main() -> None:
    redact = Redactor(["help@pebbleandpine.example", "+1 555 0142"])
    rows: dict[str, dict[str, float]] = {}
    for size in SIZES:
        texts = inputs(size)
        for name, pattern in ALL_PATTERNS.items():
            rows.setdefault(name, {})[str(size)] = slowest(pattern.search, texts)
        rows.setdefault("Redactor", {})[str(size)] = slowest(redact, texts)
    before = {}
    for size in (500, 1_000, 2_000):
        text = "order" + " " * (size - 5)
        before[str(size)] = slowest(OLD_ORDER_ID.search, [text])
    report = {
        **run_facts(),
        "python": platform.python_version(),
        "seconds_slowest_input": rows,
        "before_re_order_id_seconds": before,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "patterns.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{'pattern':<22}" + "".join(f"{size:>12,}" for size in SIZES))
    for name, times in rows.items():
        print(f"{name:<22}" + "".join(f"{times[str(s)]:>12.4f}" for s in SIZES))
    print(
        "before: re ORDER_ID on 'order' + spaces: "
        + ", ".join(f"{k}: {v:.2f} s" for k, v in before.items())
    )


if __name__ == "__main__":
    main()
