"""A private redis-server for tests that stop or restart Redis (the machine's
shared one must stay up)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from deploy import processes


class RedisServer:
    def __init__(
        self,
        folder: Path,
        *,
        appendonly: bool = True,
        fsync: str = "always",
        maxmemory: str | None = None,
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = processes.free_port()
        self.appendonly = appendonly
        self.fsync = fsync
        self.maxmemory = maxmemory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is required"
        self.process = processes.spawn(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
                *(
                    ["--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction"]
                    if self.maxmemory
                    else []
                ),
            ],
            env={},
            log=self.folder / "redis.log",
        )
        processes.wait_for_port(self.port, 20, self.process)

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, timeout=20)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            processes.stop(self.process, timeout=5, sig=9)
            self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
