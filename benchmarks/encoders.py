"""The encoders' ONNX forms against PyTorch: accuracy, MRR and speed.

    python benchmarks/encoders.py [--datasets banking77 clinc150] [--messages 200]

For the demo data's live intent model (`models/intent`) and the seed-13 models of
BANKING77 and CLINC150 (`benchmarks/results/models/<dataset>/seed-13/intent`,
trained by benchmarks/intents.py; a dataset without one is left out), the ONNX
forms are made exactly as training makes them, into a scratch folder (the saved
versions are left as they are), and scored:
intent accuracy on the validation split (the gate's figure) and on the test
split, fp32 against int8, and the outcome with the fallback. The sentence
encoder's forms each index the demo Q&A pairs, searched with the demo
validation (the gate's figure) and test messages: MRR@10, a hit being a past
question of the same intent. Then the speed of PyTorch fp32, ONNX fp32 and
ONNX int8 for both models: one message at a time (tokenizer included) and
batched sentences/s (batches of 64 sorted by length); and how much an int8
message's scores move with the messages batched with it. Last, whether the
intent model's own embedding retrieves as well as the sentence encoder (the same
MRR@10 with the Q&A questions embedded by the intent model), so that one pass
could serve both. Writes benchmarks/results/encoders.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from intents import OUT_OF_SCOPE, banking77, clinc150, with_familiarity  # noqa: E402

from assistant.core.base_models import resolve_model_path  # noqa: E402
from assistant.core.int8 import calibration_batches, quantise  # noqa: E402
from assistant.core.onnx_forms import (  # noqa: E402
    CPU_PROVIDER,
    FORMS,
    INT8,
    Session,
    open_session,
    passes,
    physical_cores,
)
from assistant.core.settings import Settings  # noqa: E402
from assistant.datasets.corpus import dataset_splits  # noqa: E402
from assistant.datasets.loading import load_dataset  # noqa: E402
from assistant.evaluation.measures import evaluate_retrieval  # noqa: E402
from assistant.intents.calibration import softmax  # noqa: E402
from assistant.intents.classifier import BertIntentClassifier  # noqa: E402
from assistant.intents.fitting import measure  # noqa: E402
from assistant.intents.onnx_model import OnnxIntentModel, export_forms  # noqa: E402
from assistant.intents.training import FittedModel, fit_to_int8  # noqa: E402
from assistant.retrieval.index import FaissRetriever, load_encoder  # noqa: E402
from assistant.retrieval.onnx_encoder import (  # noqa: E402
    OnnxSentenceEncoder,
    encoder_settings,
    export_encoder,
)
from benchmarks.run_facts import run_facts  # noqa: E402

MRR = "mrr@10"


def intent_forms(classifier: BertIntentClassifier, folder: Path, record: dict[str, Any]) -> dict:
    """The classifier on PyTorch and on each saved ONNX form, sharing its calibration."""
    forms = {"torch_fp32": classifier}
    for form, entry in record.get("files", {}).items():
        path = folder / entry["file"]
        served = copy.copy(classifier)
        served.model = OnnxIntentModel(Session(open_session(path), form, CPU_PROVIDER, ""))
        forms[f"onnx_{form}"] = served
    return forms


def intent_figures(
    classifier: BertIntentClassifier, splits: Any, settings: Settings, scratch: Path
) -> tuple[dict[str, Any], dict[str, BertIntentClassifier]]:
    """What training would record for this model's ONNX forms, and the test outcome of each
    form with the fallback."""
    started = time.perf_counter()
    record, sessions = export_forms(
        classifier,
        splits.validation,
        scratch,
        settings.int8_accuracy_tolerance,
        splits.test,
        calibration=[example.text for example in splits.train],
    )
    seconds = time.perf_counter() - started
    forms = intent_forms(classifier, scratch, record)
    if INT8 in sessions:  # as training serves int8: its fallback fitted on int8
        fitted = FittedModel(copy.copy(classifier), {}, splits.validation, splits.train)
        forms["onnx_int8_fitted"] = fit_to_int8(fitted, sessions[INT8], settings)
    oos = settings.out_of_scope_label
    outcomes = {name: measure(model, splits.test, oos) for name, model in forms.items()}
    return {
        "version": classifier.version,
        "validation_examples": len(splits.validation),
        "test_examples": len(splits.test),
        "gate": record.get("gate"),
        "chosen": record.get("chosen"),
        "test_accuracy": record.get("test"),
        "agreement": record.get("agreement"),
        "files": {form: entry["bytes"] for form, entry in record.get("files", {}).items()},
        "export_and_gate_seconds": round(seconds, 1),
        "test_with_fallback": {
            name: {"accuracy": o["accuracy"], **o["with_fallback"]} for name, o in outcomes.items()
        },
    }, forms


def sentence_forms(settings: Settings, scratch: Path, questions: list[str]) -> dict[str, Any]:
    torch_encoder = load_encoder(settings)
    tokenizer, limit = encoder_settings(resolve_model_path(settings.embedding_model))
    paths = {"fp32": scratch / "encoder.onnx", INT8: scratch / "encoder.int8.onnx"}
    export_encoder(torch_encoder, paths["fp32"])
    quantise(paths["fp32"], paths[INT8], calibration_batches(tokenizer, questions, limit))
    forms: dict[str, Any] = {"torch_fp32": torch_encoder}
    for form, path in paths.items():
        session = Session(open_session(path), form, CPU_PROVIDER, "")
        forms[f"onnx_{form}"] = OnnxSentenceEncoder(session, tokenizer, limit)
    return forms


def index_figures(pairs: list, splits: Any, settings: Settings, encoders: dict) -> dict:
    """MRR@10 of each encoder form's index, on the validation and the test messages."""
    figures = {}
    for name, encoder in encoders.items():
        retriever = FaissRetriever.build(pairs, settings, encoder)
        figures[name] = {
            split: evaluate_retrieval(retriever, getattr(splits, split)).get(MRR)
            for split in ("validation", "test")
        }
    fp32, int8 = figures["onnx_fp32"]["validation"], figures["onnx_int8"]["validation"]
    chosen = INT8 if passes(fp32, int8, settings.int8_mrr_tolerance) else "fp32"
    return {
        "pairs": len(pairs),
        "questions": {"validation": len(splits.validation), "test": len(splits.test)},
        MRR: figures,
        "tolerance": settings.int8_mrr_tolerance,
        "chosen": chosen,
    }


