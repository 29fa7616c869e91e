"""The `script` node (SPEC §5, reference §5.14): JavaScript in a fresh V8
isolate per run, off the event loop, with no file system, network or process
access, a timeout, a memory cap, and console output in the job log."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from engine.effects import Effects
from engine.nodes import script as script_node
from engine.settings import Settings
from engine.status import Status
from integrations import scripts
from integrations.sandbox.v8 import LOG_LIMIT_CHARS
from tests.engine.node_runs import compile_nodes, definition_error, run_node, run_nodes


async def script(content: str, **config: Any) -> Any:
    context = config.pop("context", None)
    return await run_node("script", {"content": content, **config}, context=context)


async def test_return_gives_the_result_and_arguments_are_variables() -> None:
    run = await script(
        "return {sum: a + b.n, name}",
        arguments=[
            {"name": "a", "value": 1},
            {"name": "b", "value": "{{$context.b}}"},
            {"name": "name", "value": "id-{{$context.id}}"},
        ],
        context={"b": {"n": 41}, "id": 7},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert run.job.result == {"sum": 42, "name": "id-7"}


async def test_await_and_set_timeout_work() -> None:
    run = await script("await new Promise(r => setTimeout(r, 20)); return [1, 'two', null, true]")
    assert run.job.result == [1, "two", None, True]


async def test_results_are_json_values() -> None:
    assert (await script("return undefined")).job.result is None
    assert (await script("")).job.result is None
    run = await script("return {f() {}, a: [1, undefined], d: new Date(0)}")
    assert run.job.result == {"a": [1, None], "d": "1970-01-01T00:00:00.000Z"}
    bigint = await script("return 10n")
    assert bigint.job.status == Status.ERROR
    assert "BigInt" in bigint.job.result["message"]


async def test_console_output_goes_to_the_job_log() -> None:
    run = await script(
        "console.log('hello', 1, {a: [1]}); console.info('i'); console.warn('w');"
        "console.error(new Error('e').message); console.debug(null); return 1"
    )
    assert run.job.status == Status.RESOLVED
    assert run.job.log == '[log] hello 1 {"a":[1]}\n[info] i\n[warn] w\n[error] e\n[debug] null'


async def test_a_run_without_console_output_has_no_log() -> None:
    assert (await script("return 1")).job.log is None


async def test_console_output_is_capped() -> None:
    run = await script("for (let i = 0; i < 100000; i++) console.log('x'.repeat(100)); return 1")
    assert run.job.status == Status.RESOLVED
    log = run.job.log or ""
    assert log.endswith("\n[rayhook] console output truncated")
    assert LOG_LIMIT_CHARS - 200 < len(log) < LOG_LIMIT_CHARS + 50


async def test_a_thrown_error_is_an_error_with_its_message() -> None:
    run = await script("console.log('before'); throw new TypeError('bad thing')")
    assert run.status == Status.ERROR
    assert run.job.status == Status.ERROR
    assert run.job.result["message"] == "TypeError: bad thing"
    assert "stack" in run.job.result
    assert run.job.log == "[log] before"


async def test_continue_resolves_with_the_error_as_result() -> None:
    run = await script("throw new Error('boom')", **{"continue": True})
    assert run.status == Status.RESOLVED
    assert run.job.status == Status.RESOLVED
    assert run.job.result["message"] == "Error: boom"


async def test_a_rejected_promise_is_an_error() -> None:
    run = await script("await Promise.reject(new RangeError('r'))")
    assert run.job.status == Status.ERROR
    assert run.job.result["message"] == "RangeError: r"


async def test_a_timeout_stops_the_script_and_errs() -> None:
    started = time.monotonic()
    run = await script("console.log('start'); while (true) {}", timeout=200)
    assert time.monotonic() - started < 2
    assert run.job.status == Status.ERROR
    assert run.job.result == {"message": "script timed out after 200 ms", "code": "ETIMEDOUT"}
    assert run.job.log == "[log] start"


async def test_a_timeout_with_continue_resolves() -> None:
    run = await script(
        "while (true) {}", timeout="{{$context.t}}", context={"t": 100}, **{"continue": True}
    )
    assert run.job.status == Status.RESOLVED
    assert run.job.result["code"] == "ETIMEDOUT"


async def test_a_never_settling_promise_times_out() -> None:
    run = await script("await new Promise(() => {})", timeout=100)
    assert run.job.result["code"] == "ETIMEDOUT"


async def test_no_timeout_means_the_default_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert script_node.DEFAULT_TIMEOUT_MS == 10_000
    monkeypatch.setattr(script_node, "DEFAULT_TIMEOUT_MS", 150)
    run = await script("while (true) {}", timeout=0)
    assert run.job.result == {"message": "script timed out after 150 ms", "code": "ETIMEDOUT"}


async def test_memory_is_capped() -> None:
    run = await run_node(
        "script",
        {"content": "const a = []; while (true) a.push('x'.repeat(1000) + a.length)"},
        settings=Settings(script_heap_bytes=32 * 1024 * 1024),
    )
    assert run.job.status == Status.ERROR
    assert run.job.result["code"] == "ERR_SCRIPT_MEMORY"


async def test_the_sandbox_has_no_node_or_web_io() -> None:
    run = await script(
        "return [typeof require, typeof process, typeof fetch, typeof XMLHttpRequest,"
        " typeof Deno, typeof module, typeof Buffer, typeof WebSocket]"
    )
    assert run.job.result == ["undefined"] * 8
    dynamic = await script("await import('fs'); return 1")
    assert dynamic.job.status == Status.ERROR


async def test_every_run_gets_a_fresh_isolate() -> None:
    effects = Effects(Settings())
    try:
        first = await run_node(
            "script",
            {"content": "globalThis.leak = 1; Object.prototype.x = 2; return 1"},
            effects=effects,
        )
        second = await run_node(
            "script", {"content": "return [typeof leak, ({}).x === undefined]"}, effects=effects
        )
    finally:
        await effects.aclose()
    assert first.job.status == Status.RESOLVED
    assert second.job.result == ["undefined", True]


async def test_a_long_script_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        run = await script("const end = Date.now() + 500; while (Date.now() < end) {} return 1")
    finally:
        ticker.cancel()
    assert run.job.result == 1
    assert ticks >= 20  # the loop kept turning while V8 was busy


async def test_scripts_of_different_executions_run_at_once() -> None:
    busy = "const end = Date.now() + 400; while (Date.now() < end) {} return 1"
    effects = Effects(Settings())
    # Three sandbox processes started first: their start-up is not what is timed.
    await asyncio.gather(
        *(run_node("script", {"content": "return 0"}, effects=effects) for _ in range(3))
    )
    started = time.monotonic()
    try:
        runs = await asyncio.gather(
            *(run_node("script", {"content": busy}, effects=effects) for _ in range(3))
        )
    finally:
        await effects.aclose()
    assert [r.job.result for r in runs] == [1, 1, 1]
    assert time.monotonic() - started < 1.1  # not 3 x 400 ms one after another


async def test_arguments_may_be_dates_and_the_result_feeds_later_nodes() -> None:
    run = await run_nodes(
        [
            {
                "key": "s",
                "type": "script",
                "config": {
                    "content": "return {now: typeof now, year: new Date(now).getUTCFullYear()}",
                    "arguments": [{"name": "now", "value": "{{$system.now}}"}],
                },
            },
            {
                "key": "c",
                "type": "calculation",
                "config": {"engine": "string", "expression": "{{$jobsMapByNodeKey.s.now}}"},
            },
        ]
    )
    assert run.status == Status.RESOLVED
    assert run.jobs[0].result["now"] == "string"
    assert run.jobs[0].result["year"] > 2000
    assert run.jobs[1].result == "string"


async def test_the_body_is_code_not_a_template() -> None:
    run = await script("return '{{$context.x}}' + `${'{{'}`")
    assert run.job.result == "{{$context.x}}{{"


# -- definition-time checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"content": "return (;"}, "config.content", "SyntaxError"),
        ({"content": "}); (function () {"}, "config.content", "SyntaxError"),
        (
            {"content": "return 1", "arguments": [{"name": "class", "value": 1}]},
            "arguments[0].name",
            "reserved",
        ),
        (
            {"content": "return 1", "arguments": [{"name": "a-b", "value": 1}]},
            "arguments[0].name",
            "variable name",
        ),
        (
            {"content": "return 1", "arguments": [{"name": "a"}, {"name": "a"}]},
            "arguments[1].name",
            "twice",
        ),
        ({"content": "return 1", "timeout": -5}, "config.timeout", "milliseconds"),
        ({"content": "return 1", "timeout": "soon"}, "config.timeout", "milliseconds"),
        ({"content": "return 1", "modules": ["fs"]}, "modules", "unknown field"),
    ],
)
def test_bad_configs_are_refused_at_definition_time(
    config: dict[str, Any], field: str, words: str
) -> None:
    message = definition_error("script", config)
    assert field in message and words in message, message


def test_a_valid_script_compiles() -> None:
    compile_nodes(
        [
            {
                "key": "s",
                "type": "script",
                "config": {
                    "content": "const x = await Promise.resolve(a); return x",
                    "arguments": [{"name": "a", "value": "{{$context.a}}"}],
                    "timeout": 1000,
                    "continue": True,
                },
            }
        ]
    )


# -- blast radius (issue 10): caps that end one job, never the process ------------


async def test_typed_arrays_count_against_the_script_memory() -> None:
    """Ten 256 MiB Uint8Arrays live outside the V8 heap: they used to be held
    (2.5 GiB) and the script succeeded."""
    run = await script(
        "const held = [];"
        "for (let i = 0; i < 10; i++) held.push(new Uint8Array(256 * 1024 * 1024));"
        "return held.length"
    )
    assert run.job.status == Status.ERROR, run.job.result
    assert run.job.result["code"] == "ERR_SCRIPT_MEMORY"
    assert "Array buffer allocation failed" in run.job.result["message"]


async def test_a_result_above_the_output_cap_is_an_error_not_a_50_mb_record() -> None:
    run = await script("return 'x'.repeat(50_000_000)")
    assert run.job.status == Status.ERROR
    assert run.job.result == {
        "message": "the script's result (50000002 bytes as JSON) is larger than 1048576 bytes "
        "(RAYHOOK_SCRIPT_OUTPUT_BYTES)",
        "code": "ERR_SCRIPT_OUTPUT",
    }
    small = await run_node(
        "script",
        {"content": "return 'x'.repeat(100)"},
        settings=Settings(script_output_bytes=50),
    )
    assert small.job.result["code"] == "ERR_SCRIPT_OUTPUT"


async def test_the_scripts_of_one_execution_share_one_cpu_allowance() -> None:
    """A script that loops is stopped by the CPU its execution has left, long
    before its own timeout; once the allowance is spent, a later script of the
    same execution does not start."""
    short = "const end = Date.now() + 200; while (Date.now() < end) {} return 1"
    started = time.monotonic()
    run = await run_nodes(
        [
            {"key": "a", "type": "script", "config": {"content": short}},
            {
                "key": "b",
                "type": "script",
                "config": {"content": "while (true) {}", "timeout": 30_000, "continue": True},
            },
            {"key": "c", "type": "script", "config": {"content": "return 3"}},
        ],
        settings=Settings(script_cpu_per_execution=1.0),
    )
    assert time.monotonic() - started < 20
    a, b, c = run.jobs
    assert a.status == Status.RESOLVED and a.result == 1
    assert b.status == Status.RESOLVED  # `continue`: the error is its result
    assert b.result["code"] == "ERR_SCRIPT_CPU"
    assert "RAYHOOK_SCRIPT_CPU_PER_EXECUTION" in b.result["message"]
    assert c.status == Status.ERROR and c.result["code"] == "ERR_SCRIPT_CPU"


async def test_the_sandbox_process_gets_none_of_the_executors_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAYHOOK_ENV_SHOP_SECRET", "sandbox-must-not-see-this")
    effects = Effects(Settings())
    try:
        run = await run_node("script", {"content": "return 1"}, effects=effects)
        sandbox = await effects.client("script", scripts.open_sandbox, scripts.close_sandbox)
        (pid,) = sandbox.pids()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        await effects.aclose()
    assert run.job.result == 1
    assert b"sandbox-must-not-see-this" not in environ
    assert b"RAYHOOK" not in environ


async def test_inline_mode_runs_scripts_in_this_process() -> None:
    settings = Settings(script_sandbox="inline")
    effects = Effects(settings)
    try:
        run = await run_node("script", {"content": "return [1, 2]"}, effects=effects)
        sandbox = await effects.client("script", scripts.open_sandbox, scripts.close_sandbox)
        pids = sandbox.pids()
    finally:
        await effects.aclose()
    assert run.job.result == [1, 2]
    assert pids == []
