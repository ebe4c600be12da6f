"""The KV prefix cache: what earlier requests computed, kept for later ones that start the same way.

A chat turn's prompt is the previous turn's prompt and reply plus one new message, and many
conversations open with the same system prompt. When a sequence ends (or its prompt is done), the
engine hands its token ids and their keys and values to this store; a new request looks up the
longest stored prefix of its prompt, copies that KV into its own cache row and prefills only the rest.

Why a radix tree over token ids, not hashed blocks (vLLM's automatic prefix caching): our engine
keeps every sequence's KV as one contiguous row of a left-padded batch, not in fixed-size pages, so a
hit is copied into the row either way and block granularity buys nothing. Hashed blocks would match
only up to the last full block (a chat turn's boundary rarely falls on one) and keep one tensor pair
per layer per block; a tree matches to the exact token, keeps one tensor pair per layer per edge, and
splitting an edge where two prompts diverge stores their common part (a system prompt) once.

Eviction takes the least recently used unpinned leaf (SGLang's order): every lookup touches the whole
matched path, so a parent is never older than its children and the conversation that just finished
a turn (the one coming back next) is the last to go; transformers' block manager reclaims
most-recent-first, the wrong order for chat. Entries idle past ``ttl`` seconds are dropped too. A
request pins the path it matched until it ends, so what it extends is not evicted under it. The
budget counts tokens and is never exceeded: when pinned entries leave too little room, an insert
keeps only the part that fits. Every entry owns its tensors (a split copies both halves), so the
tokens counted are the memory held.

Keys are namespaced (model, tokenizer, template, dtype): ids only mean the same KV for the same
weights, vocabulary and precision. The store is used by the engine's worker thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

#: one layer's keys and values for some tokens, each ``heads × tokens × head_dim``
LayerKV = tuple[torch.Tensor, torch.Tensor]
#: the KV of token positions ``start..stop-1`` of the ids being inserted, every layer (fresh copies)
KVSource = Callable[[int, int], list[LayerKV]]


#: the share of free memory an automatic budget takes, and its ceiling in tokens
AUTO_MEMORY_SHARE = 0.25
AUTO_MAX_TOKENS = 1 << 20


def kv_bytes_per_token(model: Any) -> int:
    """Bytes of keys and values one token takes over every layer of ``model``."""
    config = model.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    element = next(model.parameters()).element_size()
    return 2 * int(config.num_hidden_layers) * int(heads) * int(head_dim) * element


def auto_budget(bytes_per_token: int, device: str, kv_cache_tokens: int) -> int:
    """The default budget in tokens: the running sequences' KV budget when one is set, otherwise a
    quarter of the memory free now on the model's device (capped), so the store never competes
    with running sequences for most of it."""
    if kv_cache_tokens:
        return kv_cache_tokens
    if device.startswith("cuda") and torch.cuda.is_available():
        free = torch.cuda.mem_get_info(torch.device(device))[0]
    else:  # cpu, and mps (unified memory)
        import psutil

        free = psutil.virtual_memory().available
    return int(min(AUTO_MAX_TOKENS, AUTO_MEMORY_SHARE * free // max(1, bytes_per_token)))


def namespace(model: str, tokenizer: str, template: str, dtype: str) -> tuple[str, str, str, str]:
    """The key space of one (model, tokenizer, template, dtype): entries never cross it."""
    return (model, tokenizer, template, dtype)


@dataclass(eq=False)
class _Node:
    """An edge of the tree: ``ids`` and their KV, following the ids of every ancestor."""

    ids: list[int]
    kv: list[LayerKV]
    parent: _Node | None
    children: dict[int, _Node] = field(default_factory=dict)
    refs: int = 0  # pins whose deepest node is this one or below it
    tick: int = 0  # LRU order: higher is more recent
    used: float = 0.0  # clock time of the last use (the idle TTL)


@dataclass(eq=False)
class Hit:
    """A matched prefix: ``tokens`` ids whose KV is in ``segments`` (in order), pinned until released."""

    tokens: int
    segments: list[list[LayerKV]]
    node: _Node | None = None  # the deepest matched node, pinned (None: nothing matched)


@dataclass
class PrefixCacheStats:
    """Counters in tokens (the metrics read them) and the store's size."""

    queries: int = 0  # prompt tokens looked up
    hits: int = 0  # of those, tokens found in the store
    evictions: int = 0  # entries dropped (least recently used or idle past the TTL)
    evicted_tokens: int = 0
    tokens: int = 0  # tokens held now
    budget: int = 0


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _slice(kv: list[LayerKV], start: int, stop: int | None = None) -> list[LayerKV]:
    return [(k[:, start:stop], v[:, start:stop]) for k, v in kv]


