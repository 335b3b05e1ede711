"""Post-processing of what a small model generates: stop where it starts inventing new
passages or questions, cut degenerate loops, keep only citations to passages that exist."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# Where a small model, having answered, starts writing a new prompt of its own.
_RUNAWAY = re.compile(
    r"\n\s*(?:\[\d+\]\s+\S[^\n]*\([^)\n]+\)\s*$|#{1,4}\s*(?:Question|Answer)\b|Question\s*:"
    r"|Documentation\s*:|Passage\s*\[?\d|Read the documentation)",
    re.IGNORECASE | re.MULTILINE,
)
# A sentence ends at . ! or ? (optionally closed by ** or a quote) - not a list number "2."
_SENTENCE_END = re.compile(r"[.!?](?:\*\*|[\"')])?(?=\s|$)")


def tidy(text: str, finish_sentence: bool = True) -> str:
    """Trim runaway continuations and repetition; end on a whole sentence if cut short."""
    text = text.strip()
    runaway = _RUNAWAY.search(text)
    if runaway:
        text = text[: runaway.start()].rstrip()
    text = _cut_loops(_collapse_stutter(text))
    text = re.sub(r"(?:\s*\[\d+\]){4,}", "", text)  # "[1] [2] [3] [4] ..." lists
    last_line = text.rsplit("\n", 1)[-1].strip()
    if finish_sentence and len(last_line) > 60 and not _SENTENCE_END.search(last_line[-3:] + " "):
        # A long last line with no stop was cut by the token budget: end on the last whole
        # sentence. Short last lines (a sign-off, a name, a heading) are left alone.
        ends = [m.end() for m in _SENTENCE_END.finditer(text) if not _is_list_number(text, m.start())]
        if ends and ends[-1] >= len(text) // 3:
            text = text[: ends[-1]]
    return text.strip()


def _is_list_number(text: str, dot: int) -> bool:
    line_start = text.rfind("\n", 0, dot) + 1
    return text[line_start:dot].strip().isdigit()


_STUTTER = re.compile(r"(\S.{2,80}?)(?:\s*\1){2,}", re.S)


def _collapse_stutter(text: str) -> str:
    """"Ahoy!\n\nAhoy!\n\nAhoy!" -> "Ahoy!": a short unit said three or more times in a row."""
    return _STUTTER.sub(lambda m: m.group(1) if re.search(r"[A-Za-z]", m.group(1)) else m.group(0), text)


def _cut_loops(text: str, min_len: int = 24) -> str:
    """A loop is a span of >= min_len chars that comes back a third time; keep one copy.
    (A phrase said twice, like "per user per month" for two prices, is not a loop.)"""
    seen: dict[str, list[int]] = {}
    for start in range(0, max(0, len(text) - min_len)):
        span = text[start:start + min_len]
        positions = seen.setdefault(span, [])
        if positions and start - positions[-1] < min_len:
            continue  # overlapping with its own last copy
        positions.append(start)
        if len(positions) == 3:
            second = positions[1]
            cut = second if text[second].isspace() else text.rfind(" ", 0, second)
            return text[: cut if cut > 0 else second].rstrip(" ,;:-")
    return text


def cited_numbers(text: str, available: int) -> tuple[str, list[int]]:
    """Return the text with invalid [n] markers removed, and valid numbers in first-cited order."""
    order: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        valid = [n for n in numbers if 1 <= n <= available]
        for n in valid:
            if n not in order:
                order.append(n)
        return "".join(f"[{n}]" for n in valid)

    cleaned = _MARKER.sub(keep_valid, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return cleaned.strip(), order
