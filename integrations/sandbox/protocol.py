"""What crosses the pipe between an executor and a sandbox process: one
`ScriptRun` in, one `ScriptOutcome` out, each a length-prefixed msgpack frame;
and the `SandboxLimits` a sandbox process is started with."""

from __future__ import annotations

from typing import Any

import msgspec

#: Frame header: the payload's length, 4 bytes big-endian.
HEADER_BYTES = 4
#: Longest frame either side accepts (arguments and results are capped far below).
MAX_FRAME_BYTES = 256 * 1024 * 1024


class SandboxLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Per sandbox process: `heap_bytes` (V8 heap, stopped past it),
    `buffer_bytes` (ArrayBuffer and typed-array memory, which lives outside the
    heap: bounded with RLIMIT_DATA on the whole process), `output_bytes` (JSON
    of a result)."""

    heap_bytes: int
    buffer_bytes: int
    output_bytes: int


class ScriptRun(msgspec.Struct, frozen=True, kw_only=True):
    """One script: its body, argument names and values (JSON text), the wall
    `timeout_ms` and the CPU it may use (`cpu_ms`, 0: only the timeout)."""

    content: str
    names: list[str]
    arguments: str
    timeout_ms: int
    cpu_ms: int = 0


class ScriptOutcome(msgspec.Struct, kw_only=True):
    """What one run gave: `value` (JSON text of the result) or `error` (the job
    result of a failure), the console `log` lines, and the CPU it used."""

    value: str | None = None
    error: dict[str, Any] | None = None
    log: list[str] = []
    cpu_ms: float = 0.0


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(HEADER_BYTES, "big") + payload


def frame_length(header: bytes) -> int:
    length = int.from_bytes(header, "big")
    if length > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {length} bytes is above {MAX_FRAME_BYTES}")
    return length
