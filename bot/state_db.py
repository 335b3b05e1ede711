"""Where the shared state lives: the small database interface the feedback store runs on.

One box keeps its state in an SQLite file (here, stdlib only); replicas on several hosts keep
it in PostgreSQL (`bot.app.pg_state`, the only module that imports the driver). Both speak the
same plain SQL with `?` placeholders; each backend owns what differs: its connection handling,
how a transaction takes the migration lock, the column types of `CREATE TABLE`, and how its
failures read to an admin.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

_OPEN_ATTEMPTS = 25


class StateDatabaseError(RuntimeError):
    """The database failed (unreachable, damaged, refused a statement); `str()` says so in one
    line with what to do."""


class StateCursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class StateConnection(Protocol):
    """One transaction's statements, in the store's SQL (`?` placeholders)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> StateCursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


class StateDatabase(Protocol):
    """A backend of the state store (see SqliteStateDatabase, bot.app.pg_state.PostgresStateDatabase)."""

    dialect: str  # "sqlite" or "postgresql"
    where: str  # the file, or the URL without its password: named in every failure

    def transaction(self, exclusive: bool = False) -> Any:
        """A context yielding a StateConnection; commits when the block ends, rolls back when it
        raises. `exclusive`: no other process runs an exclusive transaction at the same time (the
        schema is migrated in one). Driver failures leave it as StateDatabaseError."""
        ...

    def table_columns(self, connection: StateConnection, table: str) -> set[str]: ...
    def ddl(self, statement: str) -> str: ...
    def integrity_problem(self) -> str | None: ...
    def continue_ids(self, connection: StateConnection, table: str) -> None:
        """After rows were copied in with their ids: new rows get ids above them."""
        ...
    def failure(self, err: Exception) -> str: ...
    def close(self) -> None: ...


class SqliteStateDatabase:
    """One file, one connection shared by the process's threads (a lock keeps them in turn)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None

    @property
    def connection(self) -> sqlite3.Connection:
        """Opened on first use, so a damaged file costs feedback, never the bot's start."""
        if self._connection is None:
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    self._connection = self._open()
                    break
                except sqlite3.OperationalError as err:
                    # replicas starting together on a shared file: switching it to WAL does not
                    # wait for the other's lock the way queries do
                    if "locked" not in str(err) or attempt == _OPEN_ATTEMPTS - 1:
                        raise StateDatabaseError(self.failure(err)) from None
                    time.sleep(0.2)
                except (sqlite3.Error, OSError) as err:
                    raise StateDatabaseError(self.failure(err)) from None
        return self._connection

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                db = self.connection
                if exclusive:
                    db.execute("BEGIN IMMEDIATE")  # replicas sharing the file set it up one at a time
                with db:
                    yield db
            except sqlite3.Error as err:
                raise StateDatabaseError(self.failure(err)) from None

    def table_columns(self, connection: StateConnection, table: str) -> set[str]:
        return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}

    def ddl(self, statement: str) -> str:
        return statement

    def continue_ids(self, connection: StateConnection, table: str) -> None:
        """AUTOINCREMENT already continues above the highest id."""

    def integrity_problem(self) -> str | None:
        with self.transaction() as db:
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
        return None if problem == "ok" else self.failure(RuntimeError(problem))

    def failure(self, err: Exception) -> str:
        return (f"the feedback database {self.path} cannot be used ({err}); move it aside "
                f"(mv {self.path} {self.path}.damaged) and a fresh one is started on the next answer")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
