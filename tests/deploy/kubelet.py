"""Run rendered containers as local processes, the way the kubelet would run them in a pod.

The command, args and environment come from the manifests unchanged, with only the stand-ins a pod
gets from its node: the image's ENV (read from the Dockerfile) under the pod's env, each volume mount
as a local directory, the image's WORKDIR as a directory laid out by the Dockerfile's COPY lines,
loopback plus a free port instead of the pod's own network namespace, and a local address for a
cluster DNS name. Probes follow the kubelet's rules (period, timeout, thresholds).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.chart import REPO
from tests.deploy.dockerfile import copies, image_env


def executable(name: str) -> str:
    """The local stand-in for a binary of the image: this interpreter for python, the venv's scripts."""
    if name in ("python", "python3"):
        return sys.executable
    candidate = Path(sysconfig.get_path("scripts")) / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} is not installed here (pip install -e .)"
    return found


@dataclass
class LocalPod:
    """Directories standing in for a pod's volumes and the image's working directory."""

    root: Path
    volume_mounts: dict[str, Path]
    workdir: Path

    @classmethod
    def create(cls, root: Path, container: dict[str, Any]) -> LocalPod:
        mounts = {}
        for mount in container.get("volumeMounts", []):
            if mount["mountPath"] == "/dev/shm":
                continue  # the host's shared memory serves
            local = root / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = local
        app = root / "image-workdir"
        app.mkdir(parents=True, exist_ok=True)
        for source, destination in copies("runtime"):
            into_directory = destination.endswith("/") or destination == "."
            target = app / (Path(source).name if into_directory else destination)
            if not target.exists():
                target.symlink_to(REPO / source)
        return cls(root, mounts, app)

    def local_path(self, value: str) -> str:
        """Rewrite a path inside a volume mount to its local directory."""
        for mount_path, local in sorted(self.volume_mounts.items(), key=lambda item: -len(item[0])):
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(local) + value[len(mount_path) :]
        return value


def container_environment(
    pod: LocalPod, pod_env: dict[str, str], replace: Callable[[str, str], str] | None = None
) -> dict[str, str]:
    """Image ENV, then the pod's env on top (as in a container), paths mapped to local volumes."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **image_env("runtime"), **pod_env}
    env = {name: pod.local_path(value) for name, value in env.items()}
    if replace is not None:
        env = {name: replace(name, value) for name, value in env.items()}
    # The image's /opt/venv is this interpreter's environment; nothing else of the host leaks in.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    return env


def local_argv(container: dict[str, Any], port: int) -> list[str]:
    """command + args, with the pod's listen address swapped for loopback and a free port."""
    argv = [*container.get("command", []), *container.get("args", [])]
    argv[0] = executable(argv[0])
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
    return argv


def start(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def run_to_completion(
    argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout: float
) -> None:
    """A Job container: it must exit 0 (restartPolicy Never, so the first failure counts)."""
    process = start(argv, env, cwd, log_path)
    try:
        code = process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert code == 0, f"{argv[:3]} exited {code}:\n{log_path.read_text(errors='replace')[-4000:]}"


def probe_once(probe: dict[str, Any], port: int) -> bool:
    """An httpGet probe: success is a status from 200 to 399 within timeoutSeconds."""
    http_get = probe["httpGet"]
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}{http_get['path']}", timeout=probe.get("timeoutSeconds", 1)
        )
    except httpx.HTTPError:
        return False
    return 200 <= response.status_code < 400


def wait_for_probe(
    probe: dict[str, Any], port: int, process: subprocess.Popen, log_path: Path, what: str
) -> float:
    """Probe like the kubelet until successThreshold successes; fail after failureThreshold failures.

    Returns the seconds it took.
    """
    started = time.monotonic()
    time.sleep(probe.get("initialDelaySeconds", 0))
    period = probe.get("periodSeconds", 10)
    failures = successes = 0
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"container exited {process.returncode} during the {what} probe:\n"
                f"{log_path.read_text(errors='replace')[-4000:]}"
            )
        if probe_once(probe, port):
            successes += 1
            if successes >= probe.get("successThreshold", 1):
                return time.monotonic() - started
        else:
            successes = 0
            failures += 1
            if failures >= probe.get("failureThreshold", 3):
                raise AssertionError(
                    f"{what} probe failed {failures} times (the kubelet would "
                    f"{'restart' if what != 'readiness' else 'not route to'} the container):\n"
                    f"{log_path.read_text(errors='replace')[-4000:]}"
                )
        time.sleep(period)


def terminate(
    process: subprocess.Popen,
    spec: dict[str, Any],
    env: dict[str, str],
    cwd: Path,
    before_sigterm: Callable[[], None] | None = None,
) -> int:
    """Pod deletion: the preStop exec hook, then SIGTERM, then SIGKILL at terminationGracePeriodSeconds.

    ``before_sigterm`` runs between the two (e.g. to have a stream running when SIGTERM lands).
    Returns the exit code; asserts the container stopped by itself within the grace period.
    """
    grace = spec.get("terminationGracePeriodSeconds", 30)
    started = time.monotonic()
    container = spec["containers"][0]
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if pre_stop:
        subprocess.run([executable(pre_stop[0]), *pre_stop[1:]], env=env, cwd=cwd, timeout=grace, check=True)
    if before_sigterm is not None:
        before_sigterm()
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(max(grace - (time.monotonic() - started), 1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        raise AssertionError(f"the container outlived terminationGracePeriodSeconds={grace}") from None
