"""Linear layers on int8 weights with bf16 arithmetic, for faster decoding on a CPU.

Decoding a small model is bound by reading its weights once per token, so storing them as
int8 (one scale per output channel) reads a quarter of the bytes of fp32. Only the weights
are quantized: each layer's input is rounded to bf16 and its output returned in the model's
own dtype, so the residual stream, norms and attention stay fp32. Unlike torch's dynamic
quantization (activations quantized per batch, to 8 bits), a row's result does not depend on
the rows it is batched with, and a voice adapter merged into the weights keeps its greeting
and sign-off (bench_answers --voice).

A call reading one token per row (decoding) uses torch's int8 weight-only kernel; a call
reading many (a prompt) multiplies by the weights dequantized to bf16, which is about 2.5x
faster there than the weight-only kernel (bench_generation, time to first token).

The output layer's logits come out of that kernel in bf16, whose step at a logit of 33 is
0.25: close candidates tie or swap ("I'm" and "I's" 33.0 against 32.75), and greedy decoding
then wanders. So the few highest logits are recomputed exactly from the fp32 weights (the
input embeddings, which the output layer shares in most small models): the int8 product only
picks which tokens are worth it.
"""

from __future__ import annotations

import torch

__all__ = ["Int8Linear", "Int8LogitsLayer", "quantize_linear_layers"]

_KERNEL_MAX_TOKENS = 64  # tokens per row up to which the int8 kernel beats a bf16 matrix product
_COMPUTE = torch.bfloat16
_EXACT_LOGITS = 16  # logits recomputed in fp32: the int8 product's error is far below the gap to the 16th


class Int8Linear(torch.nn.Module):
    """A frozen nn.Linear whose weight is int8 with a bf16 scale per output channel."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-8)
        self.register_buffer("weight_int8", torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(_COMPUTE))
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().clone(),
                                                                       requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens_per_row = x.shape[-2] if x.dim() >= 2 else 1
        flat = x.reshape(-1, self.in_features).to(_COMPUTE)
        if tokens_per_row <= _KERNEL_MAX_TOKENS:
            out = torch._weight_int8pack_mm(flat.contiguous(), self.weight_int8, self.scales)
        else:
            out = flat @ (self.weight_int8.to(_COMPUTE) * self.scales[:, None]).T
        out = out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Int8LogitsLayer(Int8Linear):
    """The output layer: int8 logits for every token, exact fp32 ones for the highest few."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__(linear)
        self.exact_weight = linear.weight  # shared with the input embeddings when tied: no copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        top = logits.topk(min(_EXACT_LOGITS, self.out_features), dim=-1).indices
        exact = torch.einsum("...d,...kd->...k", x, self.exact_weight[top].to(x.dtype))
        if self.bias is not None:
            exact = exact + self.bias[top]
        return logits.scatter(-1, top, exact)


def quantize_linear_layers(model: torch.nn.Module) -> torch.nn.Module:
    """Replace every nn.Linear of `model` in place by an Int8Linear (the output layer of a
    language model by an Int8LogitsLayer); returns the model."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(module, name, Int8LogitsLayer(child) if child is output else Int8Linear(child))
    return model
