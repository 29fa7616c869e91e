"""Scripts on threads of the executor's own process
(RAYHOOK_SCRIPT_SANDBOX=inline): no process hop, but no containment either — a
V8 abort (a fatal out-of-memory) ends the executor, and array buffers are not
capped. For operators who accept that, and for the fault tests that need a
script to crash an executor for real."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from integrations.sandbox.budget import CpuBudgets
from integrations.sandbox.protocol import SandboxLimits, ScriptOutcome, ScriptRun
from integrations.sandbox.slots import FairSlots
from integrations.sandbox.v8 import evaluate


class InlineSandbox:
    """Attributes: `limits`, `slots`, `budgets`; `size` worker threads."""

    def __init__(self, limits: SandboxLimits, *, size: int, share: int, cpu_ms: int) -> None:
        self.limits = limits
        self.slots = FairSlots(size, share)
        self.budgets = CpuBudgets(cpu_ms)
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="rayhook-script")

    async def run(self, owner: str, execution_id: str, run: ScriptRun) -> ScriptOutcome:
        await self.slots.acquire(owner)
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(
                self._threads, _run_on_thread, run, self.limits
            )
        finally:
            self.slots.release(owner)
        self.budgets.spend(execution_id, outcome.cpu_ms)
        return outcome

    def pids(self) -> list[int]:
        return []

    async def aclose(self) -> None:
        # Running scripts end by their own timeout; do not hold the loop for them.
        self._threads.shutdown(wait=False, cancel_futures=True)


def _run_on_thread(run: ScriptRun, limits: SandboxLimits) -> ScriptOutcome:
    # CPU is measured as wall time here: other executions share this process.
    return asyncio.run(evaluate(run, limits))
