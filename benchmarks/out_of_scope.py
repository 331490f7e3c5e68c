"""Out-of-scope detection: CLINC150 full and a deployment on another company's data.

    python benchmarks/out_of_scope.py [--parts clinc150 deployment] [--seeds 13 14 15]
                                      [--deployment-seed 13] [--with-generator]

CLINC150 full: every choice on `val`/`oos_val`, every figure on `test`/`oos_test`.
For each seed, the assistant's classifier (the one `benchmarks/intents.py` trained
with the defaults, trained here if missing) with its fallback (probability,
margin and familiarity, chosen on validation by `choose_policy`), beside two
baselines on frozen MiniLM embeddings: logistic regression with a probability
threshold (and margin), and the same with a nearest-question similarity
threshold. Also the whole trade-off curve (in-scope accuracy against
out-of-scope recall, on test) as a PNG, and in-scope accuracy at BERT-Large's
52.3 % recall, read off that curve.

Deployment: see `oos_deployment.py`. Writes benchmarks/results/out_of_scope.json
and out_of_scope.png, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "datasets"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from intents import OUT_OF_SCOPE, clinc150, spread, with_familiarity  # noqa: E402
from oos_deployment import run_deployment  # noqa: E402

from assistant.core.base_models import resolve_model_path  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402
from assistant.datasets.loading import IntentExample, checksum  # noqa: E402
from assistant.intents.calibration import fit_temperature, softmax  # noqa: E402
from assistant.intents.classifier import BertIntentClassifier  # noqa: E402
from assistant.intents.familiarity import known_examples  # noqa: E402
from assistant.intents.rejection import (  # noqa: E402
    RejectionPolicy,
    choose_policy,
    outcome,
    target_indices,
)
from assistant.intents.training import train_intent_classifier  # noqa: E402

PUBLISHED = {
    "BERT-Large + threshold (Larson et al. 2019)": (96.2, 52.3),
    "BERT-Large + oos-train (Larson et al. 2019)": (96.9, 40.3),
    "Rasa (Larson et al. 2019)": (91.5, 45.3),
}
PUBLISHED_RECALL = 0.523
SUMMARISED = ("in_scope_accuracy", "out_of_scope_recall", "in_scope_accuracy_at_published_recall")


@dataclass(frozen=True)
class Scored:
    """One model's view of a split: calibrated probabilities and familiarity."""

    probabilities: np.ndarray
    familiarity: np.ndarray | None
    targets: np.ndarray  # label index, -1 out of scope


def clinc_settings(seed: int) -> Settings:
    return Settings(
        models_dir=RESULTS / "models" / "clinc150" / f"seed-{seed}",
        out_of_scope_label=OUT_OF_SCOPE,
        device="cpu",
        seed=seed,
    )


def our_classifier(settings: Settings, splits: Any) -> BertIntentClassifier:
    if not (settings.intent_models_dir / "CURRENT").is_file():
        train_intent_classifier(
            splits.train, splits.validation, settings, checksum(splits.train), fresh=True
        )
    classifier = BertIntentClassifier.load(settings.intent_models_dir, "cpu")
    return with_familiarity(classifier, splits, settings)


def score_ours(classifier: BertIntentClassifier, examples: list[IntentExample]) -> Scored:
    logits, embeddings = classifier.scores([e.text for e in examples])
    nearest = classifier.familiarity(embeddings)
    return Scored(
        softmax(logits / classifier.temperature),
        None if nearest is None else nearest[0],
        target_indices([e.intent for e in examples], classifier.labels, OUT_OF_SCOPE),
    )


def figures(scored: Scored, labels: list[str], policy: RejectionPolicy) -> dict[str, Any]:
    result = outcome(
        scored.probabilities, scored.targets, labels, policy, OUT_OF_SCOPE, scored.familiarity
    )
    in_scope = scored.targets >= 0
    predicted = scored.probabilities.argmax(axis=1)
    return {
        "accuracy_without_fallback": float((predicted == scored.targets)[in_scope].mean()),
        "in_scope_accuracy": result.in_scope_accuracy,
        "out_of_scope_recall": result.out_of_scope_recall,
        "policy": policy.to_dict() | {"per_intent": len(policy.per_intent)},
    }


