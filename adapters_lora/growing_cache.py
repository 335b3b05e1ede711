"""A decoding batch's keys and values with room to grow in place.

transformers' DynamicLayer appends each step's token with torch.cat, which copies the whole
cache every step: 32-41 ms of a 129-141 ms step for 30 lead-ins decoded together (a burst).
A GrowingLayer keeps its keys and values as views of buffers with a few steps' room: a step
writes its token into the room, and only a replaced cache (rows that left or joined) or a
full buffer is copied, once. Prompts are read into such buffers too, laid out with room for
their rests and replies (generator._stacked). Attention reads the same values either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["GrowingLayer", "empty_with_room", "growing", "laid_left_padded"]

_ROOM = 32  # tokens of room made each time a buffer is made: a lead-in's whole reply, most often


class GrowingLayer(DynamicLayer):
    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.keys, self.values = keys, values
        self.device = keys.device
        self.is_initialized = True
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None
        self._views: tuple[torch.Tensor, torch.Tensor] | None = None  # what keys and values were set to here

    @classmethod
    def in_buffers(cls, keys: torch.Tensor, values: torch.Tensor, length: int) -> GrowingLayer:
        """A layer of the first `length` tokens of these buffers, the rest of them its room."""
        layer = cls(keys[:, :, :length], values[:, :, :length])
        layer._buffers, layer._views = (keys, values), (layer.keys, layer.values)
        return layer

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        length, end = self.keys.shape[-2], self.keys.shape[-2] + key_states.shape[-2]
        views, buffers = self._views, self._buffers
        if views is None or buffers is None or views[0] is not self.keys or views[1] is not self.values \
                or buffers[0].shape[-2] < end:  # replaced (rows left or joined), or full: copied into a new one
            buffers = self._buffers = (_with_room(self.keys, end), _with_room(self.values, end))
        buffers[0][:, :, length:end] = key_states
        buffers[1][:, :, length:end] = value_states
        self.keys, self.values = buffers[0][:, :, :end], buffers[1][:, :, :end]
        self._views = (self.keys, self.values)
        return self.keys, self.values


def empty_with_room(like: torch.Tensor, rows: int, tokens: int) -> torch.Tensor:
    """A buffer (not zeroed) of `rows` rows for `tokens` tokens and _ROOM more (`like`'s heads and width)."""
    return like.new_empty((rows, like.shape[1], tokens + _ROOM, like.shape[3]))


def laid_left_padded(keys: Sequence[torch.Tensor], values: Sequence[torch.Tensor], length: int,
                     room: int) -> GrowingLayer:
    """One layer of these blocks of rows, one block after the other, each left-padded to
    `length` tokens with zeros (which the attention mask hides; never garbage: 0 x NaN is
    NaN), in buffers with `room` tokens more."""
    buffers = []
    for blocks in (keys, values):
        buffer = empty_with_room(blocks[0], sum(len(block) for block in blocks), length + room)
        row = 0
        for block in blocks:
            start = length - block.shape[2]
            buffer[row:row + len(block), :, :start] = 0
            buffer[row:row + len(block), :, start:length] = block
            row += len(block)
        buffers.append(buffer)
    return GrowingLayer.in_buffers(*buffers, length)


def _with_room(tensor: torch.Tensor, end: int) -> torch.Tensor:
    """A buffer for `end` tokens and _ROOM more, starting with `tensor`'s."""
    buffer = empty_with_room(tensor, len(tensor), end)
    buffer[:, :, :tensor.shape[2]] = tensor
    return buffer


def growing(cache: Any) -> Any:
    """`cache` (a DynamicCache after a prompt was read into it) with GrowingLayers, in place."""
    cache.layers = [layer if isinstance(layer, GrowingLayer) else GrowingLayer(layer.keys, layer.values)
                    for layer in cache.layers]
    return cache
