"""Slack under real conditions, through the real HTTP server and a loopback Web API: events
delivered again, mass mentions, a Web API that fails, hostile and oversized requests."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.parse

import pytest

from adapters.slack import blocks as kit
from bot.acl import AccessPolicy
from bot.commands import build_registry
from bot.log_redaction import MAX_MESSAGE_CHARS, RedactSecrets
from bot.work_queue import WorkQueue
from tests.fakes import FixedAnswers
from tests.slack_mock import BOT_USER, FORM, JSON, SlackWorld, action_body, event_body, send

MENTIONS = ("**Tell** <!channel> and <!here|here>, or <!everyone>; <!subteam^SDEVS|@devs> can help, "
            "<!subteam^SHELP> too [1].")


def all_text(calls) -> str:
    return json.dumps([c.body for c in calls])


def mention_event(text: str, ts: str, channel: str = "C0001") -> dict:
    return {"type": "app_mention", "user": "UALICE", "text": f"<@{BOT_USER}> {text}", "ts": ts, "channel": channel,
            "event_ts": ts}


def test_an_event_delivered_again_is_answered_once(core) -> None:
    with SlackWorld(core, WorkQueue()) as slack:
        event = mention_event("How much does the Team plan cost?", ts="1700000100.000100")
        assert slack.event(event, event_id="EvRETRY0001")[0] == 200
        for retry in (1, 2):  # Slack thought the first delivery went unacknowledged
            assert slack.event(event, event_id="EvRETRY0001", retry=retry)[0] == 200
        assert slack.event(event, event_id="EvRETRY0001")[0] == 200  # the same id again, no retry headers
        slack.api.wait_for(lambda calls: len(slack.finals()) == 1)
        time.sleep(1.5)  # time for a duplicate to show up, if one were coming
        assert len(slack.api.of("chat.postMessage")) == 1 and len(slack.finals()) == 1


def test_no_mass_mention_leaves_the_bot_in_any_field(core) -> None:
    answers = FixedAnswers(core.knowledge.retriever, MENTIONS, "billing/plans.md")
    registry = build_registry(AccessPolicy(), answers, core.index_ops, core.status_report)
    with SlackWorld(core, WorkQueue(), commands=registry, human_group="SHELP", edit_interval_s=0.2) as slack:
        slack.mention("How do I share a folder with <!channel> and <!here>?", ts="1700000200.000100")
        final = slack.api.wait_for(lambda calls: len(slack.finals()) == 1) and slack.finals()[0].body
        slack.command("/ask", "share with <!everyone>?", "UALICE", "ask")
        reply = slack.api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))[-1].body
        post = kit.POST
        button = next(e["value"] for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]
                      if e["action_id"] == post)
        send(slack.served.url, action_body(post, button, "UALICE", slack.api.response_url("post")), FORM)
        send(slack.served.url, action_body(kit.HUMAN, button, "UALICE", slack.api.response_url("human"),
                                           thread_ts="1700000200.000100"), FORM)
        calls = slack.api.wait_for(lambda calls: len(calls_to(calls, "chat.postMessage")) == 3)
        sent = all_text(c for c in calls if c.method in ("chat.postMessage", "chat.update", "response_url"))
        for mass in ("<!channel>", "<!here", "<!everyone>", "<!subteam^SDEVS"):
            assert mass not in sent
        assert "@channel" in final["text"] and "@here" in final["text"] and "@devs" in final["text"]
        assert final["text"].startswith("Tell @channel")  # the fallback text is plain: no Markdown **
        human = calls_to(calls, "chat.postMessage")[-1].body["text"]
        assert human.startswith("<!subteam^SHELP>, <@UALICE> would like a person")  # the helpers are still called


def test_a_question_that_waits_is_told_its_place_in_its_placeholder_then_answered(core) -> None:
    slow = threading.Event()
    answers = FixedAnswers(core.knowledge.retriever, "The Team plan costs $8 [1].", "billing/plans.md", hold=slow)
    registry = build_registry(AccessPolicy(), answers, core.index_ops, core.status_report)
    with SlackWorld(core, WorkQueue(workers=1), commands=registry, edit_interval_s=0.2) as slack:
        slack.mention("How much is Team?", ts="1700000300.000100", channel="CFIRST")
        slack.api.wait_for(lambda calls: len(calls_to(calls, "chat.postMessage")) == 1)
        slack.mention("And Business?", ts="1700000300.000200", channel="CSECOND")
        told = slack.api.wait_for(lambda calls: any(c.method == "chat.update" and c.body["channel"] == "CSECOND"
                                                    for c in calls))
        assert [c.body["text"] for c in calls_to(told, "chat.update")] == [
            "You're 1st in line, about 5 s. I'll answer here."]
        slow.set()
        slack.api.wait_for(lambda calls: len(slack.finals()) == 2)
        finals = {c.body["channel"]: c.body["text"] for c in slack.finals()}
        assert finals == {"CFIRST": "The Team plan costs $8 [1].", "CSECOND": "The Team plan costs $8 [1]."}


def calls_to(calls, method: str) -> list:
    return [c for c in calls if c.method == method]


def test_a_final_edit_that_keeps_failing_is_posted_as_a_new_message_in_the_thread(core) -> None:
    with SlackWorld(core, WorkQueue(), edit_interval_s=0.2) as slack:
        slack.api.failing["chat.update"] = 1000  # every edit fails, after the client's own retries
        slack.mention("How much does the Team plan cost?", ts="1700000300.000100")
        calls = slack.api.wait_for(lambda calls: len(calls_to(calls, "chat.postMessage")) == 2)
        placeholder, answer = (c.body for c in calls_to(calls, "chat.postMessage"))
        assert answer["thread_ts"] == placeholder["thread_ts"] == "1700000300.000100"
        assert "Team" in answer["text"] and any(b["type"] == "actions" for b in answer["blocks"])
        assert any(c.method == "chat.update (500)" for c in calls)


def test_hostile_and_oversized_requests_are_refused_before_parsing(core, caplog: pytest.LogCaptureFixture) -> None:
    with SlackWorld(core, WorkQueue()) as slack, caplog.at_level(logging.INFO):
        url = slack.served.url
        assert send(url, '{"type": "event_callback", "event": ', JSON)[0] == 400  # malformed JSON, signed
        assert send(url, '[1, 2, 3]', JSON)[0] == 400  # a JSON array
        assert send(url, urllib.parse.urlencode({"payload": "{not json"}), FORM)[0] == 400
        assert send(url, urllib.parse.urlencode({"payload": "[]"}), FORM)[0] == 400
        assert declared_only(url, 10 * 1024 * 1024) == 413  # answered before a byte of the body is sent
        big_event = event_body(mention_event("a" * 1_048_576, ts="1700000400.000100"), "EvBIG")
        assert declared_only(url, len(big_event.encode())) == 413  # no Slack payload is a megabyte
        small = event_body(mention_event("hi", ts="1700000400.000200"), "EvUNSIGNED")
        assert send(url, small, JSON, signed=False)[0] == 401
        time.sleep(0.5)
    assert slack.api.of("chat.postMessage") == []
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("adapters.slack")]
    assert sum("(400)" in line for line in lines) == 4 and sum("(413)" in line for line in lines) == 2
    assert sum("(401)" in line for line in lines) == 1
    assert "Traceback" not in caplog.text and "aaaaaaaa" not in caplog.text
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def declared_only(url: str, length: int) -> int:
    """POST headers declaring a `length`-byte unsigned body, then wait for the status without
    sending the body: a server that answers has not read it."""
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    connection.putrequest("POST", parsed.path)
    connection.putheader("Content-Type", JSON)
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    try:
        return connection.getresponse().status
    finally:
        connection.close()


def test_no_log_line_carries_more_than_the_limit() -> None:
    record = logging.LogRecord("slack_bolt", logging.DEBUG, __file__, 1, "body: %s", ("y" * 8_000_000,), None)
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert len(message) < MAX_MESSAGE_CHARS + 100 and message.endswith("more characters not logged)")


def test_where_slack_streams_the_answer_is_streamed_natively_and_ends_with_sources_and_buttons(core) -> None:
    with SlackWorld(core, WorkQueue(), edit_interval_s=0.2) as slack:
        slack.api.streaming = True
        slack.mention("How much does the Team plan cost?", ts="1700000700.000100")
        calls = slack.api.wait_for(lambda calls: any(c.method == "chat.stopStream" for c in calls) and calls_to(
            calls, "assistant.threads.setStatus")[-1].body["status"] == "")  # the status is cleared last
        started = calls_to(calls, "chat.startStream")[0].body
        assert (started["channel"], started["thread_ts"], started["recipient_user_id"], started["recipient_team_id"]) \
            == ("C0001", "1700000700.000100", "UALICE", "T0001")
        assert calls_to(calls, "chat.postMessage") == [] and calls_to(calls, "chat.update") == []
        streamed = "".join(c.body["markdown_text"] for c in calls_to(calls, "chat.appendStream"))
        stop = calls_to(calls, "chat.stopStream")[0].body
        assert {b["type"] for b in stop["blocks"]} == {"context", "actions"}  # the text itself was streamed
        answer_id = next(e["value"] for b in stop["blocks"] if b["type"] == "actions" for e in b["elements"])
        assert streamed == slack.core.feedback.get(answer_id).answer and "$8" in streamed
        statuses = [c.body["status"] for c in calls_to(calls, "assistant.threads.setStatus")]
        assert statuses[0] == "is looking through the docs…" and statuses[-1] == ""


def test_a_workspace_without_streaming_is_asked_once_then_edits_are_used(core) -> None:
    with SlackWorld(core, WorkQueue(), edit_interval_s=0.2) as slack:  # the mock does not stream
        slack.mention("How much does the Team plan cost?", ts="1700000800.000100")
        slack.api.wait_for(lambda calls: len(slack.finals()) == 1)
        slack.mention("How do I reset my password?", ts="1700000800.000200")
        calls = slack.api.wait_for(lambda calls: len(slack.finals()) == 2)
        assert len(calls_to(calls, "chat.startStream")) == 1 and len(calls_to(calls, "chat.postMessage")) == 2


def test_the_bots_own_client_is_no_warning_and_chat_libraries_stay_quiet_unless_asked(
        core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from click.testing import CliRunner

    from adapters.slack.bot import SlackBot, SlackSettings
    from bot.app.cli import cli
    from bot.chat_flow import ChatFlow

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")  # Bolt reads it and used to warn
    with caplog.at_level(logging.WARNING):
        SlackBot(ChatFlow(core.commands, core.feedback, WorkQueue()), SlackSettings(bot_token="xoxb-1-a"))
    assert "will be unused" not in caplog.text
    for flag, quiet in (("false", True), ("true", False)):
        monkeypatch.setenv("SUPPORTBOT_SERVE__LOG_CHAT_CONTENT", flag)
        assert CliRunner().invoke(cli, ["-vv", "config", "show"]).exit_code == 0
        levels = {name: logging.getLogger(name).level for name in ("slack_bolt", "slack_sdk", "discord.http")}
        assert all(level == logging.WARNING for level in levels.values()) == quiet, levels
        for name in levels:
            logging.getLogger(name).setLevel(logging.NOTSET)
