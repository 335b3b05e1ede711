"""Shared state in PostgreSQL (`state.url`): the store's tables and the one-writer re-index lock,
for replicas on several hosts. The only module that imports the driver (psycopg 3 and its pool).

The pool hands each transaction a checked connection, so a server that restarted is
reconnected to on the next use; while it is away, each use fails within a few seconds with one
line (the store logs it and the answer goes out all the same).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from bot.reindex_lock import AlreadyRunning, HolderInfo, RunningJob
from bot.state_db import StateDatabaseError

log = logging.getLogger(__name__)
# The pool logs every failed reconnection (several lines each, over and over while the server
# is away); the store says it once per outage, with what it costs and what to do.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

_CONNECT_TIMEOUT_S = 3  # a database that is away costs an answer's record this long, not more
_RETRY_AWAY_S = 5.0  # while the server is away, how often one use tries it again
_MIGRATION_LOCK = 0x5B07_5C3E  # pg_advisory_xact_lock key: one replica migrates at a time
_REINDEX_LOCK = 0x5B07_2E1D  # pg_try_advisory_lock key: one re-index writer across hosts
_TYPES = [(re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGSERIAL PRIMARY KEY"),
          (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"), (re.compile(r"\bBLOB\b"), "BYTEA")]


def _one_line(err: Exception) -> str:
    """A driver error as one line of a message (libpq's own text spans several)."""
    return " ".join(str(err).split()) or type(err).__name__


def redacted(url: str) -> str:
    """The URL without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.query:  # a password may ride in the query too (?password=...): never shown
        parts = parts._replace(query="")
    if parts.password is None:
        return urlunsplit(parts)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def sqlalchemy_url(url: str) -> str:
    """The same database as SQLAlchemy names it through psycopg 3 (the scheduler's job store)."""
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)


def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection:
    """A psycopg connection speaking the store's `?` SQL."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        if not params:
            return self._connection.execute(sql)  # type: ignore[arg-type]  # no placeholders to translate
        return self._connection.execute(_placeholders(sql), list(params))  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [list(row) for row in rows]
        if rows:
            with self._connection.cursor() as cursor:
                cursor.executemany(_placeholders(sql), rows)  # type: ignore[arg-type]


class PostgresStateDatabase:
    """The store's backend on a PostgreSQL server, through a pool opened on first use."""

    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 8, timeout_s: float = _CONNECT_TIMEOUT_S,
                 retry_away_s: float = _RETRY_AWAY_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_away_s = retry_away_s
        self.where = redacted(url)
        self.pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._opening = threading.Lock()
        self._away: str | None = None  # why the server cannot be used, while it cannot
        self._retry_at = 0.0

    @property
    def pool(self) -> ConnectionPool:
        with self._opening:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.pool_size, open=False, timeout=self.timeout_s,
                    kwargs={"connect_timeout": max(1, round(self.timeout_s)), "application_name": "supportbot"},
                    check=ConnectionPool.check_connection, reconnect_timeout=0, name="supportbot-state")
                self._pool.open(wait=False)
        return self._pool

    @contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[_Connection]:
        """While the server is away, uses fail at once for a few seconds (then one tries again),
        so a chat event is not held up by a connection timeout each time."""
        if self._away is not None and time.monotonic() < self._retry_at:
            raise StateDatabaseError(self._away)
        try:
            with self.pool.connection() as connection, connection.transaction():
                if exclusive:
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
                yield _Connection(connection)
        except psycopg.OperationalError as err:  # unreachable, timed out, the connection dropped
            self._away, self._retry_at = self.failure(err), time.monotonic() + self.retry_away_s
            raise StateDatabaseError(self._away) from None
        except psycopg.Error as err:
            raise StateDatabaseError(self.failure(err)) from None
        self._away = None

    def table_columns(self, connection: Any, table: str) -> set[str]:
        rows = connection.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                  "AND table_schema = current_schema()", (table,))
        return {row[0] for row in rows}

    def ddl(self, statement: str) -> str:
        for pattern, replacement in _TYPES:
            statement = pattern.sub(replacement, statement)
        return statement

    def continue_ids(self, connection: Any, table: str) -> None:
        sequence = connection.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,)).fetchone()[0]
        if sequence is not None:
            connection.execute(f"SELECT setval(?, COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)", (sequence,))

    def integrity_problem(self) -> str | None:
        with self.transaction() as connection:
            connection.execute("SELECT 1")
        return None

    def failure(self, err: Exception) -> str:
        reason = _one_line(err)
        if isinstance(err, psycopg.Error) and not isinstance(err, psycopg.OperationalError):
            return f"the shared state database {self.where} refused a statement ({reason})"
        return (f"the shared state database {self.where} cannot be used ({reason}); check that PostgreSQL is "
                f"running and reachable and that state.url is right (the bot reconnects by itself)")

    def close(self) -> None:
        with self._opening:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


REINDEX_TABLE = """CREATE TABLE IF NOT EXISTS reindex_running (
    id INTEGER PRIMARY KEY CHECK (id = 1), started_by TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
    progress TEXT NOT NULL, trigger TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL)"""


