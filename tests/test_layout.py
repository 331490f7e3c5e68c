"""The package's shape: small modules, no import cycles, a serving path free of training code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "assistant"
MAX_MODULE_LINES = 400
SERVING_ENTRY_POINTS = (
    "assistant.channels.server",
    "assistant.channels.api",
    "assistant.channels.web_chat",
    "assistant.staff.agent_page",
    "assistant.staff.admin_page",
    "assistant.lifecycle.hot_reload",
)
TRAINING_MODULES = (
    "assistant.intents.training",
    "assistant.intents.fine_tuning",
    "assistant.intents.search",
    "assistant.generation.training",
    "assistant.lifecycle.build",
    "assistant.lifecycle.retrain",
    "assistant.lifecycle.runs",
    "optuna",
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _top_level_imports(path: Path) -> set[str]:
    """Modules of this package imported when `path` is imported (not inside functions)."""
    imported = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assistant"):
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.startswith("assistant")}
    return imported


def test_no_module_is_over_the_limit():
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_modules_import_each_other_without_cycles():
    modules = _modules()
    graph = {name: _top_level_imports(path) & set(modules) for name, path in modules.items()}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return
        if name in done:
            return
        for target in graph[name]:
            visit(target, [*trail, name])
        done.add(name)

    done: set[str] = set()
    for name in graph:
        visit(name, [])
    assert cycles == []


def test_the_serving_path_imports_no_training_code():
    probe = (
        "import importlib, json, sys\n"
        f"for name in {SERVING_ENTRY_POINTS!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {TRAINING_MODULES!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
