"""The re-index job every trigger runs: chat, CLI and the nightly schedule.

Around the indexer itself it holds the cross-process lock, keeps others informed of its
progress, records each run (who, why, how it ended) for `status`, and after scheduled runs
posts the summary, or the failure, to the admins' channel: nobody watches a 03:00 run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.jsonl import UnreadableFile, read_objects
from bot.protocols import Notifier, ProgressCallback, ReindexOutcome
from bot.reindex_lock import ReindexLocking

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
HISTORY_FILE = "reindex_runs.jsonl"
_HISTORY_KEEP = 500  # lines kept when the history file is trimmed

IndexWork = Callable[[ProgressCallback], ReindexOutcome]


@dataclass(frozen=True)
class RunRecord:
    trigger: str  # "schedule", "chat", "cli"
    started_by: str
    started_at: float
    finished_at: float
    ok: bool
    summary: str
    version: int | None = None
    went_live: bool = False
    rejected: bool = False  # the eval gate kept the previous version live


class RunHistory:
    """Append-only JSONL of finished runs in the data dir, trimmed now and then."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, run: RunRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(run)) + "\n")
        if self.path.stat().st_size > 2_000_000:
            self._trim()

    def runs(self) -> list[RunRecord]:
        if not self.path.exists():
            return []
        try:
            rows, _ = read_objects(self.path)
        except UnreadableFile as err:
            log.warning("ignoring unreadable run history %s: %s", self.path, err)
            return []
        fields = set(RunRecord.__dataclass_fields__)
        required = fields - {"version", "went_live", "rejected"}
        return [RunRecord(**{k: v for k, v in row.items() if k in fields}) for _, row in rows if required <= set(row)]

    def last(self, trigger: str | None = None) -> RunRecord | None:
        runs = [r for r in self.runs() if trigger is None or r.trigger == trigger]
        return runs[-1] if runs else None

    def _trim(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()[-_HISTORY_KEEP:]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


class ReindexJob:
    """Runs index work under the lock; a second caller gets AlreadyRunning (see bot.reindex_lock)."""

    def __init__(self, work: IndexWork, lock: ReindexLocking, history: RunHistory,
                 notifier: Notifier | None = None, admin_channel: str | None = None,
                 on_finished: Callable[[RunRecord], None] | None = None) -> None:
        self.work = work
        self.on_finished = on_finished  # e.g. metrics
        self.lock = lock
        self.history = history
        self.notifier = notifier
        self.admin_channel = admin_channel

    def reindex(self, progress: ProgressCallback | None = None, started_by: str = "unknown",
                trigger: str = "chat") -> ReindexOutcome:
        return self.run(self.work, started_by, trigger, progress)

    def run(self, work: IndexWork, started_by: str, trigger: str,
            progress: ProgressCallback | None = None) -> ReindexOutcome:
        with self.lock.hold(started_by, trigger):
            started = time.time()
            stages: list[str] = []

            def report(stage: str, done: int, total: int) -> None:
                new_stage = not stages or stages[-1] != stage
                if new_stage:
                    stages.append(stage)
                self.lock.update(f"{stage} {done}/{total}", force=new_stage or done >= total)
                if progress:
                    progress(stage, done, total)

            try:
                outcome = work(report)
            except Exception as err:
                summary = f"Re-index failed: {type(err).__name__}: {err}. The live index was not changed."
                self._finish(RunRecord(trigger, started_by, started, time.time(), False, summary))
                raise
            data = outcome.to_dict()
            self._finish(RunRecord(trigger, started_by, started, time.time(), True, outcome.summary(),
                                   data.get("version"), bool(data.get("went_live")), bool(data.get("rejected"))))
            return outcome

    def _finish(self, run: RunRecord) -> None:
        try:
            self.history.record(run)
        except OSError as err:
            log.warning("could not record the re-index run: %s", err)
        if self.on_finished is not None:
            self.on_finished(run)
        log.info("re-index by %s (%s) %s in %.1fs", run.started_by, run.trigger,
                 "finished" if run.ok else "FAILED", run.finished_at - run.started_at)
        if run.trigger == SCHEDULE and self.notifier and self.admin_channel:
            heading = "Nightly re-index" if run.ok else "Nightly re-index FAILED"
            try:
                self.notifier.post(self.admin_channel, f"{heading}\n{run.summary}")
            except Exception:  # a chat outage must not turn a good re-index into a failed one
                log.exception("could not post the re-index summary to %s", self.admin_channel)


def describe_run(run: RunRecord | None) -> str:
    if run is None:
        return "never"
    when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(run.started_at))
    first_line = run.summary.splitlines()[0] if run.summary else ""
    return f"{when} by {run.started_by} ({run.trigger}, {run.finished_at - run.started_at:.0f}s): {first_line}"
