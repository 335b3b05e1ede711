"""`supportbot insights` over 100,000 stored questions: time and memory, target under 10 s.

The store is filled like a busy deployment's: every question in the report's window (the
worst case: the whole table is read), 80% answered, 20% abstained, about one answer in ten
rated (70% 👍), 2% "talk to a human"; the unanswered ones repeat a few thousand distinct
wordings of some forty missing topics. Every question's vector is stored as the bot stores
it at answer time (warm).
Printed beside it:
  - cold: the same report with no stored vector (the first report after upgrading from a
    release that kept none): every distinct gap question is embedded;
  - bare rates of this machine: reading the rows alone (one SELECT, no joins), and the
    embedder's questions per second.
Grouping quality is printed for the synthetic gaps (the set the grouping was chosen on) and
for held-out paraphrases written apart from it (9 topics), against one plain leader pass
on the raw vectors: purity (questions in a group sharing its main topic) and completeness
(a topic's questions in its largest group).
Each report runs as the real CLI process (`python -m bot insights --json`); its wall time
includes starting Python (and loading the embedder when it has anything to embed), its peak
memory is that process's maximum resident set (GNU time's %M).

Run: .venv/bin/python -m tests.benchmarks.bench_insights [--questions 100000] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bot.feedback import FeedbackStore, question_key  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SUBJECTS = ["Okta SSO", "Azure AD sign-in", "Terraform", "an Android app", "an iPhone app", "dark mode", "PDF export",
            "CSV import", "paying with PayPal", "SAML", "LDAP sync", "audit logs", "custom domains", "GDPR requests",
            "HIPAA compliance", "an on-premise server", "Jira integration", "Zapier", "two-way calendar sync",
            "offline mode", "a Linux ARM build", "SCIM provisioning", "IP allow-lists", "data residency in the EU",
            "a status page", "keyboard shortcuts", "bulk user import", "a read-only role", "email notifications",
            "file versioning beyond 30 days", "a public API for reports", "webhook retries", "Slack huddles",
            "exporting to Excel", "a Chrome extension", "single sign-out", "password policies", "custom fonts",
            "video previews", "Dropbox migration"]
TEMPLATES = ["How do I set up {s}?", "Does Driftwood support {s}?", "Is {s} available on the Team plan?",
             "Where are the docs for {s}?", "{s} is not working, what should I do?", "Can I use {s} with the API?"]
OPENINGS = ["", "Hi, ", "Quick question: ", "Hello team - ", "Hey! "]
ENDINGS = ["", " Thanks", " thx", " (urgent)"]
HELD_OUT = [  # (question, topic): paraphrases written apart from SUBJECTS / TEMPLATES
    ("How do I connect Driftwood to Salesforce?", "sf"), ("Is there a Salesforce integration?", "sf"),
    ("Can Driftwood sync contacts from Salesforce?", "sf"), ("Where do I find the Salesforce connector?", "sf"),
    ("Can I restore a file I deleted two months ago?", "restore"), ("How do I recover files deleted last quarter?", "restore"),
    ("Is there a way to undelete very old files?", "restore"), ("Does Driftwood work on Chromebooks?", "chromeos"),
    ("Is there a ChromeOS client?", "chromeos"), ("Can I install the app on a Chromebook?", "chromeos"),
    ("What is your uptime SLA?", "sla"), ("Do you guarantee 99.9% availability?", "sla"),
    ("Is there a service level agreement?", "sla"), ("Can I set a different language for the interface?", "lang"),
    ("How do I switch the app to German?", "lang"), ("Is the UI available in French?", "lang"),
    ("How many devices can one user connect?", "devices"), ("Is there a limit on devices per account?", "devices"),
    ("Can I share a folder with someone outside my company?", "external"),
    ("How do I invite an external guest to a folder?", "external"),
    ("Does Driftwood support two-way sync with Google Drive?", "gdrive"),
    ("Can I mirror my Google Drive into Driftwood?", "gdrive"), ("Do you support Okta SSO?", "okta"),
    ("How do I log in with Okta?", "okta"), ("Is SAML single sign-on with Okta available?", "okta"),
]
PAGES = ["billing/plans.md", "account/team-admin.md", "api/authentication.md", "setup/quickstart.md",
         "troubleshooting/error-codes.md", "api/webhooks.rst", "setup/install-linux.md", "account/sharing.md"]


def answered_questions() -> list[str]:
    lines = (REPO / "knowledge" / "sample_qa" / "driftwood_qa.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def fill(path: Path, questions: int, now: float, seed: int = 7) -> tuple[list[str], dict[str, int]]:
    """Rows as the chat flow records them (written in bulk: the benchmark is the report)."""
    rng = random.Random(seed)
    store = FeedbackStore(path)  # creates the latest schema and the hashing key
    store.counts()
    store.close()
    known = answered_questions()
    answers, feedback, escalations, gap_texts = [], [], [], set()
    counts = {"answered": 0, "abstained": 0, "up": 0, "down": 0, "escalated": 0}
    for n in range(questions):
        at = now - rng.uniform(60, 7 * 86_400 - 60)
        abstained = rng.random() < 0.20
        if abstained:
            text = (rng.choice(OPENINGS) + rng.choice(TEMPLATES).format(s=rng.choice(SUBJECTS))
                    + rng.choice(ENDINGS)).strip()
            gap_texts.add(text)
        else:
            text = rng.choice(known)
        pages = rng.sample(PAGES, rng.randint(1, 3))
        sources = json.dumps([{"n": i, "source": p, "title": p, "url": None, "score": round(rng.uniform(0.2, 0.9), 3)}
                              for i, p in enumerate(pages, 1)])
        answer_id = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
        answers.append((answer_id, at, "slack", "C1", f"h:{n % 5000:032x}", text, "An answer [1].", int(abstained),
                        sources, "", None, None, rng.uniform(800, 4000), question_key(text)))
        counts["abstained" if abstained else "answered"] += 1
        if not abstained and rng.random() < 0.10:
            rating = 1 if rng.random() < 0.7 else -1
            feedback.append((answer_id, at + 30, f"h:{n % 5000:032x}", rating))
            counts["up" if rating > 0 else "down"] += 1
        if rng.random() < 0.02:
            escalations.append((answer_id, at + 40, f"h:{n % 5000:032x}"))
            counts["escalated"] += 1
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO answers (id, created_at, platform, channel, user_id, question, answer, abstained, "
                       "sources, context, voice, conversation, answer_ms, question_key) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", answers)
        db.executemany("INSERT INTO feedback (answer_id, created_at, user_id, rating) VALUES (?, ?, ?, ?)", feedback)
        db.executemany("INSERT INTO escalations (answer_id, created_at, user_id) VALUES (?, ?, ?)", escalations)
    return sorted(gap_texts | set(known)), counts


def store_answer_time_vectors(path: Path, texts: list[str]) -> float:
    """What the bot keeps at answer time; returns questions/s embedded."""
    from bot.app.coverage_gaps import VECTOR_DTYPE, stored_as
    from knowledge.embedding import Embedder

    embedder = Embedder()
    embedder.embed_documents(texts[:32])  # warm
    started = time.perf_counter()
    vectors = embedder.embed_documents(texts)
    rate = len(texts) / (time.perf_counter() - started)
    store = FeedbackStore(path)
    store.save_vectors({question_key(t): v.astype(VECTOR_DTYPE).tobytes() for t, v in zip(texts, vectors)},
                       stored_as(embedder.model_id))
    store.close()
    return rate


def grouping_quality(items: list[tuple[str, str]]) -> str:
    """Purity and completeness of the product's grouping, beside one plain leader pass."""
    from collections import Counter

    import numpy as np

    from bot.app.coverage_gaps import SAME_TOPIC, group_by_meaning, leader_groups
    from knowledge.embedding import Embedder

    topics = [topic for _, topic in items]
    vectors = Embedder().embed_documents([text for text, _ in items])

    def scored(groups: list[list[int]]) -> str:
        purity = sum(Counter(topics[i] for i in g).most_common(1)[0][1] for g in groups) / len(items)
        complete = np.mean([max(sum(topics[i] == t for i in g) for g in groups) / topics.count(t)
                            for t in set(topics)])
        return f"{len(groups)} groups, purity {purity:.2f}, completeness {complete:.2f}"

    return (f"{len(items)} questions on {len(set(topics))} topics: {scored(group_by_meaning(vectors))} "
            f"(baseline, one leader pass on raw vectors: {scored(leader_groups(vectors, SAME_TOPIC))})")


