import os
import subprocess
import sys

from assistant.generation.training import RECIPE_FIELDS
from assistant.intents.training import TRAINING_FIELDS

from .conftest import ROOT


def run_launch(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "launch.py", "--build-only"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_second_launch_reuses_what_was_built(built_settings):
    names = [
        "data_dir",
        "models_dir",
        "index_dir",
        "database_path",
        *TRAINING_FIELDS,
        *RECIPE_FIELDS,
    ]
    values = {name: getattr(built_settings, name) for name in names}
    result = run_launch(
        **{f"ASSISTANT_{name.upper()}": str(v) for name, v in values.items() if v is not None}
    )
    assert result.returncode == 0, result.stderr
    assert "Built nothing (all up to date)" in result.stdout


def test_launch_reports_broken_data_without_a_traceback(demo_slice):
    (demo_slice / "intents.csv").write_text("text,intent\nhello\n", encoding="utf-8")
    result = run_launch(ASSISTANT_DATA_DIR=str(demo_slice))
    assert result.returncode == 2
    assert "intents.csv, line 2" in result.stderr
    assert "Traceback" not in result.stderr
