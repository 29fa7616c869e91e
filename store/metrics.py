"""The cluster-wide figures in Redis: one hash of counters per figure name
(`{ns}:metrics:<name>`), which the actors add to (HINCRBY, HINCRBYFLOAT; see
actors/metrics.py) and `/metrics` reads at scrape time with each enabled
workflow's inbox backlog (ingress/metrics.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from store.errors import raises_store_error
from store.keys import INBOX_GROUP, Keys


@dataclass
class Snapshot:
    """One scrape's read: per workflow key the inbox `backlog` (entries not yet
    final) and `pending` (handed to an execution), and per figure name its
    counters (`figures`). A reply Redis refused is left out (an empty hash)."""

    backlog: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    figures: dict[str, dict[str, str]] = field(default_factory=dict)


@raises_store_error
class ClusterFigures:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def add(
        self,
        counts: Mapping[str, Mapping[str, int]],
        sums: Mapping[str, Mapping[str, float]],
    ) -> None:
        """Add `counts` and `sums` (figure name → field → amount), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for name, fields in counts.items():
            for label, n in fields.items():
                pipe.hincrby(self.keys.metrics(name), label, n)
        for name, totals in sums.items():
            for label, total in totals.items():
                pipe.hincrbyfloat(self.keys.metrics(name), label, total)
        await pipe.execute()

    async def read(self, workflow_keys: Sequence[str], names: Sequence[str]) -> Snapshot:
        """The inboxes of `workflow_keys` and the figures called `names`, in one
        round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in workflow_keys:
            pipe.xlen(self.keys.inbox(key))
            pipe.xpending(self.keys.inbox(key), INBOX_GROUP)
        for name in names:
            pipe.hgetall(self.keys.metrics(name))
        replies = await pipe.execute(raise_on_error=False)
        snapshot = Snapshot()
        for i, key in enumerate(workflow_keys):
            length, summary = replies[2 * i], replies[2 * i + 1]
            if isinstance(length, int):
                snapshot.backlog[key] = length
            if isinstance(summary, dict):
                snapshot.pending[key] = summary.get("pending", 0)
        for name, reply in zip(names, replies[2 * len(workflow_keys) :], strict=True):
            snapshot.figures[name] = _decoded(reply)
        return snapshot


def _decoded(reply: Any) -> dict[str, str]:
    if not isinstance(reply, dict):
        return {}
    return {k.decode(): v.decode() for k, v in reply.items()}
