"""SIGKILL, under a steady async load, of each process an event passes through
(SPEC §7): every event that got a 2xx reaches a final status, none has two
executions, and the service answers again within the stated bound."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from tests.faults.check import Verdict
from tests.faults.conftest import Stack

ANSWER_BOUND = 10.0  # the service answers 2xx again within this after any kill


def run_with_fault(stack: Stack, fault: str, inject: Callable[[], None]) -> Verdict:
    return stack.run_with_fault(fault, inject, answer_bound=ANSWER_BOUND)


def test_kill_an_execution_actor(stack: Stack) -> None:
    verdict = run_with_fault(
        stack, "execution actor SIGKILL", lambda: stack.kill_actor_process("executor:0")
    )
    assert verdict.drained_s < 60


def test_kill_every_execution_actor_at_once(stack: Stack) -> None:
    """Both executors, which also read the inboxes: no consumer is left alive
    until Ray restarts them; each then runs its own pending entries again."""

    def kill_both() -> None:
        for name in ("executor:0", "executor:1"):
            stack.kill_actor_process(name)

    verdict = run_with_fault(stack, "both execution actors SIGKILL", kill_both)
    assert verdict.drained_s < 60


def test_kill_a_gunicorn_worker(stack: Stack) -> None:
    worker = stack.gunicorn_workers()[0]
    verdict = run_with_fault(
        stack, "gunicorn worker SIGKILL", lambda: os.kill(worker, signal.SIGKILL)
    )
    assert worker not in stack.gunicorn_workers()  # it was replaced
    assert verdict.drained_s < 60


def test_kill_redis_and_restart_it(stack: Stack) -> None:
    def crash_and_restart() -> None:
        stack.redis.kill()  # SIGKILL: only what AOF (appendfsync always) holds survives
        time.sleep(1.0)
        stack.redis.start()

    verdict = run_with_fault(stack, "Redis SIGKILL + restart (AOF always)", crash_and_restart)
    assert verdict.drained_s < 90
    stack.wait_ready()
