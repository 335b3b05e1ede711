"""Brand-voice benchmark on the bundled sample voice dataset (2 cores).

Prints: training wall time and peak RSS (training runs in its own process, as users run
it), held-out perplexity base vs adapter, voice-match base vs adapter, grounding base vs
adapter, and generation tokens/s with the adapter unmerged and merged against the base
model, all in this run.

Run: .venv/bin/python -m tests.benchmarks.bench_voice [--prompts N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adapters_lora.dataset import load_examples  # noqa: E402
from adapters_lora.generator import BASE_VOICE, GenerationSettings, TransformersGenerator  # noqa: E402
from adapters_lora.voice_eval import messages_for  # noqa: E402
from bot.app.config import load_settings  # noqa: E402
from bot.app.application import App  # noqa: E402
from bot.app.voices import bundled_voice_dataset  # noqa: E402

NAME = "bench-voice"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=6, help="prompts for the tokens/s comparison")
    parser.add_argument("--data-dir", type=Path, help="reuse this data dir (default: a temp dir)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="supportbot-voice-bench-"))
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir)}
    dataset = bundled_voice_dataset()

    # Convert the base model first, in this process: training time and peak RSS (measured
    # over child processes) are then the training run's alone.
    App(load_settings(data_dir=data_dir)).base_model_path()
    shutil.rmtree(data_dir / "voices" / NAME, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot", "voice", "train", str(dataset), "--name", NAME], env=env, check=True)
    train_s = time.perf_counter() - t0
    peak_rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    meta = json.loads((data_dir / "voices" / NAME / "voice.json").read_text())
    m = meta["metrics"]
    print(f"\ntraining: {len(load_examples(dataset))} examples, {m['steps']} steps, wall {train_s:.0f}s "
          f"(target < 600s), peak RSS {peak_rss_gb:.2f} GB (target < 4 GB)"
          + (", stopped early" if m["stopped_early"] else ""))

    app = App(load_settings(data_dir=data_dir))
    report = app.evaluate_voice(NAME, log=lambda msg: print("  " + msg))
    p, v = report["perplexity"], report["voice_match"]
    print(f"held-out perplexity: base {p['base']:.2f} -> adapter {p['adapter']:.2f} "
          f"({report['perplexity_reduction']:.0%} lower; target >= 30%)")
    print(f"voice match: base {v['base']:.3f} vs adapter {v['adapter']:.3f} (reference replies {v['reference']:.3f})")
    for label in ("base", "adapter"):
        g = report["grounding"][label]
        print(f"grounding {label:>7}: fact recall {g['fact_recall']}, invented citations {g['invented_citation_rate']}")
    for sample in report["samples"][:1]:
        print(f"\nsample question: {sample['question']}\n--- base:\n{sample['base']}\n--- adapter:\n{sample['adapter']}")

    prompts = [messages_for(e) for e in load_examples(dataset)[: args.prompts]]
    settings = GenerationSettings(max_new_tokens=96)
    rates = {}
    for label, voice, merge in (("base", BASE_VOICE, True), ("adapter unmerged", NAME, False),
                                ("adapter merged", NAME, True)):
        generator = TransformersGenerator("bundled", app.settings.models_dir, settings, voices=app.voices.registry,
                                          merge_voice=merge)
        generator.generate(prompts[0], max_new_tokens=8, voice=voice)  # load + switch outside the timing
        tokens, seconds = 0, 0.0
        for prompt in prompts:
            t0 = time.perf_counter()
            text = generator.generate(prompt, voice=voice)
            seconds += time.perf_counter() - t0
            tokens += generator.count_tokens(text)
        rates[label] = tokens / seconds
    print("\ngeneration tokens/s (greedy, 96 new tokens max):")
    for label, rate in rates.items():
        print(f"  {label:<17} {rate:6.1f} tok/s  ({(rate / rates['base'] - 1) * 100:+.1f}% vs base)")
    print("target: serving with the active adapter costs < 10% tokens/s against the base model")
    if not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
