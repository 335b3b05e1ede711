"""The command registry: admin gate, one re-index at a time, clear messages for everything else."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.acl import AccessPolicy
from bot.answering import AnswerService
from bot.commands import CommandContext, build_registry
from bot.reindex_job import ReindexJob, RunHistory
from bot.reindex_lock import ReindexLock
from tests.fakes import CountingReindexer, EmptyRetriever, MemoryVoices, ScriptedGenerator, StaticStatus


DATA_DIR = Path()


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(__import__(__name__, fromlist=["DATA_DIR"]), "DATA_DIR", tmp_path)


def locked(work: CountingReindexer) -> ReindexJob:
    """The index work behind the real job: lock and run history in this test's data dir."""
    return ReindexJob(work.reindex, ReindexLock(DATA_DIR), RunHistory(DATA_DIR / "runs.jsonl"))


def registry(reindexer=None):
    answers = AnswerService(EmptyRetriever(), ScriptedGenerator())
    policy = AccessPolicy(admins=["slack:UADMIN"], trusted_platforms={"console"})
    return build_registry(policy, answers, locked(reindexer or CountingReindexer()), StaticStatus())


def ctx(user: str, platform: str = "slack", **kw) -> CommandContext:
    return CommandContext(user_id=user, conversation_id="c1", platform=platform, **kw)


def test_non_admin_reindex_is_refused_and_runs_nothing() -> None:
    reindexer = CountingReindexer()
    reply = registry(reindexer).handle("/reindex", ctx("slack:UGUEST"))
    assert not reply.ok and reply.text == "Sorry, /reindex is for admins only."
    assert reindexer.runs == 0
    assert registry(reindexer).handle("/status", ctx("slack:UGUEST")).text == "Sorry, /status is for admins only."


def test_admin_reindex_runs_reports_and_streams_progress() -> None:
    reindexer = CountingReindexer()
    progress: list[str] = []
    reply = registry(reindexer).handle("/reindex", ctx("slack:UADMIN", on_progress=progress.append))
    assert reply.ok and reply.text == "Index v2: 3 documents." and reindexer.runs == 1
    assert progress == ["scanned 1/1"]


def test_console_operator_is_admin_by_platform() -> None:
    reply = registry().handle("/status", ctx("console:alice", platform="console"))
    assert reply.ok and "index version: 2" in reply.text


def test_second_reindex_is_told_who_is_running_it() -> None:
    started = threading.Event()
    release = threading.Event()

    class SlowReindexer(CountingReindexer):
        def reindex(self, progress=None, started_by="unknown", trigger="chat"):
            progress("embedded", 5, 10)
            started.set()
            release.wait(10)
            return super().reindex()

    slow = SlowReindexer()
    reg = registry(slow)
    worker = threading.Thread(target=reg.handle, args=("/reindex", ctx("slack:UADMIN")))
    worker.start()
    assert started.wait(10)
    busy = reg.handle("/reindex", ctx("slack:UADMIN"))
    release.set()
    worker.join(10)
    assert not busy.ok
    assert busy.text.startswith("A re-index is already running (started by slack:UADMIN (chat) at ")
    assert "embedded 5/10" in busy.text
    assert slow.runs == 1


def test_unknown_command_and_empty_input_get_clear_messages() -> None:
    reg = registry()
    assert reg.handle("/frobnicate now", ctx("slack:UGUEST")).text == (
        "Unknown command /frobnicate. Type /help to see what I can do.")
    assert reg.handle("   ", ctx("slack:UGUEST")).text == "Ask me a question about the docs, or type /help."
    assert reg.handle("/ask", ctx("slack:UGUEST")).text == "Usage: /ask <your question>"


def test_help_lists_only_what_the_user_may_run() -> None:
    reg = registry()
    guest = reg.handle("/help", ctx("slack:UGUEST")).text
    admin = reg.handle("/help", ctx("slack:UADMIN")).text
    assert "/ask" in guest and "/reindex" not in guest
    assert "/reindex" in admin and "/status" in admin


def test_a_failing_command_replies_with_an_error_instead_of_raising() -> None:
    class FailsOnce(CountingReindexer):
        def reindex(self, progress=None, started_by="unknown", trigger="chat"):
            if self.runs == 0:
                self.runs += 1
                raise OSError("disk full")
            return super().reindex(progress)

    reg = registry(FailsOnce())
    reply = reg.handle("/reindex", ctx("slack:UADMIN"))
    assert not reply.ok and reply.text == "Something went wrong running /reindex; the error was logged."
    # The lock was released: the next run goes ahead.
    assert reg.handle("/reindex", ctx("slack:UADMIN")).ok


def test_voice_command_is_admin_only_and_switches_voices() -> None:
    voices = MemoryVoices()
    answers = AnswerService(EmptyRetriever(), ScriptedGenerator())
    reg = build_registry(AccessPolicy(admins=["slack:UADMIN"]), answers, CountingReindexer(), StaticStatus(),
                         voices=voices)
    assert reg.handle("/voice activate crew-v1", ctx("slack:UGUEST")).text == "Sorry, /voice is for admins only."
    assert voices.active is None
    assert reg.handle("/voice activate crew-v1", ctx("slack:UADMIN")).text == "Active voice: crew-v1."
    assert reg.handle("/voice activate crew-v2", ctx("slack:UADMIN")).text == (
        "Active voice: crew-v2 (was crew-v1; /voice rollback to undo).")
    assert reg.handle("/voice", ctx("slack:UADMIN")).text == "Active voice: crew-v2. Voices: crew-v1, *crew-v2*."
    assert reg.handle("/voice rollback", ctx("slack:UADMIN")).text == "Active voice: crew-v1."
    bad = reg.handle("/voice activate nope", ctx("slack:UADMIN"))
    assert not bad.ok and bad.text == "no voice named 'nope'"
    assert not reg.handle("/voice dance", ctx("slack:UADMIN")).ok
