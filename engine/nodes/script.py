"""`script`: run JavaScript in a V8 sandbox; what it returns is the job result.

Config fields are NocoBase's (`plugin-workflow-javascript`): `content` is the
body of an async function (so `return` gives the result and `await` works),
`arguments` are templated and passed to it as variables, `timeout` limits it in
ms, and with `continue` a failure still resolves, with the error as result.

The sandbox is a bare V8 isolate (`mini-racer`): ECMAScript and `setTimeout`,
no `require`, no file system, network or process, no access to rayhook. Every
run gets a fresh isolate (nothing carries over between runs), capped at
`MEMORY_LIMIT_BYTES` of heap and at `timeout` (0 or unset: `DEFAULT_TIMEOUT_MS`).
It runs on one of `SCRIPT_THREADS` worker threads, never on the event loop, so a
long script does not hold up other executions. `console.log/info/warn/error/
debug` lines go to the job's `log`. The result must be JSON: `undefined`
becomes null, and what `JSON.stringify` drops (functions) is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from py_mini_racer import JSEvalException, JSOOMException, JSPromiseError, MiniRacer

from engine.definition import NameValue
from engine.jsvalues import iso_datetime
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.settings import Settings
from engine.status import Status

#: Used when `timeout` is 0 or unset (NocoBase would let the script run forever).
DEFAULT_TIMEOUT_MS = 10_000
MEMORY_LIMIT_BYTES = 128 * 1024 * 1024
#: Scripts that run at once in one process; more wait for a thread.
SCRIPT_THREADS = 4
#: Console output kept per run; later lines are dropped.
LOG_LIMIT_CHARS = 64 * 1024
#: How long the definition-time syntax check may take.
CHECK_TIMEOUT_S = 5.0

IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
RESERVED = frozenset(
    {
        "arguments",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "eval",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
    }
)

# Installed in every fresh isolate before the script: the console that writes
# to the job log, and the runner that compiles the body as an async function
# (compiling the text, rather than pasting it into a wrapper, keeps a body from
# closing the wrapper early).
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
    run: (names, source, values) =>
      new AsyncFunction(...names, source)(...values).then(
        (value) => JSON.stringify(value === undefined ? null : value) ?? "null"),
  };
})();
""".replace("LOG_LIMIT", str(LOG_LIMIT_CHARS))


class Config(NodeConfig):
    content: str = ""
    arguments: list[NameValue] = []
    timeout: int | str = 0
    continue_: bool = msgspec.field(name="continue", default=False)


@dataclass(slots=True)
class ScriptOutcome:
    """What one run gave: `value` (JSON text of the result) or `error`."""

    value: str | None = None
    error: dict[str, Any] | None = None
    log: list[str] = field(default_factory=list)


class Script(Instruction):
    node_type = "script"
    config_type = Config
    retries_on_fail = True
    ignore_fail_field = "continue"
    # The body is code, never a template: `{{...}}` in it is JavaScript text.
    raw_fields = frozenset({"content"})

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        names: list[str] = []
        for i, argument in enumerate(config.arguments):
            name = argument.name
            if not IDENTIFIER.match(name) or name in RESERVED:
                raise NodeError(
                    f"arguments[{i}].name",
                    f"{name!r} is not a JavaScript variable name (letters, digits, _ and $, "
                    "not a reserved word)",
                )
            if name in names:
                raise NodeError(f"arguments[{i}].name", f"{name!r} is given twice")
            names.append(name)
        if isinstance(config.timeout, str) and "{{" not in config.timeout:
            raise NodeError("timeout", "must be a number of milliseconds")
        if isinstance(config.timeout, int) and config.timeout < 0:
            raise NodeError("timeout", "must be 0 (the default limit) or more milliseconds")
        problem = syntax_error(tuple(names), config.content)
        if problem:
            raise NodeError("content", problem)

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config = run.render(node)
        keep_going = bool(config.get("continue", False))
        arguments = config.get("arguments") or []
        names = [str(a.get("name")) for a in arguments]
        values = [a.get("value") for a in arguments]
        timeout_ms = _timeout_ms(config.get("timeout"))
        threads = await run.effects.client("script", open_script_threads, close_script_threads)
        outcome = await asyncio.get_running_loop().run_in_executor(
            threads,
            run_script,
            node.config.content,
            names,
            values,
            timeout_ms,
        )
        job.log = "\n".join(outcome.log) or None
        if outcome.error is not None:
            job.result = outcome.error
            job.status = Status.RESOLVED if keep_going else Status.ERROR
            return
        assert outcome.value is not None
        job.result = json.loads(outcome.value)
        job.status = Status.RESOLVED


