"""The `dateCalculation` node (reference §5.8): NocoBase's own test cases for
each step function, ported, plus time zones and the node's error handling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.definition import DefinitionError
from engine.nodes.date_calculation import FUNCTIONS, Moment, format_moment, parse_moment
from engine.status import Status
from tests.engine.test_interpreter import compile_nodes, run_nodes

FMT = "YYYY-MM-DD HH:mm:ss:SSS"


def step(name: str, value: Any, **args: Any) -> Any:
    return FUNCTIONS[name](parse_moment(value) if isinstance(value, str) else value, args)


def shown(moment: Moment) -> str:
    return format_moment(moment, FMT)


def node(config: dict[str, Any]) -> dict[str, Any]:
    return {"key": "d", "type": "dateCalculation", "config": config}


# -- the node -------------------------------------------------------------------------------------


async def test_invalid_date_input_is_an_error() -> None:
    run = await run_nodes([node({"input": "wrong date", "inputType": "date", "steps": []})])
    assert run.status == Status.ERROR
    assert run.job("d").result == "Invalid input"


async def test_non_number_input_for_number_type_is_an_error() -> None:
    steps = [
        {
            "function": "transDuration",
            "arguments": {"unitAfter": "minute", "unitBefore": "day", "round": 0},
        }
    ]
    run = await run_nodes(
        [node({"input": "not number type", "inputType": "number", "steps": steps})]
    )
    assert run.job("d").status == Status.ERROR
    assert run.job("d").result == "Invalid input"


async def test_input_that_renders_to_null_is_invalid() -> None:
    run = await run_nodes([node({"input": "{{$context.body.missing}}", "steps": []})], {"body": {}})
    assert run.job("d").result == "Invalid input"


async def test_a_throwing_step_ends_the_pipeline() -> None:
    steps = [
        {
            "function": "diff",
            "arguments": {"date": "not a date", "isAbs": False, "round": False, "unit": "day"},
        },
        {"function": "diff", "arguments": {"date": "2024-07-27T15:16:14.865Z", "unit": "day"}},
    ]
    run = await run_nodes([node({"input": "2024-08-05T16:00:00.000Z", "steps": steps})])
    assert run.job("d").status == Status.ERROR
    assert run.job("d").result == "Error: Diff date [not a date] is not a valid date"


async def test_variable_input() -> None:
    steps = [
        {
            "function": "diff",
            "arguments": {
                "date": "2024-07-27T15:16:14.865Z",
                "unit": "day",
                "isAbs": False,
                "round": 0,
            },
        }
    ]
    run = await run_nodes(
        [node({"input": "{{$context.body.updatedAt}}", "inputType": "date", "steps": steps})],
        {"body": {"updatedAt": "2024-07-30T15:16:14.865Z"}},
    )
    assert run.job("d").status == Status.RESOLVED
    assert run.job("d").result == 3


async def test_constant_input() -> None:
    steps = [
        {
            "function": "diff",
            "arguments": {"date": "2024-07-27T15:16:14.865Z", "unit": "day", "round": 0},
        }
    ]
    run = await run_nodes([node({"input": "2024-08-05T16:00:00.000Z", "steps": steps})])
    assert run.job("d").result == 9


async def test_templated_arguments_and_date_result() -> None:
    steps = [{"function": "add", "arguments": {"number": "{{$context.body.days}}", "unit": "day"}}]
    run = await run_nodes(
        [node({"input": "2024-01-31T10:00:00Z", "steps": steps})], {"body": {"days": 3}}
    )
    assert run.job("d").result == datetime(2024, 2, 3, 10, tzinfo=UTC)


async def test_missing_input_is_now() -> None:
    run = await run_nodes(
        [node({"steps": [{"function": "toTimestamp", "arguments": {"unit": "second"}}]})]
    )
    assert abs(run.job("d").result - datetime.now(UTC).timestamp()) < 5


async def test_number_input_pipeline() -> None:
    steps = [
        {"function": "tsToDate", "arguments": {"unit": "second"}},
        {"function": "format", "arguments": {"format": "YYYY-MM-DD"}},
    ]
    run = await run_nodes([node({"input": 1721081250, "inputType": "number", "steps": steps})])
    assert run.job("d").result == "2024-07-15"


async def test_date_function_on_a_number_is_a_type_error() -> None:
    steps = [{"function": "add", "arguments": {"number": 1, "unit": "day"}}]
    run = await run_nodes([node({"input": 5, "inputType": "number", "steps": steps})])
    assert run.job("d").status == Status.ERROR
    assert run.job("d").result == "TypeError: input.add is not a function"


async def test_timezone_pipeline_result_is_the_same_instant() -> None:
    steps = [
        {"function": "changeTimezone", "arguments": {"timezone": "Asia/Shanghai"}},
        {"function": "startOfTime", "arguments": {"unit": "day"}},
    ]
    run = await run_nodes([node({"input": "2024-07-15T22:07:30Z", "steps": steps})])
    assert run.job("d").result == datetime(2024, 7, 15, 16, 0, tzinfo=UTC)


def test_unknown_function_is_a_validation_error() -> None:
    with pytest.raises(DefinitionError, match=r'node "d".*config\.steps\[1\]\.function.*"addd"'):
        compile_nodes([node({"steps": [{"function": "add"}, {"function": "addd"}]})])


def test_bad_input_type_is_a_validation_error() -> None:
    with pytest.raises(DefinitionError, match=r'node "d".*config\.inputType'):
        compile_nodes([node({"inputType": "invalid"})])


def test_empty_config_is_valid() -> None:
    compile_nodes([node({})])


# -- step functions (NocoBase's cases) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "unit", "expected"),
    [
        (1, "millisecond", "2024-07-16 00:00:00:000"),
        (1, "second", "2024-07-16 00:00:00:999"),
        (1, "minute", "2024-07-16 00:00:59:999"),
        (1, "hour", "2024-07-16 00:59:59:999"),
        (1, "day", "2024-07-16 23:59:59:999"),
        (1, "week", "2024-07-22 23:59:59:999"),
        (1, "month", "2024-08-15 23:59:59:999"),
        (1, "quarter", "2024-10-15 23:59:59:999"),
        (1, "year", "2025-07-15 23:59:59:999"),
        (2, "wrong", "2024-07-16 00:00:00:001"),
        ("number", "wrong", "Invalid Date"),
        (-1, "wrong", "2024-07-15 23:59:59:998"),
        ("", "day", "2024-07-15 23:59:59:999"),
        (False, "day", "2024-07-15 23:59:59:999"),
        (True, "day", "2024-07-16 23:59:59:999"),
        ("number", "day", "Invalid Date"),
    ],
)
def test_add(number: Any, unit: str, expected: str) -> None:
    assert shown(step("add", "2024-7-15 23:59:59:999", number=number, unit=unit)) == expected


@pytest.mark.parametrize(
    ("number", "unit", "expected"),
    [
        (1, "millisecond", "2024-07-15 23:59:59:999"),
        (1, "second", "2024-07-15 23:59:59:000"),
        (1, "minute", "2024-07-15 23:59:00:000"),
        (1, "hour", "2024-07-15 23:00:00:000"),
        (1, "day", "2024-07-15 00:00:00:000"),
        (1, "week", "2024-07-09 00:00:00:000"),
        (1, "month", "2024-06-16 00:00:00:000"),
        (1, "quarter", "2024-04-16 00:00:00:000"),
        (1, "year", "2023-07-16 00:00:00:000"),
        (2, "wrong", "2024-07-15 23:59:59:998"),
        (-1, "wrong", "2024-07-16 00:00:00:001"),
        (True, "day", "2024-07-15 00:00:00:000"),
    ],
)
def test_subtract(number: Any, unit: str, expected: str) -> None:
    assert shown(step("subtract", "2024-7-16 00:00:00:000", number=number, unit=unit)) == expected


def test_add_month_clamps_to_the_end_of_month() -> None:
    assert shown(step("add", "2024-01-31", number=1, unit="month")) == "2024-02-29 00:00:00:000"
    assert shown(step("add", "2024-02-29", number=1, unit="year")) == "2025-02-28 00:00:00:000"


@pytest.mark.parametrize(
    ("date", "unit", "is_abs", "round_", "expected"),
    [
        ("2024-7-14 23:59:59:999", "millisecond", False, False, 86400001),
        ("2024-7-14 23:59:59", "second", False, False, 86401),
        ("2024-7-14 23:59:15", "minute", False, False, 1440.75),
        ("2024-7-14 23:59:15", "hour", False, False, 24.0125),
        ("2024-7-14 6:00:00", "day", False, False, 1.75),
        ("2024-7-14 6:00:00", "week", False, False, 0.25),
        ("2024-7-14 6:00:00", "month", False, False, 0.058333333333333334),
        ("2024-8-16 6:00:00", "month", False, False, -1.0080645161290323),
        ("2024-7-14 6:00:00", "quarter", False, False, 0.019444444444444445),
        ("2024-10-15 12:00:00", "quarter", False, False, -0.9944444444444445),
        ("2024-7-14 6:00:00", "year", False, False, 0.004861111111111111),
        ("2025-7-15 12:00:00", "year", False, False, -0.998611111111111),
        ("2024-7-16 6:00:00", "day", False, False, -0.25),
        ("2024-7-16 6:00:00", "day", True, False, 0.25),
        ("2024-7-16 6:00:00", "day", False, -1, -1),
        ("2024-7-16 6:00:00", "day", False, 0, 0),
        ("2024-7-16 6:00:00", "day", False, 1, 0),
        ("2024-7-14 6:00:00", "day", False, -1, 1),
        ("2024-7-14 6:00:00", "day", False, 0, 2),
        ("2024-7-14 6:00:00", "day", False, 1, 2),
        ("2024-7-16 6:00:00", "day", False, "not a round", -0.25),
        ("2024-7-16 6:00:00", "day", False, "", -0.25),
        ("2024-7-16 6:00:00", "", False, False, -21600000),
        ("2024-7-16 6:00:00", "not a unit", False, False, -21600000),
    ],
)
def test_diff(date: str, unit: str, is_abs: bool, round_: Any, expected: float) -> None:
    result = step(
        "diff", "2024-7-16 00:00:00:000", date=date, unit=unit, isAbs=is_abs, round=round_
    )
    assert result == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("millisecond", 999), ("second", 50), ("minute", 59), ("hour", 23), ("day", 15),
        ("week", 1), ("month", 7), ("quarter", 3), ("year", 2024), ("", 999), ("not a unit", 999),
    ],
)  # fmt: skip
def test_get(unit: str, expected: int) -> None:
    assert step("get", "2024-7-15 23:59:50:999", unit=unit) == expected


@pytest.mark.parametrize(
    ("unit", "start", "end"),
    [
        ("millisecond", "2024-07-15 14:32:25:897", "2024-07-15 14:32:25:897"),
        ("second", "2024-07-15 14:32:25:000", "2024-07-15 14:32:25:999"),
        ("minute", "2024-07-15 14:32:00:000", "2024-07-15 14:32:59:999"),
        ("hour", "2024-07-15 14:00:00:000", "2024-07-15 14:59:59:999"),
        ("day", "2024-07-15 00:00:00:000", "2024-07-15 23:59:59:999"),
        ("week", "2024-07-15 00:00:00:000", "2024-07-21 23:59:59:999"),
        ("month", "2024-07-01 00:00:00:000", "2024-07-31 23:59:59:999"),
        ("quarter", "2024-07-01 00:00:00:000", "2024-09-30 23:59:59:999"),
        ("year", "2024-01-01 00:00:00:000", "2024-12-31 23:59:59:999"),
        ("", "2024-07-15 14:32:25:897", "2024-07-15 14:32:25:897"),
        ("not a unit", "2024-07-15 14:32:25:897", "2024-07-15 14:32:25:897"),
    ],
)
def test_start_and_end_of_time(unit: str, start: str, end: str) -> None:
    assert shown(step("startOfTime", "2024-7-15 14:32:25:897", unit=unit)) == start
    assert shown(step("endOfTime", "2024-7-15 14:32:25:897", unit=unit)) == end


def test_is_leap_year() -> None:
    assert step("isLeapYear", "2024-7-15") is True
    assert step("isLeapYear", "2023-7-15") is False
    assert step("isLeapYear", "1900-1-1") is False
    assert step("isLeapYear", "2000-1-1") is True


def test_format() -> None:
    day = "2024-7-15 22:07:30:876"
    assert step("format", day, format="YYYY/MM/DD H:m:s:SSS") == "2024/07/15 22:7:30:876"
    assert step("format", day, format="[today is ]YY/MM/DD HH:mm:ss SSS Z") == (
        "today is 24/07/15 22:07:30 876 +00:00"
    )
    assert step("format", day, format="") == "2024-07-15T22:07:30+00:00"
    assert step("format", day, format="wrong string") == "29rong 30tring"
    assert step("format", day, format="dddd, MMMM Do YYYY, h:mm a Q ZZ X") == (
        "Monday, July 15th 2024, 10:07 pm 3 +0000 1721081250"
    )
    assert step("format", "2024-12-29", format="w W") == "1 52"


@pytest.mark.parametrize(("value", "shown_as"), [(123, "123"), (False, "false"), (True, "true")])
def test_format_needs_text(value: Any, shown_as: str) -> None:
    with pytest.raises(Exception, match=rf"TypeError: \[{shown_as}\] is not a string"):
        step("format", "2024-7-15", format=value)


TRANS = [
    ("year", 2, [("year", 2), ("month", 24), ("week", 104.28571428571429), ("day", 730),
                 ("hour", 17520), ("minute", 1051200), ("second", 63072000),
                 ("millisecond", 63072000000)]),
    ("month", 9, [("year", 0.75), ("month", 9), ("week", 39.107142857142854), ("day", 273.75),
                  ("hour", 6570), ("minute", 394200), ("second", 23652000),
                  ("millisecond", 23652000000)]),
    ("day", 45, [("year", 0.1232876712328767), ("month", 1.4794520547945205),
                 ("week", 6.428571428571429), ("day", 45), ("hour", 1080)]),
    ("hour", 360, [("year", 0.0410958904109589), ("month", 0.4931506849315068),
                   ("week", 2.142857142857143), ("day", 15)]),
    ("minute", -21600, [("year", -0.0410958904109589), ("day", -15), ("hour", -360)]),
    ("millisecond", 1296000000, [("day", 15), ("week", 2.142857142857143)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "value", "after", "expected"),
    [(b, v, a, e) for b, v, pairs in TRANS for a, e in pairs],
)
def test_trans_duration(before: str, value: float, after: str, expected: float) -> None:
    assert step(
        "transDuration", value, unitBefore=before, unitAfter=after, round=False
    ) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("after", "round_", "expected"),
    [("year", -1, 0), ("year", 0, 1), ("year", 1, 1), ("week", -1, 39), ("week", 0, 39),
     ("week", 1, 40), ("year", "", 0.75), ("year", "not a round", 0.75)],
)  # fmt: skip
def test_trans_duration_rounding(after: str, round_: Any, expected: float) -> None:
    assert step("transDuration", 9, unitBefore="month", unitAfter=after, round=round_) == expected


@pytest.mark.parametrize(
    ("unit", "shown_as"), [("", ""), ("not a unit", "not a unit"), (123, "123"), (False, "false")]
)
def test_trans_duration_needs_units(unit: Any, shown_as: str) -> None:
    with pytest.raises(Exception, match=rf"\[{shown_as}\] is not a unit string"):
        step("transDuration", 9, unitBefore="month", unitAfter=unit)


def test_to_timestamp() -> None:
    assert step("toTimestamp", "2024-07-15T22:07:30.23Z", unit="millisecond") == 1721081250230
    assert step("toTimestamp", "2024-07-15T22:07:30.23Z") == 1721081250
    with pytest.raises(Exception, match="only accept second or millisecond"):
        step("toTimestamp", "2024-07-15T22:07:30.23Z", unit="minute")


def test_ts_to_date() -> None:
    assert step("tsToDate", 1721081250).at == datetime(2024, 7, 15, 22, 7, 30, tzinfo=UTC)
    moment = step("tsToDate", 1721081250230, unit="millisecond")
    assert moment.at == datetime(2024, 7, 15, 22, 7, 30, 230000, tzinfo=UTC)
    with pytest.raises(Exception, match="only accept second or millisecond"):
        step("tsToDate", 1, unit="hour")


# -- time zones -----------------------------------------------------------------------------------


def test_change_timezone() -> None:
    moment = step("changeTimezone", "2024-07-15T22:07:30.23Z", timezone="Asia/Shanghai")
    assert format_moment(moment, "YYYY-MM-DD HH:mm:ss") == "2024-07-16 06:07:30"
    assert format_moment(moment, "Z") == "+08:00"
    assert FUNCTIONS["get"](moment, {"unit": "day"}) == 16
    assert FUNCTIONS["get"](moment, {"unit": "hour"}) == 6


def test_invalid_timezone_is_a_range_error() -> None:
    with pytest.raises(Exception, match="RangeError: Invalid time zone specified: Mars/Base"):
        step("changeTimezone", "2024-07-15T22:07:30Z", timezone="Mars/Base")


def test_day_steps_follow_the_wall_clock_across_dst() -> None:
    moment = step(
        "changeTimezone", "2024-03-09T17:00:00Z", timezone="America/New_York"
    )  # 12:00 EST
    later = FUNCTIONS["add"](moment, {"number": 1, "unit": "day"})
    assert format_moment(later, "YYYY-MM-DD HH:mm Z") == "2024-03-10 12:00 -04:00"
    assert later.at == datetime(2024, 3, 10, 16, 0, tzinfo=UTC)
    hours = FUNCTIONS["add"](moment, {"number": 24, "unit": "hour"})
    assert format_moment(hours, "HH:mm") == "13:00"


def test_end_of_month_in_a_timezone() -> None:
    moment = step("changeTimezone", "2024-02-10T00:00:00Z", timezone="Asia/Tokyo")
    end = FUNCTIONS["endOfTime"](moment, {"unit": "month"})
    assert end.at == datetime(2024, 2, 29, 14, 59, 59, 999000, tzinfo=UTC)


def test_parsing_follows_dayjs() -> None:
    assert parse_moment("2024-07-15").at == datetime(2024, 7, 15, tzinfo=UTC)
    assert parse_moment("2024-07-15T10:00:00+02:00").at == datetime(2024, 7, 15, 8, tzinfo=UTC)
    assert parse_moment(0).at == datetime(1970, 1, 1, tzinfo=UTC)
    assert not parse_moment("yesterday").valid
    assert not parse_moment(None).valid