def synthetic_gaps(seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    items = [((rng.choice(OPENINGS) + template.format(s=subject) + rng.choice(ENDINGS)).strip(), subject)
             for subject in SUBJECTS for template in TEMPLATES for _ in range(2)]
    items = list(dict.fromkeys(items))
    rng.shuffle(items)
    return items


def bare_read_s(path: Path) -> float:
    started = time.perf_counter()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, created_at, question, abstained, answer_ms, sources FROM answers").fetchall()
    assert rows
    return time.perf_counter() - started


def report(data: Path) -> tuple[float, float, dict]:
    """The CLI as a user runs it, under GNU time: (wall seconds, peak RSS in MB, the JSON)."""
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kb=%M", sys.executable, "-m", "bot", "--data-dir", str(data),
                          "insights", "--since", "7d", "--json"], cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode:
        raise SystemExit(run.stderr)
    peak_kb = int(run.stderr.rsplit("peak_rss_kb=", 1)[1].split()[0])
    return wall, peak_kb / 1024, json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold baseline (minutes on a busy box)")
    args = parser.parse_args()
    print(f"grouping, chosen on: {grouping_quality(synthetic_gaps())}")
    print(f"grouping, held out:  {grouping_quality(HELD_OUT)}")
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = Path(tmp) / "cold", Path(tmp) / "warm"
        cold.mkdir()
        now = time.time()
        gap_texts, counts = fill(cold / "feedback.sqlite", args.questions, now)
        warm.mkdir()
        for suffix in ("", "-wal", "-shm"):
            source = cold / f"feedback.sqlite{suffix}"
            if source.exists():
                (warm / source.name).write_bytes(source.read_bytes())
        rate = store_answer_time_vectors(warm / "feedback.sqlite", gap_texts)
        print(f"stored: {args.questions:,} questions in the window ({counts['answered']:,} answered, "
              f"{counts['abstained']:,} abstained; {len(gap_texts):,} distinct wordings, {counts['up']:,} 👍, "
              f"{counts['down']:,} 👎, {counts['escalated']:,} escalations)")
        print(f"bare: reading the rows alone {bare_read_s(warm / 'feedback.sqlite'):.2f} s; "
              f"embedder {rate:,.0f} questions/s")
        wall, peak, out = report(warm)
        figures = out["figures"]
        print(f"insights (vectors kept at answer time): {wall:.2f} s, peak RSS {peak:,.0f} MB "
              f"(target < 10 s) -> {figures['questions']['value']:,} questions, "
              f"answer rate {figures['answer_rate']['value']:.3f}, {len(out['gaps'])} gaps shown, "
              f"top: {out['gaps'][0]['name']!r} ({out['gaps'][0]['questions']:,})")
        assert figures["questions"]["value"] == args.questions and figures["thumbs_down"]["value"] == counts["down"]
        if args.no_cold:
            return
        wall, peak, _ = report(cold)
        print(f"baseline, cold (no vector stored, every gap wording embedded): {wall:.2f} s, peak RSS {peak:,.0f} MB")
        wall, peak, _ = report(cold)
        print(f"cold store, second report (vectors kept by the first): {wall:.2f} s")


if __name__ == "__main__":
    main()
