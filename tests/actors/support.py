"""Shared helpers of the actor tests: a namespace's Redis view (workflows, inbox,
execution log), workflow definitions, and polling with a deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import ray
import redis.asyncio as aioredis

from engine.definition import WorkflowVersion, decode_definitions
from engine.records import Execution, TriggerEvent
from engine.settings import Settings
from engine.status import Status, is_final
from store.batching import PipelineBatcher
from store.executions import ExecutionLog
from store.inbox import Inbox
from store.keys import INBOX_GROUP, Keys
from store.workflows import WorkflowStore

T = TypeVar("T")

#: Longest wait for anything in these tests.
DEADLINE = 30.0


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = DEADLINE,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until `done(value)`; the last value. Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s; last value: {value!r}")
        await asyncio.sleep(interval)


# -- definitions --------------------------------------------------------------------


def async_workflow(nodes: int = 3, **options: Any) -> dict[str, Any]:
    """An async workflow of `nodes` cheap nodes: variable, calculations, output;
    `options` become the definition's `options`."""
    chain: list[dict[str, Any]] = [
        {"key": "n", "type": "variable", "config": {"value": "{{$context.body.n}}"}}
    ]
    for i in range(max(0, nodes - 2)):
        chain.append(
            {
                "key": f"c{i}",
                "type": "calculation",
                "config": {"engine": "math.js", "expression": "{{$jobsMapByNodeKey.n}} + 1"},
            }
        )
    chain.append(
        {"key": "out", "type": "output", "config": {"value": {"n": "{{$jobsMapByNodeKey.n}}"}}}
    )
    return {
        "title": "actors test (async)",
        "sync": False,
        "enabled": True,
        "options": options,
        "nodes": chain,
    }


def heavy_chain(count: int) -> list[dict[str, Any]]:
    """`count` CPU-heavy calculation nodes (each sums the context's `xs`)."""
    return [
        {
            "key": f"sum{i}",
            "type": "calculation",
            "config": {"engine": "math.js", "expression": "sum({{$context.body.xs}})"},
        }
        for i in range(count)
    ]


def slow_async_workflow(nodes: int) -> dict[str, Any]:
    """An async workflow of `nodes` heavy nodes (run it with a context that has `xs`)."""
    return {
        "title": "actors test (slow)",
        "sync": False,
        "enabled": True,
        "nodes": heavy_chain(nodes),
    }


def sync_workflow(**extra: Any) -> dict[str, Any]:
    """A sync workflow: a calculation, then a Response built from it."""
    return {
        "title": "actors test (sync)",
        "sync": True,
        "enabled": True,
        "nodes": [
            {
                "key": "double",
                "type": "calculation",
                "config": {"engine": "math.js", "expression": "{{$context.body.n}} * 2"},
            },
            {
                "key": "reply",
                "type": "response",
                "config": {
                    "statusCode": 201,
                    "headers": [{"name": "X-N", "value": "{{$context.body.n}}"}],
                    "body": {"double": "{{$jobsMapByNodeKey.double}}"},
                },
            },
        ],
        **extra,
    }


def long_sync_workflow(nodes: int = 300, **extra: Any) -> dict[str, Any]:
    """A sync workflow that runs for seconds with `LONG_CONTEXT` (then replies 200)."""
    return {
        "title": "actors test (long)",
        "sync": True,
        "enabled": True,
        "nodes": [
            *heavy_chain(nodes),
            {"key": "reply", "type": "response", "config": {"statusCode": 200, "body": "done"}},
        ],
        **extra,
    }


LONG_CONTEXT: dict[str, Any] = {"body": {"xs": list(range(50000))}}


# -- the namespace's store ----------------------------------------------------------


@dataclass
class Store:
    """The store of one test namespace, seen from the test process."""

    settings: Settings
    client: aioredis.Redis

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.namespace)
        self.batcher = PipelineBatcher(self.client)
        self.workflows = WorkflowStore(self.client, self.keys)
        self.inbox = Inbox(self.client, self.keys, self.batcher)
        self.log = ExecutionLog(self.client, self.keys, self.batcher)

    @property
    def ns(self) -> str:
        return self.settings.namespace

    async def create(self, definition: dict[str, Any]) -> WorkflowVersion:
        (parsed,) = decode_definitions(json.dumps(definition))
        return await self.workflows.create(parsed)

    @staticmethod
    def event(version: WorkflowVersion, context: dict[str, Any]) -> TriggerEvent:
        return TriggerEvent.start(key=version.key, workflowId=version.id, context=context)

    async def enqueue(
        self, version: WorkflowVersion, contexts: Iterable[dict[str, Any]]
    ) -> list[TriggerEvent]:
        """Add one event per context to the workflow's inbox (stamped with its entry id)."""
        events = [self.event(version, context) for context in contexts]
        entries = await asyncio.gather(*(self.inbox.add(e) for e in events))
        for event, entry in zip(events, entries, strict=True):
            event.entry = entry
        return events

    async def statuses(self, events: Iterable[TriggerEvent]) -> list[int | str | None]:
        return await self.log.statuses([e.id for e in events])

    async def wait_final(
        self, events: list[TriggerEvent], timeout: float = DEADLINE
    ) -> list[int | str | None]:
        """Wait until every event's execution is final; their statuses."""
        return await eventually(
            lambda: self.statuses(events),
            lambda statuses: all(s != "missing" and is_final(s) for s in statuses),  # type: ignore[arg-type]
            timeout=timeout,
            what=f"{len(events)} final executions",
        )

    async def wait_status(self, execution_id: str, done: Callable[[Execution], bool]) -> Execution:
        found = await eventually(
            lambda: self.log.get(execution_id),
            lambda e: e is not None and done(e),
            what=f"execution {execution_id}",
        )
        assert found is not None
        return found

    async def xlen(self, key: str) -> int:
        return int(await self.client.xlen(self.keys.inbox(key)))

    async def pending(self, key: str) -> int:
        summary = await self.client.xpending(self.keys.inbox(key), INBOX_GROUP)
        return int(summary["pending"])

    async def count_by_status(self, key: str, status: int | None) -> int:
        return int(await self.client.zcard(self.keys.executions(key, status)))

    async def count_all(self, key: str) -> int:
        return int(await self.client.zcard(self.keys.executions(key)))

    async def executed(self, version_id: int) -> int:
        """How many runs of the version the executors started (one per `_execute_once`)."""
        return int(await self.client.get(self.keys.executed(version_id)) or 0)

    async def job_count(self, execution_id: str) -> int:
        """Jobs recorded, wherever they are in Redis (no history writer runs in
        these tests: final executions stay on the history stream)."""
        return len(await self.log.jobs(execution_id))

    async def status_index_total(self, key: str) -> int:
        """Executions of `key` over every status index (each execution is in one)."""
        names = [self.keys.executions(key, s) for s in [None, *(int(s) for s in Status)]]
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.zcard(name)
        return sum(int(n) for n in await pipe.execute())


RESOLVED = int(Status.RESOLVED)


def actor_exists(name: str, ns: str) -> bool:
    try:
        ray.get_actor(name, namespace=ns)
    except ValueError:
        return False
    return True
