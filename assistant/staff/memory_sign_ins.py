"""Staff sign-ins held in one process's memory: for a log that does not keep them (a
custom `conversation_log`) and for tests. One server only: a second would not see them."""

from __future__ import annotations

import threading
from collections import defaultdict


class MemorySignIns:
    """`assistant.core.seams.StaffSignIns` in dictionaries."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[str, str, float]] = {}  # token -> name, page, issued
        self._failures: defaultdict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def open_session(self, token: str, name: str, page: str, now: float, lifetime: float) -> None:
        with self._lock:
            self._sessions = {
                kept: held for kept, held in self._sessions.items() if held[2] > now - lifetime
            }
            self._sessions[token] = (name, page, now)

    def session_user(self, token: str, page: str, issued_after: float) -> str | None:
        held = self._sessions.get(token)
        if held is None or held[1] != page or held[2] <= issued_after:
            return None
        return held[0]

    def anyone_signed_in(self, page: str, issued_after: float) -> bool:
        return any(p == page and issued > issued_after for _, p, issued in self._sessions.values())

    def end_session(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def end_sessions_of(self, name: str) -> None:
        with self._lock:
            self._sessions = {t: held for t, held in self._sessions.items() if held[0] != name}

    def reserve_sign_in(self, name: str, now: float, window: float, limit: int) -> bool:
        with self._lock:
            recent = [at for at in self._failures[name] if at > now - window]
            if len(recent) >= limit:
                self._failures[name] = recent
                return False
            self._failures[name] = [*recent, now]
            return True

    def clear_sign_in_failures(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)

    def sign_in_failures(self, name: str, since: float) -> tuple[int, float | None]:
        recent = [at for at in self._failures.get(name, []) if at > since]
        return len(recent), min(recent, default=None)
