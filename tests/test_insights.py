"""Insights on the real stack: questions answered, abstained, rated and escalated through the
chat flow (sample docs in LanceDB, the bundled embedder), then read back as figures, coverage
gaps, a digest posted through the platform notifier, a PNG chart and an HTML page rendered by
headless Chromium. The feedback store's clock is handed in so that two weeks can be seeded."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

import bot.app.scheduler as scheduler_module
from bot.app.application import App
from bot.app.config import load_settings
from bot.app.coverage_gaps import MeaningGroups, stored_as
from bot.app.insights_report import chart_png
from bot.app.insights_service import CHART_FILE, WeeklyDigest
from bot.feedback import FeedbackStore, UnknownAnswer, question_key
from bot.types import Answer, Citation, Question
from knowledge.embedding import Embedder
from tests.fakes import ScriptedGenerator

REPO = Path(__file__).resolve().parents[1]
DAY = 86_400.0
CHROMIUM = shutil.which("chromium")
OKTA = ["How do I set up SSO with Okta?", "Can I log in with Okta single sign-on?", "Okta SSO configuration steps"]
# answered from the API page, then rated 👎 ("Does Driftwood support Okta SAML login?" abstains since the sample's
# two-factor page reads its numbered steps: the docs never name Okta)
OKTA_ANSWERED = "Does Driftwood support SAML login with Okta?"
LIMITS_WRONG = "The limits changed last month."  # what the 👎 on the rate-limits answer said


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Seeded:
    """An app whose store holds two weeks of questions asked through the chat flow."""

    def __init__(self, app: App, clock: Clock, data: Path) -> None:
        self.app, self.clock, self.data = app, clock, data
        self.ids: dict[str, str] = {}

    def ask(self, text: str, user: str = "slack:U1", abstains: bool | None = None) -> str:
        reply = asyncio.run(self.app.chat.ask(Question(text=text, user_id=user, channel_id="C1", platform="slack")))
        assert reply.answer is not None and reply.answer_id
        if abstains is not None:
            assert reply.answer.abstained is abstains, text
        self.clock.now += 60
        self.ids[text] = reply.answer_id
        return reply.answer_id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, core: App) -> Seeded:
    data = tmp_path_factory.mktemp("insights")
    clock = Clock()
    real_now = clock.now
    app = App(load_settings(None, data_dir=data, admins=["slack:UADMIN"],
                            insights={"digest_channel": "slack:CADMINS"}),
              embedder=embedder, generator=ScriptedGenerator(), store=core.knowledge.store,  # the session's index
              retriever=core.knowledge.retriever, feedback=FeedbackStore(data / "feedback.sqlite", clock=clock))
    world = Seeded(app, clock, data)
    clock.now = real_now - 10 * DAY  # the week before
    for text in ("How much does the Team plan cost?", "Which macOS versions are supported?",
                 "Is there a .deb package for Ubuntu?"):
        world.ask(text, abstains=False)
    world.ask("Is there a Terraform provider?", abstains=True)
    app.chat.rate(world.ids["How much does the Team plan cost?"], "slack:U1", +1)
    clock.now = real_now - 2 * DAY  # this week
    for text in ("How much does the Team plan cost?", "What does error DW-1042 mean?", "How do I get a refund?",
                 "What are the API rate limits?", OKTA_ANSWERED):
        world.ask(text, abstains=False)
    for text in [*OKTA, "Do you offer an Android app?", "How do I change the colour theme?"]:
        world.ask(text, abstains=True)
    team = world.ids["How much does the Team plan cost?"]
    for answer_id, user, rating in [(team, "slack:U1", -1), (team, "slack:U1", +1), (team, "slack:U2", +1),
                                    (world.ids["How do I get a refund?"], "slack:U3", +1),
                                    (world.ids[OKTA_ANSWERED], "slack:U4", -1),
                                    (world.ids["What are the API rate limits?"], "slack:U5", -1)]:
        assert app.chat.rate(answer_id, user, rating).recorded  # U1 changes their mind: one 👍 counts
    assert app.chat.comment(world.ids["What are the API rate limits?"], "slack:U5", LIMITS_WRONG, "", by_admin=False) is None
    app.chat.escalate(world.ids[OKTA_ANSWERED], "slack:U4")
    app.chat.escalate(world.ids["Do you offer an Android app?"], "slack:U6")
    clock.now = real_now
    return world


def figures_of(report: dict) -> dict:
    return {name: tuple(round(v, 4) for v in (f["value"], f["previous"], f["change"]))
            for name, f in report["figures"].items() if name != "median_answer_ms"}


EXPECTED_FIGURES = {
    "questions": (10, 4, 6), "answer_rate": (0.5, 0.75, -0.25), "abstention_rate": (0.5, 0.25, 0.25),
    "thumbs_up": (3, 1, 2), "thumbs_down": (2, 0, 2), "thumbs_up_rate": (0.6, 1.0, -0.4),
    "thumbs_down_rate": (0.4, 0.0, 0.4), "escalations": (2, 0, 2),
}


def test_the_figures_and_gaps_count_what_was_asked_answered_rated_and_escalated(seeded: Seeded) -> None:
    report = seeded.app.insights.report("7d").to_json()
    assert figures_of(report) == EXPECTED_FIGURES
    median = report["figures"]["median_answer_ms"]
    assert median["value"] > 0 and median["previous"] > 0  # what the askers waited, measured by the chat flow
    gaps = [(g["questions"], g["unanswered"], g["thumbs_down"], g["escalated"]) for g in report["gaps"]]
    assert gaps == [(4, 3, 1, 1), (1, 1, 0, 1), (1, 1, 0, 0), (1, 0, 1, 0)]
    okta, android, colour, limits = report["gaps"]
    assert okta["name"] in [*OKTA, OKTA_ANSWERED] and set(okta["examples"]) < {*OKTA, OKTA_ANSWERED}
    assert len(okta["examples"]) == 3
    assert (android["name"], android["closest_page"]["source"]) == ("Do you offer an Android app?", "api/webhooks.rst")
    assert colour["name"] == "How do I change the colour theme?"
    assert (limits["name"], limits["closest_page"]["source"]) == ("What are the API rate limits?", "api/rate-limits.md")
    assert [(p["source"], p["thumbs_down"], p["comments"]) for p in report["down_rated_pages"]] == [
        ("api/authentication.md", 1, []), ("api/rate-limits.md", 1, [LIMITS_WRONG])]
    assert [d["questions"] for d in report["days"]][-3] == 10 and sum(d["questions"] for d in report["days"]) == 10
    assert "Terraform" not in json.dumps(report["gaps"])  # last week's gap is not this week's


def test_paraphrases_of_one_missing_topic_form_one_group_and_unrelated_questions_do_not(tmp_path, embedder) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    texts = ["Can I export a folder as a PDF?", "How do I save my notes as PDF files?", "Is PDF export supported?",
             "Is there a dark mode?", "Can I pay with PayPal?", "Do you support Okta SSO?",
             "Does the desktop app have a night theme?"]
    keys = [question_key(t) for t in texts]
    groups = MeaningGroups(store, lambda: embedder)(texts, keys)
    named = sorted(sorted(texts[i] for i in group) for group in groups)
    assert named == sorted([sorted(texts[:3]), ["Can I pay with PayPal?"], ["Do you support Okta SSO?"],
                            ["Does the desktop app have a night theme?", "Is there a dark mode?"]])
    assert set(store.vectors(keys, stored_as(embedder.model_id))) == set(keys)  # embedded once, kept for later


def test_the_weekly_digest_is_scheduled_and_posts_the_summary_with_the_chart(seeded: Seeded) -> None:
    posted: list[tuple[str, str]] = []
    files: list[tuple[str, str, str, bytes]] = []
    seeded.app.notifier.register("slack", lambda channel, text: posted.append((channel, text)))
    seeded.app.notifier.register("discord", lambda channel, text: posted.append((channel, text)),
                                 lambda channel, text, name, data: files.append((channel, text, name, data)))
    schedule = seeded.app.schedule()
    try:
        schedule.start()
        job = schedule.scheduler.get_job(scheduler_module.DIGEST_JOB_ID)
        assert job.func is scheduler_module.run_scheduled_digest
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "9", "0")  # "0 9 * * 1"
        scheduler_module.run_scheduled_digest()  # exactly what APScheduler calls on Monday at 09:00
        assert seeded.app.status_report.status()["next_insights_digest"].startswith(
            str(schedule.next_digest().astimezone().year))  # readable from any process
    finally:
        schedule.shutdown()
    assert [channel for channel, _ in posted] == ["CADMINS"]  # Slack: the text (no file scope asked for)
    lines = posted[0][1].splitlines()
    assert lines[0].startswith("This week: 10 questions, 50% answered (-25 pts), 👍 3 / 👎 2, 2 asked for a person, "
                               "median answer ")
    assert lines[1] == "Previous period: 4 questions, 75% answered, 👍 1 / 👎 0, 0 asked for a person."
    assert lines[2] == "Top gaps:" and lines[3].startswith("1. ") and "(4 questions, e.g. “" in lines[3]
    assert lines[4].startswith("2. Do you offer an Android app? (1 question; closest page: api/webhooks.rst)")
    assert lines[-1] == f"Most 👎: api/authentication.md (1), api/rate-limits.md (1, “{LIMITS_WRONG}”)"

    WeeklyDigest(seeded.app.insights, seeded.app.notifier, "discord:4242", 7).run()
    (channel, text, name, png), = files  # Discord takes files: the chart rides along
    assert (channel, text, name) == ("4242", posted[0][1], CHART_FILE) and png.startswith(b"\x89PNG")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "insights", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_cli_report_as_json_png_and_an_html_page_chromium_renders(seeded: Seeded, tmp_path: Path) -> None:
    png_file, html_file = tmp_path / "insights.png", tmp_path / "insights.html"
    run = cli(seeded.data, "--since", "7d", "--json", "--png", str(png_file), "--html", str(html_file))
    assert run.returncode == 0, run.stderr
    assert figures_of(json.loads(run.stdout)) == EXPECTED_FIGURES
    width, height = png_size(png_file.read_bytes())
    assert 1000 <= width <= 2000 and 400 <= height <= 1000 and png_file.stat().st_size > 20_000
    page = html_file.read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page  # nothing from outside
    assert 'src="data:image/png;base64,' in page

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/install-system-packages.sh installs it)")
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", html_file.as_uri()], capture_output=True, text=True, timeout=120)
    soup = BeautifulSoup(dom.stdout, "html.parser")
    rows = {r.th.get_text(): [td.get_text() for td in r.find_all("td")] for r in soup.select("#figures tr")[1:]}
    assert rows["Questions"] == ["10", "4", "+6"] and rows["Answered"] == ["50%", "75%", "-25 pts"]
    assert rows["Thumbs up"] == ["3", "1", "+2"] and rows["Thumbs down"] == ["2", "0", "+2"]
    assert rows["Asked for a person"] == ["2", "0", "+2"]
    gaps = [[td.get_text(" ", strip=True) for td in r.find_all("td")] for r in soup.select("#gaps tr")[1:]]
    assert [g[2:6] for g in gaps] == [["4", "3", "1", "1"], ["1", "1", "0", "1"], ["1", "1", "0", "0"],
                                      ["1", "0", "1", "0"]]
    pages = [[td.get_text(" ", strip=True) for td in r.find_all("td")] for r in soup.select("#pages tr")[1:]]
    assert [p[1:] for p in pages] == [["1", "1", ""], ["1", "1", LIMITS_WRONG]]
    assert soup.find("img")["src"].startswith("data:image/png;base64,")
    shot = tmp_path / "shot.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1200,1600", html_file.as_uri()],
                   capture_output=True, timeout=120)
    assert png_size(shot.read_bytes()) == (1200, 1600) and shot.stat().st_size > 50_000


def test_a_bad_since_gets_one_line_and_no_report(seeded: Seeded) -> None:
    run = cli(seeded.data, "--since", "last tuesday")
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == ("Error: --since 'last tuesday': use a span back from now (7d, 24h, 2w) "
                          "or a past date (2026-11-30)\n")
    run = cli(seeded.data, "--since", "1000000d")
    assert run.returncode == 1 and run.stderr == "Error: --since '1000000d': that reaches back further than dates go\n"


def test_a_damaged_store_is_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "feedback.sqlite").write_text("not a database, only text long enough to look like a header\n")
    run = cli(tmp_path)
    assert run.returncode == 1 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith(f"Error: the feedback database {tmp_path / 'feedback.sqlite'} cannot be used")


def test_retention_deletes_old_questions_with_their_ratings_escalations_and_vectors(tmp_path: Path) -> None:
    clock = Clock()
    store = FeedbackStore(tmp_path / "feedback.sqlite", retention_days=30, clock=clock)
    answer = Answer(answer="I could not find that.", abstained=True,
                    citations=[Citation(n=1, source="billing/plans.md", title="Plans", score=0.3)])
    old = store.record_answer(Question(text="Is there a Terraform provider?", user_id="slack:U1"), answer)
    store.rate(old, "slack:U1", -1)
    store.escalate(old, "slack:U1")
    store.save_vectors({question_key("Is there a Terraform provider?"): b"\0" * 16}, "m")
    clock.now += 29 * DAY
    kept = store.record_answer(Question(text="Do you have an Android app?", user_id="slack:U2"), answer)
    assert store.forget_expired() == 0
    clock.now += 2 * DAY  # the first question is 31 days old, the second 2
    assert store.forget_expired() == 1
    with pytest.raises(UnknownAnswer):
        store.get(old)
    assert store.get(kept).question == "Do you have an Android app?"
    db = store._db
    assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM escalations").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM question_vectors").fetchone()[0] == 0


FIRST_RELEASE = """
CREATE TABLE answers (id TEXT PRIMARY KEY, created_at REAL NOT NULL, platform TEXT NOT NULL, channel TEXT,
    user_id TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, abstained INTEGER NOT NULL,
    sources TEXT NOT NULL, context TEXT NOT NULL, voice TEXT);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL REFERENCES answers(id),
    created_at REAL NOT NULL, user_id TEXT NOT NULL, rating INTEGER, comment TEXT, correction TEXT,
    by_admin INTEGER NOT NULL DEFAULT 0);
