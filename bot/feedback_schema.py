"""The feedback store's tables, in one place, as numbered steps applied in order.

A database records the step it reached in `schema_version`; opening it applies the steps
after that, in one transaction, so a file from any earlier release is brought up to date
in place and keeps every row. The SQL is plain on purpose (TEXT, INTEGER, REAL, BLOB, no
SQLite functions) so the same steps can create the tables in PostgreSQL (BLOB -> BYTEA,
REAL -> DOUBLE PRECISION, INTEGER PRIMARY KEY AUTOINCREMENT -> BIGSERIAL PRIMARY KEY) when the
state moves there.
"""

from __future__ import annotations

# Step 1 is the first release's shape (its tables were created before versions were kept).
STEPS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE IF NOT EXISTS answers (
            id TEXT PRIMARY KEY, created_at REAL NOT NULL, platform TEXT NOT NULL, channel TEXT,
            user_id TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, abstained INTEGER NOT NULL,
            sources TEXT NOT NULL, context TEXT NOT NULL, voice TEXT, conversation TEXT)""",
        """CREATE TABLE IF NOT EXISTS feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL REFERENCES answers(id),
            created_at REAL NOT NULL, user_id TEXT NOT NULL, rating INTEGER, comment TEXT, correction TEXT,
            by_admin INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id)",
        "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, at REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS answers_conversation ON answers(conversation)",
    ]),
    # Insights: how long each answer took, "talk to a human" presses, question vectors for
    # grouping coverage gaps (keyed by the question's normalised text), the store's own keys.
    (2, [
        "ALTER TABLE answers ADD COLUMN answer_ms REAL",
        "ALTER TABLE answers ADD COLUMN question_key TEXT",
        "CREATE INDEX IF NOT EXISTS answers_created ON answers(created_at)",
        "CREATE INDEX IF NOT EXISTS answers_question_key ON answers(question_key)",
        """CREATE TABLE IF NOT EXISTS escalations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL REFERENCES answers(id),
            created_at REAL NOT NULL, user_id TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS escalations_answer ON escalations(answer_id)",
        """CREATE TABLE IF NOT EXISTS question_vectors (
            question_key TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (question_key, model))""",
        "CREATE TABLE IF NOT EXISTS store_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]),
]
LATEST = STEPS[-1][0]
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
# A file from before versions were kept may lack a column step 1 has (added in place then).
UNVERSIONED_COLUMNS = {("answers", "conversation"): "ALTER TABLE answers ADD COLUMN conversation TEXT"}
