"""Linear layers on int8 weights, for faster decoding and prompt reading on a CPU.

Decoding a small model is bound by reading its weights once per token, so storing them as
int8 (one scale per output channel) reads a quarter of the bytes of fp32. Decoding (a token
or a few per row) uses torch's int8 weight-only kernel on the input rounded to bf16; its cost
grows with every row it reads.

Reading a prompt (within `reading_prompt()`, or any call of more than a few tokens per row):
- Rows of up to _INT8_MAX_TOKENS tokens (a lead-in's prompt past its kept opening: what a
  burst of questions reads) are multiplied int8 by int8 into exact int32 (torch._int_mm, on
  VNNI where the CPU has it), with no copy of the weights made per call: each token is
  rounded to int8 on a scale of its own (its largest value over 127), and its remainder
  again on a 254 times finer scale, two parts in all. One 7-9-token remainder was read in
  54-58 ms against 105 on bf16 products of the weights, four in 114-126 against 205. A
  token's result depends on that token alone. In one part, the tiny differences of reading a
  prompt in other pieces (after another kept opening, or left-padded beside a longer prompt)
  flipped roundings that added up over the layers: 4 of 12 crew lead-ins changed with the
  batch they were read in, none in two parts.
- Longer rows are multiplied by the weights cast to bf16 (a 1,322-token prompt in 0.7 s
  against 1.9 s on the kernel). Int8 by int8 in one part was faster (first token on 1,536
  tokens about 1.9 s against 2.4), but a reply to the same long prompt then changed with the
  opening kept from the question before; in two parts it was no faster than bf16.
- The MLP's output projection (_EXACT_INPUTS) reads short rows in three int8 parts and long
  ones in fp32: as close as fp32 either way.

A row's path depends on its own length (padded to the longest row read with it) and its own
values only. The residual stream, norms and attention stay fp32, and each output comes back
in the model's own dtype.

The output layer's int8 logits only pick which tokens are worth it: the few highest are
recomputed exactly from the fp32 weights (the input embeddings, which the output layer shares
in most small models). Rounded logits alone let close candidates tie or swap ("I'm" and "I's"
33.0 against 32.75 in bf16), and greedy decoding then wanders. They are picked int8 by int8 in
one part (each token on its own scale): 5 ms for 30 rows against 21 on the decoding kernel,
whose cost grows with every row, and 1.5 against 2.1 for one; the exact best token ranked at
worst 3rd of the 16 picked (451 decoding steps, three voices).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from adapters_lora.heap import return_freed_memory

__all__ = ["Int8Linear", "Int8LogitsLayer", "Int8Slice", "SharedProduct", "int8_copy", "reading_prompt"]

_KERNEL_MAX_TOKENS = 8  # tokens per row up to which the int8 kernel is used (its cost grows with every row it reads)
_COMPUTE = torch.bfloat16
# Layers whose prompt inputs are read as exactly as fp32 (three int8 parts up to
# _INT8_MAX_TOKENS tokens a row, fp32 beyond): the MLP's output projection reads the product of
# its gate and up projections, a few of whose values are far larger than the rest. Rounded to
# bf16, or to int8 steps of the largest value in one or two parts, a voice's subtle shift was
# lost: the formal voice's greeting, 7-9 of 40 lead-ins against 40/40 (bench_answers --voice).
_EXACT_INPUTS = ("down_proj", "fc2", "w2", "dense_4h_to_h")
_FINER = 254  # the second part's scale: the first's over this (the first part's error is at most half its step)
_INT8_MAX_TOKENS = 128  # tokens per row up to which a prompt is read int8 by int8 (see the module's docstring)
_EXACT_LOGITS = 16  # logits recomputed in fp32: the int8 product's error is far below the gap to the 16th
_READING_PROMPT: ContextVar[bool] = ContextVar("reading_prompt", default=False)
# Projections of one input computed in one product (see SharedProduct): attention's query, key
# and value, the MLP's gate and up.
_SHARED_INPUTS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


@contextmanager
def reading_prompt() -> Iterator[None]:
    """Within it, every call reads prompt tokens, int8 by int8 however few: by length alone, a
    remainder of a few tokens past a kept opening would take the decoding kernel, and a prompt
    would compute differently read in one piece or in two."""
    token = _READING_PROMPT.set(True)
    try:
        yield
    finally:
        _READING_PROMPT.reset(token)


class Int8Linear(torch.nn.Module):
    """A frozen nn.Linear whose weight is int8 with a bf16 scale per output channel."""

    def __init__(self, linear: torch.nn.Linear, weight: torch.Tensor | None = None, exact_input: bool = False) -> None:
        """`weight` (default: the layer's own) is what gets quantized, e.g. with a voice merged in;
        `exact_input`: a prompt's input is read as exactly as fp32 (see _EXACT_INPUTS)."""
        super().__init__()
        self.exact_input = exact_input
        weight_int8, scales = _quantized_rows((linear.weight if weight is None else weight).detach())
        self.register_buffer("weight_int8", weight_int8)
        self.register_buffer("scales", scales.to(_COMPUTE))  # the decoding kernel's
        self.register_buffer("row_scales", scales)  # fp32, the prompt path's
        self.bias = linear.bias  # shared with the source model, never changed
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens_per_row = x.shape[-2] if x.dim() >= 2 else 1
        flat = x.reshape(-1, self.in_features)
        if tokens_per_row <= _KERNEL_MAX_TOKENS and not _READING_PROMPT.get():
            out = self._decoding_product(flat)
        elif tokens_per_row <= _INT8_MAX_TOKENS:
            out = _int8_product(x, self.weight_int8, self.row_scales, 3 if self.exact_input else 2)
        else:
            out = self._long_product(flat)
        out = out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias

    def _long_product(self, flat: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Long rows times the weight (output columns start:stop) scaled into bf16 (fp32 for an
        exact input): scaling the weight touches fewer values than scaling the output."""
        dtype = flat.dtype if self.exact_input else _COMPUTE
        return flat.to(dtype) @ self.weight_int8[start:stop].to(dtype).mul_(self.scales[start:stop, None]).T

    def _decoding_product(self, flat: torch.Tensor) -> torch.Tensor:
        return torch._weight_int8pack_mm(flat.to(_COMPUTE).contiguous(), self.weight_int8, self.scales)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class SharedProduct(Int8Linear):
    """Several projections of one input (attention's query, key and value; the MLP's gate and
    up) as one int8 layer: one product, one rounding of the input, one call per path instead
    of one per projection. Each output column is computed exactly as its own layer's would be
    (the int8 products are exact, the scaling is per column). Its `Int8Slice`s, called one
    after the other on the same input, share the product, which is dropped once each has
    taken its part."""

    def __init__(self, weights: list[torch.Tensor]) -> None:
        stacked = torch.cat([w.detach() for w in weights])
        super().__init__(torch.nn.Linear(stacked.shape[1], stacked.shape[0], bias=False, device="meta"), stacked)
        self._members = len(weights)
        self._bounds = [int(b) for b in torch.tensor([0] + [len(w) for w in weights]).cumsum(0)]
        self._last: list | None = None  # [input, product, slices taken]; the model runs on one thread at a time

    def _long_product(self, flat: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """One product per member on long rows: a bf16 product's blocking may depend on the
        weight's width (AMX tiles do), so a column computed beside others can round apart from
        its own layer's (seen: 0.004 on a 960-wide product against a 192-wide one). The int8
        paths are exact whatever the width and stay one product."""
        parts = [super(SharedProduct, self)._long_product(flat, a, b) for a, b in zip(self._bounds, self._bounds[1:])]
        return torch.cat(parts, dim=-1)

    def product(self, x: torch.Tensor) -> torch.Tensor:
        last = self._last
        if last is None or last[0] is not x:  # the same object: read by every slice before it changes
            last = [x, self(x), 0]
        last[2] += 1
        self._last = None if last[2] == self._members else last
        return last[1]


class Int8Slice(torch.nn.Module):
    """One projection of a SharedProduct: its columns of the shared product, and its bias."""

    def __init__(self, shared: SharedProduct, start: int, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.shared = shared
        self.start, self.stop = start, start + linear.out_features
        self.bias = linear.bias  # shared with the source model, never changed
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shared.product(x)[..., self.start:self.stop]
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"columns {self.start}-{self.stop} of a shared product, bias={self.bias is not None}"


def _int8_product(x: torch.Tensor, weight: torch.Tensor, scales: torch.Tensor, parts: int) -> torch.Tensor:
    """x @ (weight * scales).T in int8 arithmetic (see _int8_parts); fp32 out."""
    pieces, step = _int8_parts(x, parts)
    products = torch._int_mm(pieces, weight.T)  # every part at once: the weight is read once
    rows = len(step)
    product = products[:rows].mul(step)  # int32 in, fp32 out: one pass
    for part in range(1, parts):
        product.addcmul_(products[part * rows:(part + 1) * rows], step, value=1.0 / _FINER ** part)
    return product.mul_(scales)


def _int8_parts(x: torch.Tensor, parts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row of `x` (a token) rounded to int8 on its own scale (its largest value over
    127), then each remainder again on a _FINER times finer scale, `parts` times in all: the
    parts stacked (int8), and each row's scale."""
    flat = x.reshape(-1, x.shape[-1]).float()
    rows = len(flat)
    step = flat.abs().amax(dim=1, keepdim=True).clamp_(min=1e-30).div_(127)
    stacked = torch.empty((parts * rows, flat.shape[1]), dtype=torch.int8)
    rest = flat
    for part in range(parts):
        piece = rest.div(step) if part == 0 else rest.div(step).mul_(_FINER ** part)
        piece.round_()
        stacked[part * rows:(part + 1) * rows] = piece  # whole numbers within ±127: exact in int8
        if part + 1 < parts:
            rest = torch.addcmul(rest, piece, step, value=-1.0 / _FINER ** part)
    return stacked, step


def _quantized_rows(weight: torch.Tensor, rows: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight, fp32 scale per row), a slice of rows at a time: the output layer's
    scratch tensors, whole, would take about 450 MB at the moment its copy is made."""
    out = torch.empty(weight.shape, dtype=torch.int8)
    scales = torch.empty(weight.shape[0], dtype=torch.float32)
    for start in range(0, weight.shape[0], rows):
        part = weight[start:start + rows].float()
        scale = (part.abs().amax(dim=1) / 127).clamp_(min=1e-8)
        out[start:start + rows] = (part / scale[:, None]).round_().clamp_(-127, 127)
        scales[start:start + rows] = scale
    return out, scales


class Int8LogitsLayer(Int8Linear):
    """The output layer: int8 logits for every token, exact fp32 ones for the highest few. The
    int8 ones are int8 by int8 in one part, prompt or not (see the module's docstring): they
    only pick the few, whose logits are then recomputed the same whichever path picked them."""

    def __init__(self, linear: torch.nn.Linear, weight: torch.Tensor | None = None) -> None:
        super().__init__(linear, weight)
        self.exact_weight = linear.weight if weight is None else weight  # the input embeddings when tied: no copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = _int8_product(x, self.weight_int8, self.row_scales, 1).to(x.dtype).reshape(*x.shape[:-1], -1)
        if self.bias is not None:
            logits = logits + self.bias
        top = logits.topk(min(_EXACT_LOGITS, self.out_features), dim=-1).indices
        exact = torch.einsum("...d,...kd->...k", x, self.exact_weight[top].to(x.dtype))
        if self.bias is not None:
            exact = exact + self.bias[top]
        return logits.scatter(-1, top, exact)


def int8_copy(model: torch.nn.Module, with_adapters: bool = True) -> torch.nn.Module:
    """A copy of `model` on int8 weights that shares every other tensor with it (embeddings,
    norms, biases), so it costs about a quarter of the linear layers' fp32 bytes. A layer
    carrying LoRA adapters (peft's, duck-typed: `base_layer`) is quantized with its active
    adapters folded in (`with_adapters`), merged into its weight or not; the copy has none."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())}
    copied = copy.deepcopy(model, memo)  # modules copied, every tensor shared

    def replace(source: torch.nn.Module, target: torch.nn.Module) -> None:
        children = dict(source.named_children())
        for names in _SHARED_INPUTS:
            linears = [_linear(children.get(name)) for name in names]
            if all(linear is not None for linear in linears):
                shared = SharedProduct([_effective_weight(children.pop(name), with_adapters) for name in names])
                start = 0
                for name, linear in zip(names, linears):
                    setattr(target, name, Int8Slice(shared, start, linear))
                    start += linear.out_features
        for name, child in children.items():
            exact = name in _EXACT_INPUTS
            if hasattr(child, "base_layer"):
                setattr(target, name, Int8Linear(child.base_layer, _effective_weight(child, with_adapters), exact))
            elif isinstance(child, torch.nn.Linear):
                setattr(target, name, Int8LogitsLayer(child) if child is output else Int8Linear(child, exact_input=exact))
            else:
                replace(child, getattr(target, name))

    replace(model, copied)
    return_freed_memory()  # the quantizing's scratch: about 150 MB of resident memory for nothing
    return copied


def _linear(layer: torch.nn.Module | None) -> torch.nn.Linear | None:
    """The nn.Linear a layer computes with (a LoRA-carrying one's base layer), or None."""
    inner = getattr(layer, "base_layer", layer)
    return inner if isinstance(inner, torch.nn.Linear) else None


def _effective_weight(layer: torch.nn.Module, with_adapters: bool) -> torch.Tensor:
    """A layer's weight as it computes: a plain one's own; a LoRA-carrying one's base weight,
    with the active adapters' deltas added unless they are merged into it already (or taken
    out when the copy is to have none)."""
    if not hasattr(layer, "base_layer"):
        return layer.weight
    weight = layer.base_layer.weight
    merged = getattr(layer, "merged", False)
    for adapter in layer.active_adapters:
        if adapter in layer.lora_A and with_adapters != merged:
            delta = layer.get_delta_weight(adapter)
            weight = weight + delta if with_adapters else weight - delta
    return weight
