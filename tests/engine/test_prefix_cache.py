"""The prefix store alone: longest-prefix lookup, a budget never exceeded, LRU order, TTL, pins.

Every test KV encodes its token id (keys = id, values = -id), so a lookup's segments can be read
back as the ids they claim to hold.
"""

from __future__ import annotations

import random

import torch

from chatstream.engine.prefix_cache import PrefixCache, namespace

HEADS, HEAD_DIM, LAYERS = 2, 3, 2
SPACE = namespace("tiny", "tok", "chat_template", "float32")


class Source:
    """KV for ``ids``: records every range the store asked for (it must copy only what is missing)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.asked: list[tuple[int, int]] = []

    def __call__(self, start: int, stop: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        self.asked.append((start, stop))
        values = torch.tensor(self.ids[start:stop], dtype=torch.float32)
        k = values[None, :, None].expand(HEADS, -1, HEAD_DIM).clone()
        return [(k + layer, -(k + layer)) for layer in range(LAYERS)]


def put(cache: PrefixCache, ids: list[int], space=SPACE) -> Source:
    source = Source(ids)
    cache.insert(space, ids, source)
    return source


def read(cache: PrefixCache, ids: list[int], space=SPACE, limit: int | None = None) -> list[int]:
    """The ids the matched KV encodes (checked on every layer, keys and values), the pin released."""
    hit = cache.lookup(space, ids, limit)
    if not hit.tokens:
        assert hit.segments == [] and hit.node is None
        return []
    keys = [torch.cat([seg[layer][0] for seg in hit.segments], dim=1) for layer in range(LAYERS)]
    values = [torch.cat([seg[layer][1] for seg in hit.segments], dim=1) for layer in range(LAYERS)]
    for layer in range(LAYERS):
        assert keys[layer].shape == (HEADS, hit.tokens, HEAD_DIM)
        assert torch.equal(values[layer], -keys[layer])
        assert torch.equal(keys[layer] - layer, keys[0])
    found = [int(x) for x in keys[0][0, :, 0]]
    cache.release(hit)
    return found


def stored_tokens(cache: PrefixCache) -> int:
    """Distinct prefixes over every stored sequence: the tree's tokens, each shared one once."""
    return len({tuple(e[: i + 1]) for e in cache.entries() for i in range(len(e))})


def test_longest_prefix_exact_to_the_token() -> None:
    cache = PrefixCache(1000)
    turn = list(range(1, 21))
    put(cache, turn)
    assert read(cache, turn[:7] + [99, 100]) == turn[:7]
    assert read(cache, turn + [21, 22]) == turn
    assert read(cache, turn, limit=len(turn) - 1) == turn[:-1]  # the last prompt token is fed again
    assert read(cache, [99] + turn) == []
    assert cache.stats.queries == 9 + 22 + 20 + 21
    assert cache.stats.hits == 7 + 20 + 19


def test_a_shared_system_prompt_is_stored_once_and_only_new_tokens_are_copied() -> None:
    cache = PrefixCache(1000)
    system = list(range(100, 150))
    first, second = system + [1, 2, 3], system + [7, 8]
    put(cache, first)
    source = put(cache, second)
    assert source.asked == [(50, 52)]  # the system prompt was there already
    assert cache.tokens == 50 + 3 + 2 == stored_tokens(cache)
    assert read(cache, first) == first and read(cache, second) == second
    # the next turn of the first conversation extends it: only the new part is copied
    turn2 = first + [4, 5, 6, 9]
    assert put(cache, turn2).asked == [(53, 57)]
    assert read(cache, turn2 + [10]) == turn2
    assert cache.nbytes() == cache.tokens * LAYERS * 2 * HEADS * HEAD_DIM * 4


def test_budget_never_exceeded_and_the_tokens_counted_are_the_memory_held() -> None:
    rng = random.Random(7)
    cache = PrefixCache(120)
    prefixes = [[rng.randrange(50) for _ in range(rng.randrange(1, 30))] for _ in range(6)]
    pins = []
    for step in range(400):
        ids = rng.choice(prefixes) + [rng.randrange(50) for _ in range(rng.randrange(0, 60))]
        if step % 3:
            put(cache, ids)
        else:
            pins.append(cache.lookup(SPACE, ids))
            if len(pins) > 3:
                cache.release(pins.pop(0))
        assert cache.tokens <= cache.budget
        assert cache.tokens == stored_tokens(cache)
        assert cache.nbytes() == cache.tokens * LAYERS * 2 * HEADS * HEAD_DIM * 4
        for entry in cache.entries()[:3]:
            assert read(cache, entry) == entry
    for pin in pins:
        cache.release(pin)
    cache.clear()  # pins balanced: nothing is left behind
    assert cache.tokens == 0 and cache.entries() == [] and cache.nbytes() == 0


