"""What every benchmark's result records about its run: the machine, the date, the command."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path


def run_facts() -> dict[str, str]:
    """The machine (architecture, cores, platform), the date in UTC and the command that
    ran the benchmark, as it would be typed from the repository's root."""
    script = f"benchmarks/{Path(sys.argv[0]).name}"
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", script, *sys.argv[1:]]),
    }
