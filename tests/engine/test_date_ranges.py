"""`$system.dateRange.*` (reference §4.1): NocoBase's named date ranges, the
text its workflow engine gives (`getDateVars` in @nocobase/utils, dayjs `en`
locale, the server's time zone: rayhook's is UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.date_ranges import DATE_RANGES, day_range, unit_start
from tests.engine.test_interpreter import compile_nodes, output, run_workflow

SATURDAY = datetime(2026, 8, 22, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("unit", "offset", "now", "expected"),
    [
        ("day", 0, SATURDAY, "2026-08-22+00:00"),
        ("day", -1, SATURDAY, "2026-08-21+00:00"),
        ("day", 1, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "2027-01-01+00:00"),
        # Weeks start on Sunday; week 1 is the one holding 1 January (dayjs gggg[w]ww).
        ("week", 0, SATURDAY, "2026w34+00:00"),
        ("week", -1, SATURDAY, "2026w33+00:00"),
        ("week", 0, datetime(2026, 8, 23, tzinfo=UTC), "2026w35+00:00"),  # a Sunday
        ("week", 0, datetime(2025, 12, 30, tzinfo=UTC), "2026w01+00:00"),
        ("week", -1, datetime(2025, 12, 30, tzinfo=UTC), "2025w52+00:00"),
        ("week", 1, datetime(2025, 12, 30, tzinfo=UTC), "2026w02+00:00"),
        ("week", 0, datetime(2026, 1, 1, tzinfo=UTC), "2026w01+00:00"),
        ("week", 0, datetime(2022, 1, 1, tzinfo=UTC), "2022w01+00:00"),  # a Saturday
        ("week", 1, datetime(2022, 1, 1, tzinfo=UTC), "2022w02+00:00"),
        ("month", 0, SATURDAY, "2026-08+00:00"),
        ("month", -1, datetime(2026, 1, 15, tzinfo=UTC), "2025-12+00:00"),
        ("month", 1, datetime(2026, 12, 15, tzinfo=UTC), "2027-01+00:00"),
        ("quarter", 0, SATURDAY, "2026Q3+00:00"),
        ("quarter", -1, datetime(2026, 2, 10, tzinfo=UTC), "2025Q4+00:00"),
        ("quarter", 1, datetime(2026, 11, 30, tzinfo=UTC), "2027Q1+00:00"),
        ("year", 0, SATURDAY, "2026+00:00"),
        ("year", -1, SATURDAY, "2025+00:00"),
    ],
)
def test_units_start_as_nocobase_formats_them(
    unit: str, offset: int, now: datetime, expected: str
) -> None:
    assert unit_start(unit, offset, now) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-7, ["2026-08-16", "2026-08-23", "[)", "+00:00"]),
        (7, ["2026-08-23", "2026-08-30", "[)", "+00:00"]),
        (-30, ["2026-07-24", "2026-08-23", "[)", "+00:00"]),
        (90, ["2026-08-23", "2026-11-21", "[)", "+00:00"]),
    ],
)
def test_day_ranges_are_half_open_ending_today_or_starting_tomorrow(
    offset: int, expected: list[str]
) -> None:
    assert day_range(offset, SATURDAY) == expected


def test_every_nocobase_range_name_is_there() -> None:
    units = ("Week", "Month", "Quarter", "Year")
    names = {"yesterday", "today", "tomorrow"}
    names |= {f"{when}{unit}" for when in ("last", "this", "next") for unit in units}
    names |= {f"{when}{n}Days" for when in ("last", "next") for n in (7, 30, 90)}
    assert set(DATE_RANGES) == names


async def test_templates_read_system_date_ranges() -> None:
    compiled = compile_nodes(
        [
            output(
                "o",
                {"today": "{{$system.dateRange.today}}", "week": "{{$system.dateRange.last7Days}}"},
            )
        ]
    )
    run = await run_workflow(compiled)
    today = datetime.now(UTC).date().isoformat()
    assert run.output["today"] == f"{today}+00:00"
    assert run.output["week"][1:] == [
        day_range(-7, datetime.now(UTC))[1],
        "[)",
        "+00:00",
    ]
