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
from adapters_lora.decoding import Join, decode_greedy
from adapters_lora.heap import keep_scratch_memory, return_freed_memory
from adapters_lora.registry import VoiceRegistry
from adapters_lora.voice_switch import VoiceSwitch
from bot.protocols import BASE_VOICE

__all__ = ["BASE_VOICE", "GenerationSettings", "TransformersGenerator"]

WEIGHTS = ("auto", "int8", "fp32")
_INT8_COPIES_KEPT = 2  # voices whose int8 copy stays in memory (the active one and a channel's)
_PREFIXES_KEPT = 8  # shared prompt openings whose keys and values are kept (a few KB each)
_MIN_SHARED_TOKENS = 16  # a shorter shared opening is read with the rest
_MAX_SHARED_TOKENS = 256  # ... and at most this much of it is kept (about 12 MB of keys and values)
_FREE_PADDING = 16  # padding tokens a row may read beside longer rows rather than in a call of its own
_LONG_REST = 256  # a rest longer than this, read after an opening, attends at a cost that grows with its square
_READ_TOKENS = 2048  # tokens (rows x the longest rest) read in one call, unless one row alone is longer


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
    max_batch: int = 32  # requests decoded together (within batching.MAX_BATCH_TOKENS)

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
        self.batches = BatchScheduler(self._run_round, self.settings.max_batch, on_start=self._claim_cores,
                                      on_idle=return_freed_memory)

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
            _use_own_attention(model)
            keep_scratch_memory()  # adapters_lora.heap: scratch tensors reuse the heap's pages
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

    def _run_round(self, requests: list[GenerationRequest], join: Join | None = None) -> None:
        """One round of one voice, greedy (adapters_lora.decoding): each row ends on its own
        and leaves the batch; requests of the voice that arrive meanwhile join it (`join`).
        Prompts' shared openings (system prompt and template, or a page quoted to several
        askers) are read once (`_openings`); the rest of each prompt is left-padded after them."""
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

                def prefill(batch: list[GenerationRequest]) -> tuple[Any, Any, Any, Any]:
                    return self._prefill(model, voice, batch, pad)

                penalty = (_ReplyRepetitionPenalty(self.settings.repetition_penalty)
                           if self.settings.repetition_penalty > 1.0 else None)
                decode_greedy(model, rows, prefill, self.settings.max_batch, join, penalty)
            self._last_prompt = requests[0].prompt

    def _prefill(self, model: Any, voice: str | None, requests: list[GenerationRequest],
                 pad: int) -> list[tuple[list[int], Any, Any, Any, Any]]:
        """Reads the prompts, each after its opening (`_openings`), in groups of rests of
        similar length (`reading_groups`): per group, the openings' keys and values
        left-padded to the longest, then the rests, left-padded, in one call. For each group:
        (its places in `requests`, cache, attention mask, position of each row's last token,
        the logits there)."""
        openings = self._openings(model, voice, [r.prompt for r in requests])
        rests = [r.prompt[length:] for r, (length, _) in zip(requests, openings)]
        return [(group, *self._read_together(model, [openings[i] for i in group], [rests[i] for i in group], pad))
                for group in reading_groups([len(rest) for rest in rests])]

    def _read_together(self, model: Any, openings: list[tuple[int, Any]], rests: list[list[int]],
                       pad: int) -> tuple[Any, Any, Any, Any]:
        import torch
        from transformers import DynamicCache

        from adapters_lora.int8_weights import reading_prompt

        longest = max(length for length, _ in openings)
        width = max(len(rest) for rest in rests)
        ids = torch.tensor([[pad] * (width - len(rest)) + rest for rest in rests])
        mask = torch.tensor([[0] * (longest - length) + [1] * length + [0] * (width - len(rest)) + [1] * len(rest)
                             for (length, _), rest in zip(openings, rests)])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, longest:]  # each row counts from its own start
        cache = _stacked(openings, longest, width) if longest else DynamicCache()  # a long prompt's attention reads it contiguous
        with reading_prompt():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                           logits_to_keep=1).logits[:, -1, :].float()
        return cache, mask, positions[:, -1], logits

    def _openings(self, model: Any, voice: str | None, prompts: list[list[int]]) -> list[tuple[int, Any]]:
        """Each prompt's opening read once for every row that shares it: its length and its
        keys and values (one row, not to be changed), or (0, None) when too short to matter.
        A prompt's opening is the longest it shares with another prompt read with it (or,
        alone, with the round's first prompt: the system prompt and template) or with an
        opening kept from before, such as a page quoted to askers who join one by one. A
        shared opening only a few tokens longer than a kept one is read with the rest, and
        one shorter than half its prompt is not used: the rest read after it attends through
        a mask instead of the causal kernel, which on a long rest (_LONG_REST) cost more than
        the opening saved (first token on 1,478 tokens after the kept system prompt 2.5-3.0 s,
        read whole 2.10-2.32 s); a short rest is always read after its opening."""
        found: dict[tuple[int, ...], Any] = {}
        openings = []
        for n, prompt in enumerate(prompts):
            limit = len(prompt) - 1  # every row keeps a token of its own to read
            others = prompts[:n] + prompts[n + 1:] + ([self._last_prompt] if self._last_prompt else [])
            shared = min(max((common_prefix_length([prompt, other]) for other in others), default=0), limit)
            kept_key = self._longest_kept(voice, prompt, limit)
            kept = len(kept_key[2]) if kept_key else 0
            length = shared if shared - kept >= _MIN_SHARED_TOKENS else kept
            if length < _MIN_SHARED_TOKENS or (2 * length < len(prompt) and len(prompt) - length > _LONG_REST):
                openings.append((0, None))
                continue
            key = tuple(prompt[:length])
            if key not in found:
                stored = min(length, _MAX_SHARED_TOKENS)  # the same question twice must not pin a long prompt's values
                found[key] = self._prefix_cache(model, voice, prompt[:stored], store=True)
                if length > stored:
                    found[key] = self._prefix_cache(model, voice, prompt[:length], store=False)
            openings.append((length, found[key]))
        return openings

    def _longest_kept(self, voice: str | None, prompt: list[int], limit: int) -> tuple | None:
        """The key of the longest kept opening (this voice and weights, at most `limit`
        tokens) that `prompt` starts with; None when none."""
        return max((key for key in self._prefixes if key[:2] == (voice, self.weights) and len(key[2]) <= limit
                    and prompt[:len(key[2])] == list(key[2])), key=lambda key: len(key[2]), default=None)

    def _prefix_cache(self, model: Any, voice: str | None, tokens: list[int], store: bool) -> Any:
        """Keys and values of `tokens` (one row): the longest opening kept for this voice and
        weights, extended by reading only the tokens after it. Kept for later rounds when
        `store`; otherwise a fresh copy the caller may change."""
        import torch
        from transformers import DynamicCache

        from adapters_lora.int8_weights import reading_prompt

        key = (voice, self.weights, tuple(tokens))  # the same voice and weights: the same values
        if key in self._prefixes:
            self.prefix_reuses += 1
            self._prefixes.move_to_end(key)
            return self._prefixes[key] if store else copy.deepcopy(self._prefixes[key])
        base = self._longest_kept(voice, tokens, len(tokens) - 1)
        if base is None:
            cache, start = DynamicCache(), 0
        else:
            self.prefix_reuses += 1
            cache, start = copy.deepcopy(self._prefixes[base]), len(base[2])
        with reading_prompt():
            model(input_ids=torch.tensor([tokens[start:]]), position_ids=torch.arange(start, len(tokens))[None],
                  cache=cache, use_cache=True, logits_to_keep=1)  # keys and values only
        if store:
            self._prefixes[key] = cache
            while len(self._prefixes) > _PREFIXES_KEPT:
                self._prefixes.popitem(last=False)
        return cache

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


