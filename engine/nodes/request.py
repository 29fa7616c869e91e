"""`request`: send an HTTP request; the response is the job result.

Config fields are NocoBase's (`plugin-workflow-request`) and the whole config
is templated. The request is sent by the `HttpRequests` integration
(`integrations/http.py`), which checks every address it connects to against the
outbound policy (RAYHOOK_REQUEST_ALLOW, RAYHOOK_REQUEST_DENY_PRIVATE) and
follows redirects.

Result on success: `{status, statusText, headers, data}` (`data` parsed as JSON
when the response says it is JSON), or `data` alone with `onlyData`. On
failure: `{message, code?, status?, statusText?, data?}`, with status RESOLVED
when `ignoreFail`, else ABORTED for a timeout, else FAILED.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.definition import NameValue
from engine.effects import EffectFailed, installed
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

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "application/xml",
    "text/plain",
)
DEFAULT_TIMEOUT_MS = 5000
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Config(NodeConfig):
    method: str = "POST"
    url: str = ""
    headers: list[NameValue] = []
    params: list[NameValue] = []
    contentType: str = "application/json"
    data: Any = None
    timeout: int | str = DEFAULT_TIMEOUT_MS
    ignoreFail: bool = False
    onlyData: bool = False


class RequestFailed(EffectFailed):
    """A request that did not succeed; `result` is the job result."""

    def __init__(self, message: str, code: str | None = None, **extra: Any) -> None:
        result: dict[str, Any] = {"message": message}
        if code is not None:
            result["code"] = code
        result.update(extra)
        super().__init__(result, timeout=code == "ECONNABORTED")


class Request(Instruction):
    node_type = "request"
    config_type = Config
    retries_on_fail = True
    ignore_fail_field = "ignoreFail"

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        if not _templated(config.method) and config.method.upper() not in METHODS:
            raise NodeError("method", f"{config.method!r} is not one of {', '.join(METHODS)}")
        if not config.url.strip():
            raise NodeError("url", "a URL is required")
        static = config.url.split("{{", 1)[0].strip()
        if "{{" not in config.url:
            problem = installed().http.url_problem(config.url)
            if problem is not None:
                raise NodeError("url", f"ERR_INVALID_URL: {problem}")
        elif "://" in static and static.split("://", 1)[0].lower() not in ("http", "https"):
            raise NodeError("url", f"ERR_INVALID_URL: {config.url!r} is not an http(s) URL")
        if not _templated(config.contentType) and config.contentType not in CONTENT_TYPES:
            raise NodeError(
                "contentType", f"{config.contentType!r} is not one of {', '.join(CONTENT_TYPES)}"
            )
        for i, header in enumerate(config.headers):
            name = header.name.strip()
            if name and not _templated(name) and not HEADER_NAME.match(name):
                raise NodeError(f"headers[{i}].name", f"{header.name!r} is not a header name")
        if isinstance(config.timeout, str) and not _templated(config.timeout):
            raise NodeError("timeout", "must be a number of milliseconds")
        if isinstance(config.timeout, int) and config.timeout < 0:
            raise NodeError("timeout", "must be a positive number of milliseconds (0: 5000)")
        try:
            _check_data(config.contentType, config.data)
        except RequestFailed as exc:
            raise NodeError("data", str(exc)) from exc

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config = run.render(node)
        ignore_fail = bool(config.get("ignoreFail", False))
        try:
            result = await run.effects.integrations.http.send(run.effects, config)
        except EffectFailed as failed:
            job.result = failed.result
            if ignore_fail:
                job.status = Status.RESOLVED
            else:
                job.status = Status.ABORTED if failed.timeout else Status.FAILED
            return
        job.result = result["data"] if config.get("onlyData") else result
        job.status = Status.RESOLVED


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def name_values(items: Any, field: str) -> list[Mapping[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise RequestFailed(f"{field} must be a list of {{name, value}}")
    return items


def _check_data(content_type: str, data: Any) -> None:
    """Definition-time shape checks of `data` for the content types with one."""
    if _templated(data) or data is None:
        return
    if content_type == "application/x-www-form-urlencoded":
        name_values(data, "data")
    elif content_type == "multipart/form-data":
        for i, part in enumerate(name_values(data, "data")):
            check_part(i, part)


def check_part(i: int, part: Mapping[str, Any]) -> None:
    if part.get("valueType", "text") == "file":
        raise RequestFailed(
            f"data[{i}]: file parts (attachments) are not supported; send text parts "
            "({name, valueType: 'text', text})"
        )
    if part.get("valueType", "text") != "text":
        raise RequestFailed(f"data[{i}].valueType must be 'text'")
