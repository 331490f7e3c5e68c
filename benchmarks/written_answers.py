"""What the demo's answer writer shows customers, written freely and in whole sentences.

    python launch.py --build-only && python benchmarks/written_answers.py

Questions written for this check (in `QUESTIONS`, none in the demo data) go through
`Assistant.reply`, as the server answers them, once with each decoding; each is also
written by the live generator both ways, from the two past answers retrieved for it,
and put through the grounding check the server runs (`check_answer`), whatever its
route. Prints the table and every answer, and writes
benchmarks/results/written_answers.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from assistant.core.pipeline import Assistant  # noqa: E402
from assistant.core.settings import load_settings  # noqa: E402
from assistant.generation.grounding import check_answer  # noqa: E402
from assistant.generation.writer import FREE, SENTENCES, Gpt2AnswerWriter  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402

QUESTIONS = [
    "can I return a lamp that I already plugged in once",
    "the kettle lid doesn't close properly since day one",
    "do your speakers work with bluetooth on older phones",
    "my parcel went to the locker but the code expired",
    "is the oak side table solid wood or veneer",
    "can you gift wrap a set of towels",
    "what if the courier left my order in the rain and the box is soaked",
    "i returned two mugs but only got money back for one",
    "the smart plug keeps disconnecting from wifi",
    "can i pay half with a gift card and half with my card",
    "my duvet arrived with a stain on it",
    "how do I know if my return reached you",
    "you charged shipping even though my order was over fifty dollars",
    "can i change the colour of the rug after ordering",
    "the assembly screws are missing from the bookshelf box",
    "i moved house, can you send my order to my new place",
    "is there a student discount",
    "my order says delivered but the box was empty",
    "can I order now and have it delivered next month",
    "do you restock the linen curtains",
    "how long does a replacement take to arrive",
    "the price dropped a day after I bought it",
    "not happy with pebble and pine",
    "why is my refund smaller than what I paid",
    "the lamp flickers when I turn it on",
    "can i send back a mattress i slept on once",
    "i got an email saying my payment failed but the money left my account",
    "do you deliver on saturdays",
    "what happens if nobody is home for the delivery",
    "my promo code worked but the discount disappeared at checkout",
    "i picked the wrong item in my order help",
    "delivery estimate for standard post",
    "you sent me someone else's order",
]


def written(assistant: Assistant, writer: Gpt2AnswerWriter, question: str) -> dict[str, Any]:
    """The writer's answer from the past answers retrieved for `question`, checked."""
    sources = assistant.models.retriever.search([question], writer.limits.context_answers)[0]
    past = [source.answer for source in sources]
    started = time.perf_counter()
    answer = writer.generate(question, past)
    milliseconds = (time.perf_counter() - started) * 1000
    encode = assistant.models.retriever.encode
    verdict = check_answer(
        answer,
        past,
        [question],
        encode,
        writer.grounding_threshold,
        question,
        writer.relevance_threshold,
    )
    return {"answer": answer, "passed": verdict.passed, "ms": round(milliseconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=RESULTS / "written_answers.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = [{"question": question} for question in QUESTIONS]
    with tempfile.TemporaryDirectory() as folder:
        for mode in (FREE, SENTENCES):
            settings = load_settings(
                database_path=Path(folder) / f"{mode}.db", generator_decoding=mode
            )
            assistant = Assistant.load(settings)
            writer = assistant.models.generator
            for row in rows:
                reply = assistant.reply(row["question"], assistant.store.start_conversation("api"))
                row[mode] = {"route": reply.route, "reply": reply.text}
                row[mode] |= written(assistant, writer, row["question"])
    summary = {
        mode: {
            "routes": dict(Counter(row[mode]["route"] for row in rows)),
            "passed_check": sum(row[mode]["passed"] for row in rows),
            "median_ms": statistics.median(row[mode]["ms"] for row in rows),
        }
        for mode in (FREE, SENTENCES)
    }
    result = {
        **run_facts(),
        "generator_version": writer.version,
        "default_decoding": load_settings().generator.decoding,
        "questions": len(rows),
        "summary": summary,
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_report(result)
    print(f"\nWrote {args.output}")


def print_report(result: dict[str, Any]) -> None:
    print(f"{result['questions']} questions, generator {result['generator_version']}\n")
    print("| decoding | routes served | written answers passing the check | median ms |")
    print("|---|---|---|---|")
    for mode, figures in result["summary"].items():
        routes = ", ".join(f"{route} {count}" for route, count in sorted(figures["routes"].items()))
        print(f"| {mode} | {routes} | {figures['passed_check']} | {figures['median_ms']} |")
    for row in result["rows"]:
        print(f"\n{row['question']}")
        for mode in (FREE, SENTENCES):
            served = row[mode]
            mark = "passed" if served["passed"] else "refused"
            print(f"  {mode}, served ({served['route']}): {served['reply']}")
            print(f"  {mode}, written ({mark}): {served['answer']}")


if __name__ == "__main__":
    main()
