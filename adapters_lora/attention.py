"""transformers' SDPA attention, with one change for prompts read beside others.

A prompt read after an opening or left-padded beside longer ones attends through a mask.
There transformers copies each key and value head once per query head that reads it
(`repeat_kv`: 3x the keys and values for the bundled model) because some devices' kernels
cannot take a mask and grouped heads together. torch's CPU kernel can (`enable_gqa`), and
gives bitwise the same output: 1.6-1.7 ms a layer for 24 rows of 20 tokens after 102 kept,
against 2.4-2.8 ms with the copies. Everything else (decoding's one query per row, a prompt
read whole) is transformers' own code, untouched.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

__all__ = ["ATTENTION"]

ATTENTION = "supportbot_sdpa"  # the name models are set to (model.set_attn_implementation)


def _attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
               **kwargs: Any) -> tuple[torch.Tensor, None]:
    if (query.shape[2] > 1 and attention_mask is not None and dropout == 0.0 and query.device.type == "cpu"
            and kwargs.get("position_bias") is None and getattr(module, "num_key_value_groups", 1) > 1):
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                               scale=scaling, enable_gqa=True)
        return out.transpose(1, 2).contiguous(), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)


AttentionInterface.register(ATTENTION, _attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)  # SDPA's masks: without one registered, none is made
