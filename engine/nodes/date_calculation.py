"""`dateCalculation`: take a date (or a number) through a list of steps.

NocoBase's `plugin-workflow-date-calculation`, which runs dayjs: the whole
config is templated; `input` (default: now) must be a date when `inputType` is
`date` and a number when it is `number`, otherwise the job is ERROR with result
"Invalid input". Each step is `{function, arguments}`, applied in order to the
previous value; a step that throws ends the job in ERROR with the error text as
dayjs gives it (`"Error: Diff date [x] is not a valid date"`). The result is a
date (stored as an ISO 8601 instant) or a number/text/boolean.

Dates are read as dayjs reads them: a date-time without an offset, or dayjs's
`YYYY-M-D H:m:s` form, is local time, and the service's local time zone is UTC;
an ISO text with `Z` or an offset is that instant; a number is milliseconds since
1970. Calendar steps (add days or months, start/end of a unit, `get`, `format`)
work on the wall clock of the value's time zone: UTC, or the one the last
`changeTimezone` step chose (IANA names, through zoneinfo).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.jsvalues import as_double, is_number, js_string, to_number, truthy
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.status import Status

MS_SECOND, MS_MINUTE, MS_HOUR, MS_DAY = 1000, 60_000, 3_600_000, 86_400_000
MS_WEEK, MS_YEAR = 7 * MS_DAY, 365 * MS_DAY
MS_MONTH = MS_YEAR / 12  # dayjs's duration plugin: a year is 365 days, a month a twelfth


class Step(NodeConfig):
    function: str
    arguments: Any = {}


class Config(NodeConfig):
    input: Any = None
    inputType: Literal["date", "number"] = "date"
    steps: list[Step] = []


class StepError(Exception):
    """What a dayjs step throws; `str()` is JavaScript's `error.toString()`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")


def _type_error(message: str) -> StepError:
    return StepError("TypeError", message)


# --- dates as dayjs sees them ------------------------------------------------------------------

