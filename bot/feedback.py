"""What users thought of the answers: 👍/👎, comments, and admins' corrections, in SQLite.

Every answer a chat platform shows is recorded (question, answer, sources, passages, voice,
user) so a button pressed days later, after restarts, still finds what it rates. 👍-rated and
admin-corrected answers export as voice examples: the brand voice learns from what the team
approved.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.types import Answer, Citation, Question

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, platform TEXT NOT NULL, channel TEXT, user_id TEXT NOT NULL,
    question TEXT NOT NULL, answer TEXT NOT NULL, abstained INTEGER NOT NULL, sources TEXT NOT NULL,
    context TEXT NOT NULL, voice TEXT, conversation TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL REFERENCES answers(id), created_at REAL NOT NULL,
    user_id TEXT NOT NULL, rating INTEGER, comment TEXT, correction TEXT, by_admin INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id);
CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, at REAL NOT NULL);
"""
_OPEN_ATTEMPTS = 25
_DELIVERIES_KEPT_S = 86_400  # platforms re-deliver within minutes (Slack: 3 tries; Discord: a resume)
_MIGRATIONS = {  # columns added after the first release of a table
    ("answers", "conversation"): "ALTER TABLE answers ADD COLUMN conversation TEXT",
}


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


class FeedbackStore:
    def __init__(self, path: Path, on_rating: Callable[[int], None] | None = None) -> None:
        self.path = Path(path)
        self.on_rating = on_rating  # e.g. metrics
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
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
                        raise self._unavailable(err) from None
                    time.sleep(0.2)
                except (sqlite3.Error, OSError) as err:
                    raise self._unavailable(err) from None
        return self._connection

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")  # replicas sharing the file set it up one at a time
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for (table, column), ddl in _MIGRATIONS.items():  # a database from an earlier release
                if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(ddl)
            db.execute("CREATE INDEX IF NOT EXISTS answers_conversation ON answers(conversation)")
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _unavailable(self, err: Exception) -> FeedbackUnavailable:
        return FeedbackUnavailable(
            f"the feedback database {self.path} cannot be used ({err}); move it aside "
            f"(mv {self.path} {self.path}.damaged) and a fresh one is started on the next answer")

    def record_answer(self, question: Question, answer: Answer) -> str:
        """Keep what was answered so its buttons can be rated later. A feedback database that
        fails is logged loudly and the answer goes out all the same (unrateable)."""
        answer_id = uuid.uuid4().hex[:16]
        sources = [c.model_dump(mode="json") for c in answer.citations]
        try:
            with self._lock, self._failing_as_unavailable(), self._db:
                self._db.execute(
                    "INSERT INTO answers (id, created_at, platform, channel, user_id, question, answer, abstained, "
                    "sources, context, voice, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (answer_id, time.time(), question.platform, question.channel_id, question.user_id, question.text,
                     answer.answer, int(answer.abstained), json.dumps(sources), answer.context, answer.voice,
                     question.conversation_id or None))
        except FeedbackUnavailable as err:
            log.error("answer %s not recorded: %s", answer_id, err)
        return answer_id

    def knows_conversation(self, conversation_id: str) -> bool:
        """Whether the bot answered in this thread before (so a follow-up needs no mention,
        also after a restart). Unknown when the database fails: then only mentions count."""
        try:
            with self._lock, self._failing_as_unavailable():
                return self._db.execute("SELECT 1 FROM answers WHERE conversation = ? LIMIT 1",
                                        (conversation_id,)).fetchone() is not None
        except FeedbackUnavailable as err:
            log.error("thread memory unavailable: %s", err)
            return False

    def first_delivery(self, delivery_id: str) -> bool:
        """True the first time any process sharing this database sees `delivery_id` (an event a
        platform may deliver again: a retry, a resume, or to another replica). When the database
        fails the delivery counts as first: answering twice beats not answering."""
        now = time.time()
        try:
            with self._lock, self._failing_as_unavailable(), self._db:
                inserted = self._db.execute("INSERT OR IGNORE INTO deliveries (id, at) VALUES (?, ?)",
                                            (delivery_id, now)).rowcount
                if inserted and int(now) % 100 == 0:  # now and then, forget what no platform re-sends
                    self._db.execute("DELETE FROM deliveries WHERE at < ?", (now - _DELIVERIES_KEPT_S,))
                return bool(inserted)
        except FeedbackUnavailable as err:
            log.error("delivery %s not checked for duplicates: %s", delivery_id, err)
            return True

    def get(self, answer_id: str) -> StoredAnswer:
        with self._lock, self._failing_as_unavailable():
            row = self._db.execute("SELECT id, platform, channel, user_id, question, answer, abstained, sources, "
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
        with self._lock, self._failing_as_unavailable(), self._db:
            self._db.execute("DELETE FROM feedback WHERE answer_id = ? AND user_id = ? AND rating IS NOT NULL",
                             (answer_id, user_id))
            self._db.execute("INSERT INTO feedback (answer_id, created_at, user_id, rating, comment) "
                             "VALUES (?, ?, ?, ?, ?)", (answer_id, time.time(), user_id, rating, comment))
        if self.on_rating is not None:
            self.on_rating(rating)

    def comment(self, answer_id: str, user_id: str, comment: str, correction: str | None = None,
                by_admin: bool = False) -> None:
        """What was wrong, and (from an admin) what the answer should have been."""
        self.get(answer_id)
        with self._lock, self._failing_as_unavailable(), self._db:
            self._db.execute(
                "INSERT INTO feedback (answer_id, created_at, user_id, comment, correction, by_admin) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (answer_id, time.time(), user_id, comment or None, correction or None, int(by_admin)))

    def counts(self) -> dict[str, int]:
        with self._lock, self._failing_as_unavailable():
            up, down = self._db.execute(
                "SELECT COALESCE(SUM(rating = 1), 0), COALESCE(SUM(rating = -1), 0) FROM feedback").fetchone()
            answers = self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        return {"answers": answers, "thumbs_up": up, "thumbs_down": down}

    def voice_examples(self) -> list[dict]:
        """👍-rated answers as given, and answers an admin corrected with the correction
        (the latest one wins); never an answer rated 👎 and not corrected."""
        with self._lock, self._failing_as_unavailable():
            rows = self._db.execute("""
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

    @contextmanager
    def _failing_as_unavailable(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            raise self._unavailable(err) from None

    def check(self) -> str | None:
        """What is wrong with the feedback database, or None when it is healthy."""
        try:
            with self._lock, self._failing_as_unavailable():
                problem = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except FeedbackUnavailable as err:
            return str(err)
        return None if problem == "ok" else str(self._unavailable(RuntimeError(problem)))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
