"""What users thought of the answers: 👍/👎, comments, admins' corrections and "talk to a
human" presses, in one box's SQLite file or, for replicas on several hosts, in PostgreSQL
(a StateDatabase from `bot.state_db`; the SQL here is the same for both).

Every answer a chat platform shows is recorded (question, answer, sources and their scores,
passages, voice, platform and channel, answer time, a hashed user id) so a button pressed
days later, after restarts, still finds what it rates, and insights can count what the docs
did not answer. 👍-rated and admin-corrected answers export as voice examples: the brand
voice learns from what the team approved. Questions older than the retention period are
deleted; the tables are defined, and upgraded in place, in `bot.feedback_schema`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot import feedback_schema as schema
from bot.state_db import SqliteStateDatabase, StateConnection, StateDatabase, StateDatabaseError
from bot.types import Answer, Citation, Question

_DELIVERIES_KEPT_S = 86_400  # platforms re-deliver within minutes (Slack: 3 tries; Discord: a resume)
_PURGE_EVERY_S = 3600  # retention is applied when the store opens and then at most hourly
HASHED_PREFIX = "h:"  # a user id stored as its keyed hash


log = logging.getLogger(__name__)


class UnknownAnswer(KeyError):
    pass


FEEDBACK_DOWN_TEXT = "Thanks - but feedback can't be recorded right now; the admins can see why in the bot's log."


class FeedbackUnavailable(RuntimeError):
    """The feedback database cannot be used (damaged, unreadable): said in one line with the
    file and what to do. Answering never depends on it."""


@dataclass(frozen=True)
class StoredAnswer:
    id: str
    platform: str
    channel: str | None
    user_id: str
    question: str
    answer: str
    abstained: bool
    sources: list[dict]
    context: str
    voice: str | None

    @property
    def citations(self) -> list[Citation]:
        return [Citation.model_validate(c) for c in self.sources]


@dataclass(frozen=True)
class AnswerFacts:
    """One recorded question as insights see it."""

    id: str
    created_at: float
    question: str
    question_key: str
    abstained: bool
    answer_ms: float | None
    sources_json: str  # parsed only for the few that become coverage gaps
    thumbs_up: int
    thumbs_down: int
    escalations: int

    @property
    def sources(self) -> list[dict]:
        return json.loads(self.sources_json)


class FeedbackStore:
    """`database`: an SQLite file's path (one box) or a StateDatabase (e.g. PostgreSQL shared by
    replicas on several hosts). `retention_days`: questions older than this are deleted with
    their ratings, escalations and vectors (0 keeps them). `hash_user_ids`: user ids are stored
    as a keyed hash (the key lives in the database, so one user's presses still count once, and
    a copied table alone names nobody). `clock` is handed in by tests that seed past weeks."""

    def __init__(self, database: Path | StateDatabase, on_rating: Callable[[int], None] | None = None, *,
                 retention_days: int = 90, hash_user_ids: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.database: StateDatabase = (SqliteStateDatabase(Path(database)) if isinstance(database, (str, Path))
                                        else database)
        self.on_rating = on_rating  # e.g. metrics
        self.retention_days = retention_days
        self.hash_user_ids = hash_user_ids
        self.clock = clock
        self._ready = False
        self._outage: str | None = None  # the failure being reported, until the database answers again
        self._setup = threading.Lock()
        self._user_key = b""
        self._purged_at = 0.0

    @property
    def _db(self) -> sqlite3.Connection:
        """The SQLite connection itself (tests look at rows with it)."""
        assert isinstance(self.database, SqliteStateDatabase)
        self._prepared()
        return self.database.connection

    def _prepared(self) -> None:
        """Tables migrated, the user-id key read, expired rows gone: done once, on first use, so
        a damaged or unreachable database costs feedback, never the bot's start."""
        if self._ready:
            return
        with self._setup:
            if self._ready:
                return
            try:
                with self.database.transaction(exclusive=True) as db:
                    migrate(self.database, db)
                    self._user_key = _user_key(db)
                    if self.hash_user_ids:
                        self._hash_plain_user_ids(db)
                    self._forget_expired(db)
            except StateDatabaseError as err:
                raise FeedbackUnavailable(str(err)) from None
            self._ready = True

    @contextmanager
    def _session(self, exclusive: bool = False) -> Iterator[StateConnection]:
        """One transaction on the prepared database; its failures become FeedbackUnavailable.
        `exclusive`: no other replica runs an exclusive one at the same time."""
        self._prepared()
        try:
            with self.database.transaction(exclusive) as db:
                yield db
        except StateDatabaseError as err:
            raise FeedbackUnavailable(str(err)) from None
        if self._outage is not None:
            self._outage = None
            log.warning("the %s database %s answers again", self.database.dialect, self.database.where)

    def _failed(self, what: str, err: FeedbackUnavailable) -> None:
        """One error line per outage (the first thing it cost, and why); the rest at debug."""
        if self._outage is None:
            self._outage = str(err)
            log.error("%s: %s (until it answers again, what else it costs is logged at debug)", what, err)
        else:
            log.debug("%s: %s", what, err)

    def _hash_plain_user_ids(self, db: StateConnection) -> None:
        """Rows written before hashing was on (an earlier release, or the setting turned on)."""
        for table in ("answers", "feedback", "escalations"):
            plain = [row[0] for row in db.execute(
                f"SELECT DISTINCT user_id FROM {table} WHERE user_id NOT LIKE '{HASHED_PREFIX}%'")]
            db.executemany(f"UPDATE {table} SET user_id = ? WHERE user_id = ?",
                           [(self._hashed(user), user) for user in plain])

    def _hashed(self, user_id: str) -> str:
        return HASHED_PREFIX + hmac.new(self._user_key, user_id.encode(), hashlib.sha256).hexdigest()[:32]

    def stored_user_id(self, user_id: str) -> str:
        """How `user_id` is written in the store (its keyed hash, unless hashing is off)."""
        if not self.hash_user_ids or user_id.startswith(HASHED_PREFIX):
            return user_id
        self._prepared()  # the key is read from the database
        return self._hashed(user_id)

    def record_answer(self, question: Question, answer: Answer, answer_ms: float | None = None) -> str:
        """Keep what was answered so its buttons can be rated later, and insights can count
        it. `answer_ms`: how long the asker waited (default: the answer's own total time).
        A feedback database that fails is logged loudly and the answer goes out all the same
        (unrateable)."""
        answer_id = uuid.uuid4().hex[:16]
        sources = [c.model_dump(mode="json") for c in answer.citations]
        if answer_ms is None:
            answer_ms = answer.timings_ms.get("total")
        try:
            with self._session() as db:
                db.execute(
                    "INSERT INTO answers (id, created_at, platform, channel, user_id, question, answer, abstained, "
                    "sources, context, voice, conversation, answer_ms, question_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (answer_id, self.clock(), question.platform, question.channel_id,
                     self._stored_user(question.user_id), question.text, answer.answer, int(answer.abstained),
                     json.dumps(sources), answer.context, answer.voice, question.conversation_id or None, answer_ms,
                     question_key(question.text)))
                if self.clock() - self._purged_at > _PURGE_EVERY_S:
                    self._forget_expired(db)
        except FeedbackUnavailable as err:
            self._failed(f"answer {answer_id} not recorded", err)
        return answer_id

    def _stored_user(self, user_id: str) -> str:
        return self._hashed(user_id) if self.hash_user_ids else user_id

    def escalate(self, answer_id: str, user_id: str) -> None:
        """A "talk to a human" press on an answer: the docs did not settle it."""
        self.get(answer_id)
        with self._session() as db:
            db.execute("INSERT INTO escalations (answer_id, created_at, user_id) VALUES (?, ?, ?)",
                             (answer_id, self.clock(), self._stored_user(user_id)))

    def forget_expired(self) -> int:
        """Delete the questions older than the retention period (with their ratings,
        comments, escalations and vectors); returns how many questions went."""
        with self._session() as db:
            return self._forget_expired(db)

    def _forget_expired(self, db: StateConnection) -> int:
        self._purged_at = self.clock()
        if self.retention_days <= 0:
            return 0
        cutoff = (self.clock() - self.retention_days * 86_400,)
        old = "SELECT id FROM answers WHERE created_at < ?"
        db.execute(f"DELETE FROM feedback WHERE answer_id IN ({old})", cutoff)
        db.execute(f"DELETE FROM escalations WHERE answer_id IN ({old})", cutoff)
        gone = db.execute("DELETE FROM answers WHERE created_at < ?", cutoff).rowcount
        db.execute("DELETE FROM question_vectors WHERE question_key NOT IN "  # also of answers never recorded
                   "(SELECT question_key FROM answers WHERE question_key IS NOT NULL)")
        if gone:
            log.info("forgot %d question(s) older than %d days", gone, self.retention_days)
        return gone

    def knows_conversation(self, conversation_id: str) -> bool:
        """Whether the bot answered in this thread before (so a follow-up needs no mention,
        also after a restart). Unknown when the database fails: then only mentions count."""
        try:
            with self._session() as db:
                return db.execute("SELECT 1 FROM answers WHERE conversation = ? LIMIT 1",
                                  (conversation_id,)).fetchone() is not None
        except FeedbackUnavailable as err:
            self._failed("thread memory unavailable", err)
            return False

    def first_delivery(self, delivery_id: str) -> bool:
        """True the first time any process sharing this database sees `delivery_id` (an event a
        platform may deliver again: a retry, a resume, or to another replica). When the database
        fails the delivery counts as first: answering twice beats not answering."""
        now = time.time()
        try:
            with self._session() as db:
                inserted = db.execute("INSERT INTO deliveries (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                                      (delivery_id, now)).rowcount
                if inserted and int(now) % 100 == 0:  # now and then, forget what no platform re-sends
                    db.execute("DELETE FROM deliveries WHERE at < ?", (now - _DELIVERIES_KEPT_S,))
                return bool(inserted)
        except FeedbackUnavailable as err:
            self._failed(f"delivery {delivery_id} not checked for duplicates", err)
            return True

    def get(self, answer_id: str) -> StoredAnswer:
        with self._session() as db:
            row = db.execute("SELECT id, platform, channel, user_id, question, answer, abstained, sources, "
                                   "context, voice FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            raise UnknownAnswer(answer_id)
        return StoredAnswer(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), json.loads(row[7]),
                            row[8], row[9])

    def rate(self, answer_id: str, user_id: str, rating: int, comment: str | None = None) -> None:
        """rating +1 (👍) or -1 (👎); a later press by the same user replaces the earlier one."""
        if rating not in (1, -1):
            raise ValueError("rating must be +1 or -1")
        self.get(answer_id)
        with self._session(exclusive=True) as db:  # two presses at once (two replicas) must not both insert
            user = self._stored_user(user_id)
            db.execute("DELETE FROM feedback WHERE answer_id = ? AND user_id = ? AND rating IS NOT NULL",
                             (answer_id, user))
            db.execute("INSERT INTO feedback (answer_id, created_at, user_id, rating, comment) "
                             "VALUES (?, ?, ?, ?, ?)", (answer_id, self.clock(), user, rating, comment))
        if self.on_rating is not None:
            self.on_rating(rating)

    def comment(self, answer_id: str, user_id: str, comment: str, correction: str | None = None,
                by_admin: bool = False) -> None:
        """What was wrong, and (from an admin) what the answer should have been."""
        self.get(answer_id)
        with self._session() as db:
            db.execute(
                "INSERT INTO feedback (answer_id, created_at, user_id, comment, correction, by_admin) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (answer_id, self.clock(), self._stored_user(user_id), comment or None, correction or None,
                 int(by_admin)))

    def counts(self) -> dict[str, int]:
        with self._session() as db:
            up, down = db.execute(
                "SELECT COALESCE(SUM(CASE WHEN rating = 1 THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN rating = -1 THEN 1 ELSE 0 END), 0) FROM feedback").fetchone()
            answers = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        return {"answers": answers, "thumbs_up": up, "thumbs_down": down}

    def voice_examples(self) -> list[dict]:
        """👍-rated answers as given, and answers an admin corrected with the correction
        (the latest one wins); never an answer rated 👎 and not corrected."""
        with self._session() as db:
            rows = db.execute("""
                SELECT a.id, a.question, a.answer, a.context,
                       (SELECT f.correction FROM feedback f WHERE f.answer_id = a.id AND f.by_admin = 1
                        AND f.correction IS NOT NULL ORDER BY f.id DESC LIMIT 1) AS correction,
                       (SELECT COALESCE(SUM(f.rating), 0) FROM feedback f WHERE f.answer_id = a.id) AS score
                FROM answers a ORDER BY a.created_at""").fetchall()
        examples = []
        seen: set[tuple[str, str]] = set()
        for _, question, answer, context, correction, score in rows:
            text = correction or (answer if score > 0 else None)
            key = (" ".join(question.lower().split()), text or "")
            if text and key not in seen:  # the voice dataset refuses duplicates
                seen.add(key)
                example = {"question": question, "answer": text}
                if context:
                    example["context"] = context
                examples.append(example)
        return examples

    def export_voice(self, path: Path) -> int:
        examples = self.voice_examples()
        Path(path).write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8")
        return len(examples)

    def answers_between(self, start: float, end: float) -> list[AnswerFacts]:
        """Every question asked in [start, end), with its ratings and escalations, oldest
        first: what insights are computed from."""
        with self._session() as db:
            rows = db.execute("""
                SELECT a.id, a.created_at, a.question, a.question_key, a.abstained, a.answer_ms, a.sources,
                       COALESCE(r.up, 0), COALESCE(r.down, 0), COALESCE(e.presses, 0)
                FROM answers a
                LEFT JOIN (SELECT answer_id, SUM(CASE WHEN rating = 1 THEN 1 ELSE 0 END) AS up,
                                  SUM(CASE WHEN rating = -1 THEN 1 ELSE 0 END) AS down
                           FROM feedback WHERE rating IS NOT NULL GROUP BY answer_id) r ON r.answer_id = a.id
                LEFT JOIN (SELECT answer_id, COUNT(*) AS presses FROM escalations GROUP BY answer_id) e
                       ON e.answer_id = a.id
                WHERE a.created_at >= ? AND a.created_at < ?
                ORDER BY a.created_at""", (start, end)).fetchall()
        return [AnswerFacts(row[0], row[1], row[2], row[3] or question_key(row[2]), bool(row[4]), row[5], row[6],
                            row[7], row[8], row[9]) for row in rows]

    def comments_between(self, start: float, end: float) -> dict[str, list[str]]:
        """What raters said was wrong, by answer, for the answers given in [start, end)."""
        with self._session() as db:
            rows = db.execute(
                "SELECT f.answer_id, f.comment FROM feedback f JOIN answers a ON a.id = f.answer_id "
                "WHERE a.created_at >= ? AND a.created_at < ? AND f.comment IS NOT NULL ORDER BY f.id",
                (start, end)).fetchall()
        said: dict[str, list[str]] = {}
        for answer_id, comment in rows:
            said.setdefault(answer_id, []).append(comment)
        return said

    def vectors(self, keys: list[str], model: str) -> dict[str, bytes]:
        """Stored vectors of these question keys by `model` (those known; the rest are missing)."""
        found: dict[str, bytes] = {}
        with self._session() as db:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                marks = ", ".join("?" * len(part))
                found.update(db.execute(
                    f"SELECT question_key, vector FROM question_vectors WHERE model = ? AND question_key IN ({marks})",
                    [model, *part]))
        return found

    def save_vectors(self, vectors: dict[str, bytes], model: str) -> None:
        """Keep question vectors so a question is embedded once, not at every report."""
        with self._session() as db:  # an upsert: two replicas saving one question at once both succeed
            db.executemany("INSERT INTO question_vectors (question_key, model, vector) VALUES (?, ?, ?) "
                           "ON CONFLICT (question_key, model) DO UPDATE SET vector = excluded.vector",
                           [(key, model, vector) for key, vector in vectors.items()])

    def check(self) -> str | None:
        """What is wrong with the feedback database, or None when it is healthy."""
        try:
            self._prepared()
            return self.database.integrity_problem()
        except (FeedbackUnavailable, StateDatabaseError) as err:
            return str(err)

    def schema_version(self) -> int:
        """The step the database's tables are at (bot.feedback_schema.LATEST when current)."""
        with self._session() as db:
            return db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0

    def close(self) -> None:
        self.database.close()
        self._ready = False


