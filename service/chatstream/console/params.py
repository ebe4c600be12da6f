"""``/params name=value ...``: the console's parameter syntax."""

from __future__ import annotations

from typing import Any

from .local import ConsoleError


def parse_params(text: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``temperature=0.7 top_k=40`` → ``{"temperature": 0.7, "top_k": 40}``; ``none`` unsets."""
    values: dict[str, Any] = {}
    for item in text.split():
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not raw:
            raise ConsoleError(f"write parameters as name=value, e.g. temperature=0.7 (got {item!r})")
        if name not in allowed:
            raise ConsoleError(f"unknown parameter {name!r}; known: {', '.join(allowed)}")
        values[name] = parse_value(raw)
    return values


def parse_value(raw: str) -> Any:
    if raw.lower() in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    raise ConsoleError(f"not a number: {raw!r}")


def format_params(params: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in params.items()) or "(none)"
