"""Intent classification on BANKING77 and CLINC150: the project's defaults against baselines.

    python benchmarks/intents.py [--datasets banking77 clinc150] [--seeds 13 14 15]
                                 [--skip-setfit] [--reuse] [--output NAME]

For each dataset, on the same splits: the assistant's classifier trained with
the default settings (validation carved from the training file for BANKING77,
CLINC150's own `val`/`oos_val`), frozen MiniLM sentence embeddings + logistic
regression (C=10), and SetFit on the same MiniLM. Fallback thresholds of every
model are chosen on validation data with the same rule; figures come from the
test split only. The assistant's model is also measured in its int8 ONNX form
(accuracy and speed; a model saved without ONNX forms runs on PyTorch, as the
row's `runtime` says). Every model is trained once per seed (the
seed also draws BANKING77's validation split) and the table gives the mean and
the spread (sample standard deviation) over the seeds: no single seed's figure
is the result. With the refit on (`ASSISTANT_REFIT_ON_VALIDATION=true`; off by
default, see README) the model that held validation out, whose temperature and
fallback the refit keeps, is measured too, in its own row. `--reuse` measures a model this benchmark
trained before (its training time is the one recorded then) instead of training
again. Writes benchmarks/results/intents.json (or `--output NAME`) and prints
a table beside the published figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "datasets"
sys.path.insert(0, str(ROOT))

from assistant.core.base_models import resolve_model_path  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402
from assistant.datasets.corpus import IntentFiles, file_splits  # noqa: E402
from assistant.datasets.loading import IntentExample, checksum  # noqa: E402
from assistant.intents.calibration import fit_temperature, softmax  # noqa: E402
from assistant.intents.classifier import BertIntentClassifier  # noqa: E402
from assistant.intents.fitting import calibrate  # noqa: E402
from assistant.intents.rejection import choose_policy, outcome, target_indices  # noqa: E402
from assistant.intents.training import fit_intent_classifier, publish_fitted  # noqa: E402

OUT_OF_SCOPE = "oos"
PUBLISHED = {
    "banking77": "BERT-Large 93.66, USE+ConveRT 93.36 (Casanueva et al. 2020)",
    "clinc150": "BERT-Large + threshold 96.2 in-scope / 52.3 OOS recall (Larson et al. 2019)",
}
SETFIT_STEPS = 120  # contrastive pair batches (about 2 s each on 2 cores): a CPU budget
LATENCY_MESSAGES = 200


@dataclass(frozen=True)
class Splits:
    train: list[IntentExample]
    validation: list[IntentExample]
    test: list[IntentExample]
    out_of_scope_label: str | None


def banking77(settings: Settings) -> Splits:
    folder = SHARED / "banking77"
    files = IntentFiles(folder / "train.csv", None, folder / "test.csv", "text", "category")
    splits = file_splits(files, settings)
    return Splits(splits.train, splits.validation, splits.test, None)


def clinc150(settings: Settings) -> Splits:
    data = json.loads((SHARED / "clinc150" / "data_full.json").read_text(encoding="utf-8"))

    def part(name: str) -> list[IntentExample]:
        in_scope = [IntentExample(text, intent) for text, intent in data[name]]
        return in_scope + [IntentExample(text, OUT_OF_SCOPE) for text, _ in data[f"oos_{name}"]]

    return Splits(part("train"), part("val"), part("test"), OUT_OF_SCOPE)


DATASETS = {"banking77": banking77, "clinc150": clinc150}


def figures(
    probabilities: np.ndarray,
    labels: list[str],
    examples: list[IntentExample],
    policy: Any,
    oos: str | None,
    familiarity: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy on in-scope messages (no fallback), and with the fallback: in-scope accuracy
    and out-of-scope recall, as CLINC150 reports them."""
    targets = target_indices([e.intent for e in examples], labels, oos)
    in_scope = targets >= 0
    predicted = probabilities.argmax(axis=1)
    result = outcome(probabilities, targets, labels, policy, oos, familiarity)
    return {
        "accuracy": float((predicted == targets)[in_scope].mean()),
        "in_scope_accuracy_with_fallback": result.in_scope_accuracy,
        "out_of_scope_recall": result.out_of_scope_recall,
        "fallback": policy.to_dict() | {"per_intent": len(policy.per_intent)},
    }


HELD_OUT_MODEL = "  same, before the refit (validation held out)"
HELD_OUT_KEY = "benchmark_held_out_model_test"  # its test figures, in the published metadata


