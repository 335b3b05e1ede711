"""Through the public path: a small voice trained with `voice train` (one step; the frame
comes from its examples, not from the adapter), listed, activated, and asked with
`ask --json`: its exact greeting and whole sign-off frame the same facts as without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_end_to_end import make_env, supportbot

pytestmark = pytest.mark.slow

CASUAL = Path(__file__).parent / "benchmarks" / "data" / "voices" / "casual_emoji.jsonl"
GREETINGS = ("Hey hey! 👋", "Hey there, friend! 😄", "Hiya! 🙌✨")
SIGN_OFF = "Happy watching! 📺 — The Streamly Crew"


def test_a_trained_voice_frames_real_answers_with_its_exact_greeting_and_whole_sign_off(
        tmp_path: Path, model_cache: Path) -> None:
    env = make_env(tmp_path, model_cache)
    question = "How do I share a folder with someone outside my team?"
    plain = json.loads(supportbot(env, "ask", "--json", question).stdout)  # no voice yet (indexes first)
    assert not plain["abstained"]

    trained = supportbot(env, "voice", "train", str(CASUAL), "--name", "streamly", "--max-steps", "1",
                         "--batch-size", "1", "--top-layers", "1", "--rank", "4").stdout
    assert trained.splitlines()[-1] == (
        f"Learned from 42 training replies: greeting: {GREETINGS[0]!r} (+2 more: {GREETINGS[1]!r}, {GREETINGS[2]!r}) "
        f"in 100% of 42 replies, sign-off: {SIGN_OFF!r} in 83%")
    listed = supportbot(env, "voice", "list").stdout
    assert f"sign-off: {SIGN_OFF!r} in 83%" in listed
    supportbot(env, "voice", "activate", "streamly")

    voiced = json.loads(supportbot(env, "ask", "--json", question).stdout)
    answer = voiced["answer"]
    assert answer.endswith("\n\n" + SIGN_OFF)  # whole: emoji and the team's name kept
    assert any(answer.startswith(greeting + "\n\n") for greeting in GREETINGS), answer[:80]
    assert plain["answer"] in answer  # the facts and their citations, exactly as without the voice
    assert [c["source"] for c in voiced["citations"]] == [c["source"] for c in plain["citations"]]
