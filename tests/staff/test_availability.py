import datetime as dt

import pytest
from pydantic import ValidationError

from assistant.core.setting_tables import SupportHours
from assistant.staff.availability import NO_AGENT, OUTSIDE_HOURS, TeamAvailability

HOURS = SupportHours(timezone="America/New_York", days={"mon": "08:00-20:00", "sat": "09:00-17:00"})
MONDAY_NOON_IN_NEW_YORK = dt.datetime(2026, 12, 7, 17, 0, tzinfo=dt.UTC)
MONDAY_NIGHT_IN_NEW_YORK = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)
SUNDAY = dt.datetime(2026, 12, 6, 17, 0, tzinfo=dt.UTC)


def test_support_hours_are_read_in_their_own_time_zone():
    assert HOURS.open_at(MONDAY_NOON_IN_NEW_YORK)
    assert not HOURS.open_at(MONDAY_NIGHT_IN_NEW_YORK)  # 21:00 Monday in New York
    assert not HOURS.open_at(SUNDAY)  # a day not listed is closed


def test_no_one_is_available_outside_hours_or_with_no_agent_signed_in():
    def at(moment):
        return lambda: moment

    assert TeamAvailability(None).unavailable() is None
    assert TeamAvailability(HOURS, clock=at(SUNDAY)).unavailable() == OUTSIDE_HOURS
    open_but_empty = TeamAvailability(HOURS, lambda: False, at(MONDAY_NOON_IN_NEW_YORK))
    assert open_but_empty.unavailable() == NO_AGENT
    staffed = TeamAvailability(HOURS, lambda: True, at(MONDAY_NOON_IN_NEW_YORK))
    assert staffed.unavailable() is None


@pytest.mark.parametrize(
    "hours",
    [
        {"timezone": "Mars/Olympus"},
        {"days": {"mon": "8am-5pm"}},
        {"days": {"mon": "17:00-09:00"}},
        {"days": {"someday": "08:00-09:00"}},
    ],
)
def test_bad_support_hours_are_refused_clearly(hours):
    with pytest.raises(ValidationError):
        SupportHours(**hours)