def question_key(text: str) -> str:
    """The same question however it was cased or spaced: vectors are stored once per key."""
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()[:32]


def migrate(database: StateDatabase, db: StateConnection) -> None:
    """Bring the tables to the latest step, inside the caller's exclusive transaction; a file
    from before versions were kept (no schema_version row) is at step 0, possibly with a
    step-1 table missing a column."""
    db.execute(schema.VERSION_TABLE)
    version = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
    if version > schema.LATEST:
        log.warning("the feedback database is from a newer release (schema %d, this one knows %d): left as it is",
                    version, schema.LATEST)
        return
    if version == 0:
        for (table, column), ddl in schema.UNVERSIONED_COLUMNS.items():
            columns = database.table_columns(db, table)
            if columns and column not in columns:
                db.execute(ddl)
    for step, statements in schema.STEPS:
        if step > version:
            for statement in statements:
                db.execute(database.ddl(statement))
    db.execute("DELETE FROM schema_version")
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (schema.LATEST,))


def _user_key(db: StateConnection) -> bytes:
    """The key user ids are hashed with: made once per database, so hashes match across
    replicas and restarts but not across deployments."""
    row = db.execute("SELECT value FROM store_keys WHERE name = 'user_id_hash'").fetchone()
    if row is None:
        db.execute("INSERT INTO store_keys (name, value) VALUES ('user_id_hash', ?)", (secrets.token_hex(32),))
        row = db.execute("SELECT value FROM store_keys WHERE name = 'user_id_hash'").fetchone()
    return bytes.fromhex(row[0])
