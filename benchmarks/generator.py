"""The answer generator on the Bitext customer-support Q&A set, against baselines; its speed.

    python benchmarks/generator.py [--epochs 4] [--skip-quality] [--skip-speed]
    python benchmarks/generator.py --skip-quality --generator models/generator  # the demo's

Quality: a fixed, seeded 10% of the questions is held out; the generator (project
defaults, `--epochs` as the CPU budget) and the retrieval index are built from the
rest. For each held-out question, three answers are compared with the reference
answer: the generator's (before and after its grounding check, which falls back
to the top retrieved answer), the top retrieved answer, and the intent's template
(the training answer nearest the intent's centroid, picked with the question's
true intent, i.e. a perfect classifier). Figures: ROUGE-L F1, embedding cosine
similarity to the reference, the grounding check's pass rate, and the share of
answers naming an identifier found in none of that method's inputs.

Speed: time to first token and tokens per second, greedy with the KV cache, on a
prompt of the held-out set's median length, for the trained default model and a
GPT-2-small-sized one (124M parameters, random weights): `transformers`' `generate`
in fp32, and the ONNX export the server runs, fp32 and int8, decoded by the
project's own loop on ONNX Runtime (one thread, as it serves). Writes
benchmarks/results/generator.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext_customer_support" / "train.csv"
sys.path.insert(0, str(ROOT))

from rouge_score import rouge_scorer  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.generation.streamers import BaseStreamer  # noqa: E402

from assistant.core.onnx_forms import CPU_PROVIDER, FP32, INT8, Session, open_session  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402
from assistant.datasets.loading import QAPair, checksum  # noqa: E402
from assistant.generation.grounding import check_answer  # noqa: E402
from assistant.generation.onnx_decoder import (  # noqa: E402
    DECODER_FILE,
    INT8_DECODER_FILE,
    OnnxDecoder,
    export_decoder,
)
from assistant.generation.training import train_generator  # noqa: E402
from assistant.generation.writer import (  # noqa: E402
    Gpt2AnswerWriter,
    generator_path,
    prompt_ids,
)
from assistant.retrieval.index import FaissRetriever  # noqa: E402
from assistant.text.identifiers import invented_identifiers  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402

HELD_OUT_SHARE = 0.1
SEED = 13
SPEED_TOKENS = 64
SPEED_REPEATS = 3


def load_pairs() -> list[QAPair]:
    with BITEXT.open(encoding="utf-8", newline="") as file:
        return [QAPair(r["instruction"], r["response"], r["intent"]) for r in csv.DictReader(file)]


def split_by_question(pairs: list[QAPair]) -> tuple[list[QAPair], list[QAPair]]:
    """Hold out a seeded share of the distinct questions, with every pair asking them."""
    questions = sorted({pair.question for pair in pairs})
    held = set(random.Random(SEED).sample(questions, round(HELD_OUT_SHARE * len(questions))))
    return [p for p in pairs if p.question not in held], [p for p in pairs if p.question in held]


def intent_templates(train: list[QAPair], encode: Any) -> dict[str, str]:
    """Per intent, the training answer nearest the centroid of its answers."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for pair in train:
        by_intent[pair.intent].append(pair.answer)
    templates = {}
    for intent, answers in by_intent.items():
        vectors = encode(answers)
        templates[intent] = answers[int(np.argmax(vectors @ vectors.mean(axis=0)))]
    return templates


def score(
    answers: list[str], references: list[str], inputs: list[list[str]], encode: Any
) -> dict[str, float]:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [
        scorer.score(r, a)["rougeL"].fmeasure for a, r in zip(answers, references, strict=True)
    ]
    similarity = np.sum(encode(answers) * encode(references), axis=1)
    invented = [bool(invented_identifiers(a, i)) for a, i in zip(answers, inputs, strict=True)]
    return {
        "rouge_l": round(float(np.mean(rouge)), 4),
        "similarity": round(float(np.mean(similarity)), 4),
        "invented_identifier_rate": round(float(np.mean(invented)), 4),
    }


