"""Child processes of `rayhook up`: each in its own session (a terminal's Ctrl-C
reaches only the launcher, which then stops them in order) and each told to die
with the launcher if the launcher is killed outright."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    os.setsid()
    _parent_death_signal(signal.SIGTERM)


def die_with(parent: int) -> None:
    """Called first in a child process that must not outlive `parent` (a
    sandbox, the history writer): the kernel kills it when the parent dies,
    and it exits now if the parent died before it asked."""
    _parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _parent_death_signal(sig: int) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    except OSError:
        pass


def spawn(
    args: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: str | None = None
) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(
        list(args),
        env=dict(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        preexec_fn=_die_with_parent,
    )


def stop(process: subprocess.Popen[bytes], *, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Signal, wait up to `timeout`, then kill the whole session."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, sig)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(5)
    except ProcessLookupError:
        pass


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens there, else a port the kernel picks."""
    if preferred is not None and port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before listening on {port}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")
