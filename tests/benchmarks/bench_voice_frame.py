"""A voice's frame in real answers, per dev voice of a different shape (2 cores).

Each dev voice (tests/benchmarks/data/voices/) is trained small with `voice train`'s own
code (a few steps: the frame is learned from the examples, the adapter only writes the
lead-in's first line), then the same questions are answered through the answering service
with the voice and without it. Questions: the voice's held-out examples, then examples of
the other voices (never trained on by this one), each with the passages and reference reply
the team wrote. Prints per voice: the frame learned, greeting rate, full sign-off rate, fact
recall with and without the voice, answers with invented identifiers, answers changed outside
the frame, answers carrying the model's own framing line, and the lead-in's cost per answer. "held out" marks the voices the frame rule was
not chosen on (it was chosen on the bundled driftwood voice, the formal benchmark voice,
casual_emoji and terse).

Targets on held-out voices: greeting and full sign-off >= 0.9 each, recall drop <= 0.02,
0 invented identifiers; a terse voice gets no invented frame (0 answers changed).

Run: .venv/bin/python -m tests.benchmarks.bench_voice_frame [--questions 16] [--steps 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adapters_lora.dataset import VoiceExample, load_examples  # noqa: E402
from bot.app.application import App  # noqa: E402
from bot.app.config import load_settings  # noqa: E402
from bot.app.voice_frame_eval import summarise  # noqa: E402
from bot.types import Answer, Question  # noqa: E402

VOICES = Path(__file__).parent / "data" / "voices"
DEV = {"casual_emoji": False, "terse": False, "formal_signature": True, "spanish_greeting": True,
       "product_signoff": True}  # name -> held out while the rule was chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=16, help="questions per voice")
    parser.add_argument("--steps", type=int, default=2, help="training steps per voice (small: CPU is shared)")
    parser.add_argument("--voices", default=",".join(DEV), help="comma-separated dev voices")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="supportbot-frame-bench-"))
    app = App(load_settings(data_dir=data_dir))
    app.index_ops.index()
    plain_service = app.answer_service_for(None)
    plain_cache: dict[str, Answer] = {}
    print(f"training: {args.steps} steps per voice, batch 2, LoRA rank 4 in the top 2 layers "
          f"(a tiny adapter: the frame does not come from it)")
    header = (f"{'voice':<18}{'held out':>9}{'answered':>9}{'greeting':>9}{'sign-off':>9}{'recall':>8}"
              f"{'no voice':>9}{'invented':>9}{'changed':>8}{'own line':>9}{'lead ms':>8}")
    lines = []
    for name in args.voices.split(","):
        t0 = time.perf_counter()
        result = app.voices.train(VOICES / f"{name}.jsonl", name, {
            "max_steps": args.steps, "batch_size": 2, "top_layers": 2, "rank": 4, "alpha": 8})
        _, held = app.voices.examples(name)
        questions = (held + _others(name))[: args.questions]
        print(f"\n{name}: trained in {time.perf_counter() - t0:.0f}s; {result.frame.summary()}", flush=True)
        voiced_service = app.answer_service_for(name)
        rows = []
        for i, example in enumerate(questions):
            voiced = voiced_service.answer(Question(text=example.question, conversation_id=f"{name}-{i}"))
            if example.question not in plain_cache:
                plain_cache[example.question] = plain_service.answer(
                    Question(text=example.question, conversation_id=f"plain-{len(plain_cache)}"))
            rows.append((example, voiced, plain_cache[example.question]))
        s = summarise(result.frame, rows)
        r = s["fact_recall"]
        lines.append(f"{name:<18}{'yes' if DEV.get(name) else 'no':>9}{s['answered']:>9}{_rate(s['greeting_rate']):>9}"
                     f"{_rate(s['sign_off_rate']):>9}{_rate(r['voiced']):>8}{_rate(r['plain']):>9}"
                     f"{s['invented_identifiers']:>9}{s['unframed_changes']:>8}{s['model_lines']:>9}"
                     f"{_ms(s['lead_in_ms']):>8}")
        shown = next((v.answer for _, v, _ in rows if not v.abstained), "")
        print("  first answer: " + shown[:120].replace("\n", "⏎") + " … " + shown[-60:].replace("\n", "⏎"))
    print("\n" + header)
    print("\n".join(lines))
    print("greeting / sign-off: '-' where the voice's examples have none (nothing may be added); "
          "'no voice': the same answers without it; 'own line': answers where the model's framing line "
          "follows the greeting; 'lead ms': generation added per answer by the voice")
    shutil.rmtree(data_dir, ignore_errors=True)


def _others(name: str) -> list[VoiceExample]:
    """Examples of the other dev voices, interleaved: questions this voice never trained on."""
    pools = [load_examples(VOICES / f"{other}.jsonl") for other in DEV if other != name]
    return [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
