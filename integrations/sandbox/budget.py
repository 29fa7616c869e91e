"""The CPU time an execution's scripts may use, all runs together
(RAYHOOK_SCRIPT_CPU_PER_EXECUTION): a loop that calls a script ten thousand
times is stopped like one script that loops.

Kept by execution id in the executor that runs the scripts; an entry no run has
touched for `IDLE_SECONDS` is forgotten (its execution has ended, or waits, and
a resumed run starts a fresh allowance)."""

from __future__ import annotations

import time

IDLE_SECONDS = 600.0


class CpuBudgets:
    """Attributes: `allowance_ms` per execution (0: no limit).

    Example::

        budgets = CpuBudgets(30_000)
        left = budgets.left(execution_id)  # ms the next run may use
        budgets.spend(execution_id, outcome.cpu_ms)
    """

    def __init__(self, allowance_ms: int) -> None:
        self.allowance_ms = allowance_ms
        self._spent: dict[str, tuple[float, float]] = {}  # id → (ms, last touched)
        self._next_sweep = time.monotonic() + IDLE_SECONDS

    def left(self, execution_id: str) -> int:
        """Milliseconds of CPU the execution's next script may use (0: no limit
        is set; at least 1 when a limit is set)."""
        if not self.allowance_ms:
            return 0
        spent, _ = self._spent.get(execution_id, (0.0, 0.0))
        return max(1, int(self.allowance_ms - spent))

    def exhausted(self, execution_id: str) -> bool:
        if not self.allowance_ms:
            return False
        spent, _ = self._spent.get(execution_id, (0.0, 0.0))
        return spent >= self.allowance_ms

    def spend(self, execution_id: str, cpu_ms: float) -> None:
        if not self.allowance_ms:
            return
        now = time.monotonic()
        spent, _ = self._spent.get(execution_id, (0.0, 0.0))
        self._spent[execution_id] = (spent + cpu_ms, now)
        if now > self._next_sweep:
            self._next_sweep = now + IDLE_SECONDS
            stale = [k for k, (_, touched) in self._spent.items() if now - touched > IDLE_SECONDS]
            for key in stale:
                del self._spent[key]