def _use_own_attention(model: Any) -> None:
    """SDPA models attend through adapters_lora.attention (bitwise transformers' SDPA, without
    copying grouped key and value heads for masked prompts); any other keeps its own."""
    from adapters_lora.attention import ATTENTION

    if getattr(model.config, "_attn_implementation", None) == "sdpa":
        try:
            model.set_attn_implementation(ATTENTION)
        except (ValueError, ImportError, AttributeError):  # an architecture that only takes its own
            pass


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


def _stacked(openings: Sequence[tuple[int, Any]], length: int, room: int) -> Any:
    """One cache of the openings' keys and values, a row each, left-padded with zeros (which
    the attention mask hides) to `length` tokens, laid in buffers with `room` tokens more
    (growing_cache): the rests and the replies are written there, not copied in."""
    from adapters_lora.growing_cache import laid_left_padded

    template = next(cache for _, cache in openings if cache is not None)
    stacked = copy.copy(template)  # its layers are replaced below, not changed
    layers = []
    for index, layer in enumerate(template.layers):
        rows = [cache.layers[index] if cache is not None else None for _, cache in openings]
        keys = [row.keys if row is not None else layer.keys[:, :, :0] for row in rows]  # no opening: all padding
        values = [row.values if row is not None else layer.values[:, :, :0] for row in rows]
        layers.append(laid_left_padded(keys, values, length, room))
    stacked.layers = layers
    return stacked


def reading_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Rows (by place) read in one call: a row joins longer ones while the padding it would
    read is no longer than itself (or _FREE_PADDING tokens), and the call stays within
    _READ_TOKENS. In a burst, one asker's 116-token prompt, beside five 20-token rests, had
    all six read as 116 tokens (0.91 s for the call). A call's scratch tensors grow with its
    tokens, and reading is as fast in calls of one long prompt as of several: eight prompts
    of 1,900 tokens read in one call took the process from 1.1 GB to 2.5 GB."""
    groups: list[list[int]] = []
    width = 0
    for place in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if groups and width - lengths[place] <= max(lengths[place], _FREE_PADDING) \
                and (len(groups[-1]) + 1) * width <= _READ_TOKENS:
            groups[-1].append(place)
        else:
            groups.append([place])
            width = lengths[place]
    return [sorted(group) for group in groups]


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

    def __init__(self, penalty: float) -> None:
        self.penalty = penalty

    def __call__(self, generated: list[list[int]], scores):
        import torch

        for row, tokens in enumerate(generated):
            if tokens:
                seen = torch.tensor(sorted(set(tokens)))
                picked = scores[row, seen]
                scores[row, seen] = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores
