"""The SQL engines under the conversation log: what the log's roles ask of a database.

The roles (turn log, agent desk, queue, readers, staff sign-ins) are written once,
in SQL both engines run, with `?` placeholders. An engine supplies connections
(`SqlSession`: one writer, readers per thread or from a pool), the few expressions
whose spelling differs (`SqlDialect`), and the schema's version and editor for the
migrations. SQLite (`assistant.storage.sqlite_engine`) is the embedded default;
PostgreSQL (`assistant.storage.postgres_engine`) is the option for more than one
server. `open_engine` picks one from a path or a `postgresql://` URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from assistant.core.errors import ConfigError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SqlSession(Protocol):
    """One connection, used by one thread at a time; rows come back as dicts."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def insert(self, table: str, values: dict[str, Any]) -> Any:
        """Insert one row; returns its `id`."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """A transaction, or a savepoint inside one: undone whole if its block raises."""
        ...


class SchemaEditor(Protocol):
    """What a migration may do, spelled for the engine it runs on."""

    def create_table(
        self,
        name: str,
        columns: dict[str, type],
        pk: str,
        foreign_keys: Sequence[tuple[str, str, str]] = (),
        not_null: frozenset[str] | set[str] = frozenset(),
    ) -> None: ...

    def add_column(
        self, table: str, column: str, kind: type, not_null_default: Any = None
    ) -> None: ...

    def create_index(
        self, table: str, columns: Sequence[str], unique: bool = False, name: str | None = None
    ) -> None: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...


class SqlDialect(Protocol):
    """The expressions the engines spell differently."""

    def json_text(self, column: str, key: str) -> str:
        """`column`'s JSON object's `key`, as text."""
        ...

    def json_text_if_valid(self, column: str, key: str) -> str:
        """As `json_text`, NULL where `column` does not hold a JSON object."""
        ...

    @property
    def lock_row(self) -> str:
        """What a SELECT ends with to hold its rows until the transaction ends."""
        ...

    @property
    def lock_name(self) -> str | None:
        """A statement that holds a lock on the text `?` until the transaction ends, for
        what must be counted by one server at a time; None where the writer already is
        one at a time (SQLite takes the file's write lock at a transaction's first write)."""
        ...


class SqlEngine(SqlDialect, Protocol):
    """A database the log lives in."""

    @property
    def location(self) -> str:
        """Where it is, for messages (a URL without its password)."""
        ...

    @property
    def writer(self) -> SqlSession:
        """The one connection changes go through; used by the log's writer thread alone."""
        ...

    def reading(self) -> AbstractContextManager[SqlSession]:
        """A connection for reads; each statement sees the latest commit."""
        ...

    def schema_version(self) -> int: ...

    def migrating(self) -> AbstractContextManager[SchemaEditor]:
        """One migration step in a transaction, alone among every process on the database."""
        ...

    def set_schema_version(self, version: int) -> None:
        """Record `version`; called inside `migrating`."""
        ...

    def close(self) -> None: ...


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_engine(location: str | Path) -> SqlEngine:
    """SQLite for a path, PostgreSQL for a `postgresql://` URL."""
    if is_postgres_url(location):
        try:
            from assistant.storage.postgres_engine import PostgresEngine
        except ImportError as error:
            raise ConfigError(
                "a postgresql:// database_url needs psycopg and psycopg-pool: "
                'pip install -e ".[postgresql]"'
            ) from error
        return PostgresEngine(str(location))
    if isinstance(location, str) and "://" in location:
        raise ConfigError(
            f"database_url {location.split('://')[0]}:// is not supported; "
            "use postgresql://, or leave it empty for the SQLite file at database_path"
        )
    from assistant.storage.sqlite_engine import SQLiteEngine

    return SQLiteEngine(Path(location))


def dict_rows(description: Sequence[Any], rows: Iterator[Sequence[Any]]) -> list[dict[str, Any]]:
    names = [column[0] for column in description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def insert_sql(table: str, values: dict[str, Any]) -> str:
    columns = ", ".join(f'"{column}"' for column in values)
    marks = ", ".join("?" for _ in values)
    return f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) RETURNING id'
