import sqlite_utils

from assistant.storage.migrations import MIGRATIONS
from assistant.storage.sqlite_engine import SQLiteSchema
from assistant.storage.store import ConversationStore


def _version_2_database(path):
    """A log as version 2 wrote it: a turn rated three times, the last rating standing."""
    db = sqlite_utils.Database(path)
    for migration in MIGRATIONS[:2]:
        migration(SQLiteSchema(db.conn))
    db.execute("PRAGMA user_version = 2")
    db["conversations"].insert(
        {"id": "old", "channel": "chat", "created_at": "2024", "updated_at": "2024", "slots": "{}"}
    )
    db["turns"].insert(
        {
            "id": 1,
            "conversation_id": "old",
            "position": 1,
            "created_at": "2024",
            "user_text": "hi",
            "reply_text": "hello",
            "route": "template",
        }
    )
    for number, rating in enumerate([1, -1, 1], start=1):
        db["feedback"].insert({"turn_id": 1, "rating": rating, "created_at": f"2024-0{number}"})
    db.close()


def test_a_version_2_log_keeps_the_latest_rating_and_the_others_as_history(tmp_path):
    path = tmp_path / "log.db"
    _version_2_database(path)
    store = ConversationStore(path)
    assert store.schema_version == len(MIGRATIONS)
    [standing] = store.feedback(1)
    assert (standing["rating"], standing["conversation_id"]) == (1, "old")
    changes = [(h["old_rating"], h["new_rating"]) for h in store.feedback_history(1)]
    assert changes == [(None, 1), (1, -1), (-1, 1)]
    assert store.add_feedback(1, "old", -1) == standing["id"]
    assert len(store.feedback(1)) == 1
