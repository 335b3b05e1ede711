"""What the core needs from retrieval, generation and indexing, as structural Protocols.

The core never imports knowledge or adapters_lora; the composition root (bot.app) hands in
objects that happen to fit these shapes, and tests hand in fakes the same way (tests/
test_protocol_contracts.py runs one set of checks against both). The errors that cross a
boundary are declared here too, so knowledge and adapters_lora raise them and the core
catches them by type, never by a broad ValueError that would also swallow a bug.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from bot.types import ChatMessage


class PromptPassage(Protocol):
    """What a prompt needs of a passage (voice training data has just this much)."""

    @property
    def location(self) -> str: ...

    @property
    def text(self) -> str: ...


class Passage(Protocol):
    """A retrieved piece of a document (the best chunk of one document)."""

    collection: str
    source: str
    title: str
    heading: str
    text: str
    url: str | None
    score: float
    relevant: bool

    @property
    def location(self) -> str:
        """Title and heading path, e.g. "Install > Windows"."""
        ...


@runtime_checkable
class Retriever(Protocol):
    def search(self, query: str, k: int = 5, collections: list[str] | None = None) -> Sequence[Passage]: ...


@runtime_checkable
class TextSimilarity(Protocol):
    """How close in meaning each text is to a query (cosine of sentence embeddings)."""

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]: ...


def disk_fault(err: BaseException) -> str | None:
    """"full" or "not writable" when an error is the machine's disk (full, read-only, not
    permitted), whatever library raised it; None for anything else."""
    code, text = getattr(err, "errno", None), str(err)
    if code == errno.ENOSPC or "No space left on device" in text:
        return "full"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "Read-only file system" in text or "Permission denied" in text:
        return "not writable"
    return None


class RetrievalUnavailable(RuntimeError):
    """The docs index cannot be read now (damaged, missing); str() says what and what to do."""


class GenerationUnavailable(RuntimeError):
    """The generator cannot answer now (a remote engine down, timing out); str() says why."""


class Refused(Exception):
    """A request declined for a reason the person who asked can act on; str() says it.
    Raised across a boundary and shown as the reply, never taken for a bug."""


class VoiceRefused(Refused, ValueError):
    """A brand-voice request cannot be done: unknown voice, nothing to roll back to, a
    dataset that cannot train, a voice trained on another base model."""


class RollbackRefused(Refused, ValueError):
    """An index rollback cannot be done: no such version, or one that can no longer be served."""


BASE_VOICE = "base"  # the voice argument that asks a Generator for the bare base model


@runtime_checkable
class Generator(Protocol):
    """voice=None: the active brand voice; a name: that voice; BASE_VOICE: no voice adapter."""

    def generate(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
                 voice: str | None = None) -> str: ...

    def stream(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
               voice: str | None = None) -> Iterator[str]: ...


ProgressCallback = Callable[[str, int, int], None]


class ReindexOutcome(Protocol):
    def summary(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class Reindexer(Protocol):
    """Runs one re-index; raises bot.reindex_lock.AlreadyRunning when one is under way anywhere."""

    def reindex(self, progress: ProgressCallback | None = None, started_by: str = "unknown",
                trigger: str = "chat") -> ReindexOutcome: ...


class Notifier(Protocol):
    """Posts a message to a channel named "platform:channel-id" (e.g. the admins' channel)."""

    def post(self, channel: str, text: str) -> None: ...


class StatusSource(Protocol):
    def status(self) -> dict[str, Any]: ...


class VoiceControl(Protocol):
    """Brand voices as chat admins see them."""

    def voice_names(self) -> list[str]: ...

    def active_voice(self) -> str | None: ...

    def activate_voice(self, name: str) -> str | None: ...

    def rollback_voice(self) -> str | None: ...
