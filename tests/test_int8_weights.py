"""int8 weights (adapters_lora.int8_weights): close to fp32, a row's result independent of
the rows batched with it, and the bundled model on int8 weights answering as a batch exactly
what it answers alone."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from adapters_lora.generator import GenerationSettings, TransformersGenerator
from adapters_lora.int8_weights import Int8Linear, Int8Slice, int8_copy, reading_prompt
from bot.types import ChatMessage
from tests.helpers import generate_together


def test_an_int8_layer_stays_within_a_percent_of_fp32_on_every_path() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(576, 1536, bias=True)
    layer = Int8Linear(linear)
    assert layer.weight_int8.dtype == torch.int8 and layer.weight_int8.shape == (1536, 576)
    one_token = torch.randn(4, 1, 576)  # decoding: one token per row, the weight-only kernel (input in bf16)
    prompt = torch.randn(1, 100, 576)  # a short prompt: int8 by int8, in two parts
    long = torch.randn(1, 300, 576)  # a long one: the weights cast to bf16
    with torch.inference_mode():
        for x in (one_token, prompt, long):
            exact, approx = linear(x), layer(x)
            assert approx.dtype == torch.float32 and approx.shape == exact.shape
            assert (approx - exact).abs().max() < 0.01 * exact.abs().max()


def test_a_row_decodes_and_reads_its_prompt_the_same_whatever_it_is_batched_with() -> None:
    torch.manual_seed(1)
    for exact_input in (False, True):
        layer = Int8Linear(torch.nn.Linear(576, 576, bias=False), exact_input=exact_input)
        batch, prompts = torch.randn(8, 1, 576), torch.randn(3, 20, 576)
        prompts[0] *= 50  # a row of a much larger scale beside it changes nothing for the others
        with torch.inference_mode():
            assert torch.equal(layer(batch)[3], layer(batch[3:4])[0])
            assert torch.equal(layer(prompts)[1], layer(prompts[1:2])[0])


def test_the_copy_quantizes_every_linear_layer_and_shares_the_rest() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Sequential(torch.nn.Linear(16, 4)))
    copied = int8_copy(model)
    assert [type(m).__name__ for m in copied.modules()].count("Int8Linear") == 2
    assert all(isinstance(m, torch.nn.Linear) for m in (model[0], model[2][0]))  # the source is left as it was
    assert copied[1].weight is model[1].weight and copied[0].bias is model[0].bias  # shared, not copied


def test_projections_of_one_input_are_one_product_with_each_layers_own_result() -> None:
    torch.manual_seed(6)
    attention, names = torch.nn.Module(), ("q_proj", "k_proj", "v_proj")
    for name, width, bias in zip(names, (576, 192, 192), (True, False, False)):
        setattr(attention, name, torch.nn.Linear(576, width, bias=bias))
    copied = int8_copy(attention)
    shared = copied.q_proj.shared
    assert all(isinstance(getattr(copied, n), Int8Slice) and getattr(copied, n).shared is shared for n in names)
    assert shared.weight_int8.shape == (960, 576)
    products = []
    shared.register_forward_hook(lambda *_: products.append(1))
    own = {n: Int8Linear(getattr(attention, n)) for n in names}
    # decoding (the kernel), a short prompt (int8 by int8), a long one (bf16): each column as its own layer's
    for x, prompt in ((torch.randn(8, 1, 576), False), (torch.randn(2, 20, 576), True), (torch.randn(1, 300, 576), True)):
        with torch.inference_mode(), reading_prompt() if prompt else nullcontext():
            assert all(torch.equal(getattr(copied, n)(x), own[n](x)) for n in names)
    assert len(products) == 3  # one per input, not one per projection


def test_the_mlp_output_projection_reads_a_prompt_unrounded() -> None:
    torch.manual_seed(4)
    mlp = torch.nn.Module()
    mlp.up_proj, mlp.down_proj = torch.nn.Linear(576, 1536, bias=False), torch.nn.Linear(1536, 576, bias=False)
    copied = int8_copy(mlp)
    assert copied.down_proj.exact_input and not copied.up_proj.exact_input
    x = torch.randn(1, 100, 1536) * 3
    dequantized = copied.down_proj.weight_int8.float() * copied.down_proj.row_scales[:, None]
    with torch.inference_mode(), reading_prompt():
        exact, rounded = copied.down_proj(x), x.bfloat16().float() @ dequantized.T
        assert torch.allclose(exact, x @ dequantized.T, atol=1e-4)  # the input as it is, not rounded to bf16
        assert (exact - rounded).abs().max() > 1e-3


def test_a_short_prompt_is_read_int8_by_int8_in_two_parts_and_the_same_in_any_pieces() -> None:
    torch.manual_seed(5)
    layer = Int8Linear(torch.nn.Linear(576, 576, bias=False))
    dequantized = layer.weight_int8.float() * layer.row_scales[:, None]
    x = torch.randn(1, 300, 576)
    exact = x @ dequantized.T

    def error(out: torch.Tensor) -> float:
        return float((out - exact[:, :out.shape[1]]).abs().max() / exact.abs().max())

    with torch.inference_mode():
        with reading_prompt():
            short, long, piece = layer(x[:, :100]), layer(x), layer(x[:, :3])
        kernel = layer(x[:, :3])  # three tokens outside a prompt: decoding's kernel, input in bf16
    assert error(short) < 1e-4 < 0.1 * error(long)  # two int8 parts up to 128 tokens a row, bf16 beyond
    assert torch.equal(piece, short[:, :3])  # a prompt's tokens read in one piece or in several: the same
    assert not torch.equal(kernel, piece)


def test_a_voice_is_folded_into_the_copy_merged_or_not_and_left_out_for_the_base_model() -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(2)
    base = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    x = torch.randn(1, 3, 64)
    with torch.inference_mode():
        plain = base(x)
    voiced = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["0"], init_lora_weights=False))
    inner = voiced.get_base_model()
    with torch.inference_mode():
        spoken = voiced(x)
        assert (spoken - plain).abs().max() > 0.1  # the voice changes the output
        for merged in (False, True):
            if merged:
                voiced.merge_adapter()
            assert (int8_copy(inner)(x) - spoken).abs().max() < 0.02 * spoken.abs().max()
            assert (int8_copy(inner, with_adapters=False)(x) - plain).abs().max() < 0.02 * plain.abs().max()


@pytest.fixture(scope="module")
def int8(model_cache: Path) -> TransformersGenerator:
    return TransformersGenerator("bundled", model_cache, GenerationSettings(weights="int8", max_new_tokens=16))


def test_the_bundled_model_on_int8_weights_answers_together_what_it_answers_alone(int8) -> None:
    prompts = ("What is the capital of France?", "Say hello.", "List three colours.")
    alone = [int8.generate([ChatMessage(role="user", content=p)]) for p in prompts]
    assert generate_together(int8, prompts) == alone
    assert alone[0] == "The capital of France is Paris."
    assert int8.batches.largest_batch >= 2
    served = int8._serving_model(None)
    assert any(isinstance(m, Int8Linear) for m in served.modules())
