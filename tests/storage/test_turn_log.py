import json
import sqlite3

from assistant.core.records import TurnRecord
from assistant.storage.sqlite import ConversationStore
from assistant.text.redaction import Redactor

PUBLIC_EMAIL = "help@pebbleandpine.example"
PUBLIC_PHONE = "+1 555 0142"
EMAIL = "ana@example.com"
CARD = "4111 1111 1111 1111"
SAID = f"I'm {EMAIL}, card {CARD}"


def test_the_trace_the_reason_and_the_sources_are_redacted_before_storage(tmp_path):
    store = ConversationStore(tmp_path / "log.db", Redactor([PUBLIC_EMAIL, PUBLIC_PHONE]))
    conversation = store.start_conversation()
    answer = f"Write to {PUBLIC_EMAIL} or call {PUBLIC_PHONE}."
    source = {"question": SAID, "answer": answer, "intent": "contact", "score": 0.8}
    store.log_turn(
        TurnRecord(
            conversation_id=conversation,
            user_text=SAID,
            reply_text=answer,
            route="retrieval",
            intent="contact",
            confidence=0.8,
            reason=f"retrieved for {EMAIL} paying with {CARD}",
            sources=[source],
            trace={
                "route": "retrieval",
                "reason": f"retrieved for {EMAIL}",
                "checks": [f"card {CARD} seen"],
                "sources": [source],
            },
            latency_ms=3.0,
            model_version="intent:v1",
        )
    )
    store.close()

    connection = sqlite3.connect(tmp_path / "log.db")
    reason, sources, trace = connection.execute(
        "SELECT reason, sources, trace FROM turns"
    ).fetchone()
    connection.close()
    stored = " ".join([reason, sources, trace])
    assert EMAIL not in stored
    assert CARD not in stored and CARD.replace(" ", "") not in stored
    assert "[EMAIL]" in reason and "[CARD]" in reason
    assert json.loads(sources)[0]["answer"] == answer  # the business's contacts survive
    assert json.loads(trace)["sources"][0]["answer"] == answer
    assert json.loads(trace)["checks"] == ["card [CARD] seen"]
