"""What every fault scenario must show afterwards (SPEC §7): each accepted event
reached a final status, no event has two executions, and the service answered
again within a bounded time. Rows go to $RAYHOOK_FAULT_REPORT (JSON lines) for
docs/reliability.md."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass

import msgspec
import redis

from engine.status import is_final
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
    timeout: float = 120.0,
) -> Verdict:
    """Wait until every accepted event is final (or `timeout`), then count."""
    client = redis.Redis.from_url(redis_url)
    keys = Keys(namespace)
    wanted = list(outcome.accepted.values())
    deadline = time.monotonic() + timeout
    while True:
        statuses = client.hmget(keys.execution_statuses, wanted) if wanted else []
        final = sum(1 for s in statuses if s not in (None, b"null") and is_final(int(s)))
        if final == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    drained = time.monotonic() - fault_at
    # Executions of the workflow by event id: more than one is a duplicate.
    ids = [i.decode() for i in client.zrange(keys.executions(key), 0, -1)]
    per_event: Counter[str] = Counter()
    for raw in client.mget([keys.execution(i) for i in ids]) if ids else []:
        if raw:
            body = (msgspec.json.decode(raw).get("context") or {}).get("body") or {}
            per_event[str(body.get("id"))] += 1
    duplicated = sum(n - 1 for n in per_event.values() if n > 1)
    runs = int(client.get(keys.executed(version_id)) or 0)
    back = outcome.first_success_after(fault_at)
    verdict = Verdict(
        fault=fault,
        sent=outcome.sent,
        accepted=len(wanted),
        final=final,
        duplicated=duplicated,
        lost=len(wanted) - final,
        reruns=max(0, runs - len(ids)),
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
