"""Fine-tuning the intent network: linear probing, then the Hugging Face `Trainer`.

`training.py` decides what to train on and for how long (the held-out run, then
the refit); this module runs one such training. A run that ends leaves
`finished.json` in its folder naming the checkpoint it kept, so a later step that
is stopped (the refit) finds it finished instead of training it again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model
from sklearn.linear_model import LogisticRegression
from transformers import (
    AutoModel,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    get_linear_schedule_with_warmup,
)

from assistant.core.base_models import load_base_model, pick_device
from assistant.core.files import write_json
from assistant.core.settings import Settings
from assistant.datasets.loading import IntentExample
from assistant.intents.classifier import checkpoint_metrics
from assistant.intents.network import IntentModel, embed_texts
from assistant.lifecycle.runs import trainer_arguments

EVAL_BATCH = 128
FINISHED_RUN = "finished.json"  # in a run's folder once it ends: the checkpoint it kept


def load_base(settings: Settings, num_labels: int) -> tuple[Any, IntentModel]:
    tokenizer, encoder = load_base_model(settings.intent_base_model, AutoModel)
    model = IntentModel(encoder, num_labels, settings.label_smoothing)
    if settings.freeze_word_embeddings:
        model.freeze_word_embeddings()
    return tokenizer, model


def initialise_head(
    model: IntentModel,
    tokenizer: Any,
    train: Sequence[IntentExample],
    label_ids: dict[str, int],
    settings: Settings,
    device: str,
) -> None:
    """Linear probing: fit the head on frozen embeddings before any fine-tuning."""
    texts = [example.text for example in train]
    features = embed_texts(model, tokenizer, texts, settings.max_length, device, "Probing")
    targets = np.array([label_ids[example.intent] for example in train])
    probe = LogisticRegression(C=settings.probe_regularisation, max_iter=1000)
    probe.fit(features, targets)
    weight, bias = probe.coef_, probe.intercept_
    if weight.shape[0] == 1:  # two classes: scikit-learn fits one logit
        weight, bias = np.vstack([-weight / 2, weight / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    model.set_head(weight, bias)


class _Encoded(torch.utils.data.Dataset):
    def __init__(
        self,
        tokenizer: Any,
        examples: Sequence[IntentExample],
        label_ids: dict[str, int],
        max_length: int,
    ) -> None:
        features = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
        self.rows = [
            {**{key: values[i] for key, values in features.items()}, "labels": label_ids[e.intent]}
            for i, e in enumerate(examples)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def fine_tune(
    model: IntentModel,
    tokenizer: Any,
    data: tuple[Sequence[IntentExample], Sequence[IntentExample]],
    label_ids: dict[str, int],
    settings: Settings,
    run_dir: Path,
    resume_from: str | None,
    callbacks: Sequence[TrainerCallback],
    stop_after: int | None = None,
) -> tuple[float, int]:
    """Fine-tune; return the epochs run and the epoch kept. With no validation data, run
    `stop_after` epochs of the full schedule (the learning rate decays over
    `settings.epochs` as in the held-out run) and keep the last."""
    train, validation = data
    finished = run_dir / FINISHED_RUN
    if resume_from and finished.is_file():  # this run ended; a step after it was stopped
        record = json.loads(finished.read_text(encoding="utf-8"))
        load_model(model, run_dir / record["kept"] / "model.safetensors")
        return record["epochs_run"], record["best_epoch"]
    train_set = _Encoded(tokenizer, train, label_ids, settings.max_length)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    evaluate = bool(validation)
    trainer = Trainer(
        model=model,
        args=trainer_arguments(
            run_dir,
            settings.epochs if evaluate else (stop_after or settings.epochs),
            settings.batch_size,
            EVAL_BATCH,
            settings.seed,
            pick_device(settings.device),
            settings.bf16,
            best_metric="selection",
            evaluate=evaluate,
        ),
        train_dataset=train_set,
        # Sorted by length, so evaluation batches carry little padding.
        eval_dataset=_Encoded(
            tokenizer, sorted(validation, key=lambda e: len(e.text)), label_ids, settings.max_length
        )
        if evaluate
        else None,
        compute_metrics=lambda p: checkpoint_metrics(p.predictions, p.label_ids),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        optimizers=_optimiser(model, settings, steps_per_epoch * settings.epochs),
        callbacks=[
            *([EarlyStoppingCallback(settings.early_stopping_patience)] if evaluate else []),
            *callbacks,
        ],
    )
    trainer.train(resume_from_checkpoint=resume_from)
    epochs_run = float(trainer.state.epoch or 0)
    best_step = trainer.state.best_global_step
    best_epoch = max(round(best_step / steps_per_epoch) if best_step else round(epochs_run), 1)
    if trainer.state.best_model_checkpoint:
        record = {"kept": Path(trainer.state.best_model_checkpoint).name, "best_epoch": best_epoch}
        write_json(finished, {**record, "epochs_run": epochs_run})
    return epochs_run, best_epoch


def _optimiser(model: IntentModel, settings: Settings, total_steps: int):
    """AdamW with a larger learning rate for the head than for the pretrained encoder."""
    encoder = [p for p in model.encoder.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [
            {"params": encoder, "lr": settings.learning_rate},
            {"params": list(model.head.parameters()), "lr": settings.head_learning_rate},
        ],
        weight_decay=settings.weight_decay,
    )
    warmup = int(settings.warmup_ratio * total_steps)
    return optimiser, get_linear_schedule_with_warmup(optimiser, warmup, total_steps)
