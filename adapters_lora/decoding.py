"""Greedy decoding of one round with rows that come and go (continuous batching).

A row that ends (end of sequence, its own token limit, its asker stopped reading) leaves the
batch at once, its keys and values dropped; a request of the round's voice that arrives
while the round runs joins it at the next step: its prompt is read on its own (the
model's one call that step for it), then its keys and values are laid beside the running
rows'. Rows of different lengths share one cache by left padding: the shorter side gets
zero keys and values that its attention mask hides, and each row counts its positions from
its own first token, so a row computes what it would alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters_lora.batching import BatchRows, GenerationRequest

# (requests) -> for each group of them read together: (their places in `requests`, cache,
# attention mask, position of each row's last prompt token, last logits)
Prefill = Callable[[list[GenerationRequest]], list[tuple[list[int], Any, Any, Any, Any]]]
Join = Callable[[int], list[GenerationRequest]]  # (room) -> requests that join the running round
Penalty = Callable[[list[list[int]], Any], Any]  # (each row's generated tokens, logits) -> logits


@dataclass
class _Batch:
    rows: list[int]  # each row's place in BatchRows.requests
    cache: Any  # keys and values of every token read so far, one row each
    mask: Any  # [rows, cached + 1]: 1 where a row has a real token (the last: the one it reads next)
    positions: Any  # [rows]: position of the token each row reads next
    step: Any  # [rows]: the token each row reads next

    def keep(self, going: list[bool]) -> None:
        import torch

        if all(going):
            return
        keep = torch.tensor([i for i, g in enumerate(going) if g], dtype=torch.long)
        self.cache.batch_select_indices(keep)
        self.rows = [self.rows[i] for i in keep.tolist()]
        self.mask, self.positions, self.step = self.mask[keep], self.positions[keep], self.step[keep]


def decode_greedy(model: Any, rows: BatchRows, prefill: Prefill, max_batch: int,
                  join: Join | None = None, penalty: Penalty | None = None) -> None:
    """Decode every request of `rows` (and whatever `join` adds) to its end."""
    batch: _Batch | None = None
    pending = list(range(len(rows.requests)))
    while True:
        pending = [i for i in pending if rows.going([i])[0]]  # an asker who left before its turn: not read at all
        if pending:
            admitted = _admit(rows, pending, prefill, penalty)
            batch = admitted if batch is None else merge(batch, admitted) if admitted else batch
        if batch is None or not batch.rows:
            break
        logits = model(input_ids=batch.step[:, None], attention_mask=batch.mask,
                       position_ids=batch.positions[:, None], cache=batch.cache, use_cache=True,
                       logits_to_keep=1).logits[:, -1, :].float()
        chosen = _choose(rows, batch.rows, logits, penalty)
        batch.step, batch.positions = chosen, batch.positions + 1
        batch.mask = _grown(batch.mask)
        batch.keep(rows.going(batch.rows))
        room = max_batch - len(batch.rows)
        pending = [rows.add(r) for r in join(room)] if join is not None and room > 0 and batch.rows else []
    rows.end()


def _admit(rows: BatchRows, pending: list[int], prefill: Prefill, penalty: Penalty | None) -> _Batch | None:
    """Reads the prompts of `pending` (in groups, as `prefill` chooses) and picks each one's
    first token: one batch of the rows still going."""
    from adapters_lora.growing_cache import growing

    admitted = None
    for places, cache, mask, last, logits in prefill([rows.requests[i] for i in pending]):
        indices = [pending[place] for place in places]
        chosen = _choose(rows, indices, logits, penalty)
        batch = _Batch(rows=indices, cache=growing(cache), mask=_grown(mask), positions=last + 1, step=chosen)
        batch.keep(rows.going(indices))
        if batch.rows:
            admitted = batch if admitted is None else merge(admitted, batch)
    return admitted


def _choose(rows: BatchRows, indices: list[int], logits: Any, penalty: Penalty | None) -> Any:
    if penalty is not None:
        logits = penalty([rows.requests[i].tokens for i in indices], logits)
    chosen = logits.argmax(-1)
    rows.push(indices, chosen.tolist())
    return chosen


def _grown(mask: Any) -> Any:
    """The mask with a place for the token each row reads next."""
    import torch

    return torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)


def merge(running: _Batch, joining: _Batch) -> _Batch:
    """One batch of both: the side whose cache is shorter is padded on the left (zero keys
    and values, masked out), so every row's tokens end at the same place."""
    import torch

    length = max(running.mask.shape[1], joining.mask.shape[1])
    for layer_running, layer_joining in zip(running.cache.layers, joining.cache.layers):
        for name in ("keys", "values"):
            both = [_left_padded(getattr(layer, name), length - 1, dim=-2) for layer in (layer_running, layer_joining)]
            setattr(layer_running, name, torch.cat(both, dim=0))
    return _Batch(rows=running.rows + joining.rows, cache=running.cache,
                  mask=torch.cat([_left_padded(b.mask, length, dim=-1) for b in (running, joining)], dim=0),
                  positions=torch.cat([running.positions, joining.positions]),
                  step=torch.cat([running.step, joining.step]))


def _left_padded(tensor: Any, length: int, dim: int) -> Any:
    import torch

    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
