"""Real LoRA training on the bundled base model: loss falls, runs repeat exactly, the saved
voice reproduces the trained one, voices hot-swap and roll back, interruptions leave no trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from adapters_lora.base_model import BUNDLED_MODEL_ID, resolve_base_model
from adapters_lora.generator import BASE_VOICE, GenerationSettings, TransformersGenerator
from adapters_lora.registry import VoiceRegistry
from adapters_lora.train import TrainingConfig, TrainingResult, train_voice
from adapters_lora.voice_eval import messages_for
from adapters_lora.dataset import load_examples
from bot.app.voices import bundled_voice_dataset
from tests.test_voice_frame import SHAPES

pytestmark = pytest.mark.slow

FAST = dict(rank=8, alpha=16, epochs=1, batch_size=4, max_steps=6, max_seq_tokens=512, learning_rate=1e-3,
            held_out_fraction=0.2, evals_per_epoch=6, patience=10)


@pytest.fixture(scope="module")
def base(model_cache: Path) -> str:
    return resolve_base_model("bundled", model_cache)


def subset(tmp: Path, start: int, count: int) -> Path:
    lines = bundled_voice_dataset().read_text(encoding="utf-8").splitlines()[start:start + count]
    path = tmp / f"voice-{start}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, base: str) -> tuple[VoiceRegistry, TrainingResult, Path]:
    tmp = tmp_path_factory.mktemp("voices")
    registry = VoiceRegistry(tmp / "voices")
    data = subset(tmp, 0, 30)
    result = train_voice(data, "crew-v1", registry, base, BUNDLED_MODEL_ID, TrainingConfig(**FAST),
                         progress_bar=False, log=lambda m: None)
    return registry, result, data


def test_training_lowers_held_out_loss_and_saves_a_complete_voice(trained) -> None:
    registry, result, data = trained
    assert result.best_held_out_loss < result.initial_held_out_loss
    folder = registry.path("crew-v1")
    for name in ("adapter_model.safetensors", "adapter_config.json", "voice.json", "report.json", "loss.png"):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "voice.json").read_text())
    assert meta["base_model"] == BUNDLED_MODEL_ID
    assert len(meta["dataset"]["sha256"]) == 64 and meta["training"]["seed"] == 1234
    assert {"peft", "transformers", "torch"} <= set(meta["versions"])
    assert json.loads((folder / "report.json").read_text())["loss_curves"]["held_out"][0][0] == 0


def test_same_seed_same_adapter(trained, base: str, tmp_path: Path) -> None:
    registry, _, data = trained
    again = VoiceRegistry(tmp_path / "again")
    train_voice(data, "crew-v1", again, base, BUNDLED_MODEL_ID, TrainingConfig(**FAST), progress_bar=False,
                log=lambda m: None)
    first = load_file(str(registry.path("crew-v1") / "adapter_model.safetensors"))
    second = load_file(str(again.path("crew-v1") / "adapter_model.safetensors"))
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)


def test_saved_voice_reproduces_the_trained_model(trained, model_cache: Path) -> None:
    import torch

    registry, result, data = trained
    example = load_examples(data)[0]
    generator = TransformersGenerator("bundled", model_cache, GenerationSettings(max_new_tokens=24, weights="fp32"),
                                      voices=registry, merge_voice=False)  # fp32: exactly the trained model
    from_disk = generator.generate(messages_for(example), voice="crew-v1")
    tokenizer = generator._tokenizer
    inputs = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in messages_for(example)],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = result.model.generate(**inputs, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    in_memory = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert from_disk == in_memory


def test_hot_swap_and_rollback_change_and_restore_the_text(trained, base: str, model_cache: Path,
                                                           tmp_path: Path) -> None:
    registry, _, _ = trained
    other = subset(tmp_path, 40, 30)
    train_voice(other, "crew-v2", registry, base, BUNDLED_MODEL_ID,
                TrainingConfig(**{**FAST, "seed": 7, "learning_rate": 2e-3}), progress_bar=False, log=lambda m: None)
    example = load_examples(bundled_voice_dataset())[100]
    generator = TransformersGenerator("bundled", model_cache, GenerationSettings(max_new_tokens=40), voices=registry)
    prompt = messages_for(example)
    base_text = generator.generate(prompt, voice=BASE_VOICE)
    registry.activate("crew-v1")
    v1 = generator.generate(prompt)
    assert generator.voice == "crew-v1"
    registry.activate("crew-v2")  # e.g. `supportbot voice activate` from another process
    v2 = generator.generate(prompt)
    assert generator.voice == "crew-v2"
    assert v2 != v1
    assert registry.rollback() == "crew-v1"
    assert generator.generate(prompt) == v1
    registry.deactivate()
    assert generator.generate(prompt) == base_text


def test_interrupted_training_leaves_the_registry_as_it_was(trained, base: str) -> None:
    registry, _, data = trained
    before = sorted(p.name for p in registry.root.iterdir())

    def interrupt(step: int, loss: float) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_voice(data, "crew-broken", registry, base, BUNDLED_MODEL_ID, TrainingConfig(**FAST),
                    progress_bar=False, log=lambda m: None, on_step=interrupt)
    assert sorted(p.name for p in registry.root.iterdir()) == before
    assert "crew-broken" not in [v.name for v in registry.list()]


def test_a_crash_while_saving_leaves_no_half_written_voice(trained, base: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters_lora.train as training

    registry, _, data = trained
    before = sorted(p.name for p in registry.root.iterdir())

    def broken_plot(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(training, "_plot", broken_plot)
    with pytest.raises(OSError, match="disk full"):
        train_voice(data, "crew-crash", registry, base, BUNDLED_MODEL_ID, TrainingConfig(**{**FAST, "max_steps": 1}),
                    progress_bar=False, log=lambda m: None)
    assert sorted(p.name for p in registry.root.iterdir()) == before


VOICES = Path(__file__).parent / "benchmarks" / "data" / "voices"


@pytest.mark.parametrize(("voice", "greetings", "sign_off"),  # casual_emoji: through the CLI in test_voice_frame_answers
                         [shape for shape in SHAPES if shape[0] != "casual_emoji"])
def test_a_small_voice_of_each_shape_saves_the_exact_frame_of_its_examples(
        voice: str, greetings: tuple[str, ...], sign_off: str, base: str, tmp_path: Path) -> None:
    registry = VoiceRegistry(tmp_path / "voices")
    one_step = TrainingConfig(rank=4, alpha=8, epochs=1, batch_size=1, micro_batch_size=1, max_steps=1,
                              max_seq_tokens=512, top_layers=1, held_out_fraction=0.05, evals_per_epoch=1)
    result = train_voice(VOICES / f"{voice}.jsonl", voice, registry, base, BUNDLED_MODEL_ID, one_step,
                         progress_bar=False, log=lambda m: None)
    saved = {v.name: v for v in registry.list()}[voice].meta["frame"]
    assert sorted(saved["greetings"]) == sorted(greetings) and saved["sign_off"] == sign_off  # kept exactly
    assert result.frame.to_dict() == saved
    if not greetings and not sign_off:  # a terse voice: none, and why
        assert saved["reasons"] and not result.frame.greetings
