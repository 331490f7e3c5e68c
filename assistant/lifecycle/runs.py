"""Resumable training runs driven by the Hugging Face `Trainer`, shared by both models.

A run keeps its checkpoints under a folder named by a hash of everything that
shapes the result (data, labels, recipe), so giving the same command again after
a stop continues that run, and any change starts a new one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

RUNS_DIR = ".runs"


def run_directory(models_dir: Path, key: Any) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return models_dir / RUNS_DIR / digest


def resume_point(run_dir: Path, fresh: bool) -> str | None:
    """The checkpoint to continue from, if an earlier run with this key was stopped."""
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    checkpoint = get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None
    if checkpoint:
        print(f"Resuming the interrupted training run from {checkpoint}")
    return checkpoint


def trainer_arguments(
    run_dir: Path,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    device: str,
    bf16: bool = False,
    best_metric: str = "loss",
    evaluate: bool = True,
    **extra: Any,
) -> TrainingArguments:
    """Evaluate and checkpoint every epoch; keep the epoch with the best validation
    `best_metric`: the lowest loss, or the highest of any other metric. Without
    `evaluate` (no validation data), checkpoint every epoch and keep the last."""
    return TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size,
        train_sampling_strategy="group_by_length",  # similar lengths together: less padding
        eval_strategy="epoch" if evaluate else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=evaluate,
        metric_for_best_model=best_metric if evaluate else None,
        greater_is_better=best_metric != "loss" if evaluate else None,
        logging_strategy="epoch",
        report_to="none",
        seed=seed,
        use_cpu=device == "cpu",
        bf16=bf16,
        dataloader_num_workers=0,
        disable_tqdm=False,
        **extra,
    )
