"""The main loop of a sandbox process (`python -m integrations.sandbox.worker LIMITS`):
read a `ScriptRun` frame on stdin, run it in a fresh isolate, write the
`ScriptOutcome` frame on stdout, close the isolate, repeat until stdin closes.
New isolates are prepared while no request waits, not on a caller's time.

Started by `integrations.sandbox.pool` with an empty environment (no secret of the
executor's reaches it) and these limits, set here before any script runs:
- RLIMIT_DATA: what V8 reserved for itself at start plus the heap, the array
  buffers and some slack. ArrayBuffer memory lives outside the V8 heap, so this
  is what bounds it: an allocation past it fails in the script (RangeError), and
  a heap that outgrows it ends this process (V8 aborts) — never the executor.
  RLIMIT_AS is no use: V8 reserves over a terabyte of address space up front.
- a lower CPU priority (nice), so that looping scripts yield the CPU to the
  executors and the ingress;
- death with the parent (PR_SET_PDEATHSIG), so no sandbox outlives its executor.
"""

from __future__ import annotations

import asyncio
import os
import resource
import select
import sys
import time
from collections import deque

import msgspec
from py_mini_racer import MiniRacer

from deploy.processes import die_with
from integrations.sandbox.protocol import (
    HEADER_BYTES,
    SandboxLimits,
    ScriptOutcome,
    ScriptRun,
    frame,
    frame_length,
)
from integrations.sandbox.v8 import evaluate, fresh_isolate

#: Added to the niceness of a sandbox process.
NICENESS = 10
#: Room in RLIMIT_DATA beyond heap and buffers: the next isolate (about 20 MB),
#: Python's own allocations, the result's copies.
SLACK_BYTES = 96 * 1024 * 1024
#: Isolates kept ready, so that two scripts in a row find one each.
WARM_ISOLATES = 2
#: The first frame a sandbox writes: it is ready.
READY = b"ready"

_decode_run = msgspec.msgpack.Decoder(ScriptRun).decode
_encode = msgspec.msgpack.Encoder().encode


def main(argv: list[str]) -> int:
    limits = msgspec.json.decode(argv[1], type=SandboxLimits)
    parent = int(argv[2])
    die_with(parent)
    os.nice(NICENESS)
    # Frames go out on a private copy of stdout; anything else that writes to
    # fd 1 (a library's print) lands on stderr instead of in a frame.
    out = os.dup(1)
    os.dup2(2, 1)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    warm: deque[MiniRacer] = deque([loop.run_until_complete(_isolate(limits))])
    _limit_data(limits)
    _write(out, READY)
    while True:
        # Idle time, never a caller's: prepare the next isolates.
        while len(warm) < WARM_ISOLATES and not _readable(0):
            warm.append(loop.run_until_complete(_isolate(limits)))
        request = _read(0)
        if request is None:
            return 0
        run = _decode_run(request)
        isolate = warm.popleft() if warm else loop.run_until_complete(_isolate(limits))
        outcome = loop.run_until_complete(
            evaluate(run, limits, isolate=isolate, cpu_clock=time.process_time)
        )
        try:
            payload = _encode(outcome)
        except MemoryError:
            payload = _encode(ScriptOutcome(error={"message": "script result too large"}))
        _write(out, payload)
        # Closed at once: its heap must not count against the next script.
        isolate.close()


async def _isolate(limits: SandboxLimits) -> MiniRacer:
    return fresh_isolate(limits.heap_bytes)


def _limit_data(limits: SandboxLimits) -> None:
    """RLIMIT_DATA: what is mapped now (V8's own reservations included) plus
    the heap, the buffers and the slack."""
    used = _vm_data_bytes()
    cap = used + limits.heap_bytes + limits.buffer_bytes + SLACK_BYTES
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


def _vm_data_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status")


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _read(fd: int) -> bytes | None:
    header = _read_exactly(fd, HEADER_BYTES)
    if header is None:
        return None
    return _read_exactly(fd, frame_length(header))


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _write(fd: int, payload: bytes) -> None:
    data = memoryview(frame(payload))
    while data:
        written = os.write(fd, data)
        data = data[written:]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
