"""The nightly re-index (and the admins' weekly insights digest) on APScheduler 3, inside
`supportbot serve` or alone as `supportbot scheduler` (one scheduler for many bot replicas).

The job lives in a SQLite job store in the data dir, so a run that was due while the box was
down is still owed at the next start: it runs once (coalesce), if it is no later than the
misfire grace time, and never twice at once (max_instances=1; the cross-process re-index
lock covers chat and CLI runs).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)

JOB_ID = "nightly-reindex"
DIGEST_JOB_ID = "weekly-digest"
JOBSTORE_FILE = "scheduler.sqlite"
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]

_runner: Callable[[], None] | None = None
_digest_runner: Callable[[], None] | None = None


def run_scheduled_reindex() -> None:
    """What APScheduler calls. It is stored by reference (module:function) in the job store,
    so it looks up the runner this process installed rather than carrying pickled state."""
    if _runner is None:
        log.error("scheduled re-index fired, but no runner is installed in this process")
        return
    _runner()


def run_scheduled_digest() -> None:
    """What APScheduler calls for the digest (stored by reference, like the re-index)."""
    if _digest_runner is None:
        log.error("scheduled digest fired, but no digest is installed in this process")
        return
    _digest_runner()


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class DigestJob:
    cron: str  # crontab line, in the schedule's time zone
    run: Callable[[], None]


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str  # standard crontab: minute hour day-of-month month day-of-week (0 or 7 = Sunday); "" = no re-index
    timezone: str  # IANA name; "" = this machine's zone
    misfire_grace_s: int
    jobstore: Path
    # With state.url: the job store in that database (an SQLAlchemy URL), shared by every
    # scheduler process, and `claim(job_id, due)` -> True for the one process that runs that
    # due run (the others fire too: APScheduler 3 does not coordinate schedulers).
    jobstore_url: str | None = None
    claim: Callable[[str, datetime], bool] | None = None
    starting: Callable[[], AbstractContextManager] | None = None  # held while the job store is set up
    # Which due run a firing claims is read off this clock: tests hand in their own, to fire
    # tomorrow's run without waiting for tomorrow.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


def cron_trigger(cron: str, zone: str) -> CronTrigger:
    """A CronTrigger with crontab's weekday numbers (APScheduler 3 counts 0 as Monday)."""
    fields = cron.split()
    if len(fields) != 5:
        raise ScheduleError(f"schedule {cron!r} must have 5 fields (minute hour day month weekday)")
    fields[4] = re.sub(r"(?<![/\d])\d+", lambda m: _weekday(m.group()), fields[4])
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=time_zone(zone))
    except ValueError as err:
        raise ScheduleError(f"schedule {cron!r}: {err}") from None


def _weekday(number: str) -> str:
    value = int(number)
    if value > 7:
        raise ScheduleError(f"weekday {value} is not 0-7")
    return _WEEKDAYS[value]


def time_zone(name: str):
    if not name:
        from tzlocal import get_localzone

        return get_localzone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None


