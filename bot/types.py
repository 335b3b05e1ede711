"""The shapes every adapter and tool speaks: a Question in, an Answer with Citations out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Question(BaseModel):
    """A user's question as any platform delivers it."""

    model_config = ConfigDict(frozen=True)

    text: str
    user_id: str = "anonymous"
    conversation_id: str = ""  # a thread, DM or console session: the memory key ("" = no memory)
    channel_id: str | None = None
    platform: str = "cli"
    collections: list[str] | None = None  # restrict answers to these doc collections
    # Earlier questions of the conversation, oldest first, for a caller that keeps the thread
    # itself (`ask --after`); read only when the bot remembers nothing of `conversation_id`.
    follows: tuple[str, ...] = ()


class Citation(BaseModel):
    """A numbered source; `n` matches the [n] marker in the answer text."""

    n: int
    source: str  # document path relative to its docs root
    title: str
    url: str | None = None
    score: float


class Answer(BaseModel):
    answer: str
    abstained: bool
    citations: list[Citation] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    indexed_at: str | None = None  # when the docs were indexed, if answers carry it (config)
    # For feedback and voice export, not part of the JSON contract:
    voice: str | None = Field(None, exclude=True)  # the brand voice that wrote it (None: base model)
    context: str = Field("", exclude=True)  # the passages it was grounded on, "[n] location\ntext" blocks

    def contract_json(self) -> dict:
        """The `ask --json` object other tools rely on (DESIGN.md); `indexed_at` only when set."""
        return self.model_dump(mode="json", exclude={"indexed_at"} if self.indexed_at is None else set())


class ChatMessage(BaseModel):
    """One chat-template message handed to the generator."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Turn(BaseModel):
    """A remembered exchange in a conversation."""

    question: str
    answer: str
    sources: list[str] = Field(default_factory=list)
