"""The script node's JavaScript sandbox (mini-racer's V8): per process, a pool
of sandbox processes or threads of this one (RAYHOOK_SCRIPT_SANDBOX), kept in
the process's `Effects`; the per-execution CPU allowance is charged here.
`integrations/sandbox/` is the sandbox itself."""

from __future__ import annotations

from engine.effects import Effects, ScriptCall
from engine.records import Execution
from engine.settings import Settings
from integrations.sandbox.inline import InlineSandbox
from integrations.sandbox.pool import SandboxPool
from integrations.sandbox.protocol import SandboxLimits, ScriptOutcome, ScriptRun
from integrations.sandbox.v8 import cpu_error, syntax_error


class ScriptSandbox:
    """The `engine.effects.ScriptSandbox` port over `integrations.sandbox`."""

    def syntax_problem(self, names: tuple[str, ...], content: str) -> str | None:
        return syntax_error(names, content)

    async def run(self, effects: Effects, execution: Execution, call: ScriptCall) -> ScriptOutcome:
        sandbox = await effects.client("script", open_sandbox, close_sandbox)
        if sandbox.budgets.exhausted(execution.id):
            return ScriptOutcome(error=cpu_error(sandbox.budgets.allowance_ms))
        script = ScriptRun(
            content=call.content,
            names=call.names,
            arguments=call.arguments,
            timeout_ms=call.timeout_ms,
            cpu_ms=sandbox.budgets.left(execution.id),
        )
        return await sandbox.run(execution.key, execution.id, script)


async def open_sandbox(settings: Settings) -> SandboxPool | InlineSandbox:
    """Where this process runs scripts (RAYHOOK_SCRIPT_SANDBOX)."""
    limits = SandboxLimits(
        heap_bytes=settings.script_heap_bytes,
        buffer_bytes=settings.script_buffer_bytes,
        output_bytes=settings.script_output_bytes,
    )
    kind = SandboxPool if settings.script_sandbox == "process" else InlineSandbox
    return kind(
        limits,
        size=settings.script_sandboxes,
        share=settings.script_share,
        cpu_ms=int(settings.script_cpu_per_execution * 1000),
    )


async def close_sandbox(sandbox: SandboxPool | InlineSandbox) -> None:
    await sandbox.aclose()
