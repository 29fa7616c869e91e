"""What a process tree uses, read from /proc: the processes of a tree, their
memory (RSS and PSS) and their CPU time. Linux only, like `rayhook up`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += process_tree(int(child))
    return out


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS of one process in MB (0, 0 once it is gone)."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss / 1024, pss / 1024


def command(pid: int) -> str:
    """A process's command line, for reports ("" once it is gone)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
            .strip()
        )
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each process, its reaped children's
    included: a process of the tree that exits and is reaped during a window
    then still counts, in its parent's figure."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        out[pid] = (utime + stime + cutime + cstime) / _TICKS
    return out


@dataclass(frozen=True)
class CpuUse:
    """CPU a process tree used over a window: `percent` of one core in all,
    and each process's share (`by_process`: pid → percent of one core)."""

    seconds: float
    percent: float
    by_process: dict[int, float]


def cpu_use(before: dict[int, float], after: dict[int, float], seconds: float) -> CpuUse:
    """From two `cpu_seconds` readings `seconds` apart: a process new in the
    window counts from zero; one gone by its end counts in its parent's
    reaped children's time."""
    spent = {pid: max(0.0, total - before.get(pid, 0.0)) for pid, total in after.items()}
    share = {pid: 100 * used / seconds for pid, used in spent.items()}
    return CpuUse(seconds=seconds, percent=sum(share.values()), by_process=share)
