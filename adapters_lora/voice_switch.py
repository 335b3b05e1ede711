"""Which voice adapter the loaded model speaks with, switched in place without a reload.

Every voice that has been used stays loaded in one peft model (multi-adapter); the one in
use is merged into the base weights, so generation costs what the base model costs. A
switch unmerges the current voice and merges the next (milliseconds for a small model);
"no voice" runs the base model with adapters disabled.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path


class VoiceSwitch:
    def __init__(self, base_model, merge: bool = True) -> None:
        self.model = base_model
        self.merge = merge
        self.loaded: dict[str, Path] = {}
        self.current: str | None = None
        self._merged = False

    def use(self, name: str | None, path: Path | None = None) -> None:
        """Make `name` (loaded from `path` on first use) the voice in effect; None: base model."""
        if name == self.current:
            return
        if name is not None and name not in self.loaded:
            if path is None:
                raise ValueError(f"voice {name!r} is not loaded and no path was given")
            self._load(name, path)
        if self._merged:
            self.model.unmerge_adapter()
            self._merged = False
        if name is not None:
            self.model.set_adapter(name)
            if self.merge:
                self.model.merge_adapter()
                self._merged = True
        self.current = name

    def _load(self, name: str, path: Path) -> None:
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        else:
            if self._merged:
                self.model.unmerge_adapter()
                self._merged = False
            self.model.load_adapter(str(path), adapter_name=name)  # `use` activates it
        self.model.eval()
        self.loaded[name] = Path(path)

    @contextmanager
    def generating(self):
        """Context for one generation: adapters off when no voice is in effect."""
        from peft import PeftModel

        if self.current is None and isinstance(self.model, PeftModel):
            with self.model.disable_adapter():
                yield self.model
        else:
            with nullcontext():
                yield self.model