def train_ours(splits: Splits, settings: Settings) -> dict[str, Any]:
    """Train and publish with the defaults; the model that held validation out (the one
    the refit takes its temperature and fallback from) is measured on test before it goes,
    and its figures are kept in the published metadata."""
    started = time.perf_counter()
    fitted = fit_intent_classifier(
        splits.train, splits.validation, settings, checksum(splits.train), fresh=True
    )
    extra = {}
    scoring_started = time.perf_counter()
    if fitted.held_out is not None:
        held_out = fitted.held_out
        logits, embeddings = held_out.scores([e.text for e in splits.test])
        extra[HELD_OUT_KEY] = figures(
            softmax(logits / held_out.temperature),
            held_out.labels,
            splits.test,
            held_out.rejection,
            splits.out_of_scope_label,
            held_out.familiarity(embeddings)[0],
        )
    started += time.perf_counter() - scoring_started  # scoring the test set is not training
    report = publish_fitted(fitted, settings, checksum(splits.train), (), started, extra)
    return json.loads((report.path / "classifier.json").read_text(encoding="utf-8"))


def run_ours(splits: Splits, settings: Settings, reuse: bool) -> list[dict[str, Any]]:
    """The published model's row and, when it was refit, the held-out model's row."""
    if reuse and (settings.intent_models_dir / "CURRENT").is_file():
        metadata = BertIntentClassifier.load(settings.intent_models_dir, "cpu").metadata
        print(f"Reusing model {metadata['version']}")
    else:
        metadata = train_ours(splits, settings)
    metrics = metadata["metrics"]
    texts = [e.text for e in splits.test]
    rows = {}
    fitted = None
    for int8 in (False, True):
        runtime = "int8" if int8 else "torch"
        classifier = BertIntentClassifier.load(settings.intent_models_dir, "cpu", runtime=runtime)
        if fitted is None:
            with_familiarity(classifier, splits, settings)
        if fitted is not None:
            classifier.known, classifier.rejection = fitted.known, fitted.rejection
            classifier.temperature = fitted.temperature
        fitted = fitted or classifier
        speed = measure_speed(classifier, texts)
        logits, embeddings = classifier.scores(texts)
        nearest = classifier.familiarity(embeddings)
        rows["int8" if int8 else "fp32"] = {
            **figures(
                softmax(logits / classifier.temperature),
                classifier.labels,
                splits.test,
                classifier.rejection,
                splits.out_of_scope_label,
                None if nearest is None else nearest[0],
            ),
            **speed,
            "runtime": classifier.runtime,
        }
    validation = metrics["validation"]
    ours = {
        "model": "assistant (defaults)",
        "train_minutes": round(metrics["training_seconds"] / 60, 2),
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics.get("best_epoch"),
        "refit": metadata.get("refit"),
        "validation_accuracy": validation["accuracy"],
        "ece_before": validation["ece_before_calibration"],
        "ece_after": validation["ece_after_calibration"],
        **rows["fp32"],
        "int8": rows["int8"],
        "version": metadata["version"],
    }
    if HELD_OUT_KEY not in metadata:
        return [ours]
    return [ours, {"model": HELD_OUT_MODEL, **metadata[HELD_OUT_KEY]}]


def with_familiarity(
    classifier: BertIntentClassifier, splits: Splits, settings: Settings
) -> BertIntentClassifier:
    """A model trained before the familiarity check, fitted with it the way training now
    fits it (on the training and validation splits); a newer model as it is."""
    if classifier.known is None:
        calibrate(classifier, splits.train, splits.validation, settings)
    return classifier


def measure_speed(classifier: BertIntentClassifier, texts: list[str]) -> dict[str, float]:
    """Batched throughput over the test set and one-message-at-a-time latency."""
    classifier.probabilities(texts[:64])  # warm up
    started = time.perf_counter()
    classifier.probabilities(texts)
    batched = len(texts) / (time.perf_counter() - started)
    singles = []
    for text in texts[:LATENCY_MESSAGES]:
        tick = time.perf_counter()
        classifier.probabilities([text])
        singles.append((time.perf_counter() - tick) * 1000)
    return {
        "batched_messages_per_second": round(batched, 1),
        "single_message_ms_p50": round(float(np.percentile(singles, 50)), 2),
    }


def run_frozen_logistic(splits: Splits, settings: Settings) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    encoder = SentenceTransformer(resolve_model_path(settings.intent_base_model), device="cpu")

    def embed(examples: list[IntentExample]) -> np.ndarray:
        return encoder.encode([e.text for e in examples], batch_size=128, normalize_embeddings=True)

    labels = sorted({e.intent for e in splits.train})
    index = {label: i for i, label in enumerate(labels)}
    model = LogisticRegression(C=10, max_iter=2000)
    model.fit(embed(splits.train), [index[e.intent] for e in splits.train])
    minutes = (time.perf_counter() - started) / 60
    return {
        "model": "frozen MiniLM + logistic regression (C=10)",
        "train_minutes": round(minutes, 2),
        **calibrated_figures(
            model.predict_log_proba(embed(splits.validation)),
            model.predict_log_proba(embed(splits.test)),
            labels,
            splits,
            settings,
        ),
    }


