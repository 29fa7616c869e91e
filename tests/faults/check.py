"""What every fault scenario must show afterwards (SPEC §7): each accepted event
reached a final status, no event has two executions, and the service answered
again within a bounded time. Rows go to $RAYHOOK_FAULT_REPORT (JSON lines) for
docs/reliability.md."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass

import redis
import sqlalchemy as sa

from engine.records import Execution
from engine.status import is_final
from store.batching import PipelineBatcher
from store.connection import connect
from store.executions import ExecutionLog
from store.filters import ExecutionFilter
from store.history import HistoryStore
from store.history import execution_of_row as row_execution
from store.history_schema import executions
from store.keys import Keys
from tests.faults.load import Outcome


@dataclass
class Verdict:
    fault: str
    sent: int
    accepted: int
    final: int
    duplicated: int
    lost: int
    reruns: int
    answering_again_s: float
    drained_s: float


def settle(
    redis_url: str,
    namespace: str,
    key: str,
    version_id: int,
    outcome: Outcome,
    *,
    fault: str,
    fault_at: float,
    history_url: str,
    timeout: float = 120.0,
) -> Verdict:
    """Wait until every accepted event is final (or `timeout`), then count.

    Executions are read where they are: hot in Redis or moved to the SQL
    history (the history writer moves them while we look)."""
    client = redis.Redis.from_url(redis_url)
    keys = Keys(namespace)
    wanted = list(outcome.accepted.values())
    deadline = time.monotonic() + timeout
    while True:
        runs = asyncio.run(executions_of(redis_url, namespace, history_url, key))
        status = {e.id: e.status for e in runs}
        final = sum(1 for i in wanted if is_final(status.get(i, "missing")))
        if final == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    drained = time.monotonic() - fault_at
    # Executions of the workflow by event id: more than one is a duplicate.
    per_event: Counter[str] = Counter()
    for execution in runs:
        body = ((execution.context or {}).get("body")) or {}
        per_event[str(body.get("id"))] += 1
    duplicated = sum(n - 1 for n in per_event.values() if n > 1)
    executed = int(client.get(keys.executed(version_id)) or 0)
    back = outcome.first_success_after(fault_at)
    verdict = Verdict(
        fault=fault,
        sent=outcome.sent,
        accepted=len(wanted),
        final=final,
        duplicated=duplicated,
        lost=len(wanted) - final,
        reruns=max(0, executed - len(runs)),
        answering_again_s=round((back - fault_at) if back else float("inf"), 2),
        drained_s=round(drained, 2),
    )
    client.close()
    report = os.environ.get("RAYHOOK_FAULT_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps(asdict(verdict)) + "\n")
    print(verdict)
    return verdict


async def executions_of(
    redis_url: str, namespace: str, history_url: str, key: str
) -> list[Execution]:
    """Every execution of a workflow key, with its context, from both stores; an
    execution in both (committed, not yet forgotten in Redis) counts once."""
    client = connect(redis_url)
    keys = Keys(namespace)
    log = ExecutionLog(client, keys, PipelineBatcher(client))
    history = HistoryStore(history_url)
    try:
        hot = await log.hot(ExecutionFilter(key=key))
        try:
            async with history.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.select(executions).where(executions.c.workflow_key == key)
                    )
                ).all()
        except sa.exc.OperationalError:  # not migrated yet: nothing moved
            rows = []
        cold = [row_execution(row) for row in rows]
    finally:
        await history.close()
        await client.aclose()
    seen = {e.id for e in cold}
    return cold + [e for e in hot if e.id not in seen]
