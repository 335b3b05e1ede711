"""A real, throw-away PostgreSQL server on 127.0.0.1 for the shared-state tests: Debian's
server binaries, a cluster in a temp dir, started and stopped by a session fixture. Each test
gets a database of its own (`fresh_database`)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
_names = itertools.count(1)


def server_binaries() -> Path | None:
    """The newest installed server's bin dir, or None (the tests then skip, saying so)."""
    for directory in BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalPostgres:
    bin_dir: Path
    data_dir: Path
    port: int = field(default_factory=_free_port)
    fsync: bool = False  # tests need no durability; a benchmark against SQLite (which syncs) does

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-l", str(self.data_dir / "log"), "-o",
                  f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c fsync={'on' if self.fsync else 'off'}", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")

    def stop_if_running(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.stop()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database on this server: its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)
