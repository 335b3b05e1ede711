"""Faults in the docs an operator really meets, through the CLI as they run it: a link out of
the docs folder, a PDF with a numeric title, a parser that breaks on one file, a page whose
text is far too long, the same folder given twice. Every one is a skip reason or a no-op; the
run goes on and nothing outside the docs root is ever read."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answering import INDEX_UNAVAILABLE_TEXT
from knowledge import loaders
from knowledge.loaders import LoadError, load_file
from tests.helpers import write_docs, write_pdf
from tests.test_end_to_end import make_env, supportbot

pytestmark = pytest.mark.slow


def _numeric_title_pdf(path: Path) -> Path:
    """A valid PDF whose /Info /Title is the number 424242 (same length, so the xref holds)."""
    write_pdf(path, ["Warranty\nThe warranty lasts 24 months from purchase."], title="4242")
    data = path.read_bytes()
    assert data.count(b"/Title (4242)") == 1
    path.write_bytes(data.replace(b"/Title (4242)", b"/Title 424242"))
    return path


def test_index_skips_links_out_of_the_docs_long_pages_and_duplicate_folders_and_keeps_going(
    tmp_path: Path, model_cache: Path
) -> None:
    outside = write_docs(tmp_path / "outside", {"prod.env": "SLACK_BOT_TOKEN=xoxb-111-leak\nDB_PASSWORD=hunter2\n"})
    docs = write_docs(tmp_path / "docs", {
        "returns.md": "# Returns\n\nYou can return the kettle within 30 days for a full refund.\n",
        "dump.html": "<html><body><p>" + "lorem ipsum " * 2000 + "</p></body></html>",
    })
    (docs / "config.md").symlink_to(outside / "prod.env")
    (docs / "etc").symlink_to(outside, target_is_directory=True)  # a linked folder is not walked either
    _numeric_title_pdf(docs / "warranty.pdf")
    env = make_env(tmp_path / "data", model_cache)
    env["SUPPORTBOT_INDEX__MAX_TEXT_CHARS"] = "10000"

    result = supportbot(env, "index", "--docs", str(docs), "--docs", str(docs))
    out = result.stdout
    assert "Index v1: 2 documents" in out  # returns.md and warranty.pdf, once each
    assert "skipped config.md: a link to a file outside the docs folder (not followed)" in out
    assert "skipped dump.html: 23,999 characters of text, over the limit of 10,000 (index.max_text_chars)" in out
    assert "prod.env" not in out and "docs-2" not in out
    status = json.loads(supportbot(env, "status", "--json").stdout)
    assert status["documents"] == 2

    answer = json.loads(supportbot(env, "ask", "--json", "What is the SLACK_BOT_TOKEN and the DB password?").stdout)
    assert "xoxb-111-leak" not in json.dumps(answer) and "hunter2" not in json.dumps(answer)
    warranty = json.loads(supportbot(env, "ask", "--json", "How long is the warranty?").stdout)
    assert warranty["citations"][0]["source"] == "warranty.pdf"
    assert "24 months" in warranty["answer"]


def test_any_failure_inside_a_loader_is_that_files_skip_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: bytes, name: str, encodings: list[str]):
        raise AttributeError("'int' object has no attribute 'strip'")

    monkeypatch.setitem(loaders.LOADERS, ".md", broken)
    path = write_docs(tmp_path, {"odd.md": "# Odd\n\ntext\n"}) / "odd.md"
    with pytest.raises(LoadError) as caught:
        load_file(path, "odd.md", ["utf-8"], 1_000_000)
    assert str(caught.value) == "could not be parsed (AttributeError: 'int' object has no attribute 'strip')"


def test_ctrl_c_during_voice_training_exits_130_and_leaves_the_voices_as_they_were(
    tmp_path: Path, model_cache: Path
) -> None:
    env = make_env(tmp_path / "data", model_cache)
    # As a user's shell starts it: Ctrl-C at its default, whatever the test runner's own disposition
    # (a child inherits an ignored SIGINT, and Python then never raises KeyboardInterrupt)
    process = subprocess.Popen([sys.executable, "-m", "bot", "voice", "train", "--name", "halfway"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    before = _wait_for(process, b"training:")  # the user's Ctrl-C while the voice is being trained
    process.send_signal(signal.SIGINT)
    out, rest = process.communicate(timeout=120)
    err = before + rest
    # 130, or killed by SIGINT after saying so (a shell shows 130 for both): CPython re-raises the
    # signal at exit when the interrupt first surfaced inside code a C extension was running
    assert process.returncode in (130, -signal.SIGINT), err[-2000:]
    # the training bar may print its last state as the process exits, after the message
    assert "Interrupted." in err.splitlines() and "Traceback" not in err
    listed = supportbot(env, "voice", "list").stdout
    assert "halfway" not in listed


def _wait_for(process: subprocess.Popen, marker: bytes, limit_s: float = 300.0) -> str:
    """Reads the process's stderr until `marker` shows (a progress bar's label), so a signal
    lands in the phase the test means, however long loading took on a busy machine."""
    seen = b""
    deadline = time.monotonic() + limit_s
    while marker not in seen:
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk and time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
        seen += chunk
    return seen.decode(errors="replace")


def test_json_runs_keep_library_chatter_off_stderr_unless_asked_with_vv(tmp_path: Path, model_cache: Path) -> None:
    docs = write_docs(tmp_path / "docs", {"a.md": "# A\n\nThe kettle holds 1.7 litres.\n",
                                          "broken.pdf": b"%PDF-1.4\nthis is not really a pdf"})
    env = make_env(tmp_path / "data", model_cache)
    result = supportbot(env, "index", "--json", "--docs", str(docs))
    report = json.loads(result.stdout)
    assert [s["source"] for s in report["skipped"]] == ["broken.pdf"]
    assert result.stderr == ""  # no Lance "No existing dataset" WARN, no pypdf "EOF marker not found"
    loud = supportbot(make_env(tmp_path / "data-2", model_cache), "-vv", "index", "--json", "--docs", str(docs))
    assert "No existing dataset" in loud.stderr


def _damage(index: Path, kind: str) -> None:
    table = next(index.glob("chunks_*.lance"))
    if kind == "chunk data truncated":
        for data in (table / "data").glob("*.lance"):
            data.write_bytes(data.read_bytes()[:100])
    elif kind == "manifest truncated":
        for data in (index / "index_manifest.lance" / "data").glob("*.lance"):
            data.write_bytes(data.read_bytes()[:10])
    else:  # "chunk table deleted"
        shutil.rmtree(table)


@pytest.mark.parametrize("kind", ["chunk data truncated", "manifest truncated", "chunk table deleted"])
def test_a_damaged_index_is_named_in_one_line_and_the_next_index_run_rebuilds_it(
    tmp_path: Path, model_cache: Path, kind: str
) -> None:
    docs = write_docs(tmp_path / "docs", {"returns.md": "# Returns\n\nReturn the kettle within 30 days for a refund.\n",
                                          "warranty.md": "# Warranty\n\nThe warranty lasts 24 months.\n"})
    env = make_env(tmp_path / "data", model_cache)
    supportbot(env, "index", "--docs", str(docs))
    _damage(tmp_path / "data" / "index", kind)

    asked = supportbot(env, "ask", "--json", "How long is the warranty?", check=False)
    assert "Traceback" not in asked.stderr
    if asked.returncode == 0:  # the manifest reads: the chat path answers that the index needs repair
        assert json.loads(asked.stdout)["answer"] == INDEX_UNAVAILABLE_TEXT
    else:
        assert asked.returncode == 1 and asked.stderr.strip().startswith(f"Error: the index at {tmp_path / 'data'}")
    doctor = supportbot(env, "doctor", check=False)
    assert doctor.returncode == 1
    assert f"FIX  index: the index at {tmp_path / 'data' / 'index'} is damaged (" in doctor.stdout
    assert "run `supportbot index` to rebuild it from the docs" in doctor.stdout and "/rustc/" not in doctor.stdout
    status = supportbot(env, "status", "--json").stdout
    assert json.loads(status)["index"].startswith("DAMAGED: the index at")

    rebuilt = supportbot(env, "index", "--docs", str(docs))
    assert "Full rebuild: the index was damaged (" in rebuilt.stdout and "rebuilt from the docs." in rebuilt.stdout
    assert "Index v1: 2 documents" in rebuilt.stdout
    assert supportbot(env, "doctor").stdout.startswith("ok   index v1 (2 chunks)")
    if kind == "chunk table deleted":  # (once is enough: the rebuilt index is a fresh one like any other)
        answer = json.loads(supportbot(env, "ask", "--json", "How long is the warranty?").stdout)
        assert answer["citations"][0]["source"] == "warranty.md" and "24 months" in answer["answer"]


@pytest.fixture()
def read_only_data(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a writable folder, the same folder mounted read-only): a real read-only file system,
    which root cannot write through either (a chmod would not stop root)."""
    source, mounted = tmp_path / "data", tmp_path / "read-only"
    source.mkdir()
    mounted.mkdir()
    bind = subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip("this machine does not allow bind mounts")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True, capture_output=True)
        yield source, mounted
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True)


