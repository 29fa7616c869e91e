"""Scripts in sandbox processes (RAYHOOK_SCRIPT_SANDBOX=process, the default):
a V8 abort, a heap or buffer bomb, a script that will not stop, ends that one
script's process — with an ERROR for its job — never the executor.

Each executor keeps up to `size` sandbox processes (started on first use, one
script at a time each, a fresh isolate per script) and hands them out through
`FairSlots`. A process that died or was killed is dropped; the next script
starts a new one. Per call the cost is two pipe writes and reads (the next
isolate is prepared while the process waits), see docs/performance.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from pathlib import Path

import msgspec

from integrations.sandbox.budget import CpuBudgets
from integrations.sandbox.protocol import (
    HEADER_BYTES,
    SandboxLimits,
    ScriptOutcome,
    ScriptRun,
    frame,
    frame_length,
)
from integrations.sandbox.slots import FairSlots
from integrations.sandbox.v8 import memory_error, timeout_error
from integrations.sandbox.worker import READY

log = logging.getLogger("rayhook.sandbox")

#: How long a new sandbox process may take to be ready.
START_TIMEOUT_S = 30.0
#: Beyond a script's own timeout, how long its process may take to answer
#: before it is killed (V8 normally stops a script at its timeout itself).
KILL_GRACE_S = 2.0
#: Lines of a sandbox process's stderr kept to tell why it died.
STDERR_LINES = 40

_encode = msgspec.msgpack.Encoder().encode
_decode_outcome = msgspec.msgpack.Decoder(ScriptOutcome).decode
_ROOT = str(Path(__file__).resolve().parents[2])  # where `integrations` is importable from


class SandboxUnavailable(Exception):
    """A sandbox process could not be started."""


class SandboxProcess:
    """One sandbox process and its pipes. Attributes: `process`, `alive`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.alive = True
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        assert process.stderr is not None
        self._drain = asyncio.get_running_loop().create_task(self._keep_stderr(process.stderr))

    @classmethod
    async def start(cls, limits: SandboxLimits) -> SandboxProcess:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "integrations.sandbox.worker",
                msgspec.json.encode(limits).decode(),
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_environment(),
                start_new_session=True,  # a terminal's Ctrl-C is for the executor
            )
        except OSError as exc:
            raise SandboxUnavailable(f"the script sandbox could not start: {exc}") from exc
        sandbox = cls(process)
        try:
            ready = await asyncio.wait_for(sandbox._read(), START_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, ValueError):
            ready = None
        if ready != READY:
            reason = await sandbox._death()
            raise SandboxUnavailable(f"the script sandbox could not start ({reason})")
        return sandbox

    async def run(self, run: ScriptRun) -> ScriptOutcome:
        """Run one script; a dead or stuck process gives an error outcome (and
        is not alive any more), never an exception."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(frame(_encode(run)))
            await self.process.stdin.drain()
            payload = await asyncio.wait_for(self._read(), run.timeout_ms / 1000 + KILL_GRACE_S)
        except TimeoutError:
            self.kill()
            return ScriptOutcome(error=timeout_error(run.timeout_ms), cpu_ms=float(run.cpu_ms))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return ScriptOutcome(error=await self._died_running(), cpu_ms=float(run.cpu_ms))
        return _decode_outcome(payload)

    def kill(self) -> None:
        self.alive = False
        if self.process.returncode is None:
            # os.kill, not Popen.kill: that polls first, and a poll that reaps the
            # process leaves asyncio's child watcher without its exit status.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    async def close(self) -> None:
        self.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        self._drain.cancel()

    async def _read(self) -> bytes:
        assert self.process.stdout is not None
        header = await self.process.stdout.readexactly(HEADER_BYTES)
        return await self.process.stdout.readexactly(frame_length(header))

    async def _died_running(self) -> dict[str, object]:
        reason = await self._death()
        text = "\n".join(self._stderr)
        log.warning("a script's sandbox process died (%s); the next script gets a new one", reason)
        if "out of memory" in text.lower():
            return memory_error(f"V8 ran out of memory and ended its sandbox process, {reason}")
        return {
            "message": f"the script's sandbox process died ({reason})",
            "code": "ERR_SCRIPT_CRASHED",
        }

    async def _death(self) -> str:
        """Wait for the process to end (killing it if it has not); how it ended."""
        self.alive = False
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), 2)
        except TimeoutError:
            self.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._drain), 1)
        code = self.process.returncode
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"exit status {code}"

    async def _keep_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())


class SandboxPool:
    """Attributes: `limits`, `slots` (FairSlots), `budgets` (CpuBudgets).

    Example::

        pool = SandboxPool(limits, size=4, share=3, cpu_ms=30_000)
        outcome = await pool.run("payments", "<execution id>", run)
        await pool.aclose()
    """

    def __init__(self, limits: SandboxLimits, *, size: int, share: int, cpu_ms: int) -> None:
        self.limits = limits
        self.slots = FairSlots(size, share)
        self.budgets = CpuBudgets(cpu_ms)
        self._idle: list[SandboxProcess] = []
        self._started: set[SandboxProcess] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def run(self, owner: str, execution_id: str, run: ScriptRun) -> ScriptOutcome:
        await self.slots.acquire(owner)
        try:
            process = self._idle.pop() if self._idle else await self._start()
            try:
                outcome = await process.run(run)
            except BaseException:
                process.kill()  # canceled mid-run: its answer would reach nobody
                raise
            finally:
                if process.alive and process.process.returncode is None:
                    self._idle.append(process)
                else:
                    self._started.discard(process)
                    closing = asyncio.get_running_loop().create_task(process.close())
                    self._closing.add(closing)  # a task nobody holds may be collected
                    closing.add_done_callback(self._closing.discard)
        finally:
            self.slots.release(owner)
        self.budgets.spend(execution_id, outcome.cpu_ms)
        return outcome

    async def _start(self) -> SandboxProcess:
        process = await SandboxProcess.start(self.limits)
        self._started.add(process)
        return process

    def pids(self) -> list[int]:
        """The sandbox processes running now (for tests and operators)."""
        return [p.process.pid for p in self._started if p.process.returncode is None]

    async def aclose(self) -> None:
        started, self._started, self._idle = self._started, set(), []
        await asyncio.gather(*(p.close() for p in started), return_exceptions=True)


def _environment() -> dict[str, str]:
    """A sandbox's environment: enough to start Python, none of the executor's
    settings or secrets (RAYHOOK_ENV_*, database URLs, tokens)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": _ROOT}
    for name in ("LANG", "LC_ALL", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
