"""Generation on an existing serving engine that speaks OpenAI's chat-completions protocol.

vLLM serves a base model with LoRA adapters registered by name, so a brand voice is simply
the model name of a request: the registry's active voice (or a channel's voice) when one is
set, the base model otherwise. Streaming uses server-sent events. Connection failures,
timeouts, 429 and 5xx are retried with backoff (honouring Retry-After) as long as no text has
been streamed yet; when the engine stays unreachable the bot gets GenerationUnavailable and
tells the user so instead of failing silently.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from adapters_lora.generator import BASE_VOICE, ChatMessage
from adapters_lora.registry import VoiceRegistry
from bot.protocols import GenerationUnavailable

log = logging.getLogger(__name__)
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RemoteSettings:
    base_url: str  # e.g. http://vllm:8000/v1
    model: str  # the base model's served name
    api_key: str | None = None
    max_new_tokens: int = 160
    timeout_s: float = 60.0  # connect and between streamed chunks
    retries: int = 2
    backoff_s: float = 0.5


class RemoteGenerator:
    """The Generator protocol over HTTP (thread-safe: one request per call)."""

    def __init__(self, settings: RemoteSettings, voices: VoiceRegistry | None = None) -> None:
        self.settings = settings
        self.voices = voices

    @property
    def model_id(self) -> str:
        return f"{self.settings.model} @ {self.settings.base_url}"

    def model_for(self, voice: str | None) -> str:
        """The served model name: a voice's LoRA adapter, or the base model."""
        if voice == BASE_VOICE:
            return self.settings.model
        name = voice if voice is not None else (self.voices.active if self.voices else None)
        return name or self.settings.model

    def generate(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
                 voice: str | None = None) -> str:
        return "".join(self.stream(messages, max_new_tokens, voice))

    def stream(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
               voice: str | None = None) -> Iterator[str]:
        body = {
            "model": self.model_for(voice), "stream": True, "temperature": 0,
            "max_tokens": max_new_tokens or self.settings.max_new_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        attempt = 0
        while True:
            streamed = False
            try:
                for piece in self._stream_once(body):
                    streamed = True
                    yield piece
                return
            except _Retryable as err:
                if streamed or attempt >= self.settings.retries:
                    raise GenerationUnavailable(
                        f"the answer engine at {self.settings.base_url} is not responding ({err})") from None
                delay = err.retry_after if err.retry_after is not None else self.settings.backoff_s * 2 ** attempt
                attempt += 1
                log.warning("generation request failed (%s); retry %d/%d in %.1fs", err, attempt,
                            self.settings.retries, delay)
                time.sleep(min(delay, 30.0))

    def _stream_once(self, body: dict[str, Any]) -> Iterator[str]:
        url = self.settings.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            response = urllib.request.urlopen(request, timeout=self.settings.timeout_s)
        except urllib.error.HTTPError as err:
            detail = _error_detail(err)
            if err.code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {err.code}{detail}", _retry_after(err.headers.get("Retry-After"))) from None
            raise GenerationUnavailable(f"the answer engine refused the request: HTTP {err.code}{detail}") from None
        except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError) as err:
            raise _Retryable(str(getattr(err, "reason", err))) from None
        with response:
            try:
                for raw in response:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    piece = _delta(data)
                    if piece:
                        yield piece
            except (TimeoutError, socket.timeout, ConnectionError) as err:
                raise _Retryable(f"stream interrupted: {err or 'timed out'}") from None


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _delta(data: str) -> str:
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        log.warning("ignoring a malformed stream event: %.200s", data)
        return ""
    if "error" in event:
        raise GenerationUnavailable(f"the answer engine failed: {event['error']}")
    choices = event.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error_detail(err: urllib.error.HTTPError) -> str:
    try:
        body = err.read().decode("utf-8", "replace")[:300]
    except OSError:
        return ""
    return f": {body}" if body else ""
