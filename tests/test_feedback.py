"""Feedback store and `supportbot feedback export --voice`: approved answers become voice examples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters_lora.dataset import load_examples
from bot.feedback import FeedbackStore, FeedbackUnavailable, UnknownAnswer
from bot.types import Answer, Citation, Question

REPO = Path(__file__).resolve().parents[1]


def answered(store: FeedbackStore, question: str, text: str, user: str = "slack:UALICE") -> str:
    answer = Answer(answer=text, abstained=False, voice="crew-v1",
                    citations=[Citation(n=1, source="billing/plans.md", title="Plans and pricing", score=0.8)],
                    context="[1] Plans and pricing\nThe Team plan costs $8 per user per month.")
    return store.record_answer(Question(text=question, user_id=user, channel_id="C1", platform="slack"), answer)


def test_ratings_and_corrections_export_as_a_valid_voice_dataset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = FeedbackStore(data / "feedback.sqlite")
    liked = answered(store, "How much is Team?", "Ahoy! Team is $8 per user per month [1].")
    disliked = answered(store, "How much is Business?", "Business is free [1].")
    corrected = answered(store, "Is there a trial?", "No [1].")
    twice = answered(store, "How much is Team?", "Ahoy! Team is $8 per user per month [1].")
    store.rate(liked, "slack:UALICE", +1)
    store.rate(liked, "slack:UBOB", +1)
    store.rate(twice, "slack:UCAROL", +1)
    store.rate(disliked, "slack:UBOB", -1)
    store.comment(disliked, "slack:UBOB", "Business is not free", correction=None)
    store.rate(corrected, "slack:UBOB", -1)
    store.comment(corrected, "slack:UADMIN", "wrong", correction="Yes: 14 days free on Team [1].", by_admin=True)
    store.rate(liked, "slack:UALICE", -1)  # Alice changes her mind: her vote is replaced, Bob's 👍 stands
    assert store.counts() == {"answers": 4, "thumbs_up": 2, "thumbs_down": 3}
    with pytest.raises(UnknownAnswer):
        store.rate("no-such-answer", "slack:UALICE", +1)
    store.close()

    out = tmp_path / "approved.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "feedback", "export", "--voice", str(out)],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"Wrote 2 voice examples to {out} (from 4 answers: 2 👍, 3 👎).")
    examples = load_examples(out)  # what `supportbot voice train` reads: no problems reported
    # `liked` nets zero now; `twice` (same reply, Carol's 👍) stands for it; the 👎 one only as corrected.
    assert [(e.question, e.answer) for e in examples] == [
        ("Is there a trial?", "Yes: 14 days free on Team [1]."),
        ("How much is Team?", "Ahoy! Team is $8 per user per month [1]."),
    ]
    assert examples[0].context[0].location == "Plans and pricing"


def test_liked_answers_are_exported_once(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    first = answered(store, "How much is Team?", "Team is $8 [1].")
    again = answered(store, "how much is  team?", "Team is $8 [1].")
    store.rate(first, "slack:UALICE", +1)
    store.rate(again, "slack:UBOB", +1)
    assert store.export_voice(tmp_path / "voice.jsonl") == 1
    assert len(load_examples(tmp_path / "voice.jsonl")) == 1


def test_a_damaged_feedback_database_costs_feedback_only_and_says_which_file_and_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    damaged = data / "feedback.sqlite"
    damaged.write_bytes(b"this was a database until the disk filled up" * 100)
    store = FeedbackStore(damaged)  # opening never fails: the bot starts and answers
    with caplog.at_level("ERROR", logger="bot.feedback"):
        answer_id = answered(store, "How much is Team?", "Team is $8 per user per month [1].")
    assert len(answer_id) == 16  # the answer still goes out, with its buttons
    assert f"not recorded: the feedback database {damaged} cannot be used (file is not a database)" in caplog.text
    assert store.knows_conversation("slack:C1:1") is False
    with pytest.raises(FeedbackUnavailable, match=r"mv .*feedback.sqlite .*feedback.sqlite.damaged"):
        store.rate(answer_id, "slack:UALICE", +1)
    assert "file is not a database" in store.check()

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "feedback", "export", "--voice",
                          str(tmp_path / "voice.jsonl")], cwd=REPO, capture_output=True, text=True, env=env)
    assert run.returncode == 1
    assert run.stderr.strip() == (f"Error: the feedback database {damaged} cannot be used (file is not a database); "
                                  f"move it aside (mv {damaged} {damaged}.damaged) and a fresh one is started on "
                                  f"the next answer")
    assert not (tmp_path / "voice.jsonl").exists()
    healthy = FeedbackStore(tmp_path / "fresh.sqlite")
    assert healthy.check() is None
