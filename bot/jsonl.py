"""JSON Lines files that people write by hand: each problem is reported with its line number."""

from __future__ import annotations

import json
from pathlib import Path


class UnreadableFile(ValueError):
    """The file itself cannot be read as UTF-8 text; str() says why."""


def read_objects(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, object) for every non-blank line that is a JSON object, and a
    "line N: ..." problem for every line that is not."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UnreadableFile(f"cannot read: {err.strerror or err}") from None
    rows: list[tuple[int, dict]] = []
    problems: list[str] = []
    for number, encoded in enumerate(data.split(b"\n"), 1):
        try:  # line by line, so one bad byte names its line and hides no other problem
            raw = encoded.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(f"line {number}: not UTF-8 text (byte {encoded[err.start]:#04x} at column {err.start + 1})")
            continue
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            problems.append(f"line {number}: invalid JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {number}: expected a JSON object")
            continue
        rows.append((number, row))
    return rows, problems