_DAYJS_PARSE = re.compile(
    r"^(\d{4})[-/]?(\d{1,2})?[-/]?(\d{0,2})[Tt\s]*(\d{1,2})?:?(\d{1,2})?:?(\d{1,2})?[.:]?(\d+)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 8.64e15  # the JavaScript Date range


@dataclass(frozen=True, slots=True)
class Moment:
    """A dayjs value: an instant (None when it is an Invalid Date) in a time zone."""

    at: datetime | None
    zone: tzinfo = UTC

    @property
    def valid(self) -> bool:
        return self.at is not None

    @property
    def local(self) -> datetime:
        assert self.at is not None
        return self.at.astimezone(self.zone)

    def ms(self) -> float:
        if self.at is None:
            return math.nan
        return (self.at - _EPOCH) // timedelta(milliseconds=1)

    def with_local(self, local: datetime) -> Moment:
        """The moment at wall-clock time `local` (naive) in this moment's zone."""
        try:
            aware = local.replace(tzinfo=self.zone)
            return Moment(aware.astimezone(UTC), self.zone)
        except (OverflowError, ValueError):
            return Moment(None, self.zone)

    def plus_ms(self, amount: float) -> Moment:
        if self.at is None or not math.isfinite(amount):
            return Moment(None, self.zone)
        return from_ms(self.ms() + math.trunc(amount), self.zone)


def from_ms(ms: float, zone: tzinfo = UTC) -> Moment:
    if not math.isfinite(ms) or abs(ms) > _MAX_MS:
        return Moment(None, zone)
    try:
        return Moment(_EPOCH + timedelta(milliseconds=math.trunc(ms)), zone)
    except OverflowError:
        return Moment(None, zone)


def _local_date(year: int, month0: int, day: int, *rest: int) -> Moment:
    """`new Date(y, m, d, h, mi, s, ms)` in local time (UTC): fields overflow."""
    year += month0 // 12
    month0 %= 12
    hour, minute, second, millis = (*rest, 0, 0, 0, 0)[:4]
    try:
        base = datetime(year, month0 + 1, 1, tzinfo=UTC)
    except ValueError:
        return Moment(None)
    offset = timedelta(
        days=day - 1, hours=hour, minutes=minute, seconds=second, milliseconds=millis
    )
    try:
        return Moment(base + offset)
    except OverflowError:
        return Moment(None)


def parse_moment(value: Any) -> Moment:
    """`dayjs(value)`: an Invalid Date (not an error) when it cannot be read."""
    if isinstance(value, Moment):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return Moment(aware.astimezone(UTC).replace(microsecond=aware.microsecond // 1000 * 1000))
    if isinstance(value, bool):
        return from_ms(float(value))
    if is_number(value):
        return from_ms(as_double(value))
    if isinstance(value, str):
        text = value.strip()
        match = None if text[-1:] in ("Z", "z") else _DAYJS_PARSE.match(value)
        if match:
            year, month, day, hour, minute, second, millis = match.groups()
            return _local_date(
                int(year),
                (int(month) - 1) if month else 0,
                int(day) if day else 1,
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((millis or "0")[:3]),
            )
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            return Moment(None)
        return parse_moment(parsed)
    return Moment(None)


def is_date(value: Any) -> bool:
    """NocoBase's `isDate` (`new Date(value)` is valid); null reads as 1970."""
    return value is None or parse_moment(value).valid


# --- units -------------------------------------------------------------------------------------

_SHORT_UNITS = {
    "M": "month", "y": "year", "w": "week", "d": "day", "D": "date", "h": "hour",
    "m": "minute", "s": "second", "ms": "millisecond", "Q": "quarter",
}  # fmt: skip


def pretty_unit(unit: Any) -> str:
    """dayjs's unit normalisation: short forms, lower case, no plural `s`."""
    if isinstance(unit, str) and unit in _SHORT_UNITS:
        return _SHORT_UNITS[unit]
    if unit is None or unit is False:
        text = ""
    else:
        text = unit if isinstance(unit, str) else js_string(unit)
    return re.sub(r"s$", "", text.lower())


def _js_round(value: float) -> float:
    return math.floor(value + 0.5) if math.isfinite(value) else value


def _apply_round(value: float, mode: Any) -> float:
    if is_number(mode) and mode in (-1, 0, 1):
        if mode == -1:
            return float(math.floor(value)) if math.isfinite(value) else value
        if mode == 0:
            return float(_js_round(value))
        return float(math.ceil(value)) if math.isfinite(value) else value
    return value


def _add_months(moment: Moment, months: float) -> Moment:
    if moment.at is None or not math.isfinite(months):
        return Moment(None, moment.zone)
    local = moment.local.replace(tzinfo=None)
    total = local.month - 1 + math.trunc(months)
    year, month0 = local.year + total // 12, total % 12
    try:
        first = local.replace(year=year, month=month0 + 1, day=1)
    except ValueError:
        return Moment(None, moment.zone)
    days = _days_in_month(year, month0 + 1)
    return moment.with_local(first.replace(day=min(local.day, days)))


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - datetime(year, month, 1)).days


def _add_days(moment: Moment, days: float) -> Moment:
    if moment.at is None or not math.isfinite(days):
        return Moment(None, moment.zone)
    try:
        return moment.with_local(moment.local.replace(tzinfo=None) + timedelta(days=days))
    except OverflowError:
        return Moment(None, moment.zone)


def add(moment: Moment, number: Any, unit: Any) -> Moment:
    amount = to_number(number)
    kind = pretty_unit(unit)
    if kind == "month":
        return _add_months(moment, amount)
    if kind == "quarter":
        return _add_months(moment, amount * 3)
    if kind == "year":
        return _add_months(moment, amount * 12)
    if kind == "day":
        return _add_days(moment, _js_round(amount))
    if kind == "week":
        return _add_days(moment, _js_round(amount * 7))
    step = {"minute": MS_MINUTE, "hour": MS_HOUR, "second": MS_SECOND}.get(kind, 1)
    return moment.plus_ms(amount * step)


def _month_diff(a: Moment, b: Moment) -> float:
    """moment.js's month difference, as dayjs uses it."""
    if a.local.day < b.local.day:
        return -_month_diff(b, a)
    whole = (b.local.year - a.local.year) * 12 + (b.local.month - a.local.month)
    anchor = _add_months(a, whole)
    later = b.ms() - anchor.ms() < 0
    anchor2 = _add_months(a, whole + (-1 if later else 1))
    span = anchor.ms() - anchor2.ms() if later else anchor2.ms() - anchor.ms()
    result = -(whole + (b.ms() - anchor.ms()) / span)
    return result + 0.0  # no -0


def _offset_ms(moment: Moment) -> float:
    offset = moment.local.utcoffset() if moment.at is not None else None
    return offset / timedelta(milliseconds=1) if offset is not None else 0.0


def diff(moment: Moment, other: Moment, unit: Any) -> float:
    if moment.at is None or other.at is None:
        return math.nan
    kind = pretty_unit(unit)
    delta = moment.ms() - other.ms()
    zone_delta = _offset_ms(other) - _offset_ms(moment)
    if kind in ("year", "month", "quarter"):
        months = _month_diff(moment, other)
        return months / {"year": 12, "month": 1, "quarter": 3}[kind]
    if kind == "week":
        return (delta - zone_delta) / MS_WEEK
    if kind == "day":
        return (delta - zone_delta) / MS_DAY
    step = {"hour": MS_HOUR, "minute": MS_MINUTE, "second": MS_SECOND}.get(kind, 1)
    return delta / step


_START_UNITS = {
    "year": "year", "quarter": "quarter", "month": "month", "week": "isoWeek", "day": "day",
    "hour": "hour", "minute": "minute", "second": "second", "millisecond": "millisecond",
}  # fmt: skip


def start_of(moment: Moment, unit: str | None) -> Moment:
    if moment.at is None or unit is None:
        return moment
    local = moment.local.replace(tzinfo=None)
    if unit == "year":
        local = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "quarter":
        month = (local.month - 1) // 3 * 3 + 1
        local = local.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "month":
        local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "isoWeek":
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        local -= timedelta(days=local.weekday())
    elif unit == "day":
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "hour":
        local = local.replace(minute=0, second=0, microsecond=0)
    elif unit == "minute":
        local = local.replace(second=0, microsecond=0)
    elif unit == "second":
        local = local.replace(microsecond=0)
    else:  # millisecond, or a unit dayjs does not know: unchanged
        return moment
    return moment.with_local(local)


def end_of(moment: Moment, unit: str | None) -> Moment:
    if moment.at is None or unit in (None, "millisecond"):
        return moment
    start = start_of(moment, unit)
    if start is moment:
        return moment
    if unit in ("year", "quarter", "month"):
        following = _add_months(start, {"year": 12, "quarter": 3, "month": 1}[unit])
    elif unit == "isoWeek":
        following = _add_days(start, 7)
    elif unit == "day":
        following = _add_days(start, 1)
    else:
        following = start.plus_ms({"hour": MS_HOUR, "minute": MS_MINUTE, "second": MS_SECOND}[unit])
    return following.plus_ms(-1)


# --- format (dayjs core plus the advancedFormat plugin) -----------------------------------------

_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ADVANCED = re.compile(r"\[([^\]]+)]|Q|wo|ww|w|WW|W|zzz|z|gggg|GGGG|Do|X|x|k{1,2}|S")
_CORE = re.compile(
    r"\[([^\]]+)]|Y{1,4}|M{1,4}|D{1,2}|d{1,4}|H{1,2}|h{1,2}|a|A|m{1,2}|s{1,2}|Z{1,2}|SSS"
)


def _zone_text(moment: Moment, colon: bool = True) -> str:
    minutes = round(_offset_ms(moment) / MS_MINUTE)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{rest:02d}"


def _ordinal(n: int) -> str:
    suffixes = ("th", "st", "nd", "rd")
    v = n % 100
    suffix = suffixes[(v - 20) % 10] if 0 <= (v - 20) % 10 < 4 and v > 20 else None
    if suffix is None:
        suffix = suffixes[v] if v < 4 else "th"
    return f"[{n}{suffix}]"


def _sunday_weekday(local: datetime) -> int:
    return (local.weekday() + 1) % 7  # JS getDay(): Sunday is 0


def _locale_week(local: datetime) -> int:
    """dayjs weekOfYear with the en locale: weeks start on Sunday, 1 January is in week 1."""
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if local.month == 12 and local.day > 25:
        end_of_week = day + timedelta(days=6 - _sunday_weekday(day))
        if datetime(local.year + 1, 1, 1) <= end_of_week:
            return 1
    year_start = datetime(local.year, 1, 1)
    week_start = year_start - timedelta(days=_sunday_weekday(year_start), milliseconds=1)
    return math.ceil((local - week_start) / timedelta(weeks=1))


def format_moment(moment: Moment, template: str) -> str:
    if moment.at is None:
        return "Invalid Date"
    local = moment.local.replace(tzinfo=None)
    text = template or "YYYY-MM-DDTHH:mm:ssZ"

    def advanced(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("["):
            return token
        week, iso = _locale_week(local), local.isocalendar()
        values: dict[str, Callable[[], str]] = {
            "Q": lambda: str((local.month - 1) // 3 + 1),
            "Do": lambda: _ordinal(local.day),
            "gggg": lambda: str(local.year + 1 if week == 1 and local.month == 12 else local.year),
            "GGGG": lambda: str(iso.year),
            "wo": lambda: _ordinal(week),
            "w": lambda: str(week),
            "ww": lambda: f"{week:02d}",
            "W": lambda: str(iso.week),
            "WW": lambda: f"{iso.week:02d}",
            "k": lambda: str(local.hour or 24),
            "kk": lambda: f"{local.hour or 24:02d}",
            "X": lambda: str(math.floor(moment.ms() / 1000)),
            "x": lambda: str(int(moment.ms())),
            "z": lambda: f"[{_zone_name(moment)}]",
            "zzz": lambda: f"[{_zone_name(moment)}]",
        }
        return values[token]() if token in values else token

    def core(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        token = match.group(0)
        hour12 = local.hour % 12 or 12
        values: dict[str, Callable[[], str]] = {
            "YY": lambda: str(local.year)[-2:],
            "YYYY": lambda: f"{local.year:04d}",
            "M": lambda: str(local.month),
            "MM": lambda: f"{local.month:02d}",
            "MMM": lambda: _MONTH_NAMES[local.month - 1][:3],
            "MMMM": lambda: _MONTH_NAMES[local.month - 1],
            "D": lambda: str(local.day),
            "DD": lambda: f"{local.day:02d}",
            "d": lambda: str(_sunday_weekday(local)),
            "dd": lambda: _DAY_NAMES[_sunday_weekday(local)][:2],
            "ddd": lambda: _DAY_NAMES[_sunday_weekday(local)][:3],
            "dddd": lambda: _DAY_NAMES[_sunday_weekday(local)],
            "H": lambda: str(local.hour),
            "HH": lambda: f"{local.hour:02d}",
            "h": lambda: str(hour12),
            "hh": lambda: f"{hour12:02d}",
            "a": lambda: "am" if local.hour < 12 else "pm",
            "A": lambda: "AM" if local.hour < 12 else "PM",
            "m": lambda: str(local.minute),
            "mm": lambda: f"{local.minute:02d}",
            "s": lambda: str(local.second),
            "ss": lambda: f"{local.second:02d}",
            "SSS": lambda: f"{local.microsecond // 1000:03d}",
            "Z": lambda: _zone_text(moment),
        }
        # dayjs answers any other match (ZZ, and also Y or YYY) with the offset without colon
        return values[token]() if token in values else _zone_text(moment, colon=False)

    return _CORE.sub(core, _ADVANCED.sub(advanced, text))


def _zone_name(moment: Moment) -> str:
    name = moment.local.tzname() or ""
    return "UTC" if name in ("UTC", "") and moment.zone is UTC else name


# --- the step functions ------------------------------------------------------------------------


def _moment(value: Any, method: str) -> Moment:
    if not isinstance(value, Moment):
        raise _type_error(f"input.{method} is not a function")
    return value


def _args(arguments: Any) -> dict[str, Any]:
    return arguments if isinstance(arguments, dict) else {}


def _add_step(sign: int) -> Callable[[Any, dict[str, Any]], Any]:
    def run(value: Any, args: dict[str, Any]) -> Any:
        moment = _moment(value, "add" if sign > 0 else "subtract")
        return add(moment, sign * to_number(args.get("number")), args.get("unit"))

    return run


def _diff_step(value: Any, args: dict[str, Any]) -> Any:
    date = args.get("date")
    if not is_date(date):
        raise StepError("Error", f"Diff date [{js_string(date)}] is not a valid date")
    moment = _moment(value, "diff")
    result = diff(moment, parse_moment(date), args.get("unit"))
    if truthy(args.get("isAbs")):
        result = abs(result)
    return _apply_round(result, args.get("round"))


_GET_UNITS = {
    "year": "year", "month": "month", "quarter": "quarter", "week": "day", "day": "date",
    "hour": "hour", "minute": "minute", "second": "second", "millisecond": "millisecond",
}  # fmt: skip


def _get_step(value: Any, args: dict[str, Any]) -> Any:
    unit = args.get("unit")
    method = _GET_UNITS.get(unit) if isinstance(unit, str) else None
    if not isinstance(value, Moment):
        if method is None:
            raise _type_error("input.millisecond is not a function")
        return value  # NocoBase hands a number through unchanged
    if value.at is None:
        return math.nan
    local = value.local
    parts: dict[str | None, Callable[[], int]] = {
        "year": lambda: local.year,
        "month": lambda: local.month,  # dayjs's month() is 0-based; NocoBase adds 1
        "quarter": lambda: (local.month - 1) // 3 + 1,
        "day": lambda: _sunday_weekday(local),
        "date": lambda: local.day,
        "hour": lambda: local.hour,
        "minute": lambda: local.minute,
        "second": lambda: local.second,
    }
    return parts.get(method, lambda: local.microsecond // 1000)()


def _unit_of(args: dict[str, Any]) -> str | None:
    unit = args.get("unit")
    return _START_UNITS.get(unit) if isinstance(unit, str) else None


def _start_step(value: Any, args: dict[str, Any]) -> Any:
    return start_of(_moment(value, "startOf"), _unit_of(args))


def _end_step(value: Any, args: dict[str, Any]) -> Any:
    return end_of(_moment(value, "endOf"), _unit_of(args))


def _leap_step(value: Any, args: dict[str, Any]) -> Any:
    moment = _moment(value, "isLeapYear")
    if moment.at is None:
        return False
    year = moment.local.year
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def _format_step(value: Any, args: dict[str, Any]) -> Any:
    template = args.get("format")
    if not isinstance(template, str):
        shown = "undefined" if "format" not in args else js_string(template)
        raise _type_error(f"[{shown}] is not a string")
    return format_moment(_moment(value, "format"), template)


_DURATION_UNITS = {
    "year": MS_YEAR, "month": MS_MONTH, "week": MS_WEEK, "day": MS_DAY, "hour": MS_HOUR,
    "minute": MS_MINUTE, "second": MS_SECOND, "millisecond": 1,
}  # fmt: skip


def _unit_key(args: dict[str, Any], name: str) -> str:
    unit = args.get(name)
    if isinstance(unit, str) and unit in _DURATION_UNITS:
        return unit
    shown = "undefined" if name not in args else js_string(unit)
    raise _type_error(f"[{shown}] is not a unit string")


def _duration_step(value: Any, args: dict[str, Any]) -> Any:
    before, after = _unit_key(args, "unitBefore"), _unit_key(args, "unitAfter")
    if isinstance(value, Moment) or not (is_number(value) or value is None):
        raise _type_error("transDuration needs a number of units, not a date")
    amount = to_number(value) * _DURATION_UNITS[before]
    return _apply_round(amount / _DURATION_UNITS[after], args.get("round"))


def _timestamp_step(value: Any, args: dict[str, Any]) -> Any:
    unit = args.get("unit", "second")
    if unit not in ("second", "millisecond") or not isinstance(unit, str):
        raise _type_error(f"[{js_string(unit)}] is not valid, only accept second or millisecond")
    if unit == "millisecond" and is_number(value):
        return value  # a number's own valueOf
    moment = _moment(value, "unix" if unit == "second" else "valueOf")
    ms = moment.ms()
    return math.floor(ms / 1000) if unit == "second" and math.isfinite(ms) else ms


def _to_date_step(value: Any, args: dict[str, Any]) -> Any:
    unit = args.get("unit", "second")
    if unit not in ("second", "millisecond") or not isinstance(unit, str):
        raise _type_error(f"[{js_string(unit)}] is not valid, only accept second or millisecond")
    if isinstance(value, Moment):
        if unit == "millisecond":
            return value
        raise _type_error("tsToDate needs a number, not a date")
    number = to_number(value)
    return from_ms(number * 1000 if unit == "second" else number)


def _timezone_step(value: Any, args: dict[str, Any]) -> Any:
    moment = _moment(value, "tz")
    name = args.get("timezone")
    if name is None:
        return Moment(moment.at, UTC)
    zone = load_zone(name)
    if zone is None:
        raise StepError("RangeError", f"Invalid time zone specified: {js_string(name)}")
    return Moment(moment.at, zone)


def load_zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        return None
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


FUNCTIONS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "add": _add_step(1),
    "subtract": _add_step(-1),
    "diff": _diff_step,
    "get": _get_step,
    "startOfTime": _start_step,
    "endOfTime": _end_step,
    "isLeapYear": _leap_step,
    "format": _format_step,
    "transDuration": _duration_step,
    "toTimestamp": _timestamp_step,
    "tsToDate": _to_date_step,
    "changeTimezone": _timezone_step,
}


def result_value(value: Any) -> Any:
    """What the job keeps: dates as UTC datetimes, JS numbers as JSON numbers."""
    if isinstance(value, Moment):
        return None if value.at is None else value.at.astimezone(UTC)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) <= 2**53 else value
    return value


def calculate(input_value: Any, input_type: Any, steps: list[Any]) -> tuple[int, Any]:
    """Run the steps; (job status, job result)."""
    value: Any
    if input_type == "date" and input_value is not None and is_date(input_value):
        value = parse_moment(input_value)
    elif input_type == "number" and is_number(input_value):
        value = input_value
    else:
        return Status.ERROR, "Invalid input"
    for step in steps:
        step = step if isinstance(step, dict) else {}
        function = FUNCTIONS.get(step.get("function"))  # type: ignore[arg-type]
        if function is None:
            return Status.ERROR, f"TypeError: unknown step function {step.get('function')!r}"
        try:
            value = function(value, _args(step.get("arguments")))
        except StepError as exc:
            return Status.ERROR, str(exc)
    return Status.RESOLVED, result_value(value)


class DateCalculation(Instruction):
    node_type = "dateCalculation"
    config_type = Config

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        for index, step in enumerate(config.steps):
            if "{{" not in step.function and step.function not in FUNCTIONS:
                raise NodeError(
                    f"steps[{index}].function",
                    f'unknown function "{step.function}"; one of: {", ".join(FUNCTIONS)}',
                )
            if not isinstance(step.arguments, (dict, str)):
                raise NodeError(f"steps[{index}].arguments", "expected an object")

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        rendered = run.render(node)
        # A missing input is now; one that renders to null is invalid (see docs/nodes.md).
        input_value = rendered["input"] if "input" in rendered else datetime.now(UTC)
        job.status, job.result = calculate(
            input_value, rendered.get("inputType", "date"), rendered.get("steps") or []
        )
