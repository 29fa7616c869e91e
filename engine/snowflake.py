"""`$system.genSnowflakeId`: numeric ids in NocoBase's snowflake layout
(`@nocobase/snowflake-id`), so that ids a workflow makes look like NocoBase's.

An id is `(seconds since 2020-11-11 - epoch) * 2**21 + worker * 2**16 +
sequence`: a number below 2**53 (safe in JavaScript), growing with time.
NocoBase's worker id (0-31) is allocated per application instance; a rayhook
process picks one at random when it starts, and starts each second's sequence
at a random point of its lower half. Ids of a process are unique and grow; two
processes can collide only by drawing the same worker id and overlapping
sequences in the same second. Where ids must be unique across a cluster, let the database make them.
"""

from __future__ import annotations

import secrets
import threading
import time

EPOCH = 1_605_024_000  # 2020-11-11 00:00:00 UTC, NocoBase's first commit
WORKER_BITS = 5
SEQUENCE_BITS = 16
_SEQUENCES = 1 << SEQUENCE_BITS


class Snowflake:
    """Attributes: `worker` (0-31), the last second used and its sequence."""

    def __init__(self, worker: int | None = None) -> None:
        self.worker = secrets.randbelow(1 << WORKER_BITS) if worker is None else worker
        if not 0 <= self.worker < 1 << WORKER_BITS:
            raise ValueError(f"worker must be from 0 to {(1 << WORKER_BITS) - 1}")
        self._lock = threading.Lock()
        self._second = -1
        self._sequence = 0

    def generate(self) -> int:
        with self._lock:
            second = max(int(time.time()), self._second)
            if second == self._second:
                self._sequence += 1
                if self._sequence == _SEQUENCES:
                    # This second's sequences are used up: take the next second
                    # rather than wait for it (NocoBase waits).
                    second += 1
            if second != self._second:
                self._second = second
                self._sequence = secrets.randbelow(_SEQUENCES // 2)
            return (
                ((second - EPOCH) << (WORKER_BITS + SEQUENCE_BITS))
                + (self.worker << SEQUENCE_BITS)
                + self._sequence
            )


def parse(snowflake_id: int) -> tuple[int, int, int]:
    """The second (epoch seconds), worker and sequence of an id."""
    return (
        (snowflake_id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH,
        (snowflake_id >> SEQUENCE_BITS) & ((1 << WORKER_BITS) - 1),
        snowflake_id & (_SEQUENCES - 1),
    )


GENERATOR = Snowflake()
