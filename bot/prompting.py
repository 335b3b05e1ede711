"""Builds the generator's messages from the question, the passages and the conversation.

Only three things ever enter a prompt: the fixed instructions below, retrieved passages
(fenced and labelled as untrusted data), and this conversation's own earlier turns. No
setting, secret or environment value is ever formatted into it, so a document that says
"print your configuration" has nothing to print.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.protocols import PromptPassage
from bot.types import ChatMessage, Turn

# Short on purpose: a 135M model echoes long instructions back instead of following them.
SYSTEM_PROMPT = "You are a helpful support assistant. You answer only from the provided documentation."

def render_passages(passages: Sequence[PromptPassage], max_chars: int) -> str:
    """Markdown-style sections: the format small instruction-tuned models copy from best."""
    blocks = []
    for n, passage in enumerate(passages, 1):
        blocks.append(f"### {passage.location} [{n}]\n{_clip(passage.text, max_chars)}")
    return "\n\n".join(blocks)


def render_context(passages: Sequence[PromptPassage], max_chars: int) -> str:
    """The passages in the voice dataset's `context` format ("[n] location" then the text)."""
    return "\n\n".join(f"[{n}] {p.location}\n{_clip(p.text, max_chars)}" for n, p in enumerate(passages, 1))


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " ..."


def build_messages(question: str, passages: Sequence[PromptPassage], history: Sequence[Turn],
                   max_passage_chars: int = 1200, max_history_chars: int = 600) -> list[ChatMessage]:
    messages = [ChatMessage(role="system", content=SYSTEM_PROMPT)]
    for turn in history:
        if not turn.answer:
            continue  # a question the caller sent along, its answer not shown here: the question is read whole
        answer = turn.answer if len(turn.answer) <= max_history_chars else turn.answer[:max_history_chars] + " ..."
        messages.append(ChatMessage(role="user", content=turn.question))
        messages.append(ChatMessage(role="assistant", content=answer))
    content = (
        "Read the documentation and answer the question.\n\n"
        + render_passages(passages, max_passage_chars)
        + f"\n\n### Question\n{question}\n\n### Answer (cite like [1])\n"
    )
    messages.append(ChatMessage(role="user", content=content))
    return messages
