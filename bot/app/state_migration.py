"""`supportbot state migrate --to postgresql://…`: one box's SQLite state copied into the shared
database, row for row, so the replicas that move over keep every answer, rating and thread.

Run it again and nothing doubles: each row is keyed by its id (the rating and escalation ids
are copied too), and a row already there is left alone. The user-id hashing key moves with the
rows, so a user's later presses still match their earlier ones; a database that already has
rows under another key is refused rather than mixed. Afterwards every source row is checked to
be in the database exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.feedback import FeedbackStore
from bot.state_db import StateDatabase

# table -> (columns, key columns); in dependency order (answers before what refers to them)
TABLES: dict[str, tuple[list[str], list[str]]] = {
    "answers": (["id", "created_at", "platform", "channel", "user_id", "question", "answer", "abstained", "sources",
                 "context", "voice", "conversation", "answer_ms", "question_key"], ["id"]),
    "feedback": (["id", "answer_id", "created_at", "user_id", "rating", "comment", "correction", "by_admin"], ["id"]),
    "escalations": (["id", "answer_id", "created_at", "user_id"], ["id"]),
    "question_vectors": (["question_key", "model", "vector"], ["question_key", "model"]),
    "deliveries": (["id", "at"], ["id"]),
}
_KEY = "user_id_hash"


class MigrationRefused(RuntimeError):
    """The copy would mix two deployments' rows, or came out different: said in one line."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int  # in the source
    added: int  # of those, new in the database


def migrate_state(source: StateDatabase, target: StateDatabase) -> list[Copied]:
    """Copy every row of `source` into `target` (both brought to the latest schema first)."""
    for database in (source, target):  # tables created or upgraded; nothing expires on the way
        FeedbackStore(database, retention_days=0, hash_user_ids=False).schema_version()
    with source.transaction() as src:
        rows = {table: src.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
                for table, (columns, _) in TABLES.items()}
        source_key = src.execute("SELECT value FROM store_keys WHERE name = ?", (_KEY,)).fetchone()
    copied = []
    with target.transaction(exclusive=True) as dst:
        _adopt_key(dst, source_key[0] if source_key else None)
        for table, (columns, keys) in TABLES.items():
            before = dst.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            marks = ", ".join("?" * len(columns))
            dst.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                            f"ON CONFLICT ({', '.join(keys)}) DO NOTHING", [_values(row) for row in rows[table]])
            after = dst.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            if keys == ["id"]:
                target.continue_ids(dst, table)
            copied.append(Copied(table, len(rows[table]), after - before))
    with target.transaction() as dst:
        for table, (columns, _) in TABLES.items():
            there = {_values(row) for row in dst.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()}
            differ = [row for row in rows[table] if _values(row) not in there]
            if differ:
                raise MigrationRefused(
                    f"{len(differ)} row(s) of {table} are in {target.where} under the same id with other contents "
                    f"(first: {differ[0][0]!r}): that database already holds another deployment's state")
    return copied


def _values(row: tuple) -> tuple:
    return tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)


def _adopt_key(dst, key: str | None) -> None:
    """The source's user-id hashing key becomes the database's, unless the database already
    holds hashed rows under a key of its own."""
    if key is None:
        return
    there = dst.execute("SELECT value FROM store_keys WHERE name = ?", (_KEY,)).fetchone()
    if there and there[0] == key:
        return
    hashed = dst.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    if there and hashed:
        raise MigrationRefused("the database already holds answers whose user ids are hashed with another key: "
                               "migrate into an empty database")
    dst.execute("DELETE FROM store_keys WHERE name = ?", (_KEY,))
    dst.execute("INSERT INTO store_keys (name, value) VALUES (?, ?)", (_KEY, key))
