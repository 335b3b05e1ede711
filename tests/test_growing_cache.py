"""The decoding cache that grows in place (adapters_lora.growing_cache): the same keys and
values as transformers' own layer through steps, rows leaving and joining, and a full
buffer; a step within the room writes into it instead of copying the cache."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from adapters_lora.growing_cache import GrowingLayer, empty_with_room


def test_a_growing_layer_holds_what_transformers_layer_holds_and_a_step_copies_nothing() -> None:
    torch.manual_seed(0)
    prompt_keys, prompt_values = torch.randn(4, 3, 10, 8), torch.randn(4, 3, 10, 8)
    plain = DynamicLayer()
    plain.update(prompt_keys, prompt_values)
    growing = GrowingLayer(prompt_keys, prompt_values)
    places = []
    for step in range(70):  # past the room (32) twice: the buffer is remade when full
        if step == 20:  # rows that ended leave
            kept = torch.tensor([0, 2, 3])
            plain.batch_select_indices(kept)
            growing.batch_select_indices(kept)
        if step == 30:  # a row joins, left-padded with zeros
            for layer in (plain, growing):
                joining = torch.zeros(1, 3, layer.keys.shape[2], 8)
                layer.keys, layer.values = torch.cat([layer.keys, joining]), torch.cat([layer.values, joining])
        rows = plain.keys.shape[0]
        new_keys, new_values = torch.randn(rows, 3, 1, 8), torch.randn(rows, 3, 1, 8)
        expected, got = plain.update(new_keys, new_values), growing.update(new_keys, new_values)
        assert all(torch.equal(e, g) for e, g in zip(expected, got))
        places.append(got[0].data_ptr())
    # a new buffer at the first step, when rows left (20), when one joined (30), when its 32 spare tokens are used up (63): never otherwise
    assert [step for step, (before, now) in enumerate(zip([None] + places, places)) if before != now] == [0, 20, 30, 63]


def test_a_buffer_has_room_past_the_tokens_asked_for() -> None:
    like = torch.zeros(1, 3, 5, 8)
    buffer = empty_with_room(like, rows=4, tokens=20)
    assert buffer.shape[:2] == (4, 3) and buffer.shape[2] > 20 and buffer.shape[3] == 8
    layer = GrowingLayer.in_buffers(buffer, buffer.clone(), 20)
    keys, _ = layer.update(torch.ones(4, 3, 2, 8), torch.ones(4, 3, 2, 8))
    assert keys.shape[2] == 22 and keys.data_ptr() == buffer.data_ptr()  # written into the room
