"""The voice registry's state (which voice is active, and the history for rollback) is never
silently lost: a damaged state file is restored from the last good copy beside it, or voice
commands are refused with the file and the problem while answers go on with the base model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters_lora.registry import RegistryError, VoiceRegistry

REPO = Path(__file__).resolve().parents[1]


def _voices(root: Path, *names: str) -> VoiceRegistry:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "voice.json").write_text(json.dumps({"base_model": "m", "created_at": "2026-11-30"}))
    return VoiceRegistry(root)


def test_a_garbled_state_file_is_restored_from_its_backup_with_the_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = _voices(tmp_path / "voices", "crew", "formal")
    registry.activate("crew")
    registry.activate("formal")
    state = tmp_path / "voices" / "state.json"
    good = state.read_text()
    state.write_text("\x00\x00 garbage after a bad disk")
    with caplog.at_level("WARNING", logger="adapters_lora.registry"):
        assert registry.active == "formal"
    assert f"{state} was damaged (not JSON: Expecting value at line 1); restored the last good state" in caplog.text
    assert state.read_text() == good
    assert registry.rollback() == "crew"  # the history survived


def test_with_no_good_backup_voice_commands_are_refused_and_answers_use_the_base_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = _voices(tmp_path / "voices", "crew")
    registry.activate("crew")
    state = tmp_path / "voices" / "state.json"
    state.write_text('["crew"]')
    (tmp_path / "voices" / "state.json.bak").write_text('{"active": 7}')
    expected = (f"{state} is damaged (expected an object with 'active' and 'history', found a JSON list) and has "
                f"no good backup: fix it, or delete it to start with no active voice (the trained voices themselves "
                f"are untouched)")
    with pytest.raises(RegistryError) as caught:
        registry.activate("crew")
    assert str(caught.value) == expected
    with caplog.at_level("ERROR", logger="adapters_lora.registry"):
        assert registry.active is None
    assert expected in caplog.text and registry.problem() == expected
    assert state.read_text() == '["crew"]'  # never overwritten by a refused command

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(tmp_path), "voice", "rollback"],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert run.returncode == 1 and run.stderr.strip() == f"Error: {expected}"


def test_a_voice_json_of_the_wrong_shape_is_named_not_a_traceback(tmp_path: Path) -> None:
    registry = _voices(tmp_path / "voices", "crew", "broken")
    (tmp_path / "voices" / "broken" / "voice.json").write_text("[1, 2]")
    assert [v.name for v in registry.list()] == ["crew"]
    with pytest.raises(RegistryError, match=r"broken/voice.json is damaged \(expected a JSON object, found a list\)"):
        registry.activate("broken")
