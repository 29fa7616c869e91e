"""SIGKILL, under a steady async load, of each process an event passes through
(SPEC §7): every event that got a 2xx reaches a final status, none has two
executions, and the service answers again within the stated bound."""

from __future__ import annotations

import os
import signal
import time

from tests.faults.check import Verdict, settle
from tests.faults.conftest import Stack
from tests.faults.load import Load

BEFORE, AFTER = 2.0, 4.0  # seconds of load around the fault
ANSWER_BOUND = 10.0  # the service answers 2xx again within this after any kill


def run_with_fault(stack: Stack, fault: str, inject) -> Verdict:  # type: ignore[no-untyped-def]
    with Load(stack.url) as load:
        time.sleep(BEFORE)
        fault_at = time.monotonic()
        inject()
        time.sleep(AFTER)
    verdict = settle(
        stack.redis.url,
        stack.server.namespace,
        stack.key,
        stack.version["id"],
        load.outcome,
        fault=fault,
        fault_at=fault_at,
        history_url=stack.server.history_url,
    )
    assert verdict.accepted > 100, verdict
    assert verdict.lost == 0, verdict
    assert verdict.duplicated == 0, verdict
    assert verdict.answering_again_s <= ANSWER_BOUND, verdict
    return verdict


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
