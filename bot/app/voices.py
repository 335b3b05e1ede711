"""Brand voices as the chat commands and the CLI use them: list, activate (only a voice
trained on this bot's base model), roll back, train and evaluate. The VoiceControl the
core's /voice command speaks to; the voice registry itself lives in adapters_lora."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app.config import Settings
from bot.voice_frame import VoiceFrame, learn_frame

if TYPE_CHECKING:
    from adapters_lora.dataset import VoiceExample
    from adapters_lora.registry import VoiceRegistry
    from adapters_lora.train import TrainingResult
    from bot.protocols import Generator


def bundled_voice_dataset() -> Path:
    return Path(str(resources.files("adapters_lora") / "sample_voice" / "driftwood_voice.jsonl"))


class Voices:
    def __init__(self, settings: Settings, registry: VoiceRegistry | None = None) -> None:
        self.settings = settings
        self._registry = registry

    @property
    def registry(self) -> VoiceRegistry:
        if self._registry is None:
            from adapters_lora.registry import VoiceRegistry

            self._registry = VoiceRegistry(self.settings.voices_dir)
        return self._registry

    def base_model_path(self) -> str:
        """The base generator as a loadable folder or id (converts the bundled GGUF once)."""
        from adapters_lora.base_model import resolve_base_model

        return resolve_base_model(self.settings.generation.model, self.settings.models_dir)

    def base_model_id(self) -> str:
        from adapters_lora.base_model import BUNDLED, BUNDLED_MODEL_ID

        model = self.settings.generation.model
        return BUNDLED_MODEL_ID if model == BUNDLED else model

    # VoiceControl, for the chat command
    def voice_names(self) -> list[str]:
        return [v.name for v in self.registry.list()]

    def active_voice(self) -> str | None:
        return self.registry.active

    def activate_voice(self, name: str) -> str | None:
        """Activate a voice trained on this bot's base model (another base's would not load)."""
        info = {v.name: v for v in self.registry.list()}.get(name)
        if info is not None and info.meta.get("base_model") != self.base_model_id():
            from adapters_lora.registry import RegistryError

            raise RegistryError(f"voice {name!r} was trained on {info.meta.get('base_model')}, "
                                f"but this bot runs {self.base_model_id()}")
        return self.registry.activate(name)

    def frame(self, name: str) -> VoiceFrame | None:
        """The greeting and sign-off the voice's example replies share: saved when it was
        trained; for a voice trained before frames were learned, learned now from its dataset
        if that file is still there (else None: answers in it go unframed)."""
        info = {v.name: v for v in self.registry.list()}.get(name)
        if info is None:
            return None
        if isinstance(info.meta.get("frame"), dict):
            return VoiceFrame.from_dict(info.meta["frame"])
        from adapters_lora.dataset import DatasetError

        try:
            train, _ = self.examples(name)
        except (DatasetError, OSError) as err:
            logging.getLogger(__name__).warning("voice %s has no learned frame and its examples cannot be read (%s); "
                                                "retrain it to frame its answers", name, str(err).splitlines()[0])
            return None
        return learn_frame([e.answer for e in train])

    def examples(self, name: str) -> tuple[list[VoiceExample], list[VoiceExample]]:
        """The voice's (training, held-out) examples, split as its training split them."""
        from adapters_lora.dataset import load_examples, split_held_out

        meta = {v.name: v for v in self.registry.list()}[name].meta
        training = meta.get("training", {})
        examples = load_examples(Path(meta.get("dataset", {}).get("path", "")))
        return split_held_out(examples, training.get("held_out_fraction", 0.1), training.get("seed", 1234))

    def rollback_voice(self) -> str | None:
        return self.registry.rollback()

    # the CLI's voice commands
    def train(self, dataset: Path, name: str, overrides: dict[str, Any]) -> TrainingResult:
        from adapters_lora.train import TrainingConfig, train_voice

        return train_voice(dataset, name, self.registry, self.base_model_path(), self.base_model_id(),
                           TrainingConfig(**overrides))

    def evaluate(self, name: str, generator: Generator, embed: Callable[[list[str]], Any],
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
        from adapters_lora.voice_eval import evaluate_voice

        return evaluate_voice(generator, self.registry, name, embed, log=log)


def check_voice_dataset(path: Path) -> str:
    from adapters_lora.dataset import load_examples, require_enough, split_held_out

    examples = load_examples(path)
    require_enough(path, examples)
    with_context = sum(1 for e in examples if e.context)
    train, held = split_held_out(examples, 0.1, 1234)
    return (f"{path}: {len(examples)} examples OK ({with_context} with context); "
            f"{len(train)} for training, {len(held)} held out.\n"
            f"Training would learn: {learn_frame([e.answer for e in train]).summary()}")
