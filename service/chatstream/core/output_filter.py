"""The prompt class's output replacements (e.g. ``<NL>`` → newline), applied to a token stream."""

from __future__ import annotations

from ..engine.text import partial_suffix_len


class OutputFilter:
    """Applies the prompt class's output replacements to text that arrives a token at a time.

    Text that may be the start of a replacement key is held back until the next token decides it,
    so a key split across two tokens is still replaced and never shown half-done.
    """

    def __init__(self, replacements: list[tuple[str, str]] | None) -> None:
        self.replacements = replacements or []
        self.keys = [old for old, _ in self.replacements]
        self.raw = ""
        self.shown = ""

    def render(self, raw: str) -> str:
        for old, new in self.replacements:
            raw = raw.replace(old, new)
        return raw.lstrip()

    def feed(self, text: str) -> str:
        """Take new raw text; return the display text that became certain (may be empty)."""
        self.raw += text
        hold = partial_suffix_len(self.raw, self.keys)
        return self.advance(self.render(self.raw[: len(self.raw) - hold]))

    def flush(self) -> str:
        """The stream ended: whatever was held back is final now."""
        return self.advance(self.render(self.raw))

    def advance(self, display: str) -> str:
        if not display.startswith(self.shown):
            # A replacement changed already-shown text (should not happen with held keys): show the rest.
            delta = display[len(self.shown) :] if len(display) > len(self.shown) else ""
        else:
            delta = display[len(self.shown) :]
        self.shown = display
        return delta
