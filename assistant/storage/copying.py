"""Moving a conversation log from its SQLite file into PostgreSQL (`assistant db copy`).

One server keeps its log in a SQLite file; a second one needs PostgreSQL, which every
replica shares. The log is history people rely on (corrections, reviews, ratings feed
retraining), so the copy is written to be trusted on a large log and to survive
being stopped:

- Both ends are opened as the log first, so both schemas are at the current version
  (an older SQLite file is upgraded in place) and the tables match column for column.
- Tables are copied parents first, for the foreign keys, each in primary-key order and
  in chunks committed one transaction each. A table starts after the largest key the
  target already has, and a row already there is skipped (`ON CONFLICT DO NOTHING`):
  a rerun copies nothing, and a run killed halfway goes on from its last commit. A
  target that is not such a part of this log (rows of its own, rows lost, the SQLite
  file written to since) is refused before anything is copied: going on after its
  largest keys would skip rows.
- Rows are copied as stored: already redacted, with their ids, so every reference
  between tables holds. Addresses left to be contacted on stay sealed with the key
  they were sealed with: the servers on PostgreSQL need that key too.
- The identity sequences are then moved to the largest id copied, so the next turn
  logged in PostgreSQL gets a fresh id, and the row counts of both ends are compared.

Stop the servers writing to the SQLite file first: a rerun adds the rows that are new,
but not the changes made since to rows already copied (a conversation's status).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tqdm import tqdm

from assistant.core.errors import ConfigError, StorageError
from assistant.storage.engines import SqlSession, is_postgres_url, open_engine
from assistant.storage.store import ConversationStore

if TYPE_CHECKING:
    from assistant.storage.postgres_engine import PostgresSession

CHUNK_ROWS = 5_000


@dataclass(frozen=True)
class LogTable:
    """A table of the log and its primary key; `identity`: an integer key PostgreSQL
    generates, whose sequence must be moved past the copied ids."""

    name: str
    key: str = "id"
    identity: bool = True


# Parents before the tables whose foreign keys point at them.
TABLES = (
    LogTable("conversations", identity=False),
    LogTable("turns"),
    LogTable("messages"),
    LogTable("feedback"),
    LogTable("feedback_changes"),
    LogTable("agent_actions"),
    LogTable("reuse_reviews"),
    LogTable("staff_sessions", key="token_hash", identity=False),
    LogTable("sign_in_failures"),
)


@dataclass(frozen=True)
class TableCopy:
    """One table's rows in the source and the target after the copy, and how many this
    run copied."""

    table: str
    source_rows: int
    target_rows: int
    copied: int

    @property
    def complete(self) -> bool:
        return self.source_rows == self.target_rows


# Called after each chunk is committed, with the table and the rows the chunk held.
ChunkHook = Callable[[str, int], None]


def copy_log(
    source: str | Path,
    target: str,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
    after_chunk: ChunkHook | None = None,
) -> list[TableCopy]:
    """Copy the SQLite log at `source` into the PostgreSQL database at `target`; returns
    each table's counts (compare them: `TableCopy.complete`)."""
    source_path = checked_source(source)
    checked_target(target)
    bring_up_to_date(source_path, target)
    with _sessions(source_path, target) as (reader, writer):
        check_copied_so_far(reader, writer)
        copied = _copy_tables(reader, writer, chunk_rows, progress, after_chunk)
        reset_identities(writer)
        return [
            TableCopy(table.name, count(reader, table), count(writer, table), copied[table])
            for table in TABLES
        ]


def checked_source(source: str | Path) -> Path:
    if is_postgres_url(source) or "://" in str(source):
        raise ConfigError(f"the source must be the SQLite file of a log, not {source}")
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"no SQLite log at {path}: give the path of its file (database_path)")
    return path


def checked_target(target: str) -> None:
    if not is_postgres_url(target):
        shown = target.split("://")[0] + "://..." if "://" in target else target
        raise ConfigError(f"the target must be a postgresql:// URL (database_url), not {shown}")


def bring_up_to_date(source: Path, target: str) -> None:
    """Open both ends as the log, which migrates each schema to the current version."""
    try:
        ConversationStore(source).close()
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"{source} is not a SQLite log: {error}") from error
    ConversationStore(target).close()


@contextmanager
def _sessions(source: Path, target: str) -> Iterator[tuple[SqlSession, PostgresSession]]:
    """A read connection to the SQLite log and the writer connection to PostgreSQL."""
    reading, writing = open_engine(source), open_engine(target)
    try:
        with reading.reading() as reader:
            yield reader, cast("PostgresSession", writing.writer)
    finally:
        reading.close()
        writing.close()


