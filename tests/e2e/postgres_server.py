"""A private PostgreSQL server for tests that crash or stop the history database
(the machine's shared one must stay up). PostgreSQL refuses to run as root, so
the server runs as the `postgres` user through `runuser`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg

from deploy import processes

BIN = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])


class PostgresServer:
    """Its files are in a folder of its own under /tmp (pytest's temporary folders
    are closed to other users), removed by `remove`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rh-pg-", dir="/tmp"))
        shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self.port = processes.free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )

    def start(self) -> None:
        if not self.data.exists():
            self._as_postgres(
                str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
            )
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, (self.folder / "log").read_text()[-2000:]
                time.sleep(0.1)

    def kill(self) -> None:
        """A crash: every server process is killed at once (no checkpoint)."""
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        try:
            self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        except subprocess.CalledProcessError:
            pass  # not running

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()