def calibrated_figures(
    validation_logits: np.ndarray,
    test_logits: np.ndarray,
    labels: list[str],
    splits: Splits,
    settings: Settings,
) -> dict[str, Any]:
    """Temperature and fallback fitted on validation exactly as for our model, then tested."""
    index = {label: i for i, label in enumerate(labels)}
    targets = np.array([index[e.intent] for e in splits.validation])
    temperature = fit_temperature(validation_logits, targets)
    oos = splits.out_of_scope_label
    validation_targets = target_indices([e.intent for e in splits.validation], labels, oos)
    policy = choose_policy(
        softmax(validation_logits / temperature),
        validation_targets,
        labels,
        settings.max_accuracy_loss,
        oos,
    )
    return figures(softmax(test_logits / temperature), labels, splits.test, policy, oos)


def run_setfit(splits: Splits, settings: Settings) -> dict[str, Any]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    started = time.perf_counter()
    model = SetFitModel.from_pretrained(resolve_model_path(settings.intent_base_model))
    train = Dataset.from_dict(
        {"text": [e.text for e in splits.train], "label": [e.intent for e in splits.train]}
    )
    arguments = TrainingArguments(
        output_dir=str(RESULTS / "setfit-checkpoints"),
        batch_size=32,
        num_iterations=1,
        max_steps=SETFIT_STEPS,
        seed=settings.seed,
        show_progress_bar=True,
        report_to="none",
    )
    Trainer(model=model, args=arguments, train_dataset=train).train()
    minutes = (time.perf_counter() - started) / 60
    labels = list(model.model_head.classes_)
    scores = {
        name: np.log(np.clip(model.predict_proba([e.text for e in part]).numpy(), 1e-12, 1))
        for name, part in (("validation", splits.validation), ("test", splits.test))
    }
    return {
        "model": f"SetFit on MiniLM (1 pair per example, {SETFIT_STEPS} steps)",
        "train_minutes": round(minutes, 2),
        **calibrated_figures(scores["validation"], scores["test"], labels, splits, settings),
    }


SUMMARISED = (
    "accuracy",
    "in_scope_accuracy_with_fallback",
    "out_of_scope_recall",
    "train_minutes",
)


def spread(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Mean, sample standard deviation and per-seed values of each of `keys` over runs."""
    summary: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            summary[key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "per_seed": values,
            }
    return summary


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation over seeds of each figure the table shows."""
    seeds = [r["seed"] for r in runs]
    return {"model": runs[0]["model"], "seeds": seeds, **spread(runs, SUMMARISED)}


def _cell(summary: dict[str, Any], key: str, scale: float = 100.0) -> str:
    if key not in summary:
        return f"{'-':>13}"
    figure = summary[key]
    return f"{scale * figure['mean']:6.2f}±{scale * figure['std']:<5.2f}"


def print_table(results: dict[str, Any]) -> None:
    header = f"{'dataset':<10} {'model':<46} {'acc':>13} {'in-sc':>13} {'oos-r':>13} {'min':>13}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, result in results["datasets"].items():
        for summary in result["summary"]:
            print(
                f"{name:<10} {summary['model'][:46]:<46} {_cell(summary, 'accuracy')} "
                f"{_cell(summary, 'in_scope_accuracy_with_fallback')} "
                f"{_cell(summary, 'out_of_scope_recall')} {_cell(summary, 'train_minutes', 1)}"
            )
        print(f"{name:<10} published: {PUBLISHED[name]}")
    print(
        "mean ± standard deviation over the seeds. acc: in-scope accuracy, no fallback; "
        "in-sc: with the fallback; oos-r: out-of-scope recall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--skip-setfit", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="measure, not retrain, our model")
    parser.add_argument("--output", default="intents.json", help="file name in results/")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"datasets not found at {SHARED}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python " + " ".join(sys.argv),
        "datasets": {},
    }
    output = RESULTS / args.output
    if output.is_file():  # keep the datasets this run does not measure
        previous = json.loads(output.read_text(encoding="utf-8")).get("datasets", {})
        results["datasets"] = {k: v for k, v in previous.items() if k not in args.datasets}
    for name in args.datasets:
        runs: dict[str, list[dict[str, Any]]] = {}
        result = {"published": PUBLISHED[name], "runs": runs, "summary": []}
        results["datasets"][name] = result
        for seed in args.seeds:
            settings = Settings(
                models_dir=RESULTS / "models" / name / f"seed-{seed}",
                out_of_scope_label=OUT_OF_SCOPE,
                device="cpu",
                seed=seed,
            )
            splits = DATASETS[name](settings)
            print(
                f"== {name}, seed {seed}: {len(splits.train)} train, "
                f"{len(splits.validation)} validation, {len(splits.test)} test"
            )
            models = [
                partial(run_ours, splits, settings, args.reuse),
                partial(run_frozen_logistic, splits, settings),
            ]
            if not args.skip_setfit:
                models.append(partial(run_setfit, splits, settings))
            for run in models:  # saved after each model, so a stopped run keeps what it measured
                produced = run()
                for row in produced if isinstance(produced, list) else [produced]:
                    row = {**row, "seed": seed}
                    runs.setdefault(row["model"], []).append(row)
                result["summary"] = [summarise(rows) for rows in runs.values()]
                output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_table(results)
    print(f"\nWrote {output}")


if __name__ == "__main__":
    main()
