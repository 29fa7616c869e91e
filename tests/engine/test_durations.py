import pytest

from engine.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1s", 1.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("14d", 1_209_600.0),
        ("1w", 604_800.0),
        ("30", 30.0),
        (" 5 s ", 5.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_durations_read_as_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "s", "1y", "-1s", "1e999", "ten minutes", True, -3, float("inf")]
)
def test_anything_else_is_refused_with_the_accepted_units_named(text: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)  # type: ignore[arg-type]
