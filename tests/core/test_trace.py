from assistant.core.trace import public_trace

PAST = "Your refund for order PP-104233 went to the card ending 4242."
TRACE = {
    "route": "retrieval",
    "reason": "a past question is close",
    "intents": [{"intent": "refund_status", "probability": 0.61}],
    "sources": [{"question": "where is my refund", "answer": PAST, "intent": "x", "score": 0.8}],
    "checks": [],
    "slots_found": [],
}


def generation(passed: bool) -> dict:
    verdict = {"passed": passed, "reason": "r", "invented": [] if passed else ["PP-104233"]}
    return {"written": PAST, "verdict": verdict, "used": "generate" if passed else "retrieval"}


def test_the_public_trace_has_no_past_words():
    public = public_trace(TRACE)
    assert public["sources"] == [{"intent": "x", "score": 0.8}]
    assert PAST not in str(public) and "where is my refund" not in str(public)


def test_a_draft_that_failed_its_check_is_not_in_the_public_trace():
    failed = public_trace({**TRACE, "generation": generation(passed=False)})
    assert PAST not in str(failed) and "PP-104233" not in str(failed)
    assert failed["generation"]["verdict"]["passed"] is False
    passed = public_trace({**TRACE, "generation": generation(passed=True)})
    assert passed["generation"]["written"] == PAST
