"""`Subflows`: how a `subflow` node calls another workflow from an execution
actor (`engine.effects.SubflowRunner`): a sync child runs here and its end is
the node's outcome; an async child is queued in its own inbox, and its end
resumes the caller."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.runs import Runs
from engine.effects import SubflowOutcome
from engine.records import Execution, Job, Parent, TriggerEvent

_encode = msgspec.msgpack.Encoder().encode


class Subflows:
    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    async def call(self, *, key: str, context: Any, parent: Execution, job: Job) -> SubflowOutcome:
        """Start the workflow `key` as a child of `parent`."""
        workflows = self.runs.workflows
        version = await workflows.enabled_version(key)
        if version is None:
            current = [v for v in await workflows.versions(key=key) if v.current]
            version = current[0] if current else None
        if version is None:
            raise LookupError(f"no workflow with key {key!r}")
        limit = version.options.stackLimit
        if parent.stack.count(key) + (parent.key == key) >= limit:
            raise RuntimeError(f"workflow {key!r} would call itself deeper than stackLimit {limit}")
        caller, _ = await self.runs.workflow(parent.workflowId, counted=True)
        if caller.sync and not version.sync:
            raise RuntimeError(f"a sync workflow can only call sync workflows; {key!r} is async")
        child = TriggerEvent.start(
            key=version.key,
            workflowId=version.id,
            context=context if isinstance(context, dict) else {"value": context},
            parent=Parent(
                executionId=parent.id, jobId=job.id, key=parent.key, workflowId=parent.workflowId
            ),
            stack=[*parent.stack, parent.key],
        )
        if version.sync:
            execution, _ = await self.runs.execute(child)
            return SubflowOutcome(
                executionId=child.id, status=execution.status, output=execution.output
            )
        if not version.enabled:
            raise LookupError(f"workflow {key!r} is not enabled: an async subflow needs it enabled")
        # Queued with the parent's wait, in the write that ends this run: the child
        # cannot end (and resume the parent) before that wait is recorded.
        self.runs.starts.setdefault(parent.id, []).append((child.key, _encode(child)))
        return SubflowOutcome(executionId=child.id, queued=True)
