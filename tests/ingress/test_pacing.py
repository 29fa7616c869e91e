"""The pacing delay (ingress/pacing.py): nothing below the threshold or when
off, then growing with the backlog's excess up to its ceiling."""

from __future__ import annotations

import pytest

from ingress.pacing import MAX_DELAY_SECONDS, delay


@pytest.mark.parametrize("backlog", [0, 1, 999])
def test_below_the_threshold_a_reply_is_not_held_back(backlog: int) -> None:
    assert delay(backlog, 1000) == 0.0


@pytest.mark.parametrize("backlog", [0, 1000, 10**9])
def test_a_threshold_of_zero_turns_pacing_off(backlog: int) -> None:
    assert delay(backlog, 0) == 0.0


def test_the_delay_grows_with_the_excess_up_to_its_ceiling() -> None:
    at = [delay(backlog, 1000) for backlog in (1000, 1009, 1099, 1499, 1999, 2000, 10**6)]
    assert at[0] == pytest.approx(MAX_DELAY_SECONDS / 1000)
    assert at[1] == pytest.approx(MAX_DELAY_SECONDS / 100)  # 1 % over: 2.5 ms
    assert at[2] == pytest.approx(MAX_DELAY_SECONDS / 10)
    assert at[3] == pytest.approx(MAX_DELAY_SECONDS / 2)
    assert at[4] == at[5] == at[6] == MAX_DELAY_SECONDS
    assert at == sorted(at)
