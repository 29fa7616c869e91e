"""integrations/sandbox: scripts in sandbox processes that can be lost without the
process that asked, and fair shares of the sandboxes between workflows. Real
processes, real V8."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from integrations.sandbox.pool import SandboxPool
from integrations.sandbox.protocol import SandboxLimits, ScriptRun
from integrations.sandbox.slots import FairSlots
from tests.conftest import process_state

LIMITS = SandboxLimits(heap_bytes=128 << 20, buffer_bytes=128 << 20, output_bytes=1 << 20)
ROOT = Path(__file__).resolve().parents[2]


def script(content: str, timeout_ms: int = 10_000, **values: object) -> ScriptRun:
    import json

    return ScriptRun(
        content=content,
        names=list(values),
        arguments=json.dumps(list(values.values())),
        timeout_ms=timeout_ms,
    )


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie (which still answers kill(0))."""
    state = process_state(pid)
    return state is not None and state[0] != "Z"


# -- processes ----------------------------------------------------------------------


async def test_a_v8_fatal_out_of_memory_ends_the_sandbox_not_the_caller() -> None:
    pool = SandboxPool(LIMITS, size=1, share=1, cpu_ms=0)
    try:
        assert (await pool.run("wf", "e1", script("return 1"))).value == "1"
        (first,) = pool.pids()
        # `fill` runs as one V8 builtin, which no timeout or heap check can
        # interrupt: V8 aborts the process once an allocation fails (5-15 s here).
        outcome = await pool.run(
            "wf", "e1", script("return new Array(n).fill(0).length", 120_000, n=1_000_000_000)
        )
        assert outcome.error is not None
        assert outcome.error["code"] == "ERR_SCRIPT_MEMORY"
        assert outcome.error["message"].startswith("script exceeded its memory")
        assert not alive(first)
        after = await pool.run("wf", "e1", script("return n * 2", n=21))
        assert after.value == "42"
        (second,) = pool.pids()
        assert second != first
    finally:
        await pool.aclose()


async def test_a_sandbox_killed_while_idle_is_replaced() -> None:
    pool = SandboxPool(LIMITS, size=1, share=1, cpu_ms=0)
    try:
        await pool.run("wf", "e1", script("return 1"))
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            await asyncio.sleep(0.01)
        outcome = await pool.run("wf", "e1", script("return 2"))
        # The dead process answered nothing: its run failed, the next one works.
        if outcome.error is not None:
            assert outcome.error["code"] == "ERR_SCRIPT_CRASHED"
            outcome = await pool.run("wf", "e1", script("return 2"))
        assert outcome.value == "2"
        assert pid not in pool.pids()
    finally:
        await pool.aclose()


async def test_a_canceled_script_stops_at_once_with_its_process() -> None:
    pool = SandboxPool(LIMITS, size=1, share=1, cpu_ms=0)
    try:
        await pool.run("wf", "e1", script("return 1"))
        (pid,) = pool.pids()
        task = asyncio.create_task(pool.run("wf", "e1", script("while (true) {}", 60_000)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 5
        while alive(pid):
            assert time.monotonic() < deadline, "the looping sandbox still runs"
            await asyncio.sleep(0.02)
        assert (await pool.run("wf", "e2", script("return 3"))).value == "3"
    finally:
        await pool.aclose()


async def test_a_script_that_ignores_its_timeout_loses_its_process() -> None:
    """V8 stops a loop at the timeout itself; the pool's own deadline is for a
    process that does not answer at all (here: stopped with SIGSTOP)."""
    pool = SandboxPool(LIMITS, size=1, share=1, cpu_ms=0)
    try:
        await pool.run("wf", "e1", script("return 1"))
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        outcome = await pool.run("wf", "e1", script("return 1", timeout_ms=200))
        assert outcome.error == {"message": "script timed out after 200 ms", "code": "ETIMEDOUT"}
        assert time.monotonic() - started < 5
        assert (await pool.run("wf", "e1", script("return 4"))).value == "4"
        assert pid not in pool.pids()
    finally:
        await pool.aclose()


def test_sandboxes_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    """An executor killed outright (SIGKILL) leaves no sandbox behind."""
    code = textwrap.dedent(
        """
        import asyncio, sys
        from integrations.sandbox.pool import SandboxPool
        from integrations.sandbox.protocol import SandboxLimits, ScriptRun

        async def main():
            pool = SandboxPool(SandboxLimits(heap_bytes=1 << 27, buffer_bytes=1 << 27,
                               output_bytes=1 << 20), size=1, share=1, cpu_ms=0)
            await pool.run("wf", "e", ScriptRun(content="return 1", names=[], arguments="[]",
                           timeout_ms=1000))
            print(pool.pids()[0], flush=True)
            await asyncio.sleep(600)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    try:
        assert parent.stdout is not None
        sandbox = int(parent.stdout.readline())
        assert alive(sandbox)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(sandbox):
            assert time.monotonic() < deadline, "the sandbox outlived its executor"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


# -- fair slots ---------------------------------------------------------------------


async def test_one_workflow_never_holds_more_than_its_share() -> None:
    slots = FairSlots(size=4, share=3)
    for _ in range(3):
        await slots.acquire("flood")
    fourth = asyncio.create_task(slots.acquire("flood"))
    await asyncio.sleep(0.01)
    assert not fourth.done()
    await asyncio.wait_for(slots.acquire("other"), 1)  # the slot left for the others
    assert slots.busy == 4
    slots.release("other")
    await asyncio.sleep(0.01)
    assert not fourth.done()  # a free slot, but "flood" is at its share
    slots.release("flood")
    await asyncio.wait_for(fourth, 1)
    assert slots.held("flood") == 3


async def test_waiting_workflows_are_served_in_turn() -> None:
    slots = FairSlots(size=1, share=1)
    await slots.acquire("a")
    order: list[str] = []

    async def take(owner: str) -> None:
        await slots.acquire(owner)
        order.append(owner)
        slots.release(owner)

    waiters = [asyncio.create_task(take(o)) for o in ("a", "a", "a", "b", "c")]
    await asyncio.sleep(0.01)
    slots.release("a")
    await asyncio.wait_for(asyncio.gather(*waiters), 2)
    # b and c each wait behind one of a's scripts, not behind all three.
    assert order == ["a", "b", "c", "a", "a"]


async def test_a_canceled_waiter_gives_its_turn_away() -> None:
    slots = FairSlots(size=1, share=1)
    await slots.acquire("a")
    gone = asyncio.create_task(slots.acquire("b"))
    stays = asyncio.create_task(slots.acquire("c"))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    slots.release("a")
    await asyncio.wait_for(stays, 1)
    assert slots.held("c") == 1 and slots.held("b") == 0 and slots.busy == 1