async def open_script_threads(settings: Settings) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=SCRIPT_THREADS, thread_name_prefix="rayhook-script")


async def close_script_threads(threads: ThreadPoolExecutor) -> None:
    # Running scripts end by their own timeout; do not hold the loop for them.
    threads.shutdown(wait=False, cancel_futures=True)


def run_script(content: str, names: list[str], values: list[Any], timeout_ms: int) -> ScriptOutcome:
    """Run a script body in a fresh isolate (blocking: call it on a worker thread)."""
    try:
        encoded = msgspec.json.encode(values, enc_hook=_enc_hook).decode()
    except (TypeError, msgspec.EncodeError) as exc:
        return ScriptOutcome(error={"message": f"an argument is not a JSON value: {exc}"})
    call = (
        f"__rayhook.run({json.dumps(names)}, {json.dumps(content)}, "
        f"JSON.parse({json.dumps(encoded)}))"
    )
    return asyncio.run(_evaluate(call, timeout_ms))


async def _evaluate(call: str, timeout_ms: int) -> ScriptOutcome:
    outcome = ScriptOutcome()
    with MiniRacer() as isolate:
        isolate.set_hard_memory_limit(MEMORY_LIMIT_BYTES)
        isolate.eval(PRELUDE)
        try:
            value = await asyncio.wait_for(_settle(isolate, call), timeout_ms / 1000)
            outcome.value = str(value)
        except TimeoutError:
            message = f"script timed out after {timeout_ms} ms"
            outcome.error = {"message": message, "code": "ETIMEDOUT"}
        except JSOOMException:
            message = f"script exceeded the memory limit of {MEMORY_LIMIT_BYTES} bytes"
            outcome.error = {"message": message, "code": "ERR_SCRIPT_MEMORY"}
        except (JSEvalException, JSPromiseError) as exc:
            outcome.error = _error(str(exc))
        if not isolate.was_hard_memory_limit_reached():
            try:
                outcome.log = json.loads(str(isolate.eval("JSON.stringify(__rayhook.lines)")))
            except Exception:  # the isolate may refuse work after a termination
                outcome.log = []
    return outcome


async def _settle(isolate: Any, call: str) -> Any:
    value = await isolate.eval_cancelable(call)
    return await value  # a promise: the body is an async function


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
    with MiniRacer() as isolate:
        isolate.set_hard_memory_limit(MEMORY_LIMIT_BYTES)
        isolate.eval(PRELUDE)
        call = f"__rayhook.compile({json.dumps(names)}, {json.dumps(content)}), null"
        try:
            await asyncio.wait_for(isolate.eval_cancelable(call), CHECK_TIMEOUT_S)
        except TimeoutError:
            return "the script took too long to compile"
        except JSEvalException as exc:
            return _error(str(exc))["message"]
    return None


def _timeout_ms(value: Any) -> int:
    try:
        ms = int(float(value)) if value not in (None, "") else 0
    except (TypeError, ValueError):
        ms = 0
    return ms if ms > 0 else DEFAULT_TIMEOUT_MS


def _enc_hook(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_datetime(value)
    raise TypeError(f"cannot pass a {type(value).__name__}")