def trade_off(scored: Scored, labels: list[str], policy: RejectionPolicy) -> list[list[float]]:
    """(recall, accuracy) on test as the fallback's gate moves, keeping the best accuracy
    at each recall: the probability threshold alone, the familiarity threshold alone, and
    the familiarity threshold with the chosen probability and margin."""
    probability_gates = [RejectionPolicy(float(g), 0.0) for g in np.linspace(0, 1, 101)]
    policies = list(probability_gates)
    if scored.familiarity is not None:
        gates = np.quantile(scored.familiarity, np.linspace(0, 0.6, 121))
        for threshold, margin in ((0.0, 0.0), (policy.threshold, policy.margin)):
            policies += [RejectionPolicy(threshold, margin, {}, float(g)) for g in gates]
    points = []
    for candidate in policies:
        result = outcome(
            scored.probabilities,
            scored.targets,
            labels,
            candidate,
            OUT_OF_SCOPE,
            scored.familiarity,
        )
        points.append((result.out_of_scope_recall or 0.0, result.in_scope_accuracy))
    return pareto_front(points)


def pareto_front(points: list[tuple[float, float]]) -> list[list[float]]:
    """The points no other beats on both recall and accuracy, by recall."""
    front: list[list[float]] = []
    for recall, accuracy in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append([recall, accuracy])
    return sorted(front)


def separation(scored: Scored) -> dict[str, float]:
    """How well each signal alone tells out-of-scope messages from in-scope ones on test
    (area under the ROC curve; 0.5 is chance)."""
    from sklearn.metrics import roc_auc_score

    out_of_scope = scored.targets < 0
    result = {"top_probability": float(roc_auc_score(out_of_scope, -scored.probabilities.max(1)))}
    if scored.familiarity is not None:
        result["familiarity"] = float(roc_auc_score(out_of_scope, -scored.familiarity))
    return result


def accuracy_at_recall(points: list[list[float]], recall: float) -> float | None:
    reaching = [accuracy for r, accuracy in points if r >= recall]
    return max(reaching) if reaching else None


def frozen_baselines(splits: Any, settings: Settings) -> dict[str, tuple[Scored, Scored, Any]]:
    """Frozen MiniLM + logistic regression: (validation, test, labels) per variant."""
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    encoder = SentenceTransformer(resolve_model_path(settings.intent_base_model), device="cpu")

    def embed(examples: list[IntentExample]) -> np.ndarray:
        texts = [e.text for e in examples]
        return encoder.encode(texts, batch_size=128, normalize_embeddings=True)

    labels = sorted({e.intent for e in splits.train})
    index = {label: i for i, label in enumerate(labels)}
    train = embed(splits.train)
    model = LogisticRegression(C=10, max_iter=2000)
    model.fit(train, [index[e.intent] for e in splits.train])
    known = known_examples(train, [e.intent for e in splits.train], labels, OUT_OF_SCOPE)
    validation_logits = model.predict_log_proba(embed_val := embed(splits.validation))
    temperature = fit_temperature(
        validation_logits, np.array([index[e.intent] for e in splits.validation])
    )
    test_embeddings = embed(splits.test)

    def scored(logits: np.ndarray, embeddings: np.ndarray, examples: list, near: bool) -> Scored:
        return Scored(
            softmax(logits / temperature),
            known.nearest(embeddings)[0] if near else None,
            target_indices([e.intent for e in examples], labels, OUT_OF_SCOPE),
        )

    test_logits = model.predict_log_proba(test_embeddings)
    return {
        "frozen MiniLM + LR, probability threshold": (
            scored(validation_logits, embed_val, splits.validation, False),
            scored(test_logits, test_embeddings, splits.test, False),
            labels,
        ),
        "frozen MiniLM + LR + nearest-question similarity": (
            scored(validation_logits, embed_val, splits.validation, True),
            scored(test_logits, test_embeddings, splits.test, True),
            labels,
        ),
    }


