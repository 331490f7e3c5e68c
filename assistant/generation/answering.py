"""Writing an answer for one message: the answer writer's text streamed through the
identifier guard, then checked whole, within the server's writing capacity.

A written answer that cannot start (every writer busy), or that fails a check, settles
its decision on the fallback decided with it; the trace's `generation` part says which
and why.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from assistant.core.types import Decision, TurnContext
from assistant.generation.capacity import BUSY_REASON, WritingCapacity
from assistant.generation.grounding import StreamGuard, Verdict, check_answer

if TYPE_CHECKING:
    from assistant.core.registry import Models


def write_answer(
    writing: WritingCapacity, models: Models, text: str, context: TurnContext, decision: Decision
) -> Generator[str, None, tuple[Decision, dict[str, Any]]]:
    """Stream the generator's answer through the identifier guard, then check it whole."""
    generator = models.generator
    assert generator is not None  # the router only routes here when one is loaded
    # The past answers the prompt holds are the ones its identifiers may come from.
    past_answers = [s.answer for s in context.sources][: generator.limits.context_answers]
    given = [text, *context.slots.values()]
    guard = StreamGuard([*given, *past_answers])
    stop = threading.Event()
    with writing.turn() as admitted:
        if not admitted:  # recorded like a failed check, so every trace reader copes
            final = decision.settle("", False, BUSY_REASON, written=False)
            busy = Verdict(False, BUSY_REASON)
            return final, {"written": "", "verdict": busy.to_dict(), "used": final.route.value}
        for piece in generator.stream(text, past_answers, stop):
            shown = guard.feed(piece)
            if guard.tripped:
                stop.set()
                break
            if shown:
                yield shown
    tail = guard.finish()
    if tail:
        yield tail
    answer = guard.released.strip()
    if guard.tripped:
        verdict = Verdict(False, "", invented=guard.invented)
    else:
        verdict = check_answer(
            answer,
            past_answers,
            given,
            models.encoder.embed,
            generator.grounding_threshold,
            text,
            generator.relevance_threshold,
            models.encoder.embed_past_answers,
        )
    if verdict.invented:  # the reason is shown to the customer: how many, not which
        verdict = replace(verdict, reason=invented_reason(len(verdict.invented)))
    final = decision.settle(answer, verdict.passed, verdict.reason)
    return final, {"written": answer, "verdict": verdict.to_dict(), "used": final.route.value}


def invented_reason(count: int) -> str:
    """Why a written answer with invented identifiers failed, naming none of them."""
    return f"it named {count} identifier{'' if count == 1 else 's'} found in no input"
