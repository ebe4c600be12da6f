"""Debian's nginx, started by the test in the foreground, as the load balancer in front of the replicas.

Everything it writes (pid, logs, temp files) stays in the test's directory and it listens on a free
loopback port. The upstream hashes consistently on the same nginx expression the chart gives
ingress-nginx (``nginx.ingress.kubernetes.io/upstream-hash-by``), marks a replica that refuses
connections as failed and passes the request to the next one on the ring, and names the replica that
answered in a response header, so the test sees where every turn went.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = Path("/usr/sbin/nginx")
# nginx's $upstream_addr: the replica that answered, after any it tried first ("a:1, b:2").
UPSTREAM_HEADER = "X-ChatStream-Upstream"


def nginx_binary() -> str:
    found = str(NGINX) if NGINX.exists() else shutil.which("nginx")
    if found is None:
        pytest.skip("nginx is not installed: apt-get install nginx")
    return found


def nginx_config(root: Path, port: int, upstreams: list[int], hash_key: str) -> str:
    """A foreground nginx with one consistently hashed upstream; every path under ``root``."""
    # Run as root (CI containers), the master switches its workers to `user`: keep them as root so they
    # can use the temp directories under the test's private directory.
    user = f"user {pwd.getpwuid(0).pw_name};\n" if os.geteuid() == 0 else ""
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in upstreams)
    temp = "\n".join(
        f"  {kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;
events {{ worker_connections 512; }}
http {{
  log_format affinity '$time_iso8601 $status "$request" conversation=$http_x_chatstream_conversation_id '
                      'upstream=$upstream_addr upstream_status=$upstream_status';
  access_log {root / "access.log"} affinity;
{temp}
  upstream chatstream {{
    hash {hash_key} consistent;
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://chatstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      # Streams pass through as they are written, as ingress-nginx does with proxy-buffering "off".
      proxy_buffering off;
      proxy_connect_timeout 2s;
      proxy_read_timeout 60s;
      # A replica that refuses the connection (killed) is marked failed and the request goes to the
      # next one on the ring; nginx never resends a request a replica has already received.
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 2;
      add_header {UPSTREAM_HEADER} $upstream_addr always;
    }}
  }}
}}
"""


@dataclass
class Nginx:
    url: str
    port: int
    root: Path
    process: subprocess.Popen

    def log(self) -> str:
        """The error and access logs (for failure messages)."""
        parts = []
        for name in ("error.log", "access.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- nginx {name}\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def run_nginx(root: Path, upstreams: list[int], hash_key: str, timeout: float = 15) -> Iterator[Nginx]:
    """nginx in front of ``upstreams`` (loopback ports) until the block ends."""
    binary = nginx_binary()
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "nginx.conf"
    config.write_text(nginx_config(root, port, upstreams, hash_key))
    command = [binary, "-p", str(root), "-c", str(config), "-e", str(root / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=timeout)
    assert checked.returncode == 0, f"nginx refuses the configuration:\n{checked.stderr}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = Nginx(f"http://127.0.0.1:{port}", port, root, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"nginx exited with {process.returncode}\n{proxy.log()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert time.monotonic() < deadline, f"nginx not listening after {timeout}s\n{proxy.log()}"
            time.sleep(0.05)
        yield proxy
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
