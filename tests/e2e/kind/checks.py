"""Checks the kind end-to-end script runs against the release (standard library only, so the CI
runner's python3 runs it without installing anything).

    python3 checks.py chat URL COOKIES TEXT     stream one reply; the cookie jar keeps the session
    python3 checks.py metrics URL NAME...       /metrics exposes every NAME and counted the chats
    python3 checks.py history URL COOKIES TEXT  the session's conversation (GET /get_prompt) holds TEXT
    python3 checks.py wait URL SECONDS          wait until GET /readyz answers 200
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import time
import urllib.error
import urllib.request

EOS = "<::EOS::>"


def opener(cookie_file: str) -> tuple[urllib.request.OpenerDirector, http.cookiejar.MozillaCookieJar]:
    jar = http.cookiejar.MozillaCookieJar(cookie_file)
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except FileNotFoundError:
        pass
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def chat(url: str, cookie_file: str, text: str) -> None:
    client, jar = opener(cookie_file)
    request = urllib.request.Request(
        f"{url}/chat_stream",
        data=json.dumps({"user_input": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    reads, body = 0, b""
    with client.open(request, timeout=60) as response:
        assert response.status == 200, response.status
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"]
        while chunk := response.read1(65536):
            reads += 1
            body += chunk
    reply = body.decode()
    assert reply.endswith(EOS) and reply.replace(EOS, "").strip(), reply[:300]
    assert reads > 1, "the reply arrived in one read: not streamed"
    jar.save(ignore_discard=True, ignore_expires=True)
    print(f"chat: {len(body)} bytes in {reads} reads")


def metrics(url: str, *names: str) -> None:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    for name in names:
        assert re.search(rf"^{re.escape(name)}[{{ ]", text, re.M), f"/metrics lacks {name}"
    counted = re.findall(r'^chatstream_requests_total\{[^}]*outcome="success"[^}]*\} ([0-9.e+]+)', text, re.M)
    assert counted and sum(float(v) for v in counted) >= 1, "no successful request counted"
    print(f"metrics: {', '.join(names)} exposed; successful requests counted")


def history(url: str, cookie_file: str, text: str) -> None:
    client, _ = opener(cookie_file)
    with client.open(f"{url}/get_prompt", timeout=30) as response:
        messages = json.loads(response.read())["messages"]
    contents = [str(message.get("content", "")) for message in messages]
    assert text in contents, messages
    print(f"history: {len(messages)} messages, the earlier turn included")


def wait(url: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{url}/readyz not ready after {seconds}s")
        time.sleep(1)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"chat": chat, "metrics": metrics, "history": history, "wait": wait}[command](*args)