def test_a_read_only_data_dir_still_answers_and_index_says_which_path_in_one_line(
    read_only_data: tuple[Path, Path], tmp_path: Path, model_cache: Path
) -> None:
    source, mounted = read_only_data
    docs = write_docs(tmp_path / "docs", {"warranty.md": "# Warranty\n\nThe warranty lasts 24 months.\n"})
    supportbot(make_env(source, model_cache), "index", "--docs", str(docs))
    env = make_env(mounted, model_cache)
    answer = json.loads(supportbot(env, "ask", "--json", "How long is the warranty?").stdout)
    assert answer["citations"][0]["source"] == "warranty.md"  # serving needs no write
    refused = supportbot(env, "index", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"Error: cannot use {mounted / 'reindex.lock'} (Read-only file system); "
                                      f"make it readable and writable for this user, or point --data-dir / "
                                      f"SUPPORTBOT_DATA_DIR elsewhere")
    assert json.loads(supportbot(env, "status", "--json").stdout)["documents"] == 1  # v1 still live


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MB file system (tmpfs) to fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_is_one_line_the_live_index_stays_and_the_next_run_completes(
    small_disk: Path, tmp_path: Path, model_cache: Path
) -> None:
    docs = write_docs(tmp_path / "docs", {"warranty.md": "# Warranty\n\nThe warranty lasts 24 months.\n"})
    env = make_env(small_disk / "data", model_cache)
    supportbot(env, "index", "--docs", str(docs))
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as out:  # fill every byte left
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    write_docs(docs, {"returns.md": "# Returns\n\nReturn the kettle within 30 days.\n"})
    full = supportbot(env, "index", "--docs", str(docs), check=False)
    assert full.returncode == 1 and "Traceback" not in full.stderr
    assert full.stderr.strip().endswith("Error: the disk is full; free some space and run it again "
                                        "(the live index is untouched)")
    status = json.loads(supportbot(env, "status", "--json").stdout)
    assert (status["index_version"], status["documents"]) == (1, 1)
    filler.unlink()
    again = supportbot(env, "index", "--docs", str(docs))
    assert "Index v2: 2 documents" in again.stdout


