"""`assistant db copy`: the conversation log moved from its SQLite file into PostgreSQL."""

from __future__ import annotations

import argparse
import os
import sys

from assistant.core.settings import Settings
from assistant.storage.contacts import KEY_FILE, KEY_VARIABLE


def cmd_db_copy(args: argparse.Namespace, settings: Settings) -> int:
    """Copy the log, print each table's counts; 1 when a table's counts differ."""
    from assistant.storage.copying import copy_log

    report = copy_log(args.sqlite_path, args.postgres_url, chunk_rows=args.chunk_rows)
    print(f"{'table':<18}{'SQLite':>12}{'PostgreSQL':>12}{'copied now':>12}")
    for table in report:
        print(
            f"{table.table:<18}{table.source_rows:>12,}{table.target_rows:>12,}{table.copied:>12,}"
        )
    key_file = args.sqlite_path.parent / KEY_FILE
    key = f"${KEY_VARIABLE}" if os.environ.get(KEY_VARIABLE) else str(key_file)
    print(
        f"Contact addresses were copied sealed with their key ({key}): give every server on "
        f"PostgreSQL the same key, as {KEY_FILE} in its database_path folder or in "
        f"{KEY_VARIABLE}.",
        file=sys.stderr,
    )
    differing = [table.table for table in report if not table.complete]
    if differing:
        print(
            f"error: the row counts differ in {', '.join(differing)}. Stop every server "
            "writing to the SQLite file and run the copy again; if they still differ, the "
            "PostgreSQL database has rows of its own or lost some: copy into an empty one.",
            file=sys.stderr,
        )
        return 1
    print("Every table has the same rows in both.")
    return 0
