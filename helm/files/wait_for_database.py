"""Wait until the host of CHATSTREAM_DATABASE_URL accepts TCP connections (argv[1]: seconds)."""

import os
import socket
import sys
import time
import urllib.parse

url = urllib.parse.urlsplit(os.environ["CHATSTREAM_DATABASE_URL"])
if not url.hostname:
    sys.exit(0)  # a Unix socket or SQLite URL: nothing to wait for
port = url.port or 5432
deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 300)
while True:
    try:
        socket.create_connection((url.hostname, port), timeout=3).close()
        print(f"database {url.hostname}:{port} accepts connections", flush=True)
        break
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"database {url.hostname}:{port} still unreachable: {exc}")
        print(f"waiting for database {url.hostname}:{port}: {exc}", flush=True)
        time.sleep(2)
