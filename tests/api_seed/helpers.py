"""Small helpers for talking to the seed endpoints over real HTTP."""

from __future__ import annotations

import json

import httpx

EOS = "<::EOS::>"


def last_text(body: str) -> str:
    """The final cumulative reply of a text/plain ``/chat_stream`` body."""
    chunks = [chunk for chunk in body.split(EOS) if chunk != ""]
    return chunks[-1] if chunks else ""


def sse_events(body: str) -> list[dict | str]:
    events: list[dict | str] = []
    for block in body.split("\n\n"):
        block = block.strip()
        if not block.startswith("data:"):
            continue
        data = block[5:].strip()
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def chat(client: httpx.Client, text: str | None = None, **extra) -> httpx.Response:
    body = {"user_input": text, **extra} if text is not None else extra
    return client.post("/chat_stream", json=body)
