"""In-process text generation with transformers: chat template, greedy decoding, streaming,
batching, int8 weights, and brand voices (LoRA adapters) switched per request without
reloading the model.

`voice=None` speaks with the registry's active voice (re-read on every request, so
`supportbot voice activate` in another process hot-swaps a running bot); a voice name picks
that voice; BASE_VOICE runs the bare base model.

Requests that arrive together are decoded as one batch (adapters_lora.batching); in fp32 a
batched row decodes exactly what it would alone. With int8 weights (the default where the CPU
computes in bf16 natively, `weights="auto"`) the linear layers run on int8 weights with bf16
arithmetic (adapters_lora.int8_weights): about 2.5x the tokens per second of fp32 on two cores
and a shorter time to first token (bench_generation), with the same composed answers and the
voices' greetings and sign-offs (bench_answers). The fp32 model stays loaded as the master
copy that voices are merged into; each voice in use gets its int8 copy, made once (about a
second, about 140 MB) and kept.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from adapters_lora.base_model import resolve_base_model
from adapters_lora.batching import BatchRows, BatchScheduler, GenerationRequest
from adapters_lora.registry import VoiceRegistry
from adapters_lora.voice_switch import VoiceSwitch
from bot.protocols import BASE_VOICE

__all__ = ["BASE_VOICE", "GenerationSettings", "TransformersGenerator"]

WEIGHTS = ("auto", "int8", "fp32")
_INT8_COPIES_KEPT = 2  # voices whose int8 copy stays in memory (the active one and a channel's)
_PREFIXES_KEPT = 8  # shared prompt openings whose keys and values are kept (a few KB each)
_MIN_SHARED_TOKENS = 16  # a shorter shared opening is read with the rest
_MAX_SHARED_TOKENS = 256  # ... and at most this much of it is kept (about 12 MB of keys and values)


class ChatMessage(Protocol):
    role: str
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 160
    repetition_penalty: float = 1.0  # >1 penalizes the reply's own tokens only (never the docs')
    max_prompt_tokens: int = 2048
    threads: int = 0  # decoding thread's torch threads; 0: every core the process may use
    weights: str = "auto"  # "int8": int8 linear layers (faster); "fp32": the model as loaded; "auto": int8 on bf16 CPUs
    max_batch: int = 8  # requests decoded together

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("generation max_new_tokens must be >= 1")
        if self.repetition_penalty < 1.0:
            raise ValueError("generation repetition_penalty must be >= 1.0")
        if self.weights not in WEIGHTS:
            raise ValueError(f"generation weights must be one of {', '.join(WEIGHTS)}, not {self.weights!r}")
        if self.max_batch < 1:
            raise ValueError("generation max_batch must be >= 1")


class TransformersGenerator:
    """Loads the model on first use; one thread decodes, in batches (a lock guards the model)."""

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
        self._int8: OrderedDict[str | None, Any] = OrderedDict()  # voice -> its int8 serving copy
        self._prefixes: OrderedDict[tuple, Any] = OrderedDict()  # (voice, weights, tokens) -> their keys/values
        self._last_prompt: list[int] = []
        self.prefix_reuses = 0  # rounds that reused a shared opening's keys and values
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer refuses concurrent calls
        self.batches = BatchScheduler(self._run_round, self.settings.max_batch, on_start=self._claim_cores)

    @property
    def model_id(self) -> str:
        return self.model_spec

    def load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            path = resolve_base_model(self.model_spec, self.cache_dir)
            if Path(path).exists():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            model.eval()
            self._tokenizer, self._model = tokenizer, model
            self._switch = VoiceSwitch(model, merge=self.merge_voice)

    def _claim_cores(self) -> None:
        """The decoding thread's torch thread count (a per-thread setting), set explicitly: a
        thread takes the count last set anywhere, and the embedder's query thread sets 1.
        Serving threads that embed stay at one torch thread (knowledge.embedding): two
        threads each running a pool of OpenMP workers on two cores make every pool's workers
        sleep between operations, which halved the int8 decoding speed (bench_generation)."""
        import torch

        torch.set_num_threads(self.settings.threads or len(os.sched_getaffinity(0)))

    @property
    def weights(self) -> str:
        """"int8" or "fp32": the setting, with "auto" resolved for this CPU."""
        if self.settings.weights != "auto":
            return self.settings.weights
        return "int8" if bf16_native() else "fp32"

    @property
    def voice(self) -> str | None:
        """The voice in effect after the last request (None: base model)."""
        return self._switch.current if self._switch else None

    def _voice_name(self, voice: str | None) -> str | None:
        """The voice a request speaks with, resolved when it is made (None: base model)."""
        name = self.voices.active if voice is None and self.voices else voice
        if name in (None, BASE_VOICE):
            return None
        if self.voices is None:
            raise ValueError(f"voice {name!r} requested but no voice registry is configured")
        return name

    def _use_voice(self, name: str | None) -> None:
        """Switch the master copy to `name`; caller holds the run lock."""
        assert self._switch is not None
        self._switch.use(name, self.voices.path(name) if name is not None and self.voices else None)

    def _serving_model(self, name: str | None) -> Any:
        """The model a round decodes with: the int8 copy of the master with `name` merged in,
        made on first use and kept for the last few voices; or the master itself (fp32).
        Caller holds the run lock, with the voice in use."""
        if self.weights == "fp32":
            return None
        if name in self._int8:
            self._int8.move_to_end(name)
            return self._int8[name]
        from peft import PeftModel

        from adapters_lora.int8_weights import int8_copy

        master = self._switch.model
        source = master.get_base_model() if isinstance(master, PeftModel) else master
        quantized = int8_copy(source, with_adapters=name is not None)
        self._int8[name] = quantized.eval()
        while len(self._int8) > _INT8_COPIES_KEPT:
            self._int8.popitem(last=False)
        return quantized

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The chat prompt as the model reads it (template applied), within the token budget."""
        self.load()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        with self._tokenizer_lock:
            ids = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"]
        limit = self.settings.max_prompt_tokens
        if len(ids) > limit:
            raise ValueError(f"prompt is {len(ids)} tokens, over the {limit}-token budget")
        return list(ids)

    def count_tokens(self, text: str) -> int:
        self.load()
        with self._tokenizer_lock:
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
                 voice: str | None = None) -> str:
        return "".join(self.stream(messages, max_new_tokens, voice)).strip()

    def stream(self, messages: Sequence[ChatMessage], max_new_tokens: int | None = None,
               voice: str | None = None) -> Iterator[str]:
        """Yield text pieces as they are decoded (in a batch with whatever else is asked at the
        same time). Stopping reading (closing the iterator) ends this request's decoding."""
        request = GenerationRequest(self.prompt_tokens(messages), max_new_tokens or self.settings.max_new_tokens,
                                    self._voice_name(voice))
        self.batches.submit(request)
        try:
            yield from request.pieces()
        finally:
            request.cancel()

    def _run_round(self, requests: list[GenerationRequest]) -> None:
        """One batch of one voice, greedy; each row ends on its own (BatchRows) and leaves the
        batch when it does. The prompts' shared opening (system prompt and template) is read
        once and its keys and values reused (`_shared_prefix`); the rest of each prompt is
        left-padded after it."""
        import torch

        tokenizer = self._tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = tokenizer.eos_token_id

        def decode(tokens: list[int]) -> str:
            with self._tokenizer_lock:
                return tokenizer.decode(tokens, skip_special_tokens=True)

        rows = BatchRows(requests, decode, set(eos if isinstance(eos, list) else [eos]))
        with self._run_lock:
            voice = requests[0].voice
            self._use_voice(voice)
            quantized = self._serving_model(voice)
            with torch.inference_mode(), self._switch.generating() as master:
                model = quantized or master
                shared, cache = self._shared_prefix(model, voice, [r.prompt for r in requests])
                rests = [r.prompt[len(shared):] for r in requests]
                width = max(len(rest) for rest in rests)
                ids = torch.tensor([shared + [pad] * (width - len(rest)) + rest for rest in rests])
                mask = torch.tensor([[1] * len(shared) + [0] * (width - len(rest)) + [1] * len(rest) for rest in rests])
                penalty = (_ReplyRepetitionPenalty(self.settings.repetition_penalty, ids.shape[1])
                           if self.settings.repetition_penalty > 1.0 else None)
                self._decode_greedy(model, ids, mask, cache, len(shared), rows, pad,
                                    max(r.max_new_tokens for r in requests), penalty)
            self._last_prompt = requests[0].prompt

    @staticmethod
    def _decode_greedy(model: Any, ids: Any, mask: Any, cache: Any, cached: int, rows: BatchRows, pad: int,
                       max_new_tokens: int, penalty: Any) -> None:
        """Greedy decoding of a left-padded batch whose first `cached` positions are in
        `cache` (None: nothing cached). A row that ends leaves the batch (its keys and values
        are dropped), so the rows still going decode as a smaller batch: with `generate` every
        row was computed until the longest ended."""
        import torch
        from transformers import DynamicCache

        cache = cache if cache is not None else DynamicCache()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: each row counts from its own start
        live = torch.arange(ids.shape[0])
        sequences, step_ids, step_positions = ids, ids[:, cached:], positions[:, cached:]
        last = positions[:, -1]
        rows.put(ids)  # BatchRows is a streamer: it is handed the prompt first
        going = ~rows(ids[:, :1], None)  # a row whose asker left before the round is not read at all
        for _ in range(max_new_tokens):
            if not going.any():
                break
            if not going.all():  # rows that ended leave the batch
                keep = going.nonzero().flatten()
                cache.batch_select_indices(keep)
                live, mask, last, sequences, step_ids, step_positions = (
                    t[keep] for t in (live, mask, last, sequences, step_ids, step_positions))
            logits = model(input_ids=step_ids, attention_mask=mask, position_ids=step_positions, cache=cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1, :].float()
            if penalty is not None:
                logits = penalty(sequences, logits)
            chosen = logits.argmax(-1)
            every_row = torch.full((len(rows.requests),), pad, dtype=chosen.dtype)
            every_row[live] = chosen
            rows.put(every_row)
            going = ~rows(every_row[:, None], None)[live]
            mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=-1)
            last = last + 1
            sequences = torch.cat([sequences, chosen[:, None]], dim=-1)
            step_ids, step_positions = chosen[:, None], last[:, None]
        rows.end()

    def _shared_prefix(self, model: Any, voice: str | None, prompts: list[list[int]]) -> tuple[list[int], Any]:
        """The opening every prompt of the round (and the previous round's) shares, with its
        keys and values for `batch` rows: computed once per voice and kept. ([], None) when
        the shared part is too short to be worth it."""
        import torch
        from transformers import DynamicCache

        candidates = prompts + ([self._last_prompt] if self._last_prompt else [])
        length = min(common_prefix_length(candidates),
                     min(len(p) for p in prompts) - 1,  # every row keeps a token of its own to read
                     _MAX_SHARED_TOKENS)  # the same question twice must not pin a long prompt's values
        if length < _MIN_SHARED_TOKENS:
            return [], None
        shared = prompts[0][:length]
        key = (voice, self.weights, tuple(shared))  # the same voice and weights: the same values
        cache = self._prefixes.get(key)
        if cache is not None:
            self.prefix_reuses += 1
        else:
            cache = DynamicCache()
            model(input_ids=torch.tensor([shared]), cache=cache, use_cache=True, logits_to_keep=1)  # keys and values only
            self._prefixes[key] = cache
            while len(self._prefixes) > _PREFIXES_KEPT:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(key)
        batch = copy.deepcopy(cache)
        batch.batch_repeat_interleave(len(prompts))
        return shared, batch

    def reply_loss(self, messages: Sequence[ChatMessage], reply: str, voice: str | None = None) -> tuple[float, int]:
        """Summed negative log-likelihood of `reply` after the prompt, and its token count
        (perplexity = exp(sum / count) over many replies)."""
        import torch

        prompt = torch.tensor([self.prompt_tokens(messages)])
        with self._tokenizer_lock:
            reply_ids = self._tokenizer(reply, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = torch.cat([prompt, reply_ids], dim=1)
        with self._run_lock:
            self._use_voice(self._voice_name(voice))
            with torch.inference_mode(), self._switch.generating() as model:
                logits = model(input_ids=ids).logits[0, prompt.shape[1] - 1:-1].float()
        nll = torch.nn.functional.cross_entropy(logits, reply_ids[0], reduction="sum")
        return float(nll), int(reply_ids.shape[1])


@functools.cache
def bf16_native() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX): int8 weights compute in
    bf16, which elsewhere is emulated and can be slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and \
            torch.backends.cpu.get_cpu_capability() in ("AVX512", "AVX512_BF16", "AMX")
    except (AttributeError, RuntimeError):
        return False


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all the sequences share (all of the shortest, at most)."""
    for n, column in enumerate(zip(*sequences)):
        if len(set(column)) > 1:
            return n
    return min(len(s) for s in sequences)


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
