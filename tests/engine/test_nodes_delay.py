"""The `delay` node (reference §5.5, NocoBase plugin-workflow-delay): the wait
it asks for; the durable timer itself is tested end to end
(tests/e2e/test_waiting_nodes.py, tests/e2e/test_up.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.status import PENDING, Status
from tests.engine.test_interpreter import compile_nodes, run_workflow


async def delay(config: dict[str, Any], context: Any = None) -> tuple[int, Any, float | None]:
    """The execution status, the delay job's result and its timer (epoch ms)."""
    compiled = compile_nodes([{"key": "d", "type": "delay", "config": config}], sync=False)
    run = await run_workflow(compiled, context)
    (wait,) = run.interpreter.waits or [None]
    return run.status, run.job("d").result, wait.fire_at if wait else None


async def test_delay_waits_duration_times_unit() -> None:
    before = time.time() * 1000
    status, result, fire_at = await delay({"duration": 2, "unit": 60000})
    assert status == PENDING and result == 120000
    assert fire_at is not None and before + 120000 <= fire_at <= time.time() * 1000 + 120000


@pytest.mark.parametrize("duration", [0, None, ""])
async def test_delay_with_duration_0_waits_one_unit_as_nocobase_does(duration: Any) -> None:
    # DelayInstruction.run: `node.config.duration || 1`.
    status, result, fire_at = await delay({"duration": duration, "unit": 60000})
    assert status == PENDING and result == 60000
    assert fire_at is not None and fire_at >= time.time() * 1000 + 59000


async def test_delay_whose_placeholder_renders_0_does_not_wait() -> None:
    # NocoBase applies `|| 1` to the config, before the placeholder is read.
    status, result, _ = await delay({"duration": "{{$context.wait}}"}, {"wait": 0})
    assert status == PENDING and result == 0


async def test_delay_whose_placeholder_renders_no_number_is_an_error() -> None:
    compiled = compile_nodes(
        [{"key": "d", "type": "delay", "config": {"duration": "{{$context.wait}}"}}], sync=False
    )
    run = await run_workflow(compiled, {"wait": "soon"})
    assert run.status == Status.ERROR and run.job("d").status == Status.ERROR
