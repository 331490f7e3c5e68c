"""What only the PostgreSQL engine does: clear errors for a server it cannot reach, a
writer that reconnects after the server dropped it, and one migration among servers."""

import threading

import pytest

from assistant.core.errors import ConfigError, StorageError
from assistant.storage.engines import open_engine
from assistant.storage.migrations import MIGRATIONS
from assistant.storage.postgres_engine import postgres_sql, without_password
from assistant.storage.store import ConversationStore
from tests.conftest import free_port
from tests.storage.test_sqlite import record


def test_an_unreachable_server_is_a_clear_error_without_the_password(postgres_server):
    url = f"postgresql://ana:s3cret@127.0.0.1:{free_port()}/log?connect_timeout=2"
    with pytest.raises(StorageError, match="cannot connect") as refused:
        ConversationStore(url)
    assert "s3cret" not in str(refused.value) and "ana:***@" in str(refused.value)


def test_an_unknown_scheme_is_refused():
    with pytest.raises(ConfigError, match="postgresql://"):
        open_engine("mysql://db/log")


def test_placeholders_and_percent_signs_are_spelled_for_psycopg():
    assert postgres_sql("SELECT 1 WHERE a LIKE '{%' AND b = ?") == (
        "SELECT 1 WHERE a LIKE '{%%' AND b = %s"
    )
    assert without_password("postgresql://u:p@h:5/d") == "postgresql://u:***@h:5/d"


def test_the_writer_reconnects_after_the_server_dropped_it(postgres_server):
    store = ConversationStore(postgres_server.database_url())
    conversation = store.start_conversation()
    with store._engine.reading() as reader:
        reader.execute(
            "SELECT pg_terminate_backend(?)", [store._engine.writer.connection.info.backend_pid]
        )
    # The group fails on the dead connection, uncommitted; run again, alone, it is written.
    store.log_turn(record(conversation, "sent as the connection died"))
    store.log_turn(record(conversation, "after the reconnect"))
    assert [t["user_text"] for t in store.turns(conversation)] == [
        "sent as the connection died",
        "after the reconnect",
    ]
    store.close()


def test_servers_starting_together_migrate_the_schema_once(postgres_server):
    url = postgres_server.database_url()
    opened, errors = [], []

    def start() -> None:
        try:
            opened.append(ConversationStore(url))
        except Exception as error:  # a second migration would fail: "already exists"
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(opened) == 4
    assert {store.schema_version for store in opened} == {len(MIGRATIONS)}
    for store in opened:
        store.close()