def test_least_recently_used_goes_first_not_the_most_recent() -> None:
    cache = PrefixCache(30)
    a, b, c = [1] * 10, [2] * 10, [3] * 10
    for ids in (a, b, c):
        put(cache, ids)
    assert read(cache, a) == a  # a is used again: b is now the oldest
    put(cache, [4] * 10)
    assert cache.entries() == sorted([a, c, [4] * 10])
    assert cache.stats.evictions == 1 and cache.stats.evicted_tokens == 10
    # the conversation that just finished a turn (inserted last) is the one kept
    put(cache, [5] * 10)
    assert [4] * 10 in cache.entries() and [5] * 10 in cache.entries()


def test_leaves_go_before_the_prefix_they_extend() -> None:
    cache = PrefixCache(40)
    system = [9] * 20
    put(cache, system + [1] * 10)
    put(cache, system + [2] * 10)
    put(cache, [3] * 10)  # needs 10: the older branch goes, the system prompt stays
    assert cache.entries() == sorted([system + [2] * 10, [3] * 10])
    assert cache.tokens == 40


def test_idle_entries_expire_after_the_ttl_unless_pinned() -> None:
    now = [0.0]
    cache = PrefixCache(100, ttl=60.0, clock=lambda: now[0])
    put(cache, [1, 2, 3])
    put(cache, [5, 6, 7])
    pinned = cache.lookup(SPACE, [5, 6, 7, 8])
    now[0] = 30.0
    assert read(cache, [1, 2, 3]) == [1, 2, 3]  # used: its idle time starts again
    now[0] = 85.0
    assert cache.expire() == 0
    now[0] = 95.0
    assert read(cache, [1, 2, 3, 4]) == []  # idle for 65 s: gone
    assert cache.entries() == [[5, 6, 7]]  # idle as long, but a running request holds it
    cache.release(pinned)
    assert cache.expire() == 1 and cache.tokens == 0


def test_pinned_entries_survive_and_an_insert_keeps_only_what_fits() -> None:
    cache = PrefixCache(30)
    held = list(range(1, 21))
    put(cache, held)
    hit = cache.lookup(SPACE, held + [50])
    assert hit.tokens == 20
    source = put(cache, list(range(100, 125)))  # 25 new tokens, 10 free, nothing evictable
    assert source.asked == [(0, 10)]
    assert cache.tokens == 30 and held in cache.entries()
    cache.release(hit)
    cache.release(hit)  # idempotent
    put(cache, list(range(200, 225)))  # now the LRU entries go
    assert cache.tokens <= 30 and held not in cache.entries()


def test_a_pin_stays_balanced_when_its_node_is_split() -> None:
    cache = PrefixCache(100)
    first = [1, 2, 3, 4, 5, 6]
    put(cache, first)
    hit = cache.lookup(SPACE, first)
    put(cache, [1, 2, 3, 9, 9])  # splits the pinned node after [1, 2, 3]
    cache.clear()
    assert cache.entries() == [first]  # pinned: both halves stay
    cache.release(hit)
    cache.clear()
    assert cache.tokens == 0 and cache.entries() == []


def test_namespaces_never_share_entries() -> None:
    cache = PrefixCache(100)
    other = namespace("tiny", "tok", "chat_template", "bfloat16")
    ids = [1, 2, 3, 4]
    put(cache, ids)
    assert read(cache, ids, space=other) == []
    assert put(cache, ids, space=other).asked == [(0, 4)]
    assert cache.tokens == 8
    assert read(cache, ids, space=other) == ids


def test_a_zero_budget_stores_nothing() -> None:
    cache = PrefixCache(0)
    assert put(cache, [1, 2, 3]).asked == []
    assert cache.tokens == 0 and read(cache, [1, 2, 3]) == []


def test_the_automatic_budget_follows_the_kv_budget_else_free_memory() -> None:
    import psutil

    from chatstream.engine.prefix_cache import AUTO_MAX_TOKENS, auto_budget

    assert auto_budget(32768, "cpu", kv_cache_tokens=5000) == 5000
    free_share = int(0.25 * psutil.virtual_memory().available // 2**30)
    assert abs(auto_budget(2**30, "cpu", 0) - free_share) <= 1  # a quarter of free memory, in tokens
    assert auto_budget(1, "cpu", 0) == AUTO_MAX_TOKENS  # capped
