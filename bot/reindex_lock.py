"""One re-index at a time across every process that shares a data dir.

The lock is an advisory `flock` on a file in the data dir: the kernel drops it when the holder
exits for any reason (SIGKILL included), so a crashed run never keeps it. Who holds it, since
when and how far it got sits in a JSON file beside it, replaced atomically, so a second caller
in any process can be told exactly that instead of waiting.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

LOCK_FILE = "reindex.lock"
INFO_FILE = "reindex.running.json"
_PROGRESS_EVERY_S = 0.5  # how often progress is written for other processes to read


@dataclass(frozen=True)
class RunningJob:
    started_by: str
    started_at: float  # time.time()
    progress: str
    trigger: str = "chat"
    pid: int = 0
    host: str = ""

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.started_at))
        return f"started by {self.started_by} ({self.trigger}) at {since}; {self.progress}"


class AlreadyRunning(Exception):
    def __init__(self, job: RunningJob) -> None:
        super().__init__(f"A re-index is already running ({job.describe()}). Try again when it has finished.")
        self.job = job


class ReindexLocking(Protocol):
    """One re-index at a time: this file lock on one host, or bot.app.pg_state's PostgreSQL
    advisory lock across hosts (`state.url`)."""

    def hold(self, started_by: str, trigger: str) -> AbstractContextManager: ...
    def update(self, progress: str, force: bool = False) -> None: ...
    def running(self) -> RunningJob | None: ...


class HolderInfo:
    """What every lock does around its own acquire/release: hold it for one run, and keep who
    holds it and how far it got where other processes read it (`_write_info`)."""

    _guard: threading.Lock
    _job: RunningJob | None
    _written_at: float

    def acquire(self, started_by: str, trigger: str) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def _write_info(self) -> None:
        raise NotImplementedError

    @contextmanager
    def hold(self, started_by: str, trigger: str) -> Iterator[HolderInfo]:
        """Hold the lock for one run, or raise AlreadyRunning saying who has it."""
        self.acquire(started_by, trigger)
        try:
            yield self
        finally:
            self.release()

    def update(self, progress: str, force: bool = False) -> None:
        """Record how far the run is; written for other processes at most twice a second."""
        with self._guard:
            if self._job is None:
                return
            self._job = RunningJob(**{**asdict(self._job), "progress": progress})
            if force or time.monotonic() - self._written_at >= _PROGRESS_EVERY_S:
                self._write_info()


class ReindexLock(HolderInfo):
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._guard = threading.Lock()
        self._fd: int | None = None
        self._job: RunningJob | None = None
        self._written_at = 0.0

    @property
    def _lock_path(self) -> Path:
        return self.directory / LOCK_FILE

    @property
    def _info_path(self) -> Path:
        return self.directory / INFO_FILE

    def acquire(self, started_by: str, trigger: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._guard:
            if self._job is not None:
                raise AlreadyRunning(self._job)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise AlreadyRunning(self._read_info() or RunningJob("another process", time.time(), "starting")) from None
            self._fd = fd
            self._job = RunningJob(started_by, time.time(), "starting", trigger, os.getpid(), socket.gethostname())
            self._write_info()

    def release(self) -> None:
        with self._guard:
            if self._fd is None:
                return
            self._info_path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd, self._job = None, None

    def running(self) -> RunningJob | None:
        """The run in progress in this or any other process, or None."""
        with self._guard:
            if self._job is not None:
                return self._job
        if not self._lock_path.exists():
            return None
        fd = os.open(self._lock_path, os.O_RDONLY)  # a shared probe needs no write access (read-only data dirs)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._read_info() or RunningJob("another process", time.time(), "starting")
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None  # free: whatever the info file says is left over from a dead holder
        finally:
            os.close(fd)

    def _write_info(self) -> None:
        assert self._job is not None
        tmp = self._info_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self._job)))
        os.replace(tmp, self._info_path)
        self._written_at = time.monotonic()

    def _read_info(self) -> RunningJob | None:
        try:
            return RunningJob(**json.loads(self._info_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None  # the holder has not written it yet
