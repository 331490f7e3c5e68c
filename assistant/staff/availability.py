"""Whether a person can take a handed-off conversation now: support hours and who is in.

A customer handed off when no one can answer is told so and asked for an email
address to be contacted on, instead of being left waiting in silence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from assistant.core.setting_tables import SupportHours

OUTSIDE_HOURS = "outside_hours"
NO_AGENT = "no_agent"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TeamAvailability:
    """`assistant.core.seams.Staffing` from the support hours (None: always open) and,
    where the agent page is served, whether an agent is signed in to it."""

    def __init__(
        self,
        hours: SupportHours | None,
        signed_in: Callable[[], bool] | None = None,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.hours = hours
        self.signed_in = signed_in
        self.clock = clock

    def unavailable(self) -> str | None:
        if self.hours is not None and not self.hours.open_at(self.clock()):
            return OUTSIDE_HOURS
        if self.signed_in is not None and not self.signed_in():
            return NO_AGENT
        return None
