"""In-process text generation with transformers: chat template, greedy decoding, streaming,
and brand voices (LoRA adapters) switched per request without reloading the model.

`voice=None` speaks with the registry's active voice (re-read on every request, so
`supportbot voice activate` in another process hot-swaps a running bot); a voice name picks
that voice; BASE_VOICE runs the bare base model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from adapters_lora.base_model import resolve_base_model
from adapters_lora.registry import VoiceRegistry
from adapters_lora.voice_switch import VoiceSwitch
from bot.protocols import BASE_VOICE

__all__ = ["BASE_VOICE", "GenerationSettings", "TransformersGenerator"]


class ChatMessage(Protocol):
    role: str
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 160
    repetition_penalty: float = 1.0  # >1 penalizes the reply's own tokens only (never the docs')
    max_prompt_tokens: int = 2048
    threads: int = 0  # 0: let torch decide

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("generation max_new_tokens must be >= 1")
        if self.repetition_penalty < 1.0:
            raise ValueError("generation repetition_penalty must be >= 1.0")


class TransformersGenerator:
    """Loads the model on first use; one generation at a time (a lock guards the model)."""

    def __init__(self, model: str, cache_dir: Path, settings: GenerationSettings | None = None,
                 voices: VoiceRegistry | None = None, merge_voice: bool = True) -> None:
        self.model_spec = model
        self.cache_dir = Path(cache_dir)
        self.settings = settings or GenerationSettings()
        self.voices = voices
        self.merge_voice = merge_voice
        self._switch: VoiceSwitch | None = None
        self._model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.model_spec

    def load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if self.settings.threads:
                torch.set_num_threads(self.settings.threads)
            path = resolve_base_model(self.model_spec, self.cache_dir)
            if Path(path).exists():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            model.eval()
            self._tokenizer, self._model = tokenizer, model
            self._switch = VoiceSwitch(model, merge=self.merge_voice)

    @property
    def voice(self) -> str | None:
        """The voice in effect after the last request (None: base model)."""
        return self._switch.current if self._switch else None

    def _use_voice(self, voice: str | None) -> None:
        """Switch to the requested voice; caller holds the run lock."""
        assert self._switch is not None
        name = self.voices.active if voice is None and self.voices else voice
        if name in (None, BASE_VOICE):
            self._switch.use(None)
            return
        if self.voices is None:
            raise ValueError(f"voice {name!r} requested but no voice registry is configured")
        self._switch.use(name, self.voices.path(name))

    def _inputs(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        self.load()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        inputs = self._tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        limit = self.settings.max_prompt_tokens
        if inputs["input_ids"].shape[1] > limit:
            raise ValueError(f"prompt is {inputs['input_ids'].shape[1]} tokens, over the {limit}-token budget")
        return dict(inputs)

    def _generate_kwargs(self, max_new_tokens: int | None, prompt_length: int) -> dict[str, Any]:
        from transformers import LogitsProcessorList

        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens or self.settings.max_new_tokens,
            "do_sample": False,
            "pad_token_id": self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
        }
        if self.settings.repetition_penalty > 1.0:
            kwargs["logits_processor"] = LogitsProcessorList(
                [_ReplyRepetitionPenalty(self.settings.repetition_penalty, prompt_length)])
        return kwargs

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
                 voice: str | None = None) -> str:
        import torch

        inputs = self._inputs(messages)
        with self._run_lock:
            self._use_voice(voice)
            with torch.inference_mode(), self._switch.generating() as model:
                output = model.generate(**inputs, **self._generate_kwargs(max_new_tokens, inputs["input_ids"].shape[1]))
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        return self._tokenizer.decode(new_tokens, skip_special_tokens=True).strip()

    def stream(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
               voice: str | None = None) -> Iterator[str]:
        """Yield text pieces as they are generated (generation runs in a helper thread)."""
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._run_lock:
                    self._use_voice(voice)
                    with torch.inference_mode(), self._switch.generating() as model:
                        model.generate(**inputs, **self._generate_kwargs(max_new_tokens, inputs["input_ids"].shape[1]),
                                       streamer=streamer)
            except BaseException as err:  # surfaced to the consumer below
                errors.append(err)
                streamer.end()

        worker = threading.Thread(target=run, name="supportbot-generate", daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        if errors:
            raise errors[0]

    def reply_loss(self, messages: Sequence[ChatMessage], reply: str, voice: str | None = None) -> tuple[float, int]:
        """Summed negative log-likelihood of `reply` after the prompt, and its token count
        (perplexity = exp(sum / count) over many replies)."""
        import torch

        prompt = self._inputs(messages)["input_ids"]
        reply_ids = self._tokenizer(reply, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = torch.cat([prompt, reply_ids], dim=1)
        with self._run_lock:
            self._use_voice(voice)
            with torch.inference_mode(), self._switch.generating() as model:
                logits = model(input_ids=ids).logits[0, prompt.shape[1] - 1:-1].float()
        nll = torch.nn.functional.cross_entropy(logits, reply_ids[0], reduction="sum")
        return float(nll), int(reply_ids.shape[1])


class _ReplyRepetitionPenalty:
    """Repetition penalty over the tokens generated so far, not the prompt's: small models
    loop ("Ahoy! Ahoy! ..."), while copying facts from the passages must stay cheap (the
    stock penalty counts prompt tokens too and pushes the model off the docs' wording)."""

    def __init__(self, penalty: float, prompt_length: int) -> None:
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids[:, self.prompt_length:]
        if generated.shape[1] == 0:
            return scores
        picked = torch.gather(scores, 1, generated)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, generated, picked)
