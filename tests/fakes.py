"""Small real implementations of the core's Protocols, for tests of the core's own logic."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from collections.abc import Iterator, Sequence

from bot.answering import AnswerService
from bot.protocols import VoiceRefused
from bot.types import Answer, ChatMessage, Citation, Question
from bot.voice_frame import VoiceFrame, learn_frame


class EmptyRetriever:
    """A Retriever over docs that hold nothing."""

    def search(self, query: str, k: int = 5, collections: list[str] | None = None) -> list:
        return []


class ScriptedGenerator:
    """A Generator that replies with fixed text and keeps every prompt it was given."""

    def __init__(self, reply: str = "It works [1].") -> None:
        self.reply = reply
        self.prompts: list[list[ChatMessage]] = []
        self.voices: list[str | None] = []

    def generate(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
                 voice: str | None = None) -> str:
        self.prompts.append(list(messages))
        self.voices.append(voice)
        return self.reply

    def stream(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
               voice: str | None = None) -> Iterator[str]:
        self.prompts.append(list(messages))
        self.voices.append(voice)
        for word in self.reply.split(" "):
            yield word + " "


class FramingGenerator(ScriptedGenerator):
    """A voice whose every reply opens with `lead`, says something of its own, and closes
    with `sign_off`."""

    def __init__(self, lead: str, sign_off: str) -> None:
        super().__init__(f"{lead}\n\nSome invented steps follow [1].\n\n{sign_off}")


def driftwood_frame(name: str = "crew") -> VoiceFrame:
    """The frame of the bundled sample voice, learned from its example replies (six rotating
    greetings, one sign-off): what a trained voice named `name` is framed with."""
    path = Path(__file__).parents[1] / "adapters_lora" / "sample_voice" / "driftwood_voice.jsonl"
    return learn_frame([json.loads(line)["answer"] for line in path.read_text(encoding="utf-8").splitlines()])


class ObedientGenerator(ScriptedGenerator):
    """The worst-case model: does whatever the prompt says, i.e. prints the whole prompt back."""

    def generate(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
                 voice: str | None = None) -> str:
        self.prompts.append(list(messages))
        return "\n".join(m.content for m in messages)


class CountingReindexer:
    def __init__(self) -> None:
        self.runs = 0

    def reindex(self, progress=None, started_by="unknown", trigger="chat"):
        self.runs += 1
        if progress:
            progress("scanned", 1, 1)
        return _Outcome()


class _Outcome:
    def summary(self) -> str:
        return "Index v2: 3 documents."

    def to_dict(self) -> dict:
        return {"version": 2, "went_live": True}


class StaticStatus:
    def status(self) -> dict:
        return {"index_version": 2, "documents": 3}


class FixedAnswers(AnswerService):
    """The core's answering service replying with one fixed text citing one page, streamed in
    a single piece: for adapter tests about how an answer is delivered, not what it says."""

    def __init__(self, retriever, text: str, source: str, hold: threading.Event | None = None) -> None:
        super().__init__(retriever, ScriptedGenerator())
        self.text, self.source = text, source
        self.hold = hold  # while cleared, answers wait (a slow answer)

    def answer(self, question: Question, on_token=None) -> Answer:
        if self.hold is not None:
            self.hold.wait(30)
        if on_token is not None:
            on_token(self.text)
        return Answer(answer=self.text, abstained=False,
                      citations=[Citation(n=1, source=self.source, title=self.source, score=1.0)])


class MemoryVoices:
    """VoiceControl over two voices kept in memory."""

    def __init__(self) -> None:
        self.names: list[str] = ["crew-v1", "crew-v2"]
        self.active: str | None = None
        self.history: list[str | None] = []

    def voice_names(self) -> list[str]:
        return self.names

    def active_voice(self) -> str | None:
        return self.active

    def activate_voice(self, name: str) -> str | None:
        if name not in self.names:
            raise VoiceRefused(f"no voice named {name!r}")
        previous, self.active = self.active, name
        self.history.append(previous)
        return previous

    def rollback_voice(self) -> str | None:
        if not self.history:
            raise VoiceRefused("nothing to roll back to")
        self.active = self.history.pop()
        return self.active