class IntentEmbedding:
    """The intent model's pooled embedding, shaped as a sentence encoder for the index."""

    def __init__(self, classifier: BertIntentClassifier) -> None:
        self.classifier = classifier

    def encode(self, sentences: list[str], **_: Any) -> np.ndarray:
        return self.classifier.embeddings(list(sentences))

    def get_embedding_dimension(self) -> int:
        return self.classifier.dimension


def one_pass_figures(
    pairs: list, splits: Any, settings: Settings, classifiers: dict, encoders: dict, index: dict
) -> dict[str, Any]:
    """Held-out MRR@10 with the intent model's embedding beside the sentence encoder's, and
    what each would reuse at the configured `retrieval_threshold`."""
    figures, reuse = {}, {}
    questions = [*splits.validation, *splits.test]
    for name in ("torch_fp32", "onnx_int8"):
        retriever = FaissRetriever.build(pairs, settings, IntentEmbedding(classifiers[name]))
        figures[f"intent_model_{name}"] = {
            split: evaluate_retrieval(retriever, getattr(splits, split)).get(MRR)
            for split in ("validation", "test")
        }
        reuse[f"intent_model_{name}"] = reused(retriever, questions, settings)
    sentence = index[MRR]
    for name in ("torch_fp32", f"onnx_{index['chosen']}"):
        figures[f"sentence_encoder_{name}"] = sentence[name]
        retriever = FaissRetriever.build(pairs, settings, encoders[name])
        reuse[f"sentence_encoder_{name}"] = reused(retriever, questions, settings)
    intent, encoder = figures["intent_model_onnx_int8"], sentence[f"onnx_{index['chosen']}"]
    return {
        MRR: figures,
        "intent_embedding_not_lower": all(intent[s] >= encoder[s] for s in intent),
        "at_retrieval_threshold": reuse,
    }


def reused(retriever: FaissRetriever, questions: list, settings: Settings) -> dict[str, Any]:
    """The share of held-out messages whose closest past question clears the reuse threshold,
    and the share of those whose past question has the message's intent."""
    known = {row.intent for row in retriever.rows}
    questions = [q for q in questions if q.intent in known]
    best = [hits[0] for hits in retriever.search([q.text for q in questions], 1)]
    cleared = [
        q.intent == hit.intent
        for q, hit in zip(questions, best, strict=True)
        if hit.score >= settings.retrieval_threshold
    ]
    return {
        "threshold": settings.retrieval_threshold,
        "top_score_median": round(float(np.median([hit.score for hit in best])), 4),
        "share_reused": round(len(cleared) / len(questions), 4),
        "same_intent_among_reused": round(float(np.mean(cleared)), 4) if cleared else None,
    }


def speed(encode: Any, texts: list[str], messages: int) -> dict[str, float]:
    """One message at a time (p50, p95 ms) and batched sentences/s (best of three)."""
    encode(texts[:64])  # warm up
    singles = []
    for text in texts[:messages]:
        tick = time.perf_counter()
        encode([text])
        singles.append((time.perf_counter() - tick) * 1000)
    rates = []
    for _ in range(3):
        tick = time.perf_counter()
        encode(texts)
        rates.append(len(texts) / (time.perf_counter() - tick))
    return {
        "single_ms_p50": round(float(np.percentile(singles, 50)), 2),
        "single_ms_p95": round(float(np.percentile(singles, 95)), 2),
        "batched_sentences_per_second": round(max(rates), 1),
    }


