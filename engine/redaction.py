"""Masking of `$env` values wherever an execution is stored: its jobs' results
and logs, its output, context and error. A workflow may put a secret in a node
result (a request's Authorization echoed back, a script that logs its
argument); what is stored, shown by the admin API or logged carries
`[redacted]` in its place. The run itself still sees the real value.

Values shorter than `MIN_SECRET_CHARS` are not masked: `true`, `prod` or `443`
would otherwise be cut out of ordinary text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from engine.records import Execution, Job

MIN_SECRET_CHARS = 6
MASK = "[redacted]"

_encode = msgspec.json.Encoder().encode
T = TypeVar("T")


class SecretMask:
    """Attributes: the secrets it masks (longest first).

    Example::

        mask = SecretMask(settings.env.values())
        stored = mask.job(job)  # `job` itself, or a copy with the secrets masked
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self.secrets = tuple(values)
        self._text = re.compile("|".join(map(re.escape, values))) if values else None
        # How each secret looks inside JSON text (quotes and backslashes escaped):
        # one search of a value's JSON tells whether it holds a secret at all.
        self._json = (
            re.compile(b"|".join(re.escape(_encode(v)[1:-1]) for v in values)) if values else None
        )

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, value: str) -> str:
        return value if self._text is None else self._text.sub(MASK, value)

    def value(self, value: T) -> T:
        """`value` with every secret in its strings (keys too) masked: the same
        object when it holds none."""
        if self._json is None or value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.text(value)  # type: ignore[return-value]
        try:
            found = self._json.search(_encode(value)) is not None
        except (TypeError, ValueError, OverflowError, RecursionError):
            found = True  # not JSON: walk it
        return self._walk(value) if found else value

    def found_in(self, data: bytes) -> bool:
        """Whether JSON text holds a secret (as JSON escapes it)."""
        return self._json is not None and self._json.search(data) is not None

    def job(self, job: Job) -> Job:
        result, log = self.value(job.result), self.value(job.log)
        if result is job.result and log is job.log:
            return job
        return msgspec.structs.replace(job, result=result, log=log)

    def execution(self, execution: Execution) -> Execution:
        context = self.value(execution.context)
        output = self.value(execution.output)
        error = self.value(execution.error)
        if context is execution.context and output is execution.output and error is execution.error:
            return execution
        return msgspec.structs.replace(execution, context=context, output=output, error=error)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value
