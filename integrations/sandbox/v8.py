"""Running one script body in one fresh V8 isolate (`mini-racer`), in whatever
process calls it: a sandbox process (`worker.py`) or an executor's thread
(inline mode). Also the definition-time syntax check.

The isolate is a bare V8: ECMAScript and `setTimeout`, no `require`, file
system, network or process. The body is compiled as an async function, the
arguments go in as JSON and the result comes out as JSON text, checked against
the output cap inside V8 before it is copied out."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from py_mini_racer import JSEvalException, JSOOMException, JSPromiseError, MiniRacer

from integrations.sandbox.protocol import SandboxLimits, ScriptOutcome, ScriptRun

#: Console output kept per run; later lines are dropped.
LOG_LIMIT_CHARS = 64 * 1024
#: How long the definition-time syntax check may take.
CHECK_TIMEOUT_S = 5.0
#: The heap of the isolate that only compiles (definition time).
CHECK_HEAP_BYTES = 128 * 1024 * 1024
#: How often a running script's CPU time is compared with what it may use.
CPU_CHECK_S = 0.02
#: V8's words when an ArrayBuffer cannot get memory (RLIMIT_DATA reached).
BUFFER_FAILED = "Array buffer allocation failed"

# Installed in every fresh isolate before the script: the console that writes
# to the job log, and the runner that compiles the body as an async function
# (compiling the text, rather than pasting it into a wrapper, keeps a body from
# closing the wrapper early). `run` resolves to the result's JSON text, or to
# its length when that is above `limit` (the text then never leaves V8).
PRELUDE = """
(() => {
  const lines = [];
  let size = 0;
  const show = (value) => {
    if (typeof value === "string") return value;
    try {
      const text = JSON.stringify(value);
      return text === undefined ? String(value) : text;
    } catch (e) {
      return String(value);
    }
  };
  let full = false;
  const writer = (level) => (...values) => {
    if (full) return;
    const line = `[${level}] ${values.map(show).join(" ")}`;
    size += line.length + 1;
    if (size > LOG_LIMIT) {
      full = true;
      lines.push("[rayhook] console output truncated");
    } else {
      lines.push(line);
    }
  };
  globalThis.console = {
    log: writer("log"), info: writer("info"), warn: writer("warn"),
    error: writer("error"), debug: writer("debug"),
  };
  const AsyncFunction = (async function () {}).constructor;
  globalThis.__rayhook = {
    lines,
    compile: (names, source) => new AsyncFunction(...names, source),
    run: (names, source, values, limit) =>
      new AsyncFunction(...names, source)(...values).then((value) => {
        const text = JSON.stringify(value === undefined ? null : value) ?? "null";
        return text.length > limit ? text.length : text;
      }),
  };
})();
""".replace("LOG_LIMIT", str(LOG_LIMIT_CHARS))


def fresh_isolate(heap_bytes: int) -> MiniRacer:
    """A new isolate with the prelude installed and its heap capped. Call it
    inside the event loop the script will run on (mini-racer binds to it)."""
    isolate = MiniRacer()
    isolate.set_hard_memory_limit(heap_bytes)
    isolate.eval(PRELUDE)
    return isolate


async def evaluate(
    run: ScriptRun,
    limits: SandboxLimits,
    *,
    isolate: MiniRacer | None = None,
    cpu_clock: Callable[[], float] = time.perf_counter,
) -> ScriptOutcome:
    """Run `run` in `isolate` (the caller closes it) or in a fresh one (closed
    here).

    `cpu_clock` measures what the script spends against `run.cpu_ms`: the
    process's CPU time in a sandbox process (where nothing else runs), wall time
    inline (where other executions share the process)."""
    if isolate is None:
        with fresh_isolate(limits.heap_bytes) as own:
            return await evaluate(run, limits, isolate=own, cpu_clock=cpu_clock)
    outcome = ScriptOutcome()
    call = (
        f"__rayhook.run({json.dumps(run.names)}, {json.dumps(run.content)}, "
        f"JSON.parse({json.dumps(run.arguments)}), {int(limits.output_bytes)})"
    )
    started = cpu_clock()
    try:
        value = await _watched(isolate, call, run, started, cpu_clock)
        if isinstance(value, str):
            if len(value.encode()) > limits.output_bytes:
                outcome.error = _too_large(len(value.encode()), limits)
            else:
                outcome.value = value
        else:
            outcome.error = _too_large(int(value), limits)
    except _Stopped as stopped:
        outcome.error = stopped.result
    except JSOOMException:
        outcome.error = memory_error(f"the heap limit is {limits.heap_bytes} bytes")
    except (JSEvalException, JSPromiseError) as exc:
        outcome.error = _error(str(exc))
        if BUFFER_FAILED in str(exc):
            outcome.error = memory_error(
                f"{outcome.error['message']}; array buffers may hold {limits.buffer_bytes} bytes"
            )
    outcome.cpu_ms = (cpu_clock() - started) * 1000
    try:
        if not isolate.was_hard_memory_limit_reached():
            outcome.log = json.loads(str(isolate.eval("JSON.stringify(__rayhook.lines)")))
    except Exception:  # the isolate may refuse work after a termination
        outcome.log = []
    return outcome


def memory_error(detail: str) -> dict[str, Any]:
    """The job result of a script stopped for its memory (V8's limit, the
    process's data limit, or a V8 abort that took its sandbox process)."""
    return {"message": f"script exceeded its memory ({detail})", "code": "ERR_SCRIPT_MEMORY"}


def timeout_error(timeout_ms: int) -> dict[str, Any]:
    return {"message": f"script timed out after {timeout_ms} ms", "code": "ETIMEDOUT"}


def cpu_error(cpu_ms: int) -> dict[str, Any]:
    return {
        "message": f"script used the {cpu_ms} ms of CPU time its execution had left "
        "(RAYHOOK_SCRIPT_CPU_PER_EXECUTION)",
        "code": "ERR_SCRIPT_CPU",
    }


class _Stopped(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result["message"])
        self.result = result


async def _watched(
    isolate: MiniRacer,
    call: str,
    run: ScriptRun,
    started: float,
    cpu_clock: Callable[[], float],
) -> Any:
    """The script's settled value; `_Stopped` once it outlives its timeout or
    its CPU time (V8 is told to terminate it)."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(_settle(isolate, call))
    deadline = loop.time() + run.timeout_ms / 1000
    while True:
        left = deadline - loop.time()
        check = min(left, CPU_CHECK_S) if run.cpu_ms else left
        done, _ = await asyncio.wait([task], timeout=max(check, 0))
        if done:
            return task.result()
        if loop.time() >= deadline:
            stop = timeout_error(run.timeout_ms)
        elif run.cpu_ms and (cpu_clock() - started) * 1000 > run.cpu_ms:
            stop = cpu_error(run.cpu_ms)
        else:
            continue
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise _Stopped(stop)


async def _settle(isolate: MiniRacer, call: str) -> Any:
    value = await isolate.eval_cancelable(call)
    return await value  # type: ignore[misc]  # a promise: the body is an async function


def _too_large(size: int, limits: SandboxLimits) -> dict[str, Any]:
    return {
        "message": f"the script's result ({size} bytes as JSON) is larger than "
        f"{limits.output_bytes} bytes (RAYHOOK_SCRIPT_OUTPUT_BYTES)",
        "code": "ERR_SCRIPT_OUTPUT",
    }


def _error(text: str) -> dict[str, Any]:
    """The job result for a thrown error: its message, and its stack if any."""
    text = text.removeprefix("JavaScript rejected promise with reason: ").strip()
    lines = text.splitlines()
    message = next((ln for ln in lines if re.match(r"^\w*(Error|Exception)\b", ln)), None)
    message = message or (lines[0] if lines else "script failed")
    result: dict[str, Any] = {"message": message}
    if len(lines) > 1:
        result["stack"] = text
    return result


@functools.lru_cache(maxsize=256)
def syntax_error(names: tuple[str, ...], content: str) -> str | None:
    """Why the body does not compile as an async function, or None.

    V8 compiles it (without running it) on a thread of its own, so that this
    works inside or outside an event loop."""
    return _checker().submit(_check_syntax, list(names), content).result(CHECK_TIMEOUT_S * 2)


@functools.cache
def _checker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rayhook-script-check")


def _check_syntax(names: list[str], content: str) -> str | None:
    return asyncio.run(_compile(names, content))


async def _compile(names: list[str], content: str) -> str | None:
    with fresh_isolate(CHECK_HEAP_BYTES) as isolate:
        call = f"__rayhook.compile({json.dumps(names)}, {json.dumps(content)}), null"
        try:
            await asyncio.wait_for(isolate.eval_cancelable(call), CHECK_TIMEOUT_S)
        except TimeoutError:
            return "the script took too long to compile"
        except JSEvalException as exc:
            return _error(str(exc))["message"]
    return None
