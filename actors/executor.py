"""`ExecutionActor`: a pooled, long-lived Ray actor that runs executions: the
async ones it reads from the inboxes itself, the sync ones called over Redis
pub/sub, and the rare ones the admin API asks for (a manual run, a node test, a
cancel).

It is a process (creating one per request would cap throughput at a few per
second); many executions run in it at once as asyncio tasks. Its parts, each in
a module of its own:
- `InboxConsumer` (actors/consumer.py) reads the inboxes, `InboxRuns`
  (actors/inbox_runs.py) runs what it reads;
- `SyncServer` (actors/sync_server.py) answers sync calls;
- `Runs` (actors/runs.py) runs one execution from start, resume or retry to its
  end, which `Recorder` (actors/recorder.py) writes;
- `Subflows` (actors/subflows.py) calls other workflows for a `subflow` node.
Execution actor 0 also starts the deployment's `HistoryWriter`
(actors/history_writer.py) as a child process of its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import ray

from actors import heap
from actors.consumer import InboxConsumer
from actors.handles import executor_name
from actors.history_writer import WriterProcess
from actors.inbox_runs import InboxRuns
from actors.metrics import MetricsBuffer
from actors.runs import Runs
from actors.subflows import Subflows
from actors.sync_server import SyncServer
from engine.definition import DefinitionError
from engine.effects import Effects
from engine.interpreter import Interpreter
from engine.logs import configure as configure_logs
from engine.records import Execution, TriggerEvent, new_execution_id, now
from engine.redaction import SecretMask
from engine.settings import Settings
from engine.validation import compile_test_node
from integrations.wiring import install as install_integrations
from store.batching import PipelineBatcher
from store.connection import connect, load_scripts
from store.executions import ExecutionLog
from store.inbox import Inbox
from store.keys import Keys
from store.metrics import ClusterFigures
from store.sync_calls import SyncCalls
from store.workflows import WorkflowStore

_decode_event = msgspec.msgpack.Decoder(TriggerEvent).decode

#: A node test (`flow_nodes:test`) is cut after this long.
NODE_TEST_SECONDS = 60.0


class ExecutionActor:
    """Attributes: `settings`, `index` (position in the pool), `runs`, the
    `consumer` of the inboxes, the `sync` server and, on executor 0, the
    `history_writer`."""

    def __init__(self, settings: Settings, index: int) -> None:
        configure_logs(secrets=settings.env.values())
        self.settings = settings
        self.index = index
        self.redis = connect(settings.redis_url)
        keys = Keys(settings.namespace)
        batcher = PipelineBatcher(self.redis)
        log = ExecutionLog(self.redis, keys, batcher)
        inbox = Inbox(self.redis, keys, batcher)
        metrics = MetricsBuffer(ClusterFigures(self.redis, keys))
        metrics.actor_started(f"ExecutionActor {executor_name(index)}")
        self.effects = Effects(settings, integrations=install_integrations())
        self.runs = Runs(
            settings,
            log=log,
            inbox=inbox,
            workflows=WorkflowStore(self.redis, keys),
            effects=self.effects,
            metrics=metrics,
            mask=SecretMask(settings.env.values()),
        )
        self.effects.subflows = Subflows(self.runs)
        self.consumer = InboxConsumer(
            executor_name(index), settings, inbox, log, InboxRuns(self.runs)
        )
        self.sync = SyncServer(self.runs, SyncCalls(self.redis, keys), index)
        loop = asyncio.get_running_loop()
        self._started = loop.create_task(load_scripts(self.redis))
        self._consuming = loop.create_task(self._after_start(self.consumer.run))
        self._serving = loop.create_task(self._after_start(self.sync.serve))
        heap.freeze()
        self.history_writer = (
            WriterProcess(settings) if index == 0 and settings.history_writer else None
        )

    async def _after_start(self, work: Any) -> None:
        await self._started
        await work()

    async def ready(self) -> int:
        """Ready: scripts loaded and listening for sync calls."""
        await self._started
        await self.sync.listening.wait()
        return self.index

    async def drain(self, timeout: float) -> int:
        """Stop reading the inboxes and wait up to `timeout` s for the executions
        read; how many still run (a graceful shutdown of the whole stack)."""
        return await self.consumer.drain(timeout)

    async def history_writer_pid(self) -> int | None:
        """The pid of the history writer's process while it runs (executor 0);
        None elsewhere (operators and the fault tests find it by this)."""
        return self.history_writer.pid if self.history_writer else None

    async def supervisors(self) -> list[dict[str, object]]:
        """The workflow supervisors awake here (operators: `supervisors:list`)."""
        return self.consumer.stats()

    async def run_sync(self, payload: bytes) -> bytes:
        """Run a sync webhook's execution; the msgpack-encoded `Reply`."""
        return await self.sync.reply(_decode_event(payload))

    async def run_batch(self, entries: list[tuple[str, bytes]]) -> list[int | None]:
        """Run inbox entries (stream id, msgpack event); their final statuses."""
        return await self.consumer.runner.run_batch(entries)

    async def run_one(self, payload: bytes) -> bytes:
        """Run a manual execution (`workflows:execute`); the JSON execution."""
        execution, _ = await self.runs.execute(_decode_event(payload))
        return msgspec.json.encode(execution)

    async def cancel(self, execution_id: str) -> bool:
        """Abort a running execution (reason `manual_cancel`); False if it is not
        running here."""
        return await self.runs.cancel(execution_id)

    async def test_node(
        self, node_type: str, config: dict[str, Any], variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one node's config once (`flow_nodes:test`) with `variables` as its
        scope; its job's status, result and log, or the definition errors."""
        mapped = variables.get("$jobsMapByNodeKey") or {}
        try:
            workflow = compile_test_node(node_type, config, mapped.keys())
        except DefinitionError as exc:
            return {"errors": exc.messages}
        execution = Execution(
            id=f"test-{new_execution_id()}",
            key="flow_nodes:test",
            workflowId=0,
            context=variables.get("$context") or {},
            createdAt=now(),
        )
        interpreter = Interpreter(
            workflow, execution, env=self.settings.env, sink=lambda job: None, effects=self.effects
        )
        interpreter.scope["$jobsMapByNodeKey"].update(mapped)
        interpreter.scope["$scopes"].update(variables.get("$scopes") or {})
        try:
            await asyncio.wait_for(interpreter.run(), NODE_TEST_SECONDS)
        except TimeoutError:
            interpreter.abort()
        job = interpreter.jobs[0]
        return {"status": job.status, "result": job.result, "log": job.log}


RemoteExecutionActor = ray.remote(ExecutionActor)
