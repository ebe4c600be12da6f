"""helm test: stream one chat reply through the release's Service, then check /metrics.

Standard library only, so any Python 3 image runs it. Environment: SMOKE_URL (the Service),
SMOKE_TIMEOUT (seconds), SMOKE_METRICS (comma-separated names /metrics must expose),
SMOKE_API_KEYS (the release's api-keys, JSON list or comma-separated; the first one is sent).
"""

import json
import os
import re
import sys
import urllib.request

EOS = "<::EOS::>"
base = os.environ["SMOKE_URL"].rstrip("/")
timeout = float(os.environ.get("SMOKE_TIMEOUT", "120"))
headers = {"Content-Type": "application/json", "Accept": "text/plain"}
keys = os.environ.get("SMOKE_API_KEYS", "").strip()
if keys:
    first = json.loads(keys)[0] if keys.startswith("[") else keys.split(",")[0].strip()
    headers["Authorization"] = f"Bearer {first}"


def fail(message):
    sys.exit(f"FAIL: {message}")


request = urllib.request.Request(
    f"{base}/chat_stream",
    data=json.dumps({"user_input": "Hello from helm test"}).encode(),
    headers=headers,
    method="POST",
)
reads, body = 0, b""
with urllib.request.urlopen(request, timeout=timeout) as response:
    if response.status != 200:
        fail(f"POST /chat_stream answered {response.status}")
    content_type = response.headers.get("Content-Type", "")
    if not content_type.startswith("text/plain"):
        fail(f"POST /chat_stream content type {content_type!r}, expected text/plain")
    while chunk := response.read1(65536):
        reads += 1
        body += chunk
text = body.decode("utf-8", errors="replace")
if EOS not in text or not text.replace(EOS, "").strip():
    fail(f"no streamed reply ending with {EOS}: {text[:300]!r}")
print(f"streamed {len(body)} bytes in {reads} reads: {text.split(EOS)[-2][-80:]!r}")

with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
    exposition = response.read().decode()
names = [name.strip() for name in os.environ.get("SMOKE_METRICS", "").split(",") if name.strip()]
missing = [name for name in names if not re.search(rf"^{re.escape(name)}[{{ ]", exposition, re.M)]
if missing:
    fail(f"/metrics lacks {missing}")
print(f"/metrics exposes {names}")
print("PASS")
