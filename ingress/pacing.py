"""Pacing: an async webhook whose workflow has fallen behind is answered a
little later.

Most senders have a bounded number of deliveries in flight (a payment
provider's retry queue, a closed-loop load test): answering them later slows
them to the rate the executors keep, so Redis holds a steady backlog instead of
one that grows until the memory watermark turns every webhook into a 503. The
event is stored before the wait: pacing delays the reply, never the work, and a
sender that gives up meanwhile loses nothing (its retry is deduplicated or runs
again, as any retry).

The delay grows with the workflow's backlog (its inbox's length) above
`RAYHOOK_PACE_BACKLOG`: a hundredth of the threshold over it costs 2.5 ms,
twice the threshold or more `MAX_DELAY_SECONDS`. A small excess is enough to
match a sender's pace to the executors', so the backlog settles just above the
threshold. Senders that do not slow down (an open loop) still meet the 503s of
`RAYHOOK_MAX_BACKLOG` and of the memory watermark (SPEC §9).
"""

from __future__ import annotations

#: The longest an accepted event's reply is held back.
MAX_DELAY_SECONDS = 0.25


def delay(backlog: int, threshold: int) -> float:
    """Seconds to hold back the reply to an event that joined `backlog` entries
    (0 below `threshold`, or when pacing is off: `threshold` 0)."""
    if threshold <= 0 or backlog < threshold:
        return 0.0
    over = (backlog - threshold + 1) / threshold
    return min(MAX_DELAY_SECONDS, over * MAX_DELAY_SECONDS)
