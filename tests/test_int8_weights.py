"""int8 weights (adapters_lora.int8_weights): close to fp32, a row's result independent of
the rows batched with it, and the bundled model on int8 weights answering as a batch exactly
what it answers alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from adapters_lora.generator import GenerationSettings, TransformersGenerator
from adapters_lora.int8_weights import Int8Linear, quantize_linear_layers
from bot.types import ChatMessage


def test_an_int8_layer_stays_within_a_percent_of_fp32_on_both_paths() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(576, 1536, bias=True)
    layer = Int8Linear(linear)
    assert layer.weight_int8.dtype == torch.int8 and layer.weight_int8.shape == (1536, 576)
    one_token = torch.randn(4, 1, 576)  # decoding: one token per row, the int8 kernel
    prompt = torch.randn(1, 100, 576)  # a prompt: many tokens per row, the dequantized product
    with torch.inference_mode():
        for x in (one_token, prompt):
            exact, approx = linear(x), layer(x)
            assert approx.dtype == torch.float32 and approx.shape == exact.shape
            assert (approx - exact).abs().max() < 0.01 * exact.abs().max()


def test_a_row_decodes_the_same_whatever_it_is_batched_with() -> None:
    torch.manual_seed(1)
    layer = Int8Linear(torch.nn.Linear(576, 576, bias=False))
    batch = torch.randn(8, 1, 576)
    with torch.inference_mode():
        assert torch.equal(layer(batch)[3], layer(batch[3:4])[0])


def test_every_linear_layer_is_replaced() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(16, 4)))
    quantize_linear_layers(model)
    assert [type(m).__name__ for m in model.modules()].count("Int8Linear") == 2
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())


@pytest.fixture(scope="module")
def int8(model_cache: Path) -> TransformersGenerator:
    return TransformersGenerator("bundled", model_cache, GenerationSettings(weights="int8", max_new_tokens=16))


def test_the_bundled_model_on_int8_weights_answers_together_what_it_answers_alone(int8) -> None:
    prompts = ("What is the capital of France?", "Say hello.", "List three colours.")
    alone = [int8.generate([ChatMessage(role="user", content=p)]) for p in prompts]
    together: list[str | None] = [None] * len(prompts)
    start = threading.Barrier(len(prompts))

    def run(i: int) -> None:
        start.wait()
        together[i] = int8.generate([ChatMessage(role="user", content=prompts[i])])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert together == alone
    assert alone[0] == "The capital of France is Paris."
    assert int8.batches.largest_batch >= 2
    served = int8._serving_model(None)
    assert any(isinstance(m, Int8Linear) for m in served.modules())
