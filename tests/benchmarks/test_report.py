"""The report's arithmetic and rows (benchmarks/report.py, the scaling and
soak rows): pure functions over figures, checked on series whose answer is
known by hand."""

from __future__ import annotations

import pytest

from benchmarks.report import (
    MB,
    describe,
    growth_mb_per_minute,
    least_squares_slope,
    value_at,
)
from benchmarks.scaling import share_rows
from benchmarks.soak import memory_rows
from deploy.bench.result import LossCheck, Result


def test_the_slope_of_points_on_a_line_is_the_line_s() -> None:
    assert least_squares_slope([(0, 1.0), (1, 3.0), (2, 5.0), (3, 7.0)]) == pytest.approx(2.0)


def test_the_slope_through_noise_is_the_least_squares_fit() -> None:
    # By hand: means 1.5 and 2.5; dx = -1.5 -0.5 0.5 1.5, dy = -1.5 -0.5 -0.5 2.5;
    # sum dx*dy = 2.25 + 0.25 - 0.25 + 3.75 = 6, sum dx^2 = 5: slope 1.2.
    points = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.0), (3.0, 5.0)]
    assert least_squares_slope(points) == pytest.approx(1.2)


def test_a_slope_needs_two_distinct_abscissas() -> None:
    assert least_squares_slope([]) is None
    assert least_squares_slope([(5.0, 1.0)]) is None
    assert least_squares_slope([(5.0, 1.0), (5.0, 9.0)]) is None


def test_value_at_takes_the_first_sample_at_or_after_the_time() -> None:
    samples = [(0.0, 10.0), (10.0, 20.0), (60.2, 30.0), (70.1, 40.0)]
    assert value_at(samples, 60.0) == 30.0
    assert value_at(samples, 10.0) == 20.0
    assert value_at(samples, 80.0) is None


def test_growth_leaves_the_first_minute_out() -> None:
    # Redis fills its working set in the first minute (1.4 MB to 60 MB), then
    # stays flat: the growth that matters is zero.
    samples = [(0.0, 1.4 * MB), (10.0, 30 * MB), (30.0, 55 * MB), (50.0, 60 * MB)]
    samples += [(60.0 + 10 * i, 60 * MB) for i in range(10)]
    assert growth_mb_per_minute(samples) == pytest.approx(0.0)


def test_growth_is_in_mb_per_minute() -> None:
    # 1 MB more every 10 s after the first minute: 6 MB/min.
    samples = [(60.0 + 10 * i, (100 + i) * MB) for i in range(12)]
    assert growth_mb_per_minute(samples) == pytest.approx(6.0)


def test_memory_rows_report_the_minute_the_end_the_most_and_the_slope() -> None:
    samples = [(0.0, 2 * MB), (60.0, 50 * MB), (70.0, 80 * MB), (80.0, 52 * MB)]
    rows = dict((figure, value) for _, figure, value in memory_rows("7 soak", samples, 3 * MB))
    assert rows["Redis used_memory at 1 min / at the end / max"] == (
        "50.0 / 52.0 / 80.0 MB (4 samples)"
    )
    # (60, 50), (70, 80), (80, 52) in minutes: slope 0.1 MB/s = +6 MB/min
    assert rows["Redis used_memory slope after the first minute"] == (
        "+6.00 MB/min (least squares over 3 samples)"
    )
    assert rows["Redis used_memory once the history queue was empty"] == "3.0 MB"


def test_a_soak_shorter_than_a_minute_has_no_slope() -> None:
    rows = memory_rows("7 soak", [(0.0, MB), (10.0, 2 * MB)], MB)
    assert rows[0][2] == "n/a / 2.0 / 2.0 MB (2 samples)"
    assert rows[1][2].startswith("n/a")


def _result(rps: float, requests: int, final: int, per_second: float) -> Result:
    """A run of `requests` of which 3 were refused (503)."""
    accepted = requests - 3
    return Result(
        engine="wrk",
        mode="concurrency",
        target=64,
        duration=20.0,
        requests=requests,
        errors=0,
        rps=rps,
        p50_ms=14.5,
        p90_ms=29.2,
        p99_ms=58.6,
        max_ms=151.6,
        statuses={"200": accepted, "503": 3},
        loss=LossCheck(
            workflow_key="bench-async",
            accepted=accepted,
            final=final,
            lost=max(accepted - final, 0),
            executions_per_second=per_second,
            seconds_to_drain=20.1,
        ),
    )


def test_describe_gives_the_ratio_to_the_baseline_and_the_loss() -> None:
    rows = describe("2 async", _result(3995.0, 80104, 80143, 3973.0), 25778.0)
    assert [(figure, value) for _, figure, value in rows] == [
        ("requests/s", "3,995 (0.15 x baseline)"),
        ("latency p50 / p90 / p99 / max", "14.5 / 29.2 / 58.6 / 151.6 ms"),
        ("non-2xx / errors", "3 / 0"),
        ("accepted → final (lost)", "80,101 → 80,143 (0)"),
        ("end-to-end executions/s", "3,973"),
    ]


def test_share_rows_compare_each_count_with_one_workflow() -> None:
    rows = share_rows({1: 3521.0, 10: 1412.0, 100: 2000.0})
    assert rows == [
        ("5 scaling", "10 workflows / 1 workflow", "40% of the executions/s (target ≥ 50%)"),
        ("5 scaling", "100 workflows / 1 workflow", "57% of the executions/s (target ≥ 50%)"),
    ]


def test_share_rows_need_the_one_workflow_figure() -> None:
    assert share_rows({10: 1412.0, 100: 254.0}) == []