class PostgresReindexLock(HolderInfo):
    """One re-index at a time across every host sharing the database: a session advisory lock
    held on a connection of its own for the whole run, which the server drops when that session
    ends for any reason (the holder killed, its host gone). Who holds it and how far it got sits
    in a one-row table, so a second caller anywhere is told exactly that."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redacted(url)
        self._guard = threading.Lock()
        self._holder: psycopg.Connection | None = None
        self._job: RunningJob | None = None
        self._written_at = 0.0

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S,
                                   application_name="supportbot-reindex")
        except psycopg.Error as err:
            raise StateDatabaseError(f"the re-index lock in {self.where} cannot be taken ({_one_line(err)})"
                                     f"; check that PostgreSQL is running") from None

    def acquire(self, started_by: str, trigger: str) -> None:
        with self._guard:
            if self._job is not None:
                raise AlreadyRunning(self._job)
            holder = self._connect()
            try:
                holder.execute(REINDEX_TABLE)
                if not holder.execute("SELECT pg_try_advisory_lock(%s)", [_REINDEX_LOCK]).fetchone()[0]:
                    raise AlreadyRunning(self._read_info(holder) or RunningJob("another process", time.time(), "starting"))
            except psycopg.Error as err:  # e.g. two first runs creating the table at once: one line, not a trace
                holder.close()
                raise StateDatabaseError(f"the re-index lock in {self.where} cannot be taken "
                                         f"({_one_line(err)})") from None
            except BaseException:
                holder.close()
                raise
            self._holder = holder
            self._job = RunningJob(started_by, time.time(), "starting", trigger, os.getpid(), socket.gethostname())
            self._write_info()

    def release(self) -> None:
        with self._guard:
            if self._holder is None:
                return
            try:
                self._holder.execute("DELETE FROM reindex_running")
                self._holder.execute("SELECT pg_advisory_unlock(%s)", [_REINDEX_LOCK])
            except psycopg.Error:
                pass  # the session is gone, and with it the lock
            finally:
                self._holder.close()
                self._holder, self._job = None, None

    def running(self) -> RunningJob | None:
        """The run in progress on any host, or None."""
        with self._guard:
            if self._job is not None:
                return self._job
        try:
            probe = self._connect()
        except StateDatabaseError:
            return None  # unknown while the database is away (doctor says so)
        with probe:
            try:
                probe.execute(REINDEX_TABLE)
                # this database's lock only: another deployment on the same server may hold the same key
                held = probe.execute(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND ((classid::bigint << 32) | objid::bigint) = %s", [_REINDEX_LOCK]).fetchone()
                if held is None:
                    return None  # free: whatever the table says is left over from a dead holder
                return self._read_info(probe) or RunningJob("another process", time.time(), "starting")
            except psycopg.Error:
                return None  # unknown while the database misbehaves (doctor says so)

    def _write_info(self) -> None:
        assert self._job is not None and self._holder is not None
        job = asdict(self._job)
        try:
            self._holder.execute(
                "INSERT INTO reindex_running (id, started_by, started_at, progress, trigger, pid, host) "
                "VALUES (1, %(started_by)s, %(started_at)s, %(progress)s, %(trigger)s, %(pid)s, %(host)s) "
                "ON CONFLICT (id) DO UPDATE SET started_by = EXCLUDED.started_by, started_at = EXCLUDED.started_at, "
                "progress = EXCLUDED.progress, trigger = EXCLUDED.trigger, pid = EXCLUDED.pid, host = EXCLUDED.host",
                job)
        except psycopg.OperationalError as err:  # the holder's session is gone, and the lock with it
            raise StateDatabaseError(
                f"the re-index lock in {self.where} was lost ({_one_line(err)}); this run stops so that "
                "no other writer runs beside it") from None
        except psycopg.Error:
            pass  # progress for others to read; the run itself goes on
        self._written_at = time.monotonic()

    @staticmethod
    def _read_info(connection: psycopg.Connection) -> RunningJob | None:
        row = connection.execute("SELECT started_by, started_at, progress, trigger, pid, host "
                                 "FROM reindex_running WHERE id = 1").fetchone()
        return RunningJob(*row) if row else None



class ScheduledRunClaims:
    """Which scheduler process runs a due job: the first to claim (job, due time) in the shared
    database; a claim that cannot be made (database away) runs the job (the re-index lock still
    keeps it to one writer)."""

    def __init__(self, url: str) -> None:
        self.database = PostgresStateDatabase(url, pool_size=1)

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Held while a scheduler sets up its job store, so two starting at once on a fresh
        database do not both create its table."""
        with self.database.transaction(exclusive=True):
            yield

    def claim(self, job_id: str, due: datetime) -> bool:
        try:
            with self.database.transaction(exclusive=True) as connection:
                connection.execute("CREATE TABLE IF NOT EXISTS scheduled_runs (job_id TEXT NOT NULL, due_at TEXT NOT NULL, "
                                   "host TEXT NOT NULL, pid INTEGER NOT NULL, claimed_at DOUBLE PRECISION NOT NULL, "
                                   "PRIMARY KEY (job_id, due_at))")
                return connection.execute(
                    "INSERT INTO scheduled_runs (job_id, due_at, host, pid, claimed_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING", (job_id, due.isoformat(), socket.gethostname(), os.getpid(), time.time()),
                ).rowcount == 1
        except StateDatabaseError as err:
            log.error("%s due at %s: %s", job_id, due.isoformat(), err)
            return True
