"""One full learning loop on the demo data: chat, agents correct, export, retrain, compare.

Customer messages of our own (benchmarks/data/loop_messages.csv, with the intent
each really has) go through a copy of the built assistant. A simulated agent
corrects every turn whose intent was wrong or missing and answers it with the
right intent's template, as an agent sending a suggestion would. Then the log is
exported and `retrain` runs exactly as `assistant retrain` does. The live models
are not touched: everything happens on a copy under benchmarks/results/models/.

    python benchmarks/retrain_loop.py

Writes benchmarks/results/retrain_loop.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from assistant.analytics.export import export_log
from assistant.cli.releases import retrain_summary
from assistant.core.pipeline import Assistant
from assistant.core.settings import Settings, load_settings
from assistant.datasets.loading import load_dataset, load_intent_examples
from assistant.lifecycle.build import ensure_artifacts
from assistant.lifecycle.retrain import RETRIEVAL_FIGURE, LogRow, retrain
from assistant.routing.templates import TemplateBook, load_templates
from assistant.text.slots import extract_slots

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MESSAGES = HERE / "data" / "loop_messages.csv"
AGENT = "loop-agent"


def working_copy(settings: Settings, root: Path) -> Settings:
    """The built models and index copied under `root`, with an empty conversation log."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(settings.models_dir, root / "models")
    shutil.copytree(settings.index_dir, root / "index")
    update = {
        "models_dir": root / "models",
        "index_dir": root / "index",
        "database_path": root / "conversations.db",
        "reload_check_seconds": 0,
    }
    return settings.model_copy(update=update)


def chat_and_correct(assistant: Assistant, messages_path: Path) -> dict[str, int]:
    """Each message in a conversation of its own; wrong intents corrected by the agent, whose
    answer is approved for reuse."""
    templates = load_templates(assistant.settings)
    counts = {"messages": 0, "intent_right": 0, "corrected": 0}
    for example in load_intent_examples(messages_path):
        reply = assistant.reply(example.text)
        counts["messages"] += 1
        if reply.intent == example.intent:
            counts["intent_right"] += 1
            continue
        assistant.store.correct_intent(reply.turn_id, AGENT, example.intent)
        answer = agent_answer(templates, example.intent, example.text)
        line = assistant.store.agent_reply(reply.conversation_id, AGENT, answer, suggestion=answer)
        assistant.store.review_answer(line, AGENT, approved=True)  # reusable: joins the index
        counts["corrected"] += 1
    return counts


def agent_answer(templates: TemplateBook, intent: str, text: str) -> str:
    """The right intent's template, filled from the message or asking for what it lacks."""
    template = templates.get(intent)
    if template is None:
        return "Sorry, that is not something we can help with; we look after Pebble & Pine orders."
    slots = extract_slots(text)
    missing = template.missing(slots)
    return templates.prompt_for(missing[0]) if missing else template.fill(slots)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML settings (default: assistant.toml)")
    parser.add_argument("--messages", type=Path, default=MESSAGES)
    args = parser.parse_args()
    settings = load_settings(args.config)
    dataset = load_dataset(settings.data_dir)
    ensure_artifacts(dataset, settings)
    work = working_copy(settings, RESULTS / "models" / "retrain-loop")
    assistant = Assistant.load(work)
    chat = chat_and_correct(assistant, args.messages)
    export = export_log(assistant.store)
    rows = [LogRow.from_export(row) for row in export.rows]
    started = time.perf_counter()
    result = retrain(dataset, work, rows, announce=lambda line: print(line, flush=True))
    figures = {
        "chat": chat,
        "export": {"rows": len(export.rows), "left_out": dict(export.left_out)},
        "retrain": result.to_dict(),
        "retrain_minutes": round((time.perf_counter() - started) / 60, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retrain_loop.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(retrain_summary(result))
    live, new = result.live_figures, result.candidate_figures
    print(
        f"{chat['messages']} messages, bot intent right on {chat['intent_right']}, "
        f"{chat['corrected']} corrected by the agent; export: {export.summary()}\n"
        f"held-out accuracy: live {live['accuracy']:.4f} -> new {new['accuracy']:.4f} "
        f"(macro-F1 {live['macro_f1']:.4f} -> {new['macro_f1']:.4f}), index MRR@10 "
        f"{live[RETRIEVAL_FIGURE]:.4f} -> {new[RETRIEVAL_FIGURE]:.4f} on "
        f"{result.counts['held_out']} examples; promoted: {result.promoted}; "
        f"retraining took {figures['retrain_minutes']:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
