"""The KV cache of a left-padded, continuously changing batch, kept in place.

Every layer keeps its keys and values in one preallocated buffer of ``row capacity × heads ×
column capacity × head_dim``. Rows ``0..rows-1`` are the running sequences, columns
``start..end-1`` the batch's history, right-aligned: row ``i`` begins after ``pads[i]`` unused
columns, so the next token of every row lands in column ``end`` and one in-place write per layer
extends the whole batch (no ``torch.cat`` of the history every step, as ``DynamicCache`` does).

Membership changes copy only what moves: a leaving row is overwritten by the last row (one row's
history), padding that all rows share is dropped by advancing ``start`` (no copy), and joining rows
are written into free rows. Only growing past the buffer copies the whole batch, amortised by doubling.
"""

from __future__ import annotations

from typing import Any

import torch

_CLASSES: dict[str, type] = {}


def _layer_class() -> type:
    """Subclass transformers' ``DynamicLayer`` lazily (importing this module does not import it)."""
    if "layer" in _CLASSES:
        return _CLASSES["layer"]
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        """One layer's slice of the batch cache; the model sees ``keys``/``values`` as views."""

        is_croppable = False

        def __init__(self) -> None:
            super().__init__()
            self.k: torch.Tensor | None = None
            self.v: torch.Tensor | None = None
            self.rows = 0
            self.start = 0
            self.end = 0

        def allocate(self, like: torch.Tensor, rows: int, columns: int) -> None:
            """New buffers, uninitialised: every column of the window is written before it is read
            (a join zeroes the padding it adds, a relocation copies the live block), and zero-filling
            a batch-sized buffer on every wider join cost more than the join itself."""
            shape = (rows, like.shape[1], columns, like.shape[3])
            self.k, self.v = buffer(shape, like), buffer(shape, like)
            self.device = like.device
            self.is_initialized = True

        def refresh(self) -> None:
            if self.k is not None:
                self.keys = self.k[: self.rows, :, self.start : self.end]
                self.values = self.v[: self.rows, :, self.start : self.end]

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            new = key_states.shape[2]
            if self.k is None:
                self.rows = key_states.shape[0]
                self.allocate(key_states, self.rows, max(64, new))
            elif self.end + new > self.k.shape[2]:
                relocate(self, self.k.shape[0], max(2 * self.k.shape[2], self.end - self.start + new), 0)
            self.k[: self.rows, :, self.end : self.end + new] = key_states
            self.v[: self.rows, :, self.end : self.end + new] = value_states
            self.end += new
            self.refresh()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.end - self.start

    _CLASSES["layer"] = SlotLayer
    return SlotLayer


