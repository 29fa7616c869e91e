"""`script`: run JavaScript in a V8 sandbox; what it returns is the job result.

Config fields are NocoBase's (`plugin-workflow-javascript`): `content` is the
body of an async function (so `return` gives the result and `await` works),
`arguments` are templated and passed to it as variables, `timeout` limits it in
ms, and with `continue` a failure still resolves, with the error as result.

The sandbox is a bare V8 isolate (`mini-racer`, behind the `ScriptSandbox`
integration: `integrations/scripts.py`): ECMAScript and `setTimeout`, no
`require`, no file system, network or process, no access to rayhook. Every run
gets a fresh isolate (nothing carries over between runs). Where it runs and what
bounds it is `integrations.sandbox`'s: by default a sandbox process that can be
lost without losing the executor, with caps on heap, array buffers, result size
and the CPU time of the execution's scripts (RAYHOOK_SCRIPT_*), and a fair share
of the sandboxes per workflow. The timeout is `timeout` (0 or unset:
`DEFAULT_TIMEOUT_MS`). `console.log/info/warn/error/debug` lines go to the
job's `log`. The result must be JSON: `undefined` becomes null, and what
`JSON.stringify` drops (functions) is dropped.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import msgspec

from engine.definition import NameValue
from engine.effects import ScriptCall, installed
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
from engine.status import Status

#: Used when `timeout` is 0 or unset (NocoBase would let the script run forever).
DEFAULT_TIMEOUT_MS = 10_000

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


class Config(NodeConfig):
    content: str = ""
    arguments: list[NameValue] = []
    timeout: int | str = 0
    continue_: bool = msgspec.field(name="continue", default=False)


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
        problem = installed().scripts.syntax_problem(tuple(names), config.content)
        if problem:
            raise NodeError("content", problem)

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config = run.render(node)
        keep_going = bool(config.get("continue", False))
        arguments = config.get("arguments") or []
        names = [str(a.get("name")) for a in arguments]
        try:
            values = msgspec.json.encode(
                [a.get("value") for a in arguments], enc_hook=_enc_hook
            ).decode()
        except (TypeError, msgspec.EncodeError) as exc:
            job.result = {"message": f"an argument is not a JSON value: {exc}"}
            job.status = Status.RESOLVED if keep_going else Status.ERROR
            return
        call = ScriptCall(
            content=node.config.content,
            names=names,
            arguments=values,
            timeout_ms=_timeout_ms(config.get("timeout")),
        )
        scripts = run.effects.integrations.scripts
        outcome = await scripts.run(run.effects, run.execution_record, call)
        job.log = "\n".join(outcome.log) or None
        if outcome.error is not None:
            job.result = outcome.error
            job.status = Status.RESOLVED if keep_going else Status.ERROR
            return
        assert outcome.value is not None
        job.result = json.loads(outcome.value)
        job.status = Status.RESOLVED


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