def test_config_and_voice_faults_through_the_cli_are_one_line_each_without_values(
    tmp_path: Path, model_cache: Path
) -> None:
    env = make_env(tmp_path / "data", model_cache)
    config = tmp_path / "supportbot.toml"
    config.write_text('slack_token = "xoxb-leak-typo-444"\n')
    leaked = supportbot(env, "--config", str(config), "status", check=False)
    assert leaked.returncode == 1 and "xoxb-leak-typo-444" not in leaked.stderr
    assert leaked.stderr.strip().startswith("Error: invalid configuration: slack_token holds what looks like a token")
    config.write_text("[retrieval]\ntop_kk = 4\n[index]\nchunk_max_tokenz = 5\n")
    typo = supportbot(env, "--config", str(config), "status", check=False)
    assert typo.returncode == 1 and typo.stderr.strip() == (
        "Error: invalid configuration: index.chunk_max_tokenz: unknown setting (did you mean chunk_max_tokens?); "
        "retrieval.top_kk: unknown setting (did you mean top_k?)")

    sample = (Path(__file__).parents[1] / "adapters_lora" / "sample_voice" / "driftwood_voice.jsonl").read_bytes()
    few = tmp_path / "few.jsonl"
    few.write_bytes(b"\n".join(sample.splitlines()[:3]) + b"\n")
    refused = supportbot(env, "voice", "check", str(few), check=False)
    assert refused.returncode == 1 and "3 example(s); a voice needs at least 30" in refused.stderr
    bad_byte = tmp_path / "bad-byte.jsonl"
    lines = sample.splitlines()[:40]
    lines[6] = lines[6].replace(b'"question": "', b'"question": "\xff', 1)
    lines[9] = b'{"question": ""}'
    bad_byte.write_bytes(b"\n".join(lines) + b"\n")
    named = supportbot(env, "voice", "check", str(bad_byte), check=False)
    assert named.returncode == 1
    assert "line 7: not UTF-8 text (byte 0xff at column" in named.stderr
    assert "line 10: missing or empty 'question' and 'answer'" in named.stderr and "Traceback" not in named.stderr

    broken = tmp_path / "data" / "voices" / "broken"
    broken.mkdir(parents=True)
    (broken / "voice.json").write_text("[1, 2]")
    activated = supportbot(env, "voice", "activate", "broken", check=False)
    assert activated.returncode == 1 and activated.stderr.strip() == (
        f"Error: {broken / 'voice.json'} is damaged (expected a JSON object, found a list); retrain this voice or "
        f"restore the file")
    doctor = supportbot(env, "doctor", check=False)
    assert doctor.returncode == 1 and f"FIX  voice: {broken / 'voice.json'} is damaged" in doctor.stdout
