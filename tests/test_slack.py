"""The Slack app in HTTP mode on 127.0.0.1, driven by correctly signed event, command and
interaction requests, against a local mock Slack Web API. The core behind it is real: the
sample docs in LanceDB, the bundled embedder and the bundled generator."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from adapters.slack import blocks as kit
from adapters.slack.bot import COMMANDS, EVENTS, PLACEHOLDER, SCOPES
from adapters.slack.mrkdwn import to_mrkdwn
from bot.work_queue import BUSY_TEXT, WorkQueue
from bot.app.application import App
from tests.slack_mock import (
    BOT_TOKEN,
    BOT_USER,
    FORM,
    JSON,
    SIGNING_SECRET,
    SlackWorld,
    action_body,
    command_body,
    event_body,
    send,
    view_submission_body,
)



@pytest.fixture()
def slack(core: App):
    with SlackWorld(core, WorkQueue(capacity=8)) as world:
        yield world


def actions_of(blocks: list[dict]) -> dict[str, str]:
    found = [b for b in blocks if b["type"] == "actions"]
    return {e["action_id"]: e["value"] for e in found[0]["elements"]} if found else {}


def context_text(blocks: list[dict]) -> str:
    return " ".join(e["text"] for b in blocks if b["type"] == "context" for e in b["elements"])


def test_a_mention_is_answered_in_its_thread_with_sources_and_buttons(slack: SlackWorld) -> None:
    status, _, seconds = slack.mention("How much does the Team plan cost?", ts="1700000000.000100")
    assert status == 200 and seconds < 3
    slack.api.wait_for(lambda calls: any(c.method == "chat.update" and c.body.get("blocks") for c in calls))

    placeholder = slack.api.of("chat.postMessage")[0].body
    assert placeholder["channel"] == "C0001" and placeholder["thread_ts"] == "1700000000.000100"
    assert placeholder["text"] == PLACEHOLDER
    final = slack.finals()[-1].body
    assert final["ts"] == "1800000000.000001"  # the placeholder, edited in place
    sections = [b["text"]["text"] for b in final["blocks"] if b["type"] == "section"]
    assert sections and all(sections) and final["text"]
    assert context_text(final["blocks"]).startswith("Sources: [1] Plans and pricing (billing/plans.md)")
    buttons = actions_of(final["blocks"])
    assert set(buttons) == {kit.UP, kit.DOWN, kit.HUMAN}
    stored = slack.core.feedback.get(buttons[kit.UP])
    assert stored.question == "How much does the Team plan cost?" and stored.user_id == slack.core.feedback.stored_user_id("slack:UALICE")
    assert stored.sources[0]["source"] == "billing/plans.md" and "[1] Plans and pricing" in stored.context


def test_a_follow_up_in_the_thread_needs_no_mention_and_other_threads_are_left_alone(slack: SlackWorld) -> None:
    slack.mention("How do I install Driftwood on Windows?", ts="1700000000.000200")
    slack.api.wait_for(lambda calls: len(slack.finals()) == 1)
    slack.event({"type": "message", "channel_type": "channel", "user": "UALICE", "text": "and on macOS?",
                 "ts": "1700000000.000300", "thread_ts": "1700000000.000200", "channel": "C0001"})
    slack.event({"type": "message", "channel_type": "channel", "user": "UBOB", "text": "lunch?",
                 "ts": "1700000000.000500", "thread_ts": "1700000000.000400", "channel": "C0001"})
    slack.api.wait_for(lambda calls: len(slack.finals()) == 2)
    posts = slack.api.of("chat.postMessage")
    assert [p.body["thread_ts"] for p in posts] == ["1700000000.000200", "1700000000.000200"]
    follow_up = slack.finals()[1].body
    assert "install-macos.md" in context_text(follow_up["blocks"])  # the thread was its memory


def test_after_a_restart_follow_ups_in_answered_threads_still_need_no_mention(core) -> None:
    with SlackWorld(core, WorkQueue()) as before:
        before.mention("How do I get a refund?", ts="1700000000.000250", channel="CRESTART")
        before.api.wait_for(lambda calls: len(before.finals()) == 1)
    with SlackWorld(core, WorkQueue()) as after:  # a new process: nothing in memory, same data dir
        after.event({"type": "message", "channel_type": "channel", "user": "UALICE", "text": "and for annual plans?",
                     "ts": "1700000000.000260", "thread_ts": "1700000000.000250", "channel": "CRESTART"})
        after.api.wait_for(lambda calls: len(after.finals()) == 1)
        assert after.api.of("chat.postMessage")[0].body["thread_ts"] == "1700000000.000250"


def test_a_direct_message_is_answered_in_the_dm(slack: SlackWorld) -> None:
    slack.event({"type": "message", "channel_type": "im", "user": "UALICE", "text": "How do I get a refund?",
                 "ts": "1700000000.000600", "channel": "D0001"})
    slack.api.wait_for(lambda calls: len(slack.finals("D0001")) == 1)
    assert slack.api.of("chat.postMessage")[0].body["channel"] == "D0001"
    assert "refunds" in context_text(slack.finals("D0001")[0].body["blocks"])


def test_ask_answers_privately_with_a_button_to_post_it(slack: SlackWorld) -> None:
    status, ack, seconds = slack.command("/ask", "What does error DW-1042 mean?", "UALICE", "ask1")
    assert status == 200 and seconds < 3
    assert json.loads(ack) == {"response_type": "ephemeral", "text": PLACEHOLDER}
    reply = slack.api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))[-1].body
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is True
    assert "error-codes.md" in context_text(reply["blocks"])
    buttons = actions_of(reply["blocks"])
    assert set(buttons) == {kit.POST, kit.UP, kit.DOWN, kit.HUMAN}
    assert slack.api.of("chat.postMessage") == []  # nothing public yet

    send(slack.served.url, action_body(kit.POST, buttons[kit.POST], "UALICE", slack.api.response_url("post")), FORM)
    slack.api.wait_for(lambda calls: len([c for c in calls if c.method == "response_url"]) == 2)
    posted = slack.api.of("chat.postMessage")[0].body
    assert posted["channel"] == "C0001" and posted["blocks"][0]["text"]["text"].startswith(
        "<@UALICE> asked: What does error DW-1042 mean?")
    deleted = slack.api.of("response_url")[-1].body
    assert deleted["path"] == "/response/post" and deleted["delete_original"] is True


def test_forged_signatures_and_stale_timestamps_get_401_and_no_answer(slack: SlackWorld) -> None:
    body = event_body({"type": "app_mention", "user": "UEVE", "text": f"<@{BOT_USER}> hi", "ts": "1.1",
                       "channel": "C0001"}, "EvForged")
    assert send(slack.served.url, body, JSON, forged=True)[0] == 401
    assert send(slack.served.url, body, JSON, timestamp=int(time.time()) - 600)[0] == 401
    wrong_secret = command_body("/supportbot", "reindex", "UADMIN", slack.api.response_url("x"))
    assert send(slack.served.url, wrong_secret, FORM, secret="not-the-signing-secret-at-all")[0] == 401
    assert slack.api.calls == []


def test_a_non_admin_reindex_is_refused_and_runs_nothing(slack: SlackWorld) -> None:
    runs = len(slack.core.index_ops.history.runs())
    status, ack, _ = slack.command("/supportbot", "reindex", "UGUEST", "guest")
    assert status == 200
    reply = slack.api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))[-1].body
    assert reply["text"] == "Sorry, /supportbot reindex is for admins only." and reply["response_type"] == "ephemeral"
    assert len(slack.core.index_ops.history.runs()) == runs


def test_an_admin_reindex_runs_and_reports(slack: SlackWorld) -> None:
    runs = len(slack.core.index_ops.history.runs())
    slack.command("/supportbot", "reindex", "UADMIN", "admin")
    reply = slack.api.wait_for(lambda calls: any(c.method == "response_url" and c.body["text"].startswith("Index v")
                                                 for c in calls))[-1].body
    assert reply["text"].startswith("Index v1: 20 documents, ") and reply["replace_original"] is True
    assert len(slack.core.index_ops.history.runs()) == runs + 1
    assert slack.core.index_ops.history.last().started_by == "slack:UADMIN"


def test_admins_can_come_from_a_user_group(core: App) -> None:
    with SlackWorld(core, WorkQueue(), admin_group="S0ADMINS") as slack:
        slack.api.group_members = ["UGROUPIE"]
        slack.command("/supportbot", "status", "UGROUPIE", "status")
        reply = slack.api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))[-1].body
        assert reply["text"].startswith("```index version: 1\n")
        assert slack.api.of("usergroups.users.list")[0].body == {"usergroup": "S0ADMINS"}


def test_thumbs_down_stores_feedback_and_asks_what_was_wrong(slack: SlackWorld) -> None:
    slack.mention("How long do you keep deleted files?", ts="1700000000.000700")
    final = slack.api.wait_for(lambda calls: len(slack.finals()) == 1) and slack.finals()[0].body
    answer_id = actions_of(final["blocks"])[kit.DOWN]
    send(slack.served.url, action_body(kit.DOWN, answer_id, "UALICE", slack.api.response_url("down"),
                                       thread_ts="1700000000.000700"), FORM)
    opened = slack.api.wait_for(lambda calls: any(c.method == "views.open" for c in calls))
    view = [c for c in opened if c.method == "views.open"][0].body["view"]
    assert view["callback_id"] == kit.FEEDBACK_MODAL and view["private_metadata"].startswith(answer_id + "|")
    assert [b["block_id"] for b in view["blocks"]] == [kit.WRONG_BLOCK]  # no correction field for non-admins
    status, _, _ = send(slack.served.url, view_submission_body(view, "UALICE", {
        kit.WRONG_BLOCK: {kit.WRONG_INPUT: {"type": "plain_text_input", "value": "It listed last year's prices."}}}),
        FORM)
    assert status == 200
    db = slack.core.feedback._db
    rows = db.execute("SELECT user_id, rating, comment FROM feedback WHERE answer_id = ? ORDER BY id",
                      (answer_id,)).fetchall()
    alice = slack.core.feedback.stored_user_id("slack:UALICE")  # kept as a keyed hash
    assert rows == [(alice, -1, None), (alice, None, "It listed last year's prices.")]


def test_talk_to_a_human_mentions_the_configured_group_in_the_thread(core: App) -> None:
    with SlackWorld(core, WorkQueue(), human_group="S0HUMANS") as slack:
        send(slack.served.url, action_body(kit.HUMAN, "abc", "UALICE", slack.api.response_url("h"),
                                           thread_ts="1700000000.000800"), FORM)
        post = slack.api.wait_for(lambda calls: any(c.method == "chat.postMessage" for c in calls))[-1].body
        assert post == {**post, "channel": "C0001", "thread_ts": "1700000000.000800",
                        "text": "<!subteam^S0HUMANS>, <@UALICE> would like a person to help with this question."}


def test_talk_to_a_human_is_counted_as_an_escalation_of_its_answer(slack: SlackWorld) -> None:
    slack.mention("Can I sign in with Okta?", ts="1700000000.000850")
    final = slack.api.wait_for(lambda calls: len(slack.finals()) == 1) and slack.finals()[0].body
    answer_id = actions_of(final["blocks"])[kit.HUMAN]
    send(slack.served.url, action_body(kit.HUMAN, answer_id, "UALICE", slack.api.response_url("h"),
                                       thread_ts="1700000000.000850"), FORM)
    slack.api.wait_for(lambda calls: any(c.method == "chat.postMessage" and "would like a person" in c.body["text"]
                                         for c in calls))
    asked = [f for f in slack.core.feedback.answers_between(0, time.time() + 1) if f.id == answer_id]
    assert [(f.question, f.escalations) for f in asked] == [("Can I sign in with Okta?", 1)]


def test_insights_are_for_admins_and_show_the_summary(slack: SlackWorld) -> None:
    slack.command("/supportbot", "insights", "UGUEST", "guest")
    reply = slack.api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))[-1].body
    assert reply["text"] == "Sorry, /supportbot insights is for admins only."
    slack.command("/supportbot", "insights 30d", "UADMIN", "admin")
    replies = slack.api.wait_for(lambda calls: any(c.method == "response_url" and c.body["text"].startswith("Since ")
                                                   for c in calls))
    expected = slack.core.insights.report("30d").summary()
    assert replies[-1].body["text"].splitlines()[0] == expected.splitlines()[0]
    assert f" {slack.core.insights.report('30d').current.questions} questions, " in replies[-1].body["text"]
    slack.command("/supportbot", "insights yesterday", "UADMIN", "admin2")
    bad = slack.api.wait_for(lambda calls: any(c.method == "response_url" and "'yesterday'" in c.body["text"]
                                               for c in calls))
    assert bad[-1].body["text"] == "'yesterday': use a span back from now (7d, 24h, 2w) or a past date (2026-11-30)"


def test_the_digest_is_posted_to_the_admins_channel_with_its_chart_uploaded(slack: SlackWorld) -> None:
    import asyncio

    from bot.app.insights_service import CHART_FILE, WeeklyDigest
    from bot.app.serving import _file_poster, _poster
    from bot.notify import ChannelNotifier

    loop = asyncio.new_event_loop()  # the bot's loop, as in `serve`; the digest runs on the scheduler's thread
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        notifier = ChannelNotifier()
        notifier.register("slack", _poster(slack.bot, loop), _file_poster(slack.bot, loop))
        text = WeeklyDigest(slack.core.insights, notifier, "slack:CADMINS", 7).run()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
    assert text is not None and text.startswith("This week: ")
    (asked,) = slack.api.of("files.getUploadURLExternal")
    (uploaded,) = slack.api.of("upload")
    (completed,) = slack.api.of("files.completeUploadExternal")
    assert asked.body["filename"] == CHART_FILE and int(asked.body["length"]) == len(uploaded.body["data"])
    assert uploaded.body["data"].startswith(b"\x89PNG") and len(uploaded.body["data"]) > 20_000
    assert (completed.body["channel_id"], completed.body["initial_comment"]) == ("CADMINS", text)
    assert slack.api.of("chat.postMessage") == []  # the text rides with the chart, once


def test_a_rate_limited_post_is_retried(slack: SlackWorld) -> None:
    slack.api.rate_limited["chat.postMessage"] = 1
    slack.mention("How do I turn on two-factor authentication?", ts="1700000000.000900")
    slack.api.wait_for(lambda calls: len(slack.finals()) == 1)
    methods = [c.method for c in slack.api.calls if c.method.startswith("chat.postMessage")]
    assert methods == ["chat.postMessage (429)", "chat.postMessage"]
    assert actions_of(slack.finals()[0].body["blocks"])


def test_a_burst_of_mentions_is_acknowledged_in_time_and_none_is_lost(core: App) -> None:
    with SlackWorld(core, WorkQueue(capacity=3)) as slack:
        acks: list[tuple[int, float]] = []
        lock = threading.Lock()

        def mention(i: int) -> None:
            status, _, seconds = slack.mention(f"How do I share a folder? (#{i})", ts=f"1700000001.{i:06d}",
                                               channel=f"CBURST{i:02d}")
            with lock:
                acks.append((status, seconds))

        threads = [threading.Thread(target=mention, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(acks) == 30 and all(status == 200 and seconds < 3 for status, seconds in acks)
        slack.api.wait_for(lambda calls: len(slack.finals()) == 30, timeout=300)
        outcomes = {c.body["channel"]: c.body for c in slack.finals()}
        assert len(outcomes) == 30  # every question got exactly its own ending
        busy = [b for b in outcomes.values() if b["text"] == BUSY_TEXT]
        answered = [b for b in outcomes.values() if actions_of(b.get("blocks") or [])]
        assert len(busy) + len(answered) == 30 and answered and busy


def test_tokens_never_reach_the_logs(slack: SlackWorld, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        slack.mention("How do I create a share link?", ts="1700000000.001000")
        slack.api.wait_for(lambda calls: len(slack.finals()) == 1)
    assert "slack_sdk" in caplog.text or "slack_bolt" in caplog.text  # the libraries did log
    assert BOT_TOKEN not in caplog.text and SIGNING_SECRET not in caplog.text


def test_markdown_becomes_slack_mrkdwn() -> None:
    markdown = ("## Install\n**Bold** and *italic*, [the docs](https://docs.example.com/a) and `a<b`.\n"
                "- one\n- two\n```\nx = 1 & 2\n```\n~~old~~ <script>")
    assert to_mrkdwn(markdown) == (
        "*Install*\n*Bold* and _italic_, <https://docs.example.com/a|the docs> and `a&lt;b`.\n"
        "• one\n• two\n```x = 1 &amp; 2```\n~old~ &lt;script&gt;")


def test_the_manifest_asks_for_exactly_what_the_bot_uses() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "deploy" / "slack-manifest.yaml").read_text())
    settings = manifest["settings"]
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == set(COMMANDS)
    assert {e.split(".")[0] for e in settings["event_subscriptions"]["bot_events"]} == set(EVENTS)
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES
    assert settings["interactivity"]["is_enabled"] is True
    urls = [c["url"] for c in manifest["features"]["slash_commands"]] + [
        settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]]
    assert all(url.endswith("/slack/events") for url in urls)  # Bolt's one path for all three


def test_serve_says_what_is_missing_instead_of_starting_half_configured(tmp_path: Path, clean_env) -> None:
    import subprocess
    import sys

    def serve(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(tmp_path), "serve"],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=300)

    none = serve()
    assert none.returncode == 1 and "no chat platform to serve: set SLACK_BOT_TOKEN" in none.stderr
    socket_mode = serve(SLACK_BOT_TOKEN=BOT_TOKEN)
    assert socket_mode.returncode == 1 and "Slack Socket Mode needs SLACK_APP_TOKEN" in socket_mode.stderr
    http = serve(SLACK_BOT_TOKEN=BOT_TOKEN, SUPPORTBOT_SLACK__MODE="http")
    assert http.returncode == 1 and "Slack HTTP mode needs SLACK_SIGNING_SECRET" in http.stderr
    assert BOT_TOKEN not in none.stderr + socket_mode.stderr + http.stderr


def test_the_log_filter_redacts_secrets_and_token_shapes() -> None:
    import io

    from bot.log_redaction import RedactSecrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([SIGNING_SECRET]))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("token %s and secret %s and app xapp-1-A0001-abcdef123456", BOT_TOKEN, SIGNING_SECRET)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "token [redacted] and secret [redacted] and app [redacted]\n"
