"""End to end through the real CLI with the real bundled models on the bundled sample docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ANSWER_KEYS = {"answer", "abstained", "citations", "timings_ms"}
CITATION_KEYS = {"n", "source", "title", "url", "score"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def make_env(data_dir: Path, model_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env.update({
        "SUPPORTBOT_DATA_DIR": str(data_dir),
        "SUPPORTBOT_MODEL_CACHE_DIR": str(model_cache),
        "SUPPORTBOT_GENERATION__MAX_NEW_TOKENS": "64",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    })
    return env


@pytest.fixture(scope="module")
def env(data_dir: Path, model_cache: Path) -> dict[str, str]:
    """A data dir whose index holds the bundled sample docs."""
    env = make_env(data_dir, model_cache)
    supportbot(env, "index")
    return env


def supportbot(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, input=stdin, capture_output=True, text=True,
        timeout=600, cwd=cwd,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_ask_without_an_index_builds_it_first_then_answers_with_citations(tmp_path: Path, model_cache: Path) -> None:
    result = supportbot(make_env(tmp_path, model_cache), "ask", "--json", "How much does the Team plan cost?")
    assert "No index yet: indexing" in result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == ANSWER_KEYS
    assert answer["abstained"] is False
    assert answer["answer"].strip() and "$8" in answer["answer"]
    assert answer["citations"] and all(set(c) == CITATION_KEYS for c in answer["citations"])
    assert answer["citations"][0]["source"] == "billing/plans.md"
    assert answer["citations"][0]["n"] == 1 and answer["citations"][0]["title"] == "Plans and pricing"
    assert {"retrieve", "generate", "total"} <= set(answer["timings_ms"])


def test_out_of_scope_question_abstains(env: dict[str, str]) -> None:
    answer = json.loads(supportbot(env, "ask", "--json", "What is the boiling point of olive oil in Kelvin?").stdout)
    assert answer["abstained"] is True
    assert answer["answer"].startswith("I couldn't find that in the docs.")
    assert "generate" not in answer["timings_ms"]


def test_ask_after_an_earlier_question_reads_the_follow_up_with_it(env: dict[str, str]) -> None:
    alone = json.loads(supportbot(env, "ask", "--json", "And uninstall it?").stdout)
    followed = json.loads(supportbot(env, "ask", "--json", "--after", "How do I install Driftwood on Windows?",
                                     "And uninstall it?").stdout)
    assert set(followed) == ANSWER_KEYS and followed["abstained"] is False
    assert followed["citations"][0]["source"] == "setup/install-windows.md"
    assert "`msiexec /x DriftwoodSetup.msi /qn`" in followed["answer"]
    assert alone["citations"][0]["source"] != "setup/install-windows.md"  # alone, "it" is nothing in particular


def test_index_reports_and_an_unchanged_rerun_embeds_nothing(env: dict[str, str], tmp_path: Path) -> None:
    report = json.loads(supportbot(env, "index", "--json").stdout)
    assert report["chunks_embedded"] == 0 and report["unchanged"] >= 16 and report["full_rebuild"] is None
    status = json.loads(supportbot(env, "status", "--json").stdout)
    assert status["documents"] == report["documents"] and status["index_version"] == report["version"]


def test_ask_json_quotes_the_silent_install_command_from_the_cited_page(env: dict[str, str]) -> None:
    answer = json.loads(supportbot(env, "ask", "--json", "How do I do a silent install on Windows?").stdout)
    assert set(answer) == ANSWER_KEYS and answer["abstained"] is False
    assert "```powershell\nmsiexec /i DriftwoodSetup.msi /qn\n```" in answer["answer"]
    assert answer["citations"][0] == {**answer["citations"][0], "n": 1, "source": "setup/install-windows.md",
                                      "title": "Install Driftwood on Windows"}
    assert {"retrieve", "compose", "generate", "total"} <= set(answer["timings_ms"])


def test_eval_json_reports_answer_quality(env: dict[str, str], tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(row) + "\n" for row in [
        {"question": "Can I get a refund for a monthly plan?", "answer": "No. Monthly payments are not refundable.",
         "sources": ["billing/refunds.html"], "yes_no": "No"},
        {"question": "How long do access tokens last?", "answer": "Access tokens expire after 1 hour.",
         "sources": ["api/authentication.md"]},
    ]))
    report = json.loads(supportbot(env, "eval", "--qa", str(qa), "--json").stdout)
    answers = report["answers"]
    assert answers["yes_no_accuracy"] == 1.0 and answers["recall"] == 1.0
    assert answers["invented_identifiers"] == 0.0 and answers["garbled"] == 0.0
    assert answers["cited_expected_source"] == 1.0 and 5 < answers["mean_words"] <= 120


def test_eval_json_keeps_the_contract(env: dict[str, str], tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"question": "How do I rotate an API key?", "answer": "Rotate", "sources": ["api/authentication.md"]})
        + "\n" + json.dumps({"question": "What does error DW-3117 mean?", "answer": "clock",
                             "sources": ["troubleshooting/error-codes.md"]}) + "\n"
    )
    report = json.loads(supportbot(env, "eval", "--qa", str(qa), "--json", "--no-generate").stdout)
    assert report["questions"] == 2
    assert set(report["retrieval"]) == {"hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10"}
    assert report["retrieval"]["hit@5"] == 1.0
    assert report["abstained"] == 0.0
    assert set(report["latency_ms"]) == {"p50", "p95"}


def test_bad_qa_file_and_bad_config_get_clear_errors(env: dict[str, str], tmp_path: Path) -> None:
    qa = tmp_path / "bad.jsonl"
    qa.write_text('{"question": "ok?", "sources": ["a.md"]}\nnot json\n{"sources": ["b.md"]}\n')
    result = supportbot(env, "eval", "--qa", str(qa), check=False)
    assert result.returncode == 1
    assert "line 2: invalid JSON" in result.stderr and "line 3: missing 'question'" in result.stderr
    config = tmp_path / "supportbot.toml"
    config.write_text("[retrieval]\ntop_k = 'many'\n")
    result = supportbot(env, "--config", str(config), "status", check=False)
    assert result.returncode == 1 and "invalid configuration" in result.stderr and "top_k" in result.stderr


def test_console_chat_follow_up_and_admin_commands(env: dict[str, str]) -> None:
    script = "How do I install the desktop app on macOS?\nand for Windows?\n/status\n/reindex\n/frobnicate\n/quit\n"
    out = supportbot(env, "chat", stdin=script).stdout
    answers = out.split("Sources:")
    assert len(answers) >= 3, out
    assert "setup/install-macos.md" in answers[1].split("bot>")[0]
    assert "setup/install-windows.md" in answers[2].split("bot>")[0]
    assert "index version:" in out and "documents:" in out
    assert "Added 0, updated 0, deleted 0" in out
    assert "Unknown command /frobnicate. Type /help to see what I can do." in out
    assert out.rstrip().endswith("bye.")


def test_voice_cli_checks_lists_and_refuses_unknown_voices(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "replies.jsonl"
    bad.write_text('{"question": "Hi?", "answer": "Ahoy!"}\n{"question": "Hi?", "answer": "Again"}\nnope\n')
    result = supportbot(env, "voice", "check", str(bad), check=False)
    assert result.returncode == 1
    assert "line 2: duplicate question (same as line 1)" in result.stderr
    assert "line 3: invalid JSON" in result.stderr
    good = supportbot(env, "voice", "check", str(Path(__file__).parents[1] / "adapters_lora" / "sample_voice"
                                                 / "driftwood_voice.jsonl"))
    assert "227 examples OK" in good.stdout
    assert "No voices yet" in supportbot(env, "voice", "list").stdout
    refused = supportbot(env, "voice", "activate", "nope", check=False)
    assert refused.returncode == 1 and "no voice named 'nope'" in refused.stderr