def run_clinc(seeds: list[int]) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {}
    curves: dict[str, list[list[float]]] = {}
    for seed in seeds:
        settings = clinc_settings(seed)
        splits = clinc150(settings)
        print(f"== CLINC150 full, seed {seed}")
        classifier = our_classifier(settings, splits)
        test = score_ours(classifier, splits.test)
        points = trade_off(test, classifier.labels, classifier.rejection)
        row = figures(test, classifier.labels, classifier.rejection)
        row["in_scope_accuracy_at_published_recall"] = accuracy_at_recall(points, PUBLISHED_RECALL)
        row["auroc"] = separation(test)
        rows.setdefault("assistant (defaults)", []).append({"seed": seed, **row})
        curves.setdefault("assistant (defaults)", points)
        if seed != seeds[0]:
            continue  # the frozen baselines do not depend on the seed
        for name, (validation, test_scored, labels) in frozen_baselines(splits, settings).items():
            policy = choose_policy(
                validation.probabilities,
                validation.targets,
                labels,
                settings.max_accuracy_loss,
                OUT_OF_SCOPE,
                familiarity=validation.familiarity,
            )
            row = figures(test_scored, labels, policy)
            row["auroc"] = separation(test_scored)
            points = trade_off(test_scored, labels, policy)
            row["in_scope_accuracy_at_published_recall"] = accuracy_at_recall(
                points, PUBLISHED_RECALL
            )
            rows.setdefault(name, []).append({"seed": seed, **row})
            curves[name] = points
    return {"models": {name: summarise(runs) for name, runs in rows.items()}, "curves": curves}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"runs": runs, **spread(runs, SUMMARISED)}


def plot(curves: dict[str, list[list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    for name, points in curves.items():
        recall, accuracy = zip(*sorted(points), strict=True)
        axes.plot(np.array(recall) * 100, np.array(accuracy) * 100, label=name)
    for name, (accuracy, recall) in PUBLISHED.items():
        axes.scatter([recall], [accuracy], marker="x", label=name)
    axes.set_xlabel("out-of-scope recall on oos_test (%)")
    axes.set_ylabel("in-scope accuracy with the fallback on test (%)")
    axes.set_title("CLINC150 full: the fallback's trade-off")
    axes.set_ylim(80, 100)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _cell(summary: dict[str, Any], key: str) -> str:
    if key not in summary:
        return f"{'-':>13}"
    figure = summary[key]
    return f"{100 * figure['mean']:6.2f}±{100 * figure['std']:<5.2f}"


def print_tables(results: dict[str, Any]) -> None:
    clinc = results.get("clinc150")
    if clinc:
        header = f"{'CLINC150 full (test)':<52} {'in-scope':>13} {'oos recall':>13} {'@52.3':>13}"
        print("\n" + header + "\n" + "-" * len(header))
        for name, summary in clinc["models"].items():
            print(
                f"{name:<52} {_cell(summary, 'in_scope_accuracy')} "
                f"{_cell(summary, 'out_of_scope_recall')} "
                f"{_cell(summary, 'in_scope_accuracy_at_published_recall')}"
            )
        for name, (accuracy, recall) in PUBLISHED.items():
            print(f"{name:<52} {accuracy:6.2f}{'':7} {recall:6.2f}")
        print("mean ± standard deviation over seeds; @52.3: in-scope accuracy at 52.3 % recall")
    deployment = results.get("deployment")
    if deployment:
        inside, outside = deployment["in_domain"], deployment["out_of_scope"]
        header = (
            f"{'Deployment (Assistant.reply)':<36} {'right':>7} {'wrong':>7} "
            f"{'refused':>8} {'clarif.':>8}"
        )
        print("\n" + header + "\n" + "-" * len(header))
        for name, part in (("Bitext held-out 10 %", inside), ("CLINC150 oos_test", outside)):
            print(
                f"{name:<36} {100 * part['right']:7.2f} {100 * part['wrong']:7.2f} "
                f"{100 * part['refused']:8.2f} {100 * part['clarified']:8.2f}"
            )
        print(
            "right: answered (or handed off) on the right intent; wrong: on another intent; "
            "refused: polite refusal; clarif.: a clarifying question"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["clinc150", "deployment"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--deployment-seed", type=int, default=13)
    parser.add_argument("--with-generator", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"datasets not found at {SHARED}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / "out_of_scope.json"
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python " + " ".join(sys.argv),
    }
    if output.is_file():  # keep the other part's figures when only one part is run
        previous = json.loads(output.read_text(encoding="utf-8"))
        results.update({k: v for k, v in previous.items() if k in ("clinc150", "deployment")})
    if "clinc150" in args.parts:
        results["clinc150"] = run_clinc(args.seeds)
        plot(results["clinc150"]["curves"], RESULTS / "out_of_scope.png")
        output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if "deployment" in args.parts:
        data = json.loads((SHARED / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
        off_topic = [text for text, _ in data["oos_test"]]
        results["deployment"] = run_deployment(
            SHARED / "bitext_customer_support" / "train.csv",
            off_topic,
            args.deployment_seed,
            RESULTS / "deployment",
            args.with_generator,
        )
        output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_tables(results)
    print(f"\nWrote {output}")


if __name__ == "__main__":
    main()
