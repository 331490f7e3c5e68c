"""The staff pages' sign-ins, kept in the log so that every server sees the same ones.

A session is stored as its token's SHA-256, never the token: a copy of the database
cannot sign anyone in. Failed sign-in attempts are rows too, so the throttle counts
them across servers. Times are Unix seconds from the caller's clock.
"""

from __future__ import annotations

import hashlib

from assistant.storage.connection import LogConnection

PRUNE_EVERY = 100  # sessions opened between clearing out the expired ones


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SqlStaffSignIns(LogConnection):
    """Sessions and failed attempts (`assistant.core.seams.StaffSignIns`)."""

    _opened_since_prune = 0

    def open_session(self, token: str, name: str, page: str, now: float, lifetime: float) -> None:
        """Record a sign-in to `page`; sessions older than `lifetime` are cleared now and then."""
        self._opened_since_prune += 1
        prune = self._opened_since_prune >= PRUNE_EVERY

        def change() -> None:
            self._insert_session(token_hash(token), name, page, now)
            if prune:
                self._db.execute(
                    "DELETE FROM staff_sessions WHERE issued_at <= ?", [now - lifetime]
                )

        self._write(change)
        if prune:
            self._opened_since_prune = 0

    def _insert_session(self, hashed: str, name: str, page: str, now: float) -> None:
        self._db.execute("DELETE FROM staff_sessions WHERE token_hash = ?", [hashed])
        self._db.execute(
            "INSERT INTO staff_sessions (token_hash, name, page, issued_at) VALUES (?, ?, ?, ?)",
            [hashed, name, page, now],
        )

    def session_user(self, token: str, page: str, issued_after: float) -> str | None:
        """Who holds `token` on `page`, if it was issued after `issued_after`."""
        row = self._read_one(
            "SELECT name FROM staff_sessions WHERE token_hash = ? AND page = ? AND issued_at > ?",
            [token_hash(token), page, issued_after],
        )
        return row["name"] if row else None

    def anyone_signed_in(self, page: str, issued_after: float) -> bool:
        row = self._read_one(
            "SELECT 1 AS found FROM staff_sessions WHERE page = ? AND issued_at > ? LIMIT 1",
            [page, issued_after],
        )
        return row is not None

    def end_session(self, token: str) -> None:
        hashed = token_hash(token)
        self._write(
            lambda: self._db.execute("DELETE FROM staff_sessions WHERE token_hash = ?", [hashed])
        )

    def end_sessions_of(self, name: str) -> None:
        """Sign `name` out of every page, on every server."""
        self._write(lambda: self._db.execute("DELETE FROM staff_sessions WHERE name = ?", [name]))

    def reserve_sign_in(self, name: str, now: float, window: float, limit: int) -> bool:
        """Count an attempt by `name` as failed before its password is checked; False, and
        nothing counted, when `limit` attempts failed within `window` seconds already.
        Failures older than the window are cleared on the way. Servers count a name one
        at a time, so a burst of guesses spread over them cannot pass the limit."""

        def change() -> bool:
            if self._engine.lock_name is not None:
                self._db.execute(self._engine.lock_name, [f"sign-in:{name}"])
            self._db.execute(
                "DELETE FROM sign_in_failures WHERE name = ? AND failed_at <= ?",
                [name, now - window],
            )
            if self._failures(name, now - window)["count"] >= limit:
                return False
            self._db.execute(
                "INSERT INTO sign_in_failures (name, failed_at) VALUES (?, ?)", [name, now]
            )
            return True

        return self._write(change)

    def clear_sign_in_failures(self, name: str) -> None:
        """A successful sign-in takes back its name's failures."""
        self._write(lambda: self._db.execute("DELETE FROM sign_in_failures WHERE name = ?", [name]))

    def sign_in_failures(self, name: str, since: float) -> tuple[int, float | None]:
        """How many attempts by `name` failed after `since`, and when the oldest of them did."""
        row = self._failures(name, since, reader=True)
        return int(row["count"]), row["oldest"]

    def _failures(self, name: str, since: float, reader: bool = False) -> dict:
        sql = (
            "SELECT COUNT(*) AS count, MIN(failed_at) AS oldest FROM sign_in_failures "
            "WHERE name = ? AND failed_at > ?"
        )
        row = self._read_one(sql, [name, since]) if reader else self._db.one(sql, [name, since])
        assert row is not None  # an aggregate always gives a row
        return row
