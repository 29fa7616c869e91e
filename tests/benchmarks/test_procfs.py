"""What a process tree uses, read from /proc (benchmarks/procfs.py), checked
on real processes this test starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks import procfs

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_the_tree_holds_a_live_child_and_its_command() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert child.pid in procfs.process_tree(os.getpid())
        assert "time.sleep(30)" in procfs.command(child.pid)
        rss, pss = procfs.memory_mb(child.pid)
        assert rss > 1 and 0 < pss <= rss
    finally:
        child.kill()
        child.wait()


def test_a_child_reaped_within_the_window_still_counts() -> None:
    """A process of the stack that exits during the CPU window counts in its
    parent's figure (its reaped children's time)."""
    me = [os.getpid()]
    before = procfs.cpu_seconds(me)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", BURN], check=True)  # burns 0.3 s, reaped
    seconds = time.monotonic() - started
    use = procfs.cpu_use(before, procfs.cpu_seconds(me), seconds)
    assert use.by_process[os.getpid()] >= 100 * 0.3 / seconds - 1  # a tick's rounding
    assert use.percent == sum(use.by_process.values())


def test_a_process_gone_from_the_tree_is_skipped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert procfs.cpu_seconds([child.pid]) == {}
    assert procfs.memory_mb(child.pid) == (0.0, 0.0)
    assert procfs.command(child.pid) == ""
