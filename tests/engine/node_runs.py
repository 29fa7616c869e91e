"""Running one integration node through the real interpreter, with its own
`Effects` (closed after the run), for the tests of the integration nodes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine.definition import DefinitionError, decode_definitions
from engine.effects import Effects
from engine.interpreter import Interpreter
from engine.records import Execution, Job
from engine.settings import Settings
from engine.validation import CompiledWorkflow, compile_workflow


@dataclass
class NodeRun:
    status: int  # the execution's
    job: Job  # the node's (the first node's, when several ran)
    jobs: list[Job]


def compile_nodes(nodes: list[dict[str, Any]], *, sync: bool = True) -> CompiledWorkflow:
    (definition,) = decode_definitions(json.dumps({"key": "wfkey", "sync": sync, "nodes": nodes}))
    return compile_workflow(definition)


async def run_nodes(
    nodes: list[dict[str, Any]],
    *,
    settings: Settings | None = None,
    context: Any = None,
    env: dict[str, str] | None = None,
    effects: Effects | None = None,
) -> NodeRun:
    """Run the nodes as a sync workflow; a fresh `Effects` unless one is given."""
    compiled = compile_nodes(nodes)
    own = effects is None
    effects = effects or Effects(settings or Settings())
    execution = Execution(
        id="0190aa00000000000000000000beef",
        key="wfkey",
        workflowId=1,
        context=context if context is not None else {},
        createdAt=datetime.now(UTC),
    )
    # The sink encodes every job as the execution log does: a result that is
    # not plain data fails the test here rather than in an actor.
    interpreter = Interpreter(
        compiled, execution, env=env or {}, sink=msgspec.json.encode, effects=effects
    )
    try:
        status = await interpreter.run()
    finally:
        if own:
            await effects.aclose()
    return NodeRun(status, interpreter.jobs[0], interpreter.jobs)


async def run_node(node_type: str, config: dict[str, Any], **kwargs: Any) -> NodeRun:
    return await run_nodes([{"key": "n", "type": node_type, "config": config}], **kwargs)


def definition_error(node_type: str, config: dict[str, Any]) -> str:
    """The single validation message a node config gets."""
    with pytest.raises(DefinitionError) as info:
        compile_nodes([{"key": "n", "type": node_type, "config": config}])
    assert len(info.value.messages) == 1, info.value.messages
    return info.value.messages[0]
