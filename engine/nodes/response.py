"""`response`: build the sync webhook's HTTP reply and end the execution
(RESOLVED). Only in sync webhook workflows; the first one reached wins. A reply
whose rendered headers or body exceed RAYHOOK_MAX_REPLY_HEADER_BYTES /
RAYHOOK_MAX_REPLY_BODY_BYTES is an ERROR of this node (a reply clients refuse
is no reply)."""

from __future__ import annotations

import re
from typing import Any

from engine.definition import NameValue
from engine.jsvalues import to_display_string
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job, Reply
from engine.status import Status
from engine.templates import Single, compile_template

HEADER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")


class Config(NodeConfig):
    statusCode: int | str = 200
    headers: list[NameValue] = []
    body: Any = {}


def check_status_code(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError(f"statusCode must be an integer from 200 to 599, got {value!r}")
    return value


class Response(Instruction):
    node_type = "response"
    config_type = Config
    sync_only = True

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        code = config.statusCode
        if not (isinstance(code, str) and isinstance(compile_template(code), Single)):
            try:
                check_status_code(code)
            except ValueError as exc:
                raise NodeError("statusCode", str(exc)) from exc
        for i, header in enumerate(config.headers):
            if not HEADER_NAME.fullmatch(header.name):
                raise NodeError(
                    f"headers[{i}].name",
                    f"{header.name!r} is not a valid header name (letters, digits, - and _)",
                )

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        rendered = run.render(node)
        try:
            status = check_status_code(rendered.get("statusCode", 200))
        except ValueError as exc:
            job.status, job.result = Status.ERROR, str(exc)
            return
        headers = [
            (str(h["name"]), to_display_string(h.get("value")))
            for h in rendered.get("headers") or []
        ]
        body = rendered.get("body", {})
        problem = run.caps.reply_problem(headers, body)
        if problem is not None:
            job.status, job.result = (
                Status.ERROR,
                {"message": problem, "code": "ERR_REPLY_TOO_LARGE"},
            )
            return
        run.respond(Reply(status=status, headers=headers, body=body))
        job.status = Status.RESOLVED
        job.result = {"statusCode": status, "headers": dict(headers), "body": body}
        run.commit(job)
        run.exit(Status.RESOLVED)
