"""SQLite under the log, the embedded default: one file in WAL mode, one writer connection,
one kept read connection per thread. The schema's version is `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.storage.engines import dict_rows, insert_sql


class SQLiteSession:
    """A sqlite3 connection behind `SqlSession`; savepoints nest inside a transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._db = sqlite_utils.Database(connection)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.connection.execute(sql, list(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        cursor = self.connection.execute(sql, list(params))
        row = cursor.fetchone()
        return None if row is None else dict_rows(cursor.description, iter([row]))[0]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.connection.execute(sql, list(params))
        return dict_rows(cursor.description, iter(cursor.fetchall()))

    def insert(self, table: str, values: dict[str, Any]) -> Any:
        cursor = self.connection.execute(insert_sql(table, values), list(values.values()))
        return cursor.fetchone()[0]

    def transaction(self) -> AbstractContextManager[None]:
        return _atomic(self._db)


@contextmanager
def _atomic(db: sqlite_utils.Database) -> Iterator[None]:
    with db.atomic():
        yield


class _Reader:
    """A thread's read session; a holder, since a connection cannot be weakly held."""

    def __init__(self, session: SQLiteSession) -> None:
        self.session = session


class SQLiteSchema:
    """`SchemaEditor` through sqlite-utils, which writes the DDL logs have always had."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = sqlite_utils.Database(connection)

    def create_table(
        self,
        name: str,
        columns: dict[str, type],
        pk: str,
        foreign_keys: Sequence[tuple[str, str, str]] = (),
        not_null: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        self._db[name].create(
            columns, pk=pk, foreign_keys=list(foreign_keys), not_null=set(not_null)
        )

    def add_column(self, table: str, column: str, kind: type, not_null_default: Any = None) -> None:
        self._db[table].add_column(column, kind, not_null_default=not_null_default)

    def create_index(
        self, table: str, columns: Sequence[str], unique: bool = False, name: str | None = None
    ) -> None:
        self._db[table].create_index(list(columns), unique=unique, index_name=name)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, list(params))


class SQLiteEngine:
    """The log in one SQLite file."""

    lock_row = ""
    lock_name = None

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._writer = SQLiteSession(connection)
        db = sqlite_utils.Database(connection)
        db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        self._thread_readers = threading.local()
        # Weakly held: a thread that ends drops its reader, and the connection closes.
        self._open_readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def writer(self) -> SQLiteSession:
        return self._writer

    @contextmanager
    def reading(self) -> Iterator[SQLiteSession]:
        """This thread's read connection, opened on its first read and kept until `close`.
        Outside a transaction each SELECT sees the latest commit, as a fresh one would."""
        reader = getattr(self._thread_readers, "reader", None)
        if reader is None:
            connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            reader = _Reader(SQLiteSession(connection))
            self._thread_readers.reader = reader
            with self._readers_lock:
                self._open_readers.add(reader)
        yield reader.session

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def json_text_if_valid(self, column: str, key: str) -> str:
        return f"CASE WHEN json_valid({column}) THEN json_extract({column}, '$.{key}') END"

    def schema_version(self) -> int:
        return self._writer.connection.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def migrating(self) -> Iterator[SQLiteSchema]:
        connection = self._writer.connection
        connection.execute("BEGIN IMMEDIATE")  # the write lock first: one process migrates
        try:
            yield SQLiteSchema(connection)
        except BaseException:
            connection.rollback()
            raise
        connection.execute("COMMIT")

    def set_schema_version(self, version: int) -> None:
        self._writer.connection.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        with self._readers_lock:
            for reader in list(self._open_readers):
                reader.session.connection.close()
            self._open_readers.clear()
        self._writer.connection.close()
