"""How much a voice adapter changes the bot's replies, on the voice's held-out examples.

- Perplexity of the reference replies, base model vs adapter.
- Voice match: a small logistic-regression classifier on sentence embeddings, trained to tell
  the team's example replies from the base model's replies to the same training questions,
  then asked how voice-like the held-out generations of each model are (mean probability).
- Grounding: on held-out examples with context, how many facts of the reference reply that
  come from the passages (numbers, `code`, **bold** values) each model keeps, and how often
  it cites a passage number that does not exist.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapters_lora.dataset import VoiceExample, load_examples, split_held_out
from adapters_lora.encoding import prompt_messages
from adapters_lora.generator import BASE_VOICE, TransformersGenerator
from adapters_lora.registry import VoiceRegistry
from bot.generated_text import tidy

Embed = Callable[[list[str]], np.ndarray]
_FACT = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|(\$?\d[\d,.:/%]*\d|\$?\d)")
_CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class _Message:
    role: str
    content: str


def messages_for(example: VoiceExample) -> list[_Message]:
    return [_Message(m["role"], m["content"]) for m in prompt_messages(example)]


def facts_from_context(example: VoiceExample) -> set[str]:
    """Facts the reference reply states that the passages also hold."""
    context = " ".join(p.text for p in example.context).lower()
    found = set()
    for match in _FACT.finditer(example.answer):
        fact = next(g for g in match.groups() if g).strip().lower()
        if len(fact) >= 1 and fact in context:
            found.add(fact)
    return found


def grounding(example: VoiceExample, reply: str) -> tuple[int, int, bool]:
    """(facts kept, facts expected, cites a passage that does not exist)."""
    facts = facts_from_context(example)
    kept = sum(1 for f in facts if f in reply.lower())
    invented = any(not 1 <= int(n) <= len(example.context) for n in _CITATION.findall(reply))
    return kept, len(facts), invented


class LogisticRegression:
    """Two-class logistic regression by gradient descent with L2: enough for embeddings."""

    def __init__(self, l2: float = 1e-4, steps: int = 2000, lr: float = 2.0) -> None:
        self.l2, self.steps, self.lr = l2, steps, lr
        self.w: np.ndarray | None = None
        self.b = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticRegression:
        self.w = np.zeros(x.shape[1])
        for _ in range(self.steps):
            p = self.predict_proba(x)
            grad = p - y
            self.w -= self.lr * (x.T @ grad / len(y) + self.l2 * self.w)
            self.b -= self.lr * float(grad.mean())
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        assert self.w is not None
        return 1.0 / (1.0 + np.exp(-(x @ self.w + self.b)))


def evaluate_voice(generator: TransformersGenerator, registry: VoiceRegistry, name: str, embed: Embed,
                   dataset: Path | None = None, negatives: int = 40, max_new_tokens: int = 160,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = log or (lambda msg: None)
    meta = json.loads((registry.path(name) / "voice.json").read_text())
    training = meta["training"]
    examples = load_examples(Path(dataset or meta["dataset"]["path"]))
    train, held = split_held_out(examples, training["held_out_fraction"], training["seed"])

    ppl = {}
    for label, voice in (("base", BASE_VOICE), ("adapter", name)):
        total = count = 0.0
        for example in held:
            nll, n = generator.reply_loss(messages_for(example), example.answer, voice=voice)
            total, count = total + nll, count + n
        ppl[label] = math.exp(total / max(1, count))
    say(f"perplexity of held-out replies: base {ppl['base']:.2f}, adapter {ppl['adapter']:.2f}")

    def replies(items: Sequence[VoiceExample], voice: str) -> list[str]:
        """Replies as the bot would post them (runaway text and loops trimmed)."""
        return [tidy(generator.generate(messages_for(e), max_new_tokens=max_new_tokens, voice=voice))
                for e in items]

    say(f"generating {min(negatives, len(train))} base replies to train the voice classifier ...")
    negative_texts = replies(train[:negatives], BASE_VOICE)
    positive_texts = [e.answer for e in train[: max(negatives, len(negative_texts))]]
    x = embed(positive_texts + negative_texts)
    y = np.array([1.0] * len(positive_texts) + [0.0] * len(negative_texts))
    classifier = LogisticRegression().fit(x, y)

    say(f"generating held-out replies ({len(held)} x base and adapter) ...")
    generated = {"base": replies(held, BASE_VOICE), "adapter": replies(held, name)}
    voice_match = {label: float(classifier.predict_proba(embed(texts)).mean()) for label, texts in generated.items()}
    voice_match["reference"] = float(classifier.predict_proba(embed([e.answer for e in held])).mean())
    say(f"voice match: base {voice_match['base']:.2f}, adapter {voice_match['adapter']:.2f}")

    grounded = {}
    with_context = [i for i, e in enumerate(held) if e.context]
    for label, texts in generated.items():
        kept = expected = invented = 0
        for i in with_context:
            k, n, bad = grounding(held[i], texts[i])
            kept, expected, invented = kept + k, expected + n, invented + bad
        grounded[label] = {
            "fact_recall": round(kept / expected, 4) if expected else None,
            "invented_citation_rate": round(invented / len(with_context), 4) if with_context else None,
        }
    report = {
        "voice": name, "held_out_examples": len(held),
        "perplexity": {k: round(v, 3) for k, v in ppl.items()},
        "perplexity_reduction": round(1 - ppl["adapter"] / ppl["base"], 4),
        "voice_match": {k: round(v, 4) for k, v in voice_match.items()},
        "grounding": grounded,
        "samples": [{"question": held[i].question, "base": generated["base"][i], "adapter": generated["adapter"][i]}
                    for i in range(min(3, len(held)))],
    }
    (registry.path(name) / "eval.json").write_text(json.dumps(report, indent=2))
    return report
