"""Voice adapters on disk: one folder per trained voice, plus which one is active.

A voice is written into a staging folder and renamed into place only when complete, so an
interrupted or crashed training never leaves a half-written voice behind. The active voice
and the history behind it (for rollback) live in one small JSON file replaced atomically.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.protocols import VoiceRefused

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VOICE_FILE = "voice.json"
STATE_FILE = "state.json"
BACKUP_SUFFIX = ".bak"  # a second copy of the last good state, written after every change
log = logging.getLogger(__name__)


class RegistryError(VoiceRefused):
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
        """Which voice is active and the history behind it. A damaged file is never taken for
        "no voice": the last good copy beside it is restored, or the action is refused."""
        path = self.root / STATE_FILE
        if not path.exists():
            return {"active": None, "history": []}
        problem = _state_problem(path)
        if problem is None:
            return json.loads(path.read_text(encoding="utf-8"))
        backup = path.with_name(STATE_FILE + BACKUP_SUFFIX)
        if backup.exists() and _state_problem(backup) is None:
            log.warning("%s was damaged (%s); restored the last good state from %s", path, problem, backup)
            shutil.copyfile(backup, path)
            return json.loads(path.read_text(encoding="utf-8"))
        raise RegistryError(f"{path} is damaged ({problem}) and has no good backup: fix it, or delete it to start "
                            f"with no active voice (the trained voices themselves are untouched)")

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for target in (STATE_FILE, STATE_FILE + BACKUP_SUFFIX):  # the file, then its last good copy
            tmp = self.root / f".{target}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
            os.replace(tmp, self.root / target)

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
        _read_meta(path / VOICE_FILE)  # a damaged voice is refused by name, not loaded half-way
        return path

    def list(self) -> list[VoiceInfo]:
        voices = []
        for folder, meta in self._voice_folders():
            if isinstance(meta, RegistryError):  # named where it is used (activate, doctor), not on every listing
                log.info("%s", meta)
            else:
                voices.append(VoiceInfo(folder.name, folder, meta))
        return voices

    def damaged_voices(self) -> list[str]:
        """What is wrong with each voice folder whose voice.json cannot be read."""
        return [str(meta) for _, meta in self._voice_folders() if isinstance(meta, RegistryError)]

    def _voice_folders(self) -> Iterator[tuple[Path, dict[str, Any] | RegistryError]]:
        """Each voice folder with its voice.json, or what is wrong with that file."""
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and not folder.name.startswith(".") and (folder / VOICE_FILE).is_file():
                try:
                    yield folder, _read_meta(folder / VOICE_FILE)
                except RegistryError as err:
                    yield folder, err

    @property
    def active(self) -> str | None:
        """The active voice; answers go on with the base model (and an error in the log) while
        the state is damaged beyond its backup, but voice commands are refused until fixed."""
        try:
            name = self._state().get("active")
        except RegistryError as err:
            log.error("answering with the base model: %s", err)
            return None
        return name if name and (self.root / name / VOICE_FILE).is_file() else None

    def problem(self) -> str | None:
        """What is wrong with the voice state, or None (a damaged file with a good backup is
        restored, so it is not a problem)."""
        try:
            self._state()
        except RegistryError as err:
            return str(err)
        return None

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


def _state_problem(path: Path) -> str | None:
    """What is wrong with a state file, or None: {"active": name or null, "history": [names]}."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        return f"unreadable: {err.__class__.__name__}"
    except json.JSONDecodeError as err:
        return f"not JSON: {err.msg} at line {err.lineno}"
    if not isinstance(state, dict):
        return f"expected an object with 'active' and 'history', found a JSON {type(state).__name__}"
    active, history = state.get("active"), state.get("history", [])
    if active is not None and not isinstance(active, str):
        return "'active' must be a voice name or null"
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        return "'history' must be a list of voice names"
    return None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RegistryError(f"{path} is damaged ({err.__class__.__name__}); retrain this voice or restore the file")
    if not isinstance(meta, dict):
        raise RegistryError(f"{path} is damaged (expected a JSON object, found a {type(meta).__name__}); "
                            f"retrain this voice or restore the file")
    return meta