def run_quality(settings: Settings, epochs: int) -> tuple[dict[str, Any], list[int]]:
    """The quality figures, and the length of each held-out question's prompt."""
    train, held_out = split_by_question(load_pairs())
    print(f"{len(train)} training pairs, {len(held_out)} held-out questions")
    retriever = FaissRetriever.build(train, settings)
    started = time.perf_counter()
    report = train_generator(train, settings, checksum(train), retriever, fresh=True)
    train_minutes = (time.perf_counter() - started) / 60
    generator = Gpt2AnswerWriter.load(settings.generator_models_dir, "cpu")
    encode = retriever.encode
    questions = [pair.question for pair in held_out]
    references = [pair.answer for pair in held_out]
    contexts = [[s.answer for s in row] for row in retriever.search(questions, 3)]
    written, checked, passed, prompts = [], [], [], []
    for question, context in zip(questions, contexts, strict=True):
        used = context[: generator.limits.context_answers]
        answer = generator.generate(question, context)
        verdict = check_answer(
            answer,
            used,
            [question],
            encode,
            generator.grounding_threshold,
            question,
            generator.relevance_threshold,
        )
        written.append(answer)
        passed.append(verdict.passed)
        checked.append(answer if verdict.passed else context[0])
        prompts.append(len(prompt_ids(generator.tokenizer, question, context, generator.limits)))
        if len(written) % 50 == 0:
            print(f"  {len(written)}/{len(questions)} answers written")
    templates = intent_templates(train, encode)
    template_answers = [templates[pair.intent] for pair in held_out]
    seen = [
        [q, *c[: generator.limits.context_answers]]
        for q, c in zip(questions, contexts, strict=True)
    ]
    rows = {
        "generator (as written)": score(written, references, seen, encode),
        "generator + grounding check (served)": score(checked, references, seen, encode),
        "top retrieved answer": score(
            [c[0] for c in contexts],
            references,
            [[q, c[0]] for q, c in zip(questions, contexts, strict=True)],
            encode,
        ),
        "intent template (true intent)": score(
            template_answers,
            references,
            [[q, t] for q, t in zip(questions, template_answers, strict=True)],
            encode,
        ),
    }
    rows["generator (as written)"]["grounding_pass_rate"] = round(float(np.mean(passed)), 4)
    quality = {
        "train_pairs": len(train),
        "held_out_questions": len(held_out),
        "epochs": epochs,
        "train_minutes": round(train_minutes, 2),
        "generator": report.metrics,
        "methods": rows,
        "examples": [
            {"question": q, "reference": r, "written": w, "passed": p}
            for q, r, w, p in list(zip(questions, references, written, passed, strict=True))[:5]
        ],
    }
    return quality, prompts


class TokenClock(BaseStreamer):
    """Notes when each new token arrives; `generate` first hands over the prompt."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: torch.Tensor) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def time_generation(model: torch.nn.Module, prompt_length: int, vocab: int) -> dict[str, float]:
    """Median time to first token and decoding rate over a few greedy runs of SPEED_TOKENS."""
    ids = torch.randint(0, vocab, (1, prompt_length), generator=torch.Generator().manual_seed(0))
    first, rates = [], []
    for _ in range(SPEED_REPEATS + 1):  # the first run warms up
        clock = TokenClock()
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=SPEED_TOKENS,
                min_new_tokens=SPEED_TOKENS,
                do_sample=False,
                use_cache=True,
                streamer=clock,
                pad_token_id=0,
            )
        tokens = clock.times[1:]
        first.append((tokens[0] - started) * 1000)
        rates.append((len(tokens) - 1) / (tokens[-1] - tokens[0]))
    return {
        "first_token_ms": round(statistics.median(first[1:]), 1),
        "tokens_per_second": round(statistics.median(rates[1:]), 1),
    }


def time_decoder(decoder: OnnxDecoder, prompt_length: int, vocab: int) -> dict[str, float]:
    """The same figures for the served loop's steps: the prompt, then one token a step."""
    ids = np.random.default_rng(0).integers(0, vocab, prompt_length).tolist()
    first, rates = [], []
    for _ in range(SPEED_REPEATS + 1):
        started = time.perf_counter()
        logits, cache = decoder.start(ids)
        times = [time.perf_counter()]
        for _ in range(SPEED_TOKENS - 1):
            logits, cache = decoder.feed([int(logits.argmax())], cache)
            times.append(time.perf_counter())
        first.append((times[0] - started) * 1000)
        rates.append((len(times) - 1) / (times[-1] - times[0]))
    return {
        "first_token_ms": round(statistics.median(first[1:]), 1),
        "tokens_per_second": round(statistics.median(rates[1:]), 1),
    }


