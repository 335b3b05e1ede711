"""Voice adapters on disk: one folder per trained voice, plus which one is active.

A voice is written into a staging folder and renamed into place only when complete, so an
interrupted or crashed training never leaves a half-written voice behind. The active voice
and the history behind it (for rollback) live in one small JSON file replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VOICE_FILE = "voice.json"
STATE_FILE = "state.json"


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    path: Path
    meta: dict[str, Any]


class VoiceRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.root / STATE_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return {"active": None, "history": []}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{STATE_FILE}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.root / STATE_FILE)

    @staticmethod
    def check_name(name: str) -> str:
        if name.lower() == "base":
            raise RegistryError("'base' is reserved for the bare base model")
        if not _NAME.match(name):
            raise RegistryError(f"invalid voice name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
        return name

    def path(self, name: str) -> Path:
        path = self.root / self.check_name(name)
        if not (path / VOICE_FILE).is_file():
            known = ", ".join(v.name for v in self.list()) or "none yet"
            raise RegistryError(f"no voice named {name!r} (known: {known})")
        return path

    def list(self) -> list[VoiceInfo]:
        if not self.root.is_dir():
            return []
        voices = []
        for folder in sorted(self.root.iterdir()):
            meta_file = folder / VOICE_FILE
            if folder.is_dir() and not folder.name.startswith(".") and meta_file.is_file():
                try:
                    voices.append(VoiceInfo(folder.name, folder, json.loads(meta_file.read_text())))
                except json.JSONDecodeError:
                    continue
        return voices

    @property
    def active(self) -> str | None:
        name = self._state().get("active")
        return name if name and (self.root / name / VOICE_FILE).is_file() else None

    def activate(self, name: str) -> str | None:
        """Make `name` active; returns the voice it replaced (kept for rollback)."""
        self.path(name)
        state = self._state()
        previous = state.get("active")
        if previous == name:
            return previous
        history = [h for h in state.get("history", []) if h != name]
        if previous:
            history.append(previous)
        self._write_state({"active": name, "history": history[-20:]})
        return previous

    def deactivate(self) -> None:
        state = self._state()
        if state.get("active"):
            state["history"] = (state.get("history", []) + [state["active"]])[-20:]
        state["active"] = None
        self._write_state(state)

    def rollback(self) -> str | None:
        """Re-activate the voice that was active before; None means the base model."""
        state = self._state()
        history = [h for h in state.get("history", []) if (self.root / h / VOICE_FILE).is_file()]
        if not history:
            if not state.get("active"):
                raise RegistryError("nothing to roll back to")
            self._write_state({"active": None, "history": []})
            return None
        previous = history.pop()
        self._write_state({"active": previous, "history": history})
        return previous

    @contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A folder to write a new voice into; it appears under `name` only if the block completes."""
        self.check_name(name)
        final = self.root / name
        if final.exists():
            raise RegistryError(f"a voice named {name!r} already exists; pick a new name (e.g. {name}-2)")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".staging-{name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            yield staging
            if not (staging / VOICE_FILE).is_file():
                raise RegistryError("training wrote no voice.json; nothing was registered")
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
