"""Attention for masked prompts (adapters_lora.attention): bitwise transformers' SDPA, without
the copies of grouped key and value heads; the generator's model attends through it."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from adapters_lora.attention import ATTENTION, _attention
from adapters_lora.generator import GenerationSettings, TransformersGenerator
from bot.types import ChatMessage


class _Grouped(torch.nn.Module):
    num_key_value_groups = 3  # nine query heads reading three key and value heads, as in the bundled model
    is_causal = True


def test_a_masked_prompt_attends_bitwise_as_transformers_sdpa() -> None:
    torch.manual_seed(0)
    query, key, value = torch.randn(4, 9, 20, 64), torch.randn(4, 3, 50, 64), torch.randn(4, 3, 50, 64)
    mask = torch.ones(4, 1, 20, 50, dtype=torch.bool).tril_(30)  # each row's rest after a 30-token opening
    mask[1:, :, :, :7] = False  # three rows left-padded beside a longer one
    for attention_mask, q in ((mask, query), (None, query), (mask[:, :, -1:], query[:, :, -1:])):  # prompt, whole, step
        ours, _ = _attention(_Grouped(), q, key, value, attention_mask, scaling=0.125)
        theirs, _ = sdpa_attention_forward(_Grouped(), q, key, value, attention_mask, scaling=0.125)
        assert ours.shape == (4, q.shape[2], 9, 64) and torch.equal(ours, theirs)


def test_the_generator_attends_through_it_and_still_reads_masks(model_cache: Path) -> None:
    generator = TransformersGenerator("bundled", model_cache, GenerationSettings(weights="fp32", max_new_tokens=8))
    generator.load()
    assert generator._model.config._attn_implementation == ATTENTION
    # read whole, then after the kept system prompt (masked): the answer transformers' own attention gives
    ask = [ChatMessage(role="user", content="What is the capital of France?")]
    assert generator.generate(ask) == generator.generate(ask) == "The capital of France is Paris."
