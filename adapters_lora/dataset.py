"""Voice examples: read and validate the JSONL a team writes, before any training starts.

A line is {"question", "answer"} with an optional "context" (the passages the answer was
grounded on, "[1] Title > Section\\ntext" blocks) or a "messages" chat list ending with the
assistant's reply. Every problem is reported with its line number, all at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from bot.jsonl import UnreadableFile, read_objects
from bot.protocols import VoiceRefused

MAX_QUESTION_CHARS = 2_000
MAX_ANSWER_CHARS = 4_000
MAX_CONTEXT_CHARS = 8_000
_ROLES = {"system", "user", "assistant"}
_PASSAGE_START = re.compile(r"^\[(\d+)\]\s*(.*)$", re.M)


@dataclass(frozen=True)
class ContextPassage:
    """A passage as the bot shows it to the model: where it is, and what it says."""

    location: str
    text: str


@dataclass(frozen=True)
class VoiceExample:
    line: int
    question: str
    answer: str
    context: tuple[ContextPassage, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()  # (role, content) when given as a chat list


# Fewer examples do not make a voice: 10% are held out to stop training before it memorises
# (3 is the least that says anything), and a LoRA adapter fitted to a couple of dozen replies
# copies their sentences rather than their tone. The bundled sample voice has 227.
MIN_TRAINING_EXAMPLES = 30


class DatasetError(VoiceRefused):
    def __init__(self, path: Path, problems: list[str]) -> None:
        shown = problems[:25] + ([f"... and {len(problems) - 25} more"] if len(problems) > 25 else [])
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in shown))
        self.problems = problems


def parse_context(context: str) -> tuple[ContextPassage, ...]:
    """Split "[1] Title > Section\\ntext\\n\\n[2] ..." into passages (plain text is one passage)."""
    starts = list(_PASSAGE_START.finditer(context))
    if not starts:
        return (ContextPassage("Documentation", context.strip()),) if context.strip() else ()
    passages = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(context)
        body = context[match.end():end].strip()
        passages.append(ContextPassage(match.group(2).strip() or "Documentation", body))
    return tuple(passages)


def dataset_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_examples(path: Path) -> list[VoiceExample]:
    """All examples, or DatasetError listing every problem with its line number."""
    path = Path(path)
    try:
        rows, problems = read_objects(path)
    except UnreadableFile as err:
        raise DatasetError(path, [str(err)]) from None
    examples: list[VoiceExample] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        example = _example(number, row, problems)
        if example is None:
            continue
        key = " ".join(example.question.lower().split())
        if key in seen:
            problems.append(f"line {number}: duplicate question (same as line {seen[key]})")
            continue
        seen[key] = number
        examples.append(example)
    if not examples and not problems:
        problems.append("no examples")
    if problems:
        problems.sort(key=lambda p: int(p.split(":", 1)[0].removeprefix("line ")) if p.startswith("line ") else 0)
        raise DatasetError(path, problems)
    return examples


def _example(number: int, row: dict, problems: list[str]) -> VoiceExample | None:
    if "messages" in row:
        return _chat_example(number, row["messages"], problems)
    question, answer, context = row.get("question"), row.get("answer"), row.get("context", "")
    missing = [name for name, value in (("question", question), ("answer", answer))
               if not isinstance(value, str) or not value.strip()]
    if missing:
        problems.append(f"line {number}: missing or empty {' and '.join(repr(m) for m in missing)}")
        return None
    if not isinstance(context, str):
        problems.append(f"line {number}: 'context' must be a string")
        return None
    for name, value, limit in (("question", question, MAX_QUESTION_CHARS), ("answer", answer, MAX_ANSWER_CHARS),
                               ("context", context, MAX_CONTEXT_CHARS)):
        if len(value) > limit:
            problems.append(f"line {number}: '{name}' is {len(value)} characters (limit {limit})")
            return None
    return VoiceExample(number, question.strip(), answer.strip(), parse_context(context))


def _chat_example(number: int, messages: object, problems: list[str]) -> VoiceExample | None:
    if not isinstance(messages, list) or len(messages) < 2:
        problems.append(f"line {number}: 'messages' must be a list of at least two messages")
        return None
    pairs: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES or not isinstance(message.get("content"), str):
            problems.append(f"line {number}: message {i + 1} needs a role (system/user/assistant) and string content")
            return None
        pairs.append((message["role"], message["content"]))
    if pairs[-1][0] != "assistant" or not pairs[-1][1].strip():
        problems.append(f"line {number}: the last message must be the assistant's reply")
        return None
    users = [content for role, content in pairs if role == "user"]
    if not users:
        problems.append(f"line {number}: 'messages' has no user message")
        return None
    if len(pairs[-1][1]) > MAX_ANSWER_CHARS or sum(len(c) for _, c in pairs) > MAX_CONTEXT_CHARS + MAX_ANSWER_CHARS:
        problems.append(f"line {number}: messages are too long")
        return None
    return VoiceExample(number, users[-1].strip(), pairs[-1][1].strip(), (), tuple(pairs))


def require_enough(path: Path, examples: list[VoiceExample]) -> None:
    if len(examples) < MIN_TRAINING_EXAMPLES:
        raise DatasetError(path, [
            f"{len(examples)} example(s); a voice needs at least {MIN_TRAINING_EXAMPLES} (3 held out to stop "
            f"training before it memorises, the rest to learn the tone; the bundled sample voice has 227)"])


def split_held_out(examples: list[VoiceExample], fraction: float, seed: int) -> tuple[list[VoiceExample], list[VoiceExample]]:
    """Deterministic split by a seeded hash of each question (stable when lines are added)."""
    if not 0 < fraction < 1:
        raise DatasetError("held_out_fraction must be between 0 and 1")

    def bucket(example: VoiceExample) -> float:
        digest = hashlib.sha256(f"{seed}:{example.question}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    held = [e for e in examples if bucket(e) < fraction]
    if not held and len(examples) > 1:
        held = [min(examples, key=bucket)]
    train = [e for e in examples if e not in held]
    if not train:
        raise DatasetError("too few examples to hold some out; add more examples")
    return train, held
