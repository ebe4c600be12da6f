"""Text helpers shared by engines and the facade: hold back what may become a stop string."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def partial_suffix_len(text: str, patterns: Iterable[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``patterns``.

    That many trailing characters must not be shown yet: the next token may complete a stop string
    (or an output replacement such as ``<NL>``) out of them.
    """
    best = 0
    for pattern in patterns:
        if not pattern:
            continue
        upto = min(len(pattern) - 1, len(text))
        for size in range(upto, best, -1):
            if text.endswith(pattern[:size]):
                best = size
                break
    return best


def find_stop(text: str, stops: Iterable[str], start: int = 0) -> int:
    """Index of the earliest stop string found at or after ``start`` (-1 when none is there)."""
    found = -1
    for stop in stops:
        if not stop:
            continue
        index = text.find(stop, max(0, start - len(stop) + 1))
        if index != -1 and (found == -1 or index < found):
            found = index
    return found


def special_token_ids(tokenizer: Any, stops: Iterable[str]) -> list[int]:
    """Ids of the stop strings that are single special tokens (``</s>``, ``<|im_end|>``, ``### End``).

    The detokenizer skips special tokens, so such a stop never shows up as text: the engine stops on
    its id instead.
    """
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    special |= {
        t.content for t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values() if t.special
    }
    ids = []
    for stop in stops:
        if stop in special:
            token_id = tokenizer.convert_tokens_to_ids(stop)
            if isinstance(token_id, int) and token_id >= 0:
                ids.append(token_id)
    return ids
