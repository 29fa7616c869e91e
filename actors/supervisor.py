"""`WorkflowSupervisor`: one workflow's supervision inside an execution actor.

It is awake while its workflow is active on that executor: woken by the first
entry read from the workflow's inbox (an event, a fired timer, a resume), it
counts the workflow's executions in flight there (`RAYHOOK_MAX_INFLIGHT` caps
them), and retires after `RAYHOOK_SUPERVISOR_LINGER` with nothing in flight. Waking and
retiring cost nothing: a supervisor is an object, not a process. (A Ray actor
per workflow cost 90-120 MB and about 0.8 % of a core even idle: a thousand
workflows could not be kept; see docs/performance.md.) Events are never owned
by a supervisor: they stay pending in the inbox's consumer group until their
execution's final write, so a retire or a wake can neither lose nor repeat one.

Operators find supervisors by name (`supervisor:<key>`) through
`GET /api/supervisors:list` and `rayhook supervisors`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def supervisor_name(key: str) -> str:
    return f"supervisor:{key}"


@dataclass
class WorkflowSupervisor:
    """Attributes: the workflow `key`, the inbox entries running here (`inflight`,
    entry id → when it was dispatched), counters `dispatched`, `finished`,
    `quarantined`, and when it woke and was last active (monotonic seconds)."""

    key: str
    inflight: dict[str, float] = field(default_factory=dict)
    dispatched: int = 0
    finished: int = 0
    quarantined: int = 0
    woke_at: float = field(default_factory=time.monotonic)
    active_at: float = field(default_factory=time.monotonic)
    woke_wall: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return supervisor_name(self.key)

    def room(self, cap: int) -> int:
        return cap - len(self.inflight)

    def started(self, entry_ids: list[str]) -> None:
        now = time.monotonic()
        for entry_id in entry_ids:
            self.inflight[entry_id] = now
        self.dispatched += len(entry_ids)
        self.active_at = now

    def ended(self, entry_ids: list[str], *, finished: int) -> None:
        for entry_id in entry_ids:
            self.inflight.pop(entry_id, None)
        self.finished += finished
        self.active_at = time.monotonic()

    def running_longer_than(self, seconds: float) -> list[str]:
        cutoff = time.monotonic() - seconds
        return [entry_id for entry_id, at in self.inflight.items() if at < cutoff]

    def may_retire(self, linger: float) -> bool:
        return not self.inflight and time.monotonic() - self.active_at > linger

    def stats(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key": self.key,
            "inflight": len(self.inflight),
            "dispatched": self.dispatched,
            "finished": self.finished,
            "quarantined": self.quarantined,
            "awakeSince": self.woke_wall,
            "idleSeconds": round(time.monotonic() - self.active_at, 1),
        }