CREATE TABLE deliveries (id TEXT PRIMARY KEY, at REAL NOT NULL);
INSERT INTO answers VALUES ('a1', 1, 'slack', 'C1', 'slack:UALICE', 'How much is Team?', 'It is $8 [1].', 0,
    '[{"n": 1, "source": "billing/plans.md", "title": "Plans", "url": null, "score": 0.8}]', '', NULL);
INSERT INTO feedback (answer_id, created_at, user_id, rating) VALUES ('a1', 2, 'slack:UBOB', 1);
"""


LAST_RELEASE = FIRST_RELEASE.replace("voice TEXT);", "voice TEXT, conversation TEXT);").replace(
    "'', NULL);", "'', NULL, 'slack:C1:1.0');") + "CREATE INDEX answers_conversation ON answers(conversation);"


@pytest.mark.parametrize("release", [FIRST_RELEASE, LAST_RELEASE], ids=["first-release", "last-release"])
def test_a_feedback_file_from_an_earlier_release_is_migrated_in_place_keeping_every_row(tmp_path: Path,
                                                                                       release: str) -> None:
    path = tmp_path / "feedback.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(release)
    store = FeedbackStore(path, retention_days=0)
    assert store.counts() == {"answers": 1, "thumbs_up": 1, "thumbs_down": 0}
    stored = store.get("a1")
    assert (stored.question, stored.user_id) == ("How much is Team?", store.stored_user_id("slack:UALICE"))
    assert stored.user_id.startswith("h:")  # ids written in plain before are hashed now
    store.rate("a1", "slack:UBOB", -1)  # Bob's earlier 👍 is found under his hashed id and replaced
    assert store.counts() == {"answers": 1, "thumbs_up": 0, "thumbs_down": 1}
    assert store._db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    store.close()
    again = FeedbackStore(path, retention_days=0)  # opening again changes nothing
    assert again.counts() == {"answers": 1, "thumbs_up": 0, "thumbs_down": 1}
    again.close()


def test_user_ids_are_stored_as_given_when_the_setting_says_so(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite", hash_user_ids=False)
    answer_id = store.record_answer(Question(text="Hi?", user_id="slack:UALICE"), Answer(answer="Hi", abstained=True))
    assert store.get(answer_id).user_id == "slack:UALICE"


def test_the_chart_of_an_empty_period_is_still_a_picture(tmp_path: Path) -> None:
    from bot.insights import build_insights

    store = FeedbackStore(tmp_path / "feedback.sqlite")
    empty = build_insights(store, lambda texts, keys: [], time.time() - 7 * DAY, time.time())
    assert empty.summary().startswith("This week: 0 questions, – answered, 👍 0 / 👎 0")
    assert png_size(chart_png(empty))[0] >= 1000
