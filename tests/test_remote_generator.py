"""The OpenAI-compatible generator against a local engine on 127.0.0.1 that speaks the
streaming chat-completions protocol (server-sent events), with scripted failures."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters_lora.generator import BASE_VOICE
from adapters_lora.remote_generator import RemoteGenerator, RemoteSettings
from bot.answering import UNAVAILABLE_TEXT
from bot.commands import CommandContext
from bot.app.config import load_settings
from bot.protocols import GenerationUnavailable
from bot.types import ChatMessage
from bot.app.application import App

REPLY = ["The Team plan ", "costs $8 per user ", "per month [1]."]


class FakeEngine:
    """Answers each request with the next scripted behaviour: "ok", an HTTP status, "hang"
    (holds the response until the test ends) or "break" (stream cut after one chunk)."""

    def __init__(self, script: list[str | int] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                engine.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                behaviour = engine.script.pop(0) if engine.script else "ok"
                if behaviour == "hang":
                    engine.release.wait(30)
                    return
                if isinstance(behaviour, int):
                    self.send_response(behaviour)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                chunks = REPLY[:1] if behaviour == "break" else REPLY
                for piece in chunks:
                    event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                if behaviour == "break":
                    engine.release.wait(30)
                    return
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def engine():
    server = FakeEngine()
    yield server
    server.close()


def generator(url: str, **kw: Any) -> RemoteGenerator:
    return RemoteGenerator(RemoteSettings(url, "smollm2-135m", api_key="sk-local-test", backoff_s=0.01, **kw))


MESSAGES = [ChatMessage(role="system", content="Answer from the docs."), ChatMessage(role="user", content="Price?")]


def test_streams_the_answer_and_names_the_voice_as_the_model(engine: FakeEngine) -> None:
    gen = generator(engine.url)
    assert list(gen.stream(MESSAGES, voice="driftwood-crew")) == REPLY
    assert gen.generate(MESSAGES, voice=BASE_VOICE, max_new_tokens=32) == "".join(REPLY)
    first, second = engine.requests
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-local-test"
    assert first["model"] == "driftwood-crew" and first["stream"] is True and first["temperature"] == 0
    assert first["messages"] == [{"role": "system", "content": "Answer from the docs."},
                                 {"role": "user", "content": "Price?"}]
    assert second["model"] == "smollm2-135m" and second["max_tokens"] == 32


def test_a_failed_request_is_retried_before_anything_streams(engine: FakeEngine) -> None:
    engine.script = [503, 429]
    assert generator(engine.url, retries=2).generate(MESSAGES) == "".join(REPLY)
    assert len(engine.requests) == 3


def test_a_timeout_is_retried_then_reported(engine: FakeEngine) -> None:
    engine.script = ["hang", "hang"]
    with pytest.raises(GenerationUnavailable, match="not responding .*timed out"):
        generator(engine.url, retries=1, timeout_s=0.3).generate(MESSAGES)
    assert len(engine.requests) == 2


def test_a_stream_cut_midway_is_not_retried_twice_over(engine: FakeEngine) -> None:
    engine.script = ["break"]
    got: list[str] = []
    with pytest.raises(GenerationUnavailable, match="stream interrupted"):
        for piece in generator(engine.url, timeout_s=0.3).stream(MESSAGES):
            got.append(piece)
    assert got == REPLY[:1] and len(engine.requests) == 1  # no duplicate text from a second attempt


def test_a_client_error_is_not_retried(engine: FakeEngine) -> None:
    engine.script = [400]
    with pytest.raises(GenerationUnavailable, match="refused the request: HTTP 400"):
        generator(engine.url).generate(MESSAGES)
    assert len(engine.requests) == 1


@pytest.fixture(scope="module")
def remote_app(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[App, FakeEngine]:
    server = FakeEngine()
    app = App(load_settings(None, data_dir=tmp_path_factory.mktemp("remote"), generation={
        "backend": "openai", "remote_url": server.url, "remote_model": "smollm2-135m", "retries": 1,
        "timeout_s": 5}), embedder=embedder)
    app.index_ops.index()
    yield app, server
    server.close()


def test_the_bot_answers_through_the_remote_engine_by_config(remote_app: tuple[App, FakeEngine]) -> None:
    app, server = remote_app
    streamed: list[str] = []
    ctx = CommandContext(user_id="cli", conversation_id="", platform="cli", on_token=streamed.append)
    reply = app.commands.handle("How much does the Team plan cost?", ctx)
    assert "".join(REPLY) == "The Team plan costs $8 per user per month [1]."  # the engine streamed 3 pieces ...
    assert streamed == ["The Team plan costs $8 per user per month [1]."]  # ... shown once the sentence was checked
    assert reply.answer.answer == "The Team plan costs $8 per user per month [1]."
    assert reply.answer.citations[0].source == "billing/plans.md"
    assert server.requests[-1]["model"] == "smollm2-135m"  # no voice active: the base model
    assert "Plans and pricing" in server.requests[-1]["messages"][-1]["content"]  # the passages were sent


def test_the_user_is_told_when_the_engine_is_down(remote_app: tuple[App, FakeEngine]) -> None:
    app, server = remote_app
    server.script = [503, 503]
    reply = app.commands.handle("How much does the Team plan cost?",
                                CommandContext(user_id="cli", conversation_id="", platform="cli"))
    assert reply.answer.abstained
    assert reply.answer.answer.startswith(UNAVAILABLE_TEXT + " Meanwhile, these pages look relevant: [1] Plans and pricing")


def test_remote_backend_needs_url_and_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs generation.remote_url and generation.remote_model"):
        load_settings(None, data_dir=tmp_path, generation={"backend": "openai"})
