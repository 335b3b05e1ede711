"""LoRA voice training on CPU: reply-only loss, held-out early stopping, fixed seed.

The result is a folder in the voice registry holding the adapter weights and peft config,
voice.json (base model, dataset hash, training settings, library versions, metrics),
report.json (the loss curves as numbers) and loss.png. Nothing is registered unless
training completes: Ctrl-C or a crash leaves the registry exactly as it was.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adapters_lora.dataset import VoiceExample, dataset_hash, load_examples, require_enough, split_held_out
from adapters_lora.encoding import IGNORE_INDEX, EncodedExample, encode_example
from adapters_lora.registry import VOICE_FILE, VoiceRegistry
from bot.protocols import VoiceRefused
from bot.voice_frame import VoiceFrame, learn_frame


class TrainingSettingsError(VoiceRefused, ValueError):
    """A training setting (from the CLI or a config) that cannot train a voice."""


@dataclass
class TrainingConfig:
    rank: int = field(default=16, metadata={"help": "LoRA rank r"})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha (effective scale alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA path"})
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        metadata={"help": "module names that get LoRA matrices"},
    )
    top_layers: int = field(default=12, metadata={
        "help": "LoRA only in the top N decoder layers (0: all). Backpropagation then stops below them: "
                "much faster on CPU, and tone and format live in the upper layers"})
    learning_rate: float = field(default=4e-4, metadata={"help": "AdamW learning rate (linear decay)"})
    epochs: int = field(default=2, metadata={"help": "passes over the training split (early stopping may end sooner)"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    micro_batch_size: int = field(default=2, metadata={
        "help": "examples per forward/backward pass; gradients accumulate up to batch_size (bounds memory)"})
    max_seq_tokens: int = field(default=640, metadata={"help": "longer examples are skipped and counted"})
    held_out_fraction: float = field(default=0.1, metadata={"help": "share of examples held out for early stopping"})
    evals_per_epoch: int = field(default=2, metadata={"help": "held-out loss checks per epoch"})
    patience: int = field(default=2, metadata={"help": "checks without improvement before stopping"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many steps (0: no cap)"})
    seed: int = field(default=1234, metadata={"help": "seeds data order and LoRA init: same seed, same adapter"})
    bf16: bool = field(default=True, metadata={"help": "bfloat16 autocast for matmuls where the CPU supports it"})

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise TrainingSettingsError("rank and alpha must be >= 1")
        if not 0 <= self.dropout < 1:
            raise TrainingSettingsError("dropout must be in [0, 1)")
        if self.learning_rate <= 0 or self.epochs < 1 or self.batch_size < 1 or self.micro_batch_size < 1:
            raise TrainingSettingsError("learning_rate, epochs, batch_size and micro_batch_size must be positive")
        if not 0 < self.held_out_fraction < 1:
            raise TrainingSettingsError("held_out_fraction must be between 0 and 1")
        if self.top_layers < 0:
            raise TrainingSettingsError("top_layers must be >= 0")
        if self.max_seq_tokens < 32:
            raise TrainingSettingsError("max_seq_tokens must be >= 32")
        self.target_modules = tuple(self.target_modules)


@dataclass
class TrainingResult:
    name: str
    path: Path
    train_examples: int
    held_out_examples: int
    skipped_too_long: int
    steps: int
    best_held_out_loss: float
    initial_held_out_loss: float
    seconds: float
    stopped_early: bool
    frame: VoiceFrame = field(default_factory=VoiceFrame)  # greeting and sign-off its training replies share
    model: Any = field(default=None, repr=False)  # the trained peft model, still in memory


Progress = Callable[[str], None]


def train_voice(dataset: Path, name: str, registry: VoiceRegistry, base_model: str, base_model_id: str,
                config: TrainingConfig | None = None, progress_bar: bool = True,
                log: Progress | None = None, on_step: Callable[[int, float], None] | None = None) -> TrainingResult:
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or TrainingConfig()
    say = log or (lambda msg: print(msg, file=sys.stderr))
    registry.check_name(name)
    examples = load_examples(dataset)
    require_enough(dataset, examples)
    train_set, held_set = split_held_out(examples, config.held_out_fraction, config.seed)

    started = time.perf_counter()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    model.config.use_cache = False
    train_enc, skipped_a = _encode_all(tokenizer, train_set, config.max_seq_tokens)
    held_enc, skipped_b = _encode_all(tokenizer, held_set, config.max_seq_tokens)
    if not train_enc or not held_enc:
        raise TrainingSettingsError("no examples fit max_seq_tokens; shorten them or raise the limit")
    layers = model.config.num_hidden_layers
    top = min(config.top_layers or layers, layers)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(config.target_modules), task_type="CAUSAL_LM",
                      layers_to_transform=list(range(layers - top, layers)))
    model = get_peft_model(model, lora)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    use_bf16 = config.bf16 and _cpu_has_bf16()

    steps_per_epoch = math.ceil(len(train_enc) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    eval_every = max(1, steps_per_epoch // config.evals_per_epoch)

    def held_out_loss() -> float:
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            total, count = 0.0, 0
            for batch in _batches(held_enc, config.micro_batch_size, pad_id):
                loss_sum, n = _loss_sum(model, batch)
                total, count = total + loss_sum, count + n
        model.train()
        return total / max(1, count)

    initial = held_out_loss()
    curve: dict[str, list] = {"train": [], "held_out": [[0, initial]]}
    best_loss, best_state, bad_checks, step, stopped_early = initial, None, 0, 0, False
    say(f"Training voice {name!r}: {len(train_enc)} examples, {len(held_enc)} held out, "
        f"{total_steps} steps (held-out loss before: {initial:.3f})")
    bar = tqdm(total=total_steps, desc="training", unit="step", file=sys.stderr, disable=not progress_bar)
    model.train()
    try:
        for epoch in range(config.epochs):
            ordered = _bucketed(train_enc, config.batch_size, config.seed + epoch)
            for start in range(0, len(ordered), config.batch_size):
                group = ordered[start:start + config.batch_size]
                tokens = sum(e.reply_tokens for e in group)
                loss_sum, n = 0.0, 0
                for micro in _batches(group, config.micro_batch_size, pad_id):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                        part, count = _loss_sum(model, micro, grad_scale=1.0 / max(1, tokens))
                    loss_sum, n = loss_sum + part, n + count
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                curve["train"].append([step, loss_sum / n])
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / n:.3f}")
                if on_step:
                    on_step(step, loss_sum / n)
                if step % eval_every == 0 or step == total_steps:
                    current = held_out_loss()
                    curve["held_out"].append([step, current])
                    if current < best_loss - 1e-4:
                        best_loss, bad_checks = current, 0
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
                    else:
                        bad_checks += 1
                        if bad_checks >= config.patience:
                            stopped_early = True
                            break
                if step >= total_steps:
                    break
            if stopped_early or step >= total_steps:
                break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    seconds = time.perf_counter() - started

    model.eval()
    result = TrainingResult(name, registry.root / name, len(train_enc), len(held_enc), skipped_a + skipped_b, step,
                            best_loss, initial, seconds, stopped_early, learn_frame([e.answer for e in train_set]),
                            model)
    with registry.staging(name) as staging:
        model.save_pretrained(staging)
        meta = _voice_meta(result, config, base_model_id, dataset, len(examples))
        (staging / "report.json").write_text(json.dumps({"loss_curves": curve, **meta["metrics"]}, indent=2))
        _plot(curve, staging / "loss.png", name)
        (staging / VOICE_FILE).write_text(json.dumps(meta, indent=2))
    say(f"Voice {name!r} saved: held-out loss {initial:.3f} -> {best_loss:.3f} in {seconds:.0f}s; "
        f"{result.frame.summary()}.")
    return result


def _encode_all(tokenizer, examples: list[VoiceExample], max_tokens: int) -> tuple[list[EncodedExample], int]:
    encoded = [encode_example(tokenizer, e, max_tokens) for e in examples]
    kept = [e for e in encoded if e is not None]
    return kept, len(encoded) - len(kept)


def _bucketed(examples: list[EncodedExample], size: int, seed: int) -> list[EncodedExample]:
    """Shuffle, then group similar lengths into the same batch (little padding to compute),
    and shuffle the order of the batches."""
    rng = random.Random(seed)
    order = list(examples)
    rng.shuffle(order)
    order.sort(key=lambda e: len(e.input_ids))
    batches = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(batches)
    return [e for batch in batches for e in batch]


def _batches(examples: list[EncodedExample], size: int, pad_id: int):
    import torch

    for start in range(0, len(examples), size):
        chunk = examples[start:start + size]
        # Round lengths up to a multiple of 64: few distinct shapes, so few cached CPU kernels
        # (each new shape gets its own, with its own buffers: memory grew with every new length).
        width = -(-max(len(e.input_ids) for e in chunk) // 64) * 64
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, example in enumerate(chunk):
            n = len(example.input_ids)
            ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            mask[row, :n] = 1
        yield ids, labels, mask


def _loss_sum(model, batch, grad_scale: float | None = None) -> tuple[float, int]:
    """Summed token loss over reply tokens (so batches weigh by tokens, not by padding).

    The vocabulary projection runs on the reply positions only: full logits for a batch are
    batch x length x 49k floats (gigabytes with their gradients) for tokens that carry no loss.
    """
    import torch

    ids, labels, mask = batch
    inner = model.get_base_model()
    hidden = inner.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = inner.get_output_embeddings()(hidden[:, :-1][keep]).float()
    loss = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
    if grad_scale is not None:
        (loss * grad_scale).backward()
    return float(loss.detach()), int(keep.sum())


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _voice_meta(result: TrainingResult, config: TrainingConfig, base_model_id: str, dataset: Path,
                examples: int) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    return {
        "name": result.name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": base_model_id,
        "dataset": {"path": str(dataset), "sha256": dataset_hash(dataset), "examples": examples},
        "training": asdict(config),
        "frame": result.frame.to_dict(),  # learned from the training replies, used exactly as written
        "versions": {"peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
        "metrics": {
            "held_out_loss_before": round(result.initial_held_out_loss, 4),
            "held_out_loss_after": round(result.best_held_out_loss, 4),
            "held_out_perplexity_before": round(math.exp(result.initial_held_out_loss), 3),
            "held_out_perplexity_after": round(math.exp(result.best_held_out_loss), 3),
            "steps": result.steps, "seconds": round(result.seconds, 1), "stopped_early": result.stopped_early,
            "train_examples": result.train_examples, "held_out_examples": result.held_out_examples,
            "skipped_too_long": result.skipped_too_long,
        },
    }


def _plot(curve: dict[str, list], target: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if curve["train"]:
        ax.plot(*zip(*curve["train"]), label="train (per step)", alpha=0.6)
    ax.plot(*zip(*curve["held_out"]), marker="o", label="held-out")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (reply tokens)")
    ax.set_title(f"voice {name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