class NightlyReindex:
    """Owns one BackgroundScheduler with the re-index job in it, and the digest's when one
    is configured."""

    def __init__(self, settings: ScheduleSettings, run: Callable[[], None], digest: DigestJob | None = None) -> None:
        self.settings = settings
        self.run = run
        self.digest = digest
        self.digest_trigger = cron_trigger(digest.cron, settings.timezone) if digest else None
        self.trigger = cron_trigger(settings.cron, settings.timezone) if settings.cron else None
        if self.trigger is None and self.digest_trigger is None:
            raise ScheduleError("nothing to schedule (reindex.schedule and insights.digest_schedule are empty)")
        zone = (self.trigger or self.digest_trigger).timezone  # type: ignore[union-attr]
        if settings.jobstore_url is None:
            settings.jobstore.parent.mkdir(parents=True, exist_ok=True)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=settings.jobstore_url or f"sqlite:///{settings.jobstore}")},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_s},
            timezone=zone,
        )

    def start(self) -> datetime | None:
        """Start the schedule and return the next run time. A run still owed from before
        (the stored next run time is in the past) is kept, so it happens now, once."""
        global _runner, _digest_runner
        _runner = self._once(JOB_ID, self.trigger, self.run)
        _digest_runner = self._once(DIGEST_JOB_ID, self.digest_trigger, self.digest.run) if self.digest else None
        with self.settings.starting() if self.settings.starting else nullcontext():
            self.scheduler.start(paused=True)  # creates the job store's table: one process at a time
        owed = None
        if self.trigger is not None:
            stored = self.scheduler.get_job(JOB_ID)
            now = datetime.now(timezone.utc)
            owed = stored.next_run_time if stored and stored.next_run_time and stored.next_run_time <= now else None
            extra = {"next_run_time": owed} if owed else {}
            self.scheduler.add_job(run_scheduled_reindex, self.trigger, id=JOB_ID, name="nightly re-index",
                                   replace_existing=True, **extra)
        elif self.scheduler.get_job(JOB_ID):
            self.scheduler.remove_job(JOB_ID)  # the schedule was switched off since
        if self.digest_trigger is not None:  # a digest missed while down is skipped: the next one covers it
            self.scheduler.add_job(run_scheduled_digest, self.digest_trigger, id=DIGEST_JOB_ID, name="weekly digest",
                                   replace_existing=True)
        elif self.scheduler.get_job(DIGEST_JOB_ID):
            self.scheduler.remove_job(DIGEST_JOB_ID)
        self.scheduler.resume()
        if owed:
            log.info("a scheduled re-index was missed at %s; running it now", owed)
        return self.next_run()

    def _once(self, job_id: str, trigger: CronTrigger | None, run: Callable[[], None]) -> Callable[[], None]:
        """`run`, but only in the scheduler process that claims this due run (with a shared job
        store); the others log that it ran elsewhere."""
        claim = self.settings.claim
        if claim is None or trigger is None:
            return run

        def claimed() -> None:
            due = latest_fire_time(trigger, self.settings.now(), self.settings.misfire_grace_s)
            if due is not None and not claim(job_id, due):
                log.info("%s due at %s is run by another scheduler process", job_id, due.isoformat())
                return
            run()

        claimed.__name__ = getattr(run, "__name__", job_id)
        return claimed

    def next_digest(self) -> datetime | None:
        job = self.scheduler.get_job(DIGEST_JOB_ID)
        return job.next_run_time if job else None

    def next_run(self) -> datetime | None:
        job = self.scheduler.get_job(JOB_ID)
        return job.next_run_time if job else None

    def shutdown(self, wait: bool = True) -> None:
        global _runner, _digest_runner
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        if _runner is self.run:
            _runner = None
        if self.digest and _digest_runner is self.digest.run:
            _digest_runner = None


def latest_fire_time(trigger: CronTrigger, now: datetime, grace_s: int) -> datetime | None:
    """The run this firing is for: the trigger's last fire time up to now. APScheduler runs a
    job only within the misfire grace time of when it was due, so it lies in that window."""
    from datetime import timedelta

    latest = None
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=grace_s + 60))
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return latest


def stored_next_run(jobstore: Path, job_id: str = JOB_ID, url: str | None = None) -> datetime | None:
    """A job's next run time as the scheduler last stored it, readable from any process (`url`:
    the shared job store's SQLAlchemy URL, when the schedule lives in the database)."""
    if url is not None:
        return _shared_next_run(url, job_id)
    if not jobstore.exists():
        return None
    try:
        with sqlite3.connect(f"file:{jobstore}?mode=ro", uri=True) as db:
            row = db.execute("SELECT next_run_time FROM apscheduler_jobs WHERE id = ?", (job_id,)).fetchone()
    except sqlite3.Error:
        return None
    if not row or row[0] is None:
        return None
    return datetime.fromtimestamp(row[0], tz=timezone.utc)


def _shared_next_run(url: str, job_id: str) -> datetime | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            value = connection.execute(text("SELECT next_run_time FROM apscheduler_jobs WHERE id = :id"),
                                       {"id": job_id}).scalar()
    except SQLAlchemyError:
        return None  # no schedule stored yet, or the database is away (doctor says which)
    finally:
        engine.dispose()
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)
