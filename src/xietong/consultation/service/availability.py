"""Experts' weekly availability laid out on the calendar, shared by the recommendation and
the proposed session times.

An ``ExpertAvailability`` row is a weekly window in China time: weekday 0 = Monday,
``start_time < end_time`` on that day (a window never spans midnight). China keeps one
offset all year (UTC+8, no daylight saving), so a fixed zone is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta, timezone

from xietong.directory.models import ExpertAvailability

CHINA = timezone(timedelta(hours=8))
# A window ending this late runs to midnight (a time of day cannot say 24:00).
_UNTIL_MIDNIGHT = time(23, 59)

Interval = tuple[datetime, datetime]


def weekly_windows(
    rows: Sequence[ExpertAvailability], start: datetime, end: datetime
) -> list[Interval]:
    """The windows of ``rows`` on every China date from ``start``'s to ``end``'s, both
    included, as China-time intervals, by date and then in the order of ``rows``. The
    dates are China dates, so an instant late in a UTC day finds the next morning's
    windows, and Sunday (6) is followed by Monday (0) like any other day."""
    found: list[Interval] = []
    day = start.astimezone(CHINA).date()
    last = end.astimezone(CHINA).date()
    while day <= last:
        for row in rows:
            if row.weekday == day.weekday():
                found.append(
                    (
                        datetime.combine(day, row.start_time, tzinfo=CHINA),
                        datetime.combine(day, row.end_time, tzinfo=CHINA),
                    )
                )
        day += timedelta(days=1)
    return found


def open_hours(
    rows: Sequence[ExpertAvailability], start: datetime, end: datetime
) -> list[Interval]:
    """The expert's hours between the China dates of ``start`` and ``end``, sorted, with
    windows that touch merged into one: 09:00–11:00 and 11:00–12:00 make 09:00–12:00, and
    a window ending at 23:59 or later runs to midnight, so Sunday evening joins Monday
    morning across the week wrap. Takes the day before ``start`` too, whose late window
    may run into it."""
    merged: list[Interval] = []
    for begins, ends in sorted(weekly_windows(rows, start - timedelta(days=1), end)):
        if ends.time() >= _UNTIL_MIDNIGHT:
            ends = datetime.combine(ends.date() + timedelta(days=1), time(0), tzinfo=CHINA)
        if merged and begins <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(ends, merged[-1][1]))
        else:
            merged.append((begins, ends))
    return merged
