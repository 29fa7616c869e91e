"""`$system.dateRange.*`: NocoBase's named date ranges, as its workflow engine
gives them (`plugin-workflow/src/server/functions` over `@nocobase/utils`
`getDateVars`, dayjs with the `en` locale).

Each is text meant for NocoBase's date filters, and rayhook gives the same text
so that an exported workflow reads the same values:

- a unit (`today`, `thisWeek`, `lastMonth`, `nextQuarter`, `thisYear`...) is the
  start of that unit, formatted per unit and followed by the time zone:
  `2026-08-22+00:00`, `2026w34+00:00` (weeks start on Sunday and are numbered
  as dayjs's `gggg[w]ww` does: week 1 holds 1 January), `2026-08+00:00`,
  `2026Q3+00:00`, `2026+00:00`;
- `lastNDays`/`nextNDays` (7, 30, 90) is a half-open day range
  `[start, end, "[)", "+00:00"]`: the last N days end with today, the next N
  begin tomorrow.

NocoBase uses the server's time zone; rayhook's is UTC (`+00:00`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

TIME_ZONE = "+00:00"


def _today(now: datetime) -> date:
    return now.astimezone(UTC).date()


def _months(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def _week_start(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)  # Sunday


def _week_label(start: date) -> str:
    """dayjs `gggg[w]ww` (weekOfYear and weekYear plugins, `en` locale) of the
    Sunday `start`."""
    if start.month == 12 and start.day > 25 and date(start.year + 1, 1, 1) <= start + timedelta(6):
        week, year = 1, start.year + 1
    else:
        # dayjs: ceil((start - (first week's Sunday - 1 ms)) / 1 week)
        days = (start - _week_start(date(start.year, 1, 1))).days
        week, year = math.ceil((days * 86_400_000 + 1) / 604_800_000), start.year
    return f"{year}w{week:02d}"


def unit_start(unit: str, offset: int, now: datetime) -> str:
    """NocoBase `utc2unit`: the start of the unit `offset` units away, as text."""
    today = _today(now)
    if unit == "day":
        text = (today + timedelta(days=offset)).isoformat()
    elif unit == "week":
        text = _week_label(_week_start(today) + timedelta(weeks=offset))
    elif unit == "month":
        year, month = _months(today, offset)
        text = f"{year:04d}-{month:02d}"
    elif unit == "quarter":
        year, month = _months(date(today.year, (today.month - 1) // 3 * 3 + 1, 1), 3 * offset)
        text = f"{year:04d}Q{(month - 1) // 3 + 1}"
    else:
        text = f"{today.year + offset:04d}"
    return text + TIME_ZONE


def day_range(offset: int, now: datetime) -> list[str]:
    """NocoBase `getDayRange`: the last `-offset` days up to today, or the next
    `offset` days from tomorrow, as `[start, end, "[)", zone]`."""
    today = _today(now)
    if offset > 0:
        start = today + timedelta(days=1)
        end = start + timedelta(days=offset)
    else:
        start = today - timedelta(days=-offset - 1)
        end = today + timedelta(days=1)
    return [start.isoformat(), end.isoformat(), "[)", TIME_ZONE]


def _unit(unit: str, offset: int) -> Callable[[], str]:
    return lambda: unit_start(unit, offset, datetime.now(UTC))


def _days(offset: int) -> Callable[[], list[str]]:
    return lambda: day_range(offset, datetime.now(UTC))


#: The ranges, by the name `$system.dateRange.<name>` reads (NocoBase's list).
DATE_RANGES: dict[str, Callable[[], Any]] = {
    "yesterday": _unit("day", -1),
    "today": _unit("day", 0),
    "tomorrow": _unit("day", 1),
    "lastWeek": _unit("week", -1),
    "thisWeek": _unit("week", 0),
    "nextWeek": _unit("week", 1),
    "lastMonth": _unit("month", -1),
    "thisMonth": _unit("month", 0),
    "nextMonth": _unit("month", 1),
    "lastQuarter": _unit("quarter", -1),
    "thisQuarter": _unit("quarter", 0),
    "nextQuarter": _unit("quarter", 1),
    "lastYear": _unit("year", -1),
    "thisYear": _unit("year", 0),
    "nextYear": _unit("year", 1),
    "last7Days": _days(-7),
    "next7Days": _days(7),
    "last30Days": _days(-30),
    "next30Days": _days(30),
    "last90Days": _days(-90),
    "next90Days": _days(90),
}