def buffer(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised key or value buffer (tests fill it with NaN to prove it is never read unwritten)."""
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def relocate(layer: Any, rows: int, columns: int, headroom: int) -> None:
    """Copy the live block into new ``rows`` × ``columns`` buffers, ``headroom`` columns left free."""
    width = layer.end - layer.start
    keys, values = layer.k, layer.v
    layer.allocate(keys, rows, max(columns, headroom + width + 1))
    if layer.rows and width:
        layer.k[: layer.rows, :, headroom : headroom + width] = keys[: layer.rows, :, layer.start : layer.end]
        layer.v[: layer.rows, :, headroom : headroom + width] = values[
            : layer.rows, :, layer.start : layer.end
        ]
    layer.start, layer.end = headroom, headroom + width
    layer.refresh()


def new_cache(num_layers: int) -> Any:
    from transformers.cache_utils import Cache

    layer = _layer_class()
    return Cache(layers=[layer() for _ in range(num_layers)])


def seeded(num_layers: int, segments: list[list[tuple[torch.Tensor, torch.Tensor]]], columns: int) -> Any:
    """A one-row cache holding ``segments`` (per layer ``heads × tokens × head_dim``, in order).

    How a prefix-cache hit becomes the start of a new row: its buffers take ``columns`` columns
    (the whole prompt), so prefilling the rest writes in place.
    """
    cache = new_cache(num_layers)
    tokens = sum(segment[0][0].shape[1] for segment in segments)
    for index, layer in enumerate(cache.layers):
        layer.allocate(segments[0][index][0].unsqueeze(0), 1, max(columns, tokens + 1))
        at = 0
        for segment in segments:
            keys, values = segment[index]
            layer.k[0, :, at : at + keys.shape[1]] = keys
            layer.v[0, :, at : at + keys.shape[1]] = values
            at += keys.shape[1]
        layer.rows, layer.start, layer.end = 1, 0, tokens
        layer.refresh()
    return cache


def row_kv(cache: Any, row: int, start: int, stop: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of row ``row``'s keys and values in window columns ``start..stop-1``, every layer."""
    return [
        (
            layer.k[row, :, layer.start + start : layer.start + stop].clone(),
            layer.v[row, :, layer.start + start : layer.start + stop].clone(),
        )
        for layer in cache.layers
    ]


def width(cache: Any) -> int:
    first = cache.layers[0]
    return first.end - first.start


def remove_rows(cache: Any, gone: list[int]) -> list[int]:
    """Drop rows ``gone``; the last rows fill the holes. Returns the new order of the old row indices."""
    rows = cache.layers[0].rows
    order = list(range(rows))
    gone_set = set(gone)
    holes = sorted(r for r in gone_set if r < rows - len(gone_set))
    movers = [r for r in range(rows - len(gone_set), rows) if r not in gone_set]
    for hole, mover in zip(holes, movers, strict=True):
        order[hole] = mover
    order = order[: rows - len(gone_set)]
    for layer in cache.layers:
        if holes and layer.k is not None:
            device = layer.k.device
            dst, src = torch.tensor(holes, device=device), torch.tensor(movers, device=device)
            layer.k[dst, :, layer.start : layer.end] = layer.k[src, :, layer.start : layer.end]
            layer.v[dst, :, layer.start : layer.end] = layer.v[src, :, layer.start : layer.end]
        layer.rows = len(order)
        if not order:
            layer.start = layer.end = 0
        layer.refresh()
    return order


def trim_left(cache: Any, columns: int) -> None:
    """Forget ``columns`` leading columns every row has as padding (no copy: ``start`` moves)."""
    for layer in cache.layers:
        layer.start += columns
        layer.refresh()


def join(cache: Any, group: Any, max_rows: int) -> int:
    """Append all rows of ``group`` (another cache, right-aligned) below the rows of ``cache``.

    Returns how many columns of left padding the existing rows gained (the group is wider).
    """
    grown = 0
    for layer, part in zip(cache.layers, group.layers, strict=True):
        add, extra = part.rows, part.end - part.start
        current = layer.end - layer.start
        if layer.k is None:
            layer.allocate(part.k, min(max_rows, max(add, 4)), max(64, 2 * extra + 16))
        if layer.rows == 0:  # empty: place the group anywhere with room on both sides
            if layer.k.shape[2] < extra + 16:
                relocate(layer, layer.k.shape[0], 2 * extra + 16, 0)
            layer.start = layer.end = extra
            current = 0
        wider = max(0, extra - current)
        need_rows = layer.rows + add
        if need_rows > layer.k.shape[0] or wider > layer.start:
            rows = min(max_rows, max(need_rows, 2 * layer.k.shape[0]))
            rows = max(rows, need_rows)
            columns = max(layer.k.shape[2], 2 * (current + wider) + 64)
            relocate(layer, rows, columns, wider + 16)
        if wider:
            layer.start -= wider
            layer.k[: layer.rows, :, layer.start : layer.start + wider] = 0
            layer.v[: layer.rows, :, layer.start : layer.start + wider] = 0
        top, bottom = layer.rows, layer.rows + add
        layer.k[top:bottom, :, layer.start : layer.end] = 0
        layer.v[top:bottom, :, layer.start : layer.end] = 0
        layer.k[top:bottom, :, layer.end - extra : layer.end] = part.k[:, :, part.start : part.end]
        layer.v[top:bottom, :, layer.end - extra : layer.end] = part.v[:, :, part.start : part.end]
        layer.rows = bottom
        layer.refresh()
        grown = wider
    return grown