def batch_dependence(classifier: BertIntentClassifier, texts: list[str]) -> dict[str, Any]:
    """How far a message's scores move between being encoded alone and in a batch."""
    batched = softmax(classifier.logits(texts) / classifier.temperature)
    alone = np.vstack([softmax(classifier.logits([t]) / classifier.temperature) for t in texts])
    return {
        "messages": len(texts),
        "top_intent_changed": int((batched.argmax(1) != alone.argmax(1)).sum()),
        "max_probability_difference": round(float(np.abs(batched - alone).max()), 4),
    }


def demo(messages: int, scratch: Path) -> dict[str, Any]:
    settings = Settings(device="cpu")
    dataset = load_dataset(settings.data_dir)
    splits = dataset_splits(dataset, settings)
    classifier = BertIntentClassifier.load(settings.intent_models_dir, "cpu", runtime="torch")
    print(f"== demo: intent model {classifier.version}")
    intents, classifiers = intent_figures(classifier, splits, settings, scratch / "intent")
    print(json.dumps(intents["gate"]), json.dumps(intents["test_accuracy"]))
    print("== demo: sentence encoder forms, index MRR@10")
    questions = [pair.question for pair in dataset.qa_pairs]
    encoders = sentence_forms(settings, scratch / "encoder", questions)
    index = index_figures(dataset.qa_pairs, splits, settings, encoders)
    print(json.dumps(index[MRR]))
    print("== intent embedding against the sentence encoder for retrieval")
    one_pass = one_pass_figures(dataset.qa_pairs, splits, settings, classifiers, encoders, index)
    print(json.dumps(one_pass))
    texts = [e.text for e in [*splits.validation, *splits.test]]
    print(f"== speed over {len(texts)} demo messages, {messages} one at a time")
    timings: dict[str, dict[str, Any]] = {"intent_model": {}, "sentence_encoder": {}}
    for name, model in classifiers.items():
        if name.endswith("_fitted"):  # the same session as onnx_int8
            continue
        timings["intent_model"][name] = speed(model.scores, texts, messages)
        print("intent", name, timings["intent_model"][name])
    for name, encoder in encoders.items():

        def encode(batch: list[str], encoder: Any = encoder) -> Any:
            return encoder.encode(batch, batch_size=64, normalize_embeddings=True)

        timings["sentence_encoder"][name] = speed(encode, texts, messages)
        print("sentence", name, timings["sentence_encoder"][name])
    return {
        "intents": intents,
        "index": index,
        "one_pass": one_pass,
        "speed": timings,
        "int8_batch_dependence": batch_dependence(classifiers["onnx_int8"], texts),
    }


SAVED_MODELS = {"banking77": banking77, "clinc150": clinc150}  # trained by intents.py


def saved_model(name: str, scratch: Path) -> dict[str, Any] | None:
    """The ONNX forms of a benchmark dataset's seed-13 model, made and scored as training
    would (None when benchmarks/intents.py has not trained it here)."""
    folder = RESULTS / "models" / name / "seed-13"
    if not (folder / "intent" / "CURRENT").is_file():
        print(f"no {name} model at {folder}: run benchmarks/intents.py first")
        return None
    settings = Settings(models_dir=folder, out_of_scope_label=OUT_OF_SCOPE, device="cpu", seed=13)
    splits = SAVED_MODELS[name](settings)
    classifier = BertIntentClassifier.load(settings.intent_models_dir, "cpu", runtime="torch")
    with_familiarity(classifier, splits, settings)
    print(f"== {name}: intent model {classifier.version}")
    (scratch / name).mkdir()
    figures, _ = intent_figures(classifier, splits, settings, scratch / name)
    print(json.dumps(figures["gate"]), json.dumps(figures["test_accuracy"]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", nargs="*", default=list(SAVED_MODELS), choices=list(SAVED_MODELS)
    )
    parser.add_argument("--messages", type=int, default=200, help="timed one at a time")
    args = parser.parse_args()
    import onnxruntime
    import torch

    results: dict[str, Any] = {
        **run_facts(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnx_intra_op_threads": physical_cores(),
        "load_average_before": os.getloadavg(),
        "forms": list(FORMS),
    }
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for name in ("intent", "encoder"):
            (scratch / name).mkdir()
        results["demo"] = demo(args.messages, scratch)
        for name in args.datasets:
            results[name] = saved_model(name, scratch)
    results["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / "encoders.json"
    output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
