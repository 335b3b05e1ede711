"""One re-index at a time in this process; a second caller learns who started the first."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RunningJob:
    started_by: str
    started_at: float  # time.time()
    progress: str


class AlreadyRunning(Exception):
    def __init__(self, job: RunningJob) -> None:
        super().__init__(f"already running since {time.strftime('%H:%M:%S', time.localtime(job.started_at))}")
        self.job = job


class SingleFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: RunningJob | None = None

    def start(self, started_by: str) -> None:
        with self._lock:
            if self._job is not None:
                raise AlreadyRunning(self._job)
            self._job = RunningJob(started_by, time.time(), "starting")

    def update(self, progress: str) -> None:
        with self._lock:
            if self._job is not None:
                self._job = RunningJob(self._job.started_by, self._job.started_at, progress)

    def finish(self) -> None:
        with self._lock:
            self._job = None

    @property
    def running(self) -> RunningJob | None:
        return self._job