def _copy_tables(
    reader: SqlSession,
    writer: PostgresSession,
    chunk_rows: int,
    progress: bool,
    after_chunk: ChunkHook | None,
) -> dict[LogTable, int]:
    in_source = {table: count(reader, table) for table in TABLES}
    present = sum(min(rows, count(writer, table)) for table, rows in in_source.items())
    copied = {}
    with tqdm(
        total=sum(in_source.values()), initial=present, unit=" rows", disable=not progress
    ) as bar:
        for table in TABLES:
            bar.set_description(table.name)
            copied[table] = 0
            for chunk in source_chunks(reader, table, last_key(writer, table), chunk_rows):
                copied[table] += insert_chunk(writer, table, chunk)
                bar.update(len(chunk))
                if after_chunk is not None:
                    after_chunk(table.name, len(chunk))
    return copied


def check_copied_so_far(reader: SqlSession, writer: SqlSession) -> None:
    """Refuse a target that is neither empty nor a part of this log copied before: each
    table's rows must be as many as the source's up to the target's largest key, and the
    rows at that key the same."""
    for table in TABLES:
        last = last_key(writer, table)
        if last is None:
            continue
        last_row = f'SELECT * FROM "{table.name}" WHERE "{table.key}" = ?'
        same_last_row = reader.one(last_row, [last]) == writer.one(last_row, [last])
        if not same_last_row or count(reader, table, up_to=last) != count(writer, table):
            raise ConfigError(
                f"the PostgreSQL database's {table.name} is not a copy of this SQLite log's "
                "so far (rows of its own, rows lost, or the SQLite log written to since): "
                "copy into an empty database"
            )


def source_chunks(
    reader: SqlSession, table: LogTable, after: Any, chunk_rows: int
) -> Iterator[list[dict[str, Any]]]:
    """The table's rows with a key above `after` (all, for None), in key order, by chunk."""
    select = f'SELECT * FROM "{table.name}"'
    order = f' ORDER BY "{table.key}" LIMIT ?'
    while True:
        if after is None:
            chunk = reader.all(select + order, [chunk_rows])
        else:
            chunk = reader.all(select + f' WHERE "{table.key}" > ?' + order, [after, chunk_rows])
        if not chunk:
            return
        yield chunk
        after = chunk[-1][table.key]


def insert_chunk(writer: PostgresSession, table: LogTable, rows: list[dict[str, Any]]) -> int:
    """Insert `rows` in one transaction, skipping those already there; returns how many
    were new. They travel by COPY into a temporary table, twice as fast as one INSERT
    each, and go on from there with `INSERT ... ON CONFLICT DO NOTHING`."""
    import psycopg  # here: the command line builds its parser without it

    columns = list(rows[0])
    listed = ", ".join(f'"{column}"' for column in columns)
    staged = f"staged_{table.name}"
    try:
        with writer.transaction(), writer.connection.cursor() as cursor:
            cursor.execute(f'CREATE TEMP TABLE "{staged}" (LIKE "{table.name}") ON COMMIT DROP')
            with cursor.copy(f'COPY "{staged}" ({listed}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([row[column] for column in columns])
            cursor.execute(
                f'INSERT INTO "{table.name}" ({listed}) SELECT {listed} FROM "{staged}" '
                "ON CONFLICT DO NOTHING"
            )
            return max(cursor.rowcount, 0)
    except psycopg.Error as error:
        first, last = rows[0][table.key], rows[-1][table.key]
        raise StorageError(
            f"copying {table.name} ({table.key} {first} to {last}) failed: {error}; "
            "the rows before these are copied, and a rerun goes on from there"
        ) from error


def last_key(writer: SqlSession, table: LogTable) -> Any:
    """The largest key the target holds, compared as SQLite compares text (byte order)."""
    key = f'"{table.key}"' if table.identity else f'"{table.key}" COLLATE "C"'
    row = writer.one(f'SELECT MAX({key}) AS last FROM "{table.name}"')
    return row["last"] if row else None


def reset_identities(writer: SqlSession) -> None:
    """Move each identity sequence to its table's largest id (an empty table's is left)."""
    for table in TABLES:
        if table.identity:
            writer.one(
                f'SELECT setval(pg_get_serial_sequence(?, ?), MAX("{table.key}")) AS moved '
                f'FROM "{table.name}"',
                [table.name, table.key],
            )


def count(session: SqlSession, table: LogTable, up_to: Any = None) -> int:
    """The table's rows; with `up_to`, those whose key is not above it (in SQLite)."""
    sql = f'SELECT COUNT(*) AS total FROM "{table.name}"'
    if up_to is None:
        row = session.one(sql)
    else:
        row = session.one(sql + f' WHERE "{table.key}" <= ?', [up_to])
    return int(row["total"]) if row else 0
