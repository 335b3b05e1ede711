"""Linear layers on int8 weights with bf16 arithmetic, for faster decoding on a CPU.

Decoding a small model is bound by reading its weights once per token, so storing them as
int8 (one scale per output channel) reads a quarter of the bytes of fp32. Only the weights
are quantized: each layer's input is rounded to bf16 and its output returned in the model's
own dtype, so the residual stream, norms and attention stay fp32. Unlike torch's dynamic
quantization (activations quantized per batch, to 8 bits), a row's result does not depend on
the rows it is batched with, and a voice adapter merged into the weights keeps its greeting
and sign-off (bench_answers --voice).

A call reading a token or a few per row (decoding) uses torch's int8 weight-only kernel,
whose cost grows with every row it reads; a call reading more (prompts) multiplies by the
weights cast to bf16 instead: a 1,322-token prompt in 0.7 s against 1.9 s, eight 60-token
prompts in 0.42 s against 0.85 s. Which path a row takes depends on its own length only, not
on the rows batched with it. The MLP's output projection reads a prompt in fp32 instead
(_EXACT_INPUTS): rounding its wide-ranging input to bf16 cost a voice its greeting.

The output layer's logits come out of that kernel in bf16, whose step at a logit of 33 is
0.25: close candidates tie or swap ("I'm" and "I's" 33.0 against 32.75), and greedy decoding
then wanders. So the few highest logits are recomputed exactly from the fp32 weights (the
input embeddings, which the output layer shares in most small models): the int8 product only
picks which tokens are worth it.
"""

from __future__ import annotations

import copy
import ctypes

import torch

__all__ = ["Int8Linear", "Int8LogitsLayer", "int8_copy"]

_KERNEL_MAX_TOKENS = 8  # tokens per row up to which the int8 kernel is used (its cost grows with every row it reads)
_COMPUTE = torch.bfloat16
# Layers whose prompt inputs stay fp32: the MLP's output projection reads the product of its
# gate and up projections, whose values span the widest range in the model; rounded to bf16
# there, a voice's subtle shift was lost (the formal voice's "Hello," greeting: gone with every
# layer in bf16, back with this one in fp32; 0.1-0.2 s more on a 1,536-token prompt).
_EXACT_INPUTS = ("down_proj", "fc2", "w2", "dense_4h_to_h")
_EXACT_LOGITS = 16  # logits recomputed in fp32: the int8 product's error is far below the gap to the 16th


class Int8Linear(torch.nn.Module):
    """A frozen nn.Linear whose weight is int8 with a bf16 scale per output channel."""

    def __init__(self, linear: torch.nn.Linear, weight: torch.Tensor | None = None, exact_input: bool = False) -> None:
        """`weight` (default: the layer's own) is what gets quantized, e.g. with a voice merged in;
        `exact_input`: a prompt's input is not rounded to bf16 (see _EXACT_INPUTS)."""
        super().__init__()
        self.exact_input = exact_input
        weight_int8, scales = _quantized_rows((linear.weight if weight is None else weight).detach())
        self.register_buffer("weight_int8", weight_int8)
        self.register_buffer("scales", scales.to(_COMPUTE))
        self.bias = linear.bias  # shared with the source model, never changed
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens_per_row = x.shape[-2] if x.dim() >= 2 else 1
        flat = x.reshape(-1, self.in_features)
        if tokens_per_row <= _KERNEL_MAX_TOKENS:
            out = torch._weight_int8pack_mm(flat.to(_COMPUTE).contiguous(), self.weight_int8, self.scales)
        else:  # scaling the weight: fewer values than the output
            dtype = flat.dtype if self.exact_input else _COMPUTE
            out = flat.to(dtype) @ self.weight_int8.to(dtype).mul_(self.scales[:, None]).T
        out = out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


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
    """The output layer: int8 logits for every token, exact fp32 ones for the highest few."""

    def __init__(self, linear: torch.nn.Linear, weight: torch.Tensor | None = None) -> None:
        super().__init__(linear, weight)
        self.exact_weight = linear.weight if weight is None else weight  # the input embeddings when tied: no copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
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
        for name, child in source.named_children():
            exact = name in _EXACT_INPUTS
            if hasattr(child, "base_layer"):
                setattr(target, name, Int8Linear(child.base_layer, _effective_weight(child, with_adapters), exact))
            elif isinstance(child, torch.nn.Linear):
                setattr(target, name, Int8LogitsLayer(child) if child is output else Int8Linear(child, exact_input=exact))
            else:
                replace(child, getattr(target, name))

    replace(model, copied)
    _return_freed_memory()
    return copied


def _return_freed_memory() -> None:
    """Hand the quantizing's freed scratch memory back to the system (glibc keeps it in the
    heap otherwise: about 150 MB of resident memory for nothing)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _effective_weight(layer: torch.nn.Module, with_adapters: bool) -> torch.Tensor:
    """A LoRA-carrying layer's weight as it computes: its base weight, with the active
    adapters' deltas added unless they are merged into it already (or taken out when the
    copy is to have none)."""
    weight = layer.base_layer.weight
    merged = getattr(layer, "merged", False)
    for adapter in layer.active_adapters:
        if adapter in layer.lora_A and with_adapters != merged:
            delta = layer.get_delta_weight(adapter)
            weight = weight + delta if with_adapters else weight - delta
    return weight
