"""Free answers (a larger model or a serving engine writing the whole reply) pass the same
check as composed ones: sentence by sentence, as they stream, each must be supported by a
passage it cites (or, uncited, by one it can be tied to); what is not is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.generated_text import tidy
from bot.grounding import content_terms, identifiers, supports
from bot.passage_units import split_sentences

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


class VerifiedStream:
    """Feed generated text in pieces; get back only whole, supported sentences."""

    def __init__(self, passages: Sequence[str]) -> None:
        self.passages = list(passages)
        self.buffer = ""
        self.kept: list[str] = []
        self.dropped: list[str] = []
        self.cited: list[int] = []
        self._code: list[str] | None = None

    def feed(self, piece: str) -> str:
        self.buffer += piece
        out = []
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            out.append(self._line(line))
        return "".join(out)

    def finish(self) -> str:
        rest, self.buffer = tidy(self.buffer), ""
        return self._line(rest, final=True) if rest else ""

    @property
    def text(self) -> str:
        return "".join(self.kept).strip()

    def _line(self, line: str, final: bool = False) -> str:
        if line.strip().startswith("```") or self._code is not None:
            return self._code_line(line)
        if not line.strip():
            return self._keep("\n") if self.kept and not self.kept[-1].endswith("\n\n") else ""
        prefix = re.match(r"^\s*(?:\d{1,2}[.)]|[-*+])\s+", line)
        sentences = split_sentences(line[prefix.end():] if prefix else line)
        good = [s for s in (self._check(s) for s in sentences) if s]
        if not good:
            return ""
        return self._keep((prefix.group(0) if prefix else "") + " ".join(good) + ("" if final else "\n"))

    def _code_line(self, line: str) -> str:
        if self._code is None:
            self._code = [line]
            return ""
        self._code.append(line)
        if not line.strip().startswith("```"):
            return ""
        block, self._code = "\n".join(self._code), None
        inner = "\n".join(block.splitlines()[1:-1]).strip()
        if inner and any(inner in p for p in self.passages):
            return self._keep(block + "\n")
        self.dropped.append(block)
        return ""

    def _check(self, sentence: str) -> str | None:
        cited = [int(n) for group in _MARKER.findall(sentence) for n in group.split(",")]
        cited = [n for n in cited if 1 <= n <= len(self.passages)]
        plain = _MARKER.sub("", sentence).strip()
        if len(content_terms(plain)) < 2 and not identifiers(plain):
            return None  # "Also see [9]." says nothing a passage could back
        candidates = cited or range(1, len(self.passages) + 1)
        backing = next((n for n in candidates if supports(plain, self.passages[n - 1])), None)
        if backing is None:
            self.dropped.append(sentence)
            return None
        if backing not in self.cited:
            self.cited.append(backing)
        if cited:
            return _MARKER.sub(lambda m: "[" + ", ".join(
                n for n in m.group(1).replace(" ", "").split(",") if 1 <= int(n) <= len(self.passages)) + "]"
                if any(1 <= int(n) <= len(self.passages) for n in m.group(1).replace(" ", "").split(",")) else "",
                sentence)
        match = re.search(r"([.!?:])$", sentence)
        return f"{sentence[:match.start()]} [{backing}]{sentence[match.start():]}" if match else f"{sentence} [{backing}]"

    def _keep(self, text: str) -> str:
        self.kept.append(text)
        return text