def _own(kv: list[LayerKV]) -> list[LayerKV]:
    dense = torch.contiguous_format
    return [(k.clone(memory_format=dense), v.clone(memory_format=dense)) for k, v in kv]


class PrefixCache:
    """A bounded, LRU-evicted store of KV keyed by token-id prefixes (see the module docstring)."""

    def __init__(
        self, budget_tokens: int, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = max(0, budget_tokens)
        self.ttl = ttl
        self.clock = clock
        self.stats = PrefixCacheStats(budget=self.budget)
        self._roots: dict[Hashable, _Node] = {}
        self._leaves: set[_Node] = set()
        self._tick = 0

    @property
    def tokens(self) -> int:
        return self.stats.tokens

    # --- lookup ---------------------------------------------------------------------------
    def lookup(self, space: Hashable, ids: Sequence[int], limit: int | None = None) -> Hit:
        """The longest stored prefix of ``ids`` (at most ``limit`` tokens), pinned; counts the query.

        ``limit`` leaves tokens to feed: a prompt stored whole still needs its last token run
        through the model for the logits of the first new token.
        """
        self.expire()
        self.stats.queries += len(ids)
        want = list(ids[: len(ids) if limit is None else max(0, limit)])
        node, matched, path = self._roots.get(space), 0, []
        segments: list[list[LayerKV]] = []
        while node is not None and matched < len(want):
            child = node.children.get(want[matched])
            if child is None:
                break
            common = _common(child.ids, want[matched:])
            segments.append(child.kv if common == len(child.ids) else _slice(child.kv, 0, common))
            path.append(child)
            matched += common
            if common < len(child.ids):
                break
            node = child
        self._touch(path)
        self.stats.hits += matched
        hit = Hit(matched, segments, path[-1] if path else None)
        self._pin(hit.node, 1)
        return hit

    def release(self, hit: Hit | None) -> None:
        """Unpin what ``hit`` matched (idempotent): it may be evicted again."""
        if hit is not None and hit.node is not None:
            self._pin(hit.node, -1)
            hit.node = None

    # --- insert ---------------------------------------------------------------------------
    def insert(self, space: Hashable, ids: Sequence[int], source: KVSource) -> int:
        """Store ``ids`` (exactly the tokens whose KV was computed); ``source`` gives the missing KV.

        Only the part not stored yet is copied in. Returns how many new tokens were stored (fewer
        than missing when the budget, after evicting what may go, leaves less room).
        """
        if not self.budget or not ids:
            return 0
        self.expire()
        ids = list(ids)
        root = self._roots.setdefault(space, _Node([], [], None))
        node, matched, partial = self._walk(root, ids)
        self._touch(self._path(partial or node))
        need = len(ids) - matched
        if need <= 0:
            return 0
        anchor = partial or node
        self._pin(anchor, 1)  # the path we extend stays while room is made
        try:
            self._make_room(need)
            fit = min(need, self.budget - self.stats.tokens)
            if fit <= 0:
                return 0
            if partial is not None:
                node = self._split(partial, matched - self._depth(partial.parent))
            kv = source(matched, matched + fit)
            self._attach(node, ids[matched : matched + fit], kv)
            return fit
        finally:
            self._pin(anchor, -1)  # after a split, ``anchor`` is the lower half: still balanced

    def _walk(self, root: _Node, ids: list[int]) -> tuple[_Node, int, _Node | None]:
        """The deepest node wholly matched, the tokens matched, and a child matched part-way."""
        node, matched = root, 0
        while matched < len(ids):
            child = node.children.get(ids[matched])
            if child is None:
                return node, matched, None
            common = _common(child.ids, ids[matched:])
            if common < len(child.ids):
                return node, matched + common, child
            node, matched = child, matched + common
        return node, matched, None

    def _split(self, node: _Node, at: int) -> _Node:
        """Cut ``node`` after ``at`` of its ids; the new upper part is returned, ``node`` stays below.

        The upper part inherits the pins (they cover the same subtree), so a release walking up
        from ``node`` stays balanced. Both halves get their own copies.
        """
        parent = node.parent
        upper = _Node(node.ids[:at], _own(_slice(node.kv, 0, at)), parent, refs=node.refs)
        upper.tick, upper.used = node.tick, node.used
        node.ids, node.kv, node.parent = node.ids[at:], _own(_slice(node.kv, at)), upper
        upper.children[node.ids[0]] = node
        parent.children[upper.ids[0]] = upper
        return upper

    def _attach(self, parent: _Node, ids: list[int], kv: list[LayerKV]) -> None:
        leaf = _Node(ids, kv, parent)
        parent.children[ids[0]] = leaf
        self._leaves.discard(parent)
        self._leaves.add(leaf)
        self.stats.tokens += len(ids)
        self._touch(self._path(leaf))

    # --- eviction -------------------------------------------------------------------------
    def expire(self) -> int:
        """Drop unpinned entries idle for longer than the TTL; how many went."""
        if not self._leaves:
            return 0
        deadline = self.clock() - self.ttl
        gone = 0
        while True:
            stale = [leaf for leaf in self._leaves if not leaf.refs and leaf.used < deadline]
            if not stale:
                return gone
            for leaf in stale:
                self._evict(leaf)
                gone += 1

    def _make_room(self, need: int) -> None:
        """Evict least-recently-used unpinned leaves until ``need`` more tokens fit, or none is left."""
        while self.stats.tokens + need > self.budget:
            candidates = [leaf for leaf in self._leaves if not leaf.refs]
            if not candidates:
                return
            self._evict(min(candidates, key=lambda leaf: leaf.tick))

    def _evict(self, leaf: _Node) -> None:
        parent = leaf.parent
        del parent.children[leaf.ids[0]]
        self._leaves.discard(leaf)
        if parent.parent is not None and not parent.children:
            self._leaves.add(parent)  # a namespace's root stays (empty): there are few of them
        self.stats.tokens -= len(leaf.ids)
        self.stats.evictions += 1
        self.stats.evicted_tokens += len(leaf.ids)

    def clear(self) -> None:
        """Forget everything unpinned (e.g. the model changed)."""
        while candidates := [leaf for leaf in self._leaves if not leaf.refs]:
            for leaf in candidates:
                self._evict(leaf)

    # --- bookkeeping ----------------------------------------------------------------------
    def _touch(self, nodes: list[_Node]) -> None:
        self._tick += 1
        now = self.clock()
        for node in nodes:
            node.tick, node.used = self._tick, now

    @staticmethod
    def _path(node: _Node | None) -> list[_Node]:
        path = []
        while node is not None and node.parent is not None:
            path.append(node)
            node = node.parent
        return path

    @staticmethod
    def _depth(node: _Node | None) -> int:
        depth = 0
        while node is not None:
            depth += len(node.ids)
            node = node.parent
        return depth

    @staticmethod
    def _pin(node: _Node | None, delta: int) -> None:
        while node is not None:
            node.refs += delta
            node = node.parent

    def nbytes(self) -> int:
        """Bytes of KV storage held (each storage once): what the token budget stands for."""
        seen: dict[int, int] = {}
        stack = list(self._roots.values())
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            for pair in node.kv:
                for tensor in pair:
                    storage = tensor.untyped_storage()
                    seen[storage.data_ptr()] = storage.nbytes()
        return sum(seen.values())

    def entries(self) -> list[list[int]]:
        """Every stored sequence (root to leaf) as ids, for tests and debugging."""
        out = []
        for leaf in self._leaves:
            ids: list[int] = []
            for node in reversed(self._path(leaf)):
                ids += node.ids
            out.append(ids)
        return sorted(out)