def run_speed(default: GPT2LMHeadModel, prompt_length: int) -> dict[str, Any]:
    torch.manual_seed(0)
    small = GPT2LMHeadModel(GPT2Config()).eval()
    models = {"default": default.eval(), "gpt2-small-124M": small}
    results = {}
    for name, model in models.items():
        vocab = model.config.vocab_size
        parameters = sum(p.numel() for p in model.parameters())
        forms = exported(model)
        for precision in ("fp32", f"onnx {FP32}", f"onnx {INT8}"):
            if precision in forms:
                timed = time_decoder(forms[precision], prompt_length, vocab)
            else:
                timed = time_generation(model, prompt_length, vocab)
            results[f"{name} {precision}"] = {"parameters": parameters, **timed}
            print(f"  {name} {precision}: {results[f'{name} {precision}']}")
    return {"prompt_tokens": prompt_length, "new_tokens": SPEED_TOKENS, "models": results}


def exported(model: GPT2LMHeadModel) -> dict[str, OnnxDecoder]:
    """The model's ONNX forms ("onnx fp32", "onnx int8"), opened as the server opens them."""
    folder = Path(tempfile.mkdtemp(prefix="decoder-"))
    record = export_decoder(model, folder)
    if "error" in record or "int8_error" in record:
        raise RuntimeError(f"the export failed: {record.get('error') or record['int8_error']}")
    return {
        f"onnx {form}": OnnxDecoder(
            Session(open_session(folder / file, threads=1), form, CPU_PROVIDER, ""),
            record["cache_shape"],
        )
        for form, file in ((FP32, DECODER_FILE), (INT8, INT8_DECODER_FILE))
    }


def print_table(result: dict[str, Any]) -> None:
    quality = result.get("quality")
    if quality:
        print(f"\n{'method':42} {'ROUGE-L':>8} {'cosine':>7} {'invented':>9} {'grounded':>9}")
        for name, row in quality["methods"].items():
            passed = row.get("grounding_pass_rate")
            grounded = "" if passed is None else f"{passed:9.4f}"
            print(
                f"{name:42} {row['rouge_l']:8.4f} {row['similarity']:7.4f} "
                f"{row['invented_identifier_rate']:9.4f} {grounded}"
            )
        print(
            f"trained {quality['epochs']} epochs on {quality['train_pairs']} pairs in "
            f"{quality['train_minutes']:.1f} min; "
            f"{quality['held_out_questions']} held-out questions"
        )
    speed = result.get("speed")
    if speed:
        print(f"\n{'model':28} {'params':>8} {'first token ms':>15} {'tokens/s':>9}")
        for name, row in speed["models"].items():
            print(
                f"{name:28} {row['parameters'] / 1e6:7.1f}M {row['first_token_ms']:15.1f} "
                f"{row['tokens_per_second']:9.1f}"
            )
        print(
            f"prompt of {speed['prompt_tokens']} tokens, {speed['new_tokens']} new tokens, greedy"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (CPU budget)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--generator",
        type=Path,
        help="time this generator folder's live model (default: the one trained here)",
    )
    args = parser.parse_args()
    settings = Settings(
        models_dir=RESULTS / "models" / "bitext",
        index_dir=RESULTS / "models" / "bitext-index",
        generator_epochs=args.epochs,
    )
    result: dict[str, Any] = {**run_facts(), "torch_threads": torch.get_num_threads()}
    prompt_length = 150
    if not args.skip_quality:
        result["quality"], prompts = run_quality(settings, args.epochs)
        prompt_length = int(statistics.median(prompts))
    if not args.skip_speed:
        folder = args.generator or settings.generator_models_dir
        model = GPT2LMHeadModel.from_pretrained(generator_path(folder))
        result["speed"] = run_speed(model, prompt_length)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "generator.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
