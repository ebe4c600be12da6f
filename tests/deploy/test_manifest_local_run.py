"""The mock release, run from its rendered manifests as local processes against a real PostgreSQL.

Render the chart with values-mock.yaml, then do what Helm and the kubelet would: run the migration
Job's containers in hook order, start the Deployment's container with its command, args and
environment (ConfigMap + Secrets), wait on the startup and readiness probes, stream a chat through the
container port, scrape /metrics, run the `helm test` pod's command, delete the pod (preStop, SIGTERM,
grace period) and check that a new pod continues the conversation from the database. See kubelet.py
for the local stand-ins (network, volumes, DNS).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.chart import (
    REPO,
    Rendered,
    annotations,
    pod_spec,
    render,
    resolve_env,
    scenario_values,
)
from tests.deploy.kubelet import (
    LocalPod,
    container_environment,
    local_argv,
    probe_once,
    run_to_completion,
    start,
    terminate,
    wait_for_probe,
)
from tests.fixtures.server import free_port

pytestmark = pytest.mark.slow
EOS = "<::EOS::>"
USER_INPUT = "Hello from the rendered manifests"


def local_database_url(rendered_url: str, local_url: str) -> str:
    """The rendered URL (driver, scheme) pointed at the throwaway server: the cluster DNS stand-in."""
    rendered, local = urllib.parse.urlsplit(rendered_url), urllib.parse.urlsplit(local_url)
    assert rendered.scheme == "postgresql+asyncpg", rendered_url
    return urllib.parse.urlunsplit((rendered.scheme, local.netloc, local.path, local.query, ""))


def schema_revision(url: str) -> str:
    async def query() -> str:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            return await connection.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await connection.close()

    return asyncio.run(query())


class ManifestRun:
    """One rendered release and the local processes started from it."""

    def __init__(self, rendered: Rendered, database_url: str, root: Path) -> None:
        self.rendered = rendered
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.spec = pod_spec(rendered.one("Deployment", "server"))
        self.server = self.spec["containers"][0]
        rendered_url = resolve_env(self.server, rendered.objects)["CHATSTREAM_DATABASE_URL"]
        self.database_url = local_database_url(rendered_url, database_url)

    def replace(self, name: str, value: str) -> str:
        return self.database_url if name == "CHATSTREAM_DATABASE_URL" else value

    def run_job(self, job: dict[str, Any]) -> None:
        """Init containers in order, then the container; each must succeed."""
        spec = pod_spec(job)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            pod = LocalPod.create(self.root / job["metadata"]["name"] / container["name"], container)
            env = container_environment(pod, resolve_env(container, self.rendered.objects), self.replace)
            log = self.logs / f"{job['metadata']['name']}-{container['name']}.log"
            run_to_completion(
                local_argv(container, 0), env, pod.workdir, log, timeout=job["spec"]["activeDeadlineSeconds"]
            )

    def start_server(self, name: str) -> tuple[Any, int, dict[str, str], Path, Path]:
        pod = LocalPod.create(self.root / name, self.server)
        env = container_environment(pod, resolve_env(self.server, self.rendered.objects), self.replace)
        port = free_port()
        log = self.logs / f"{name}.log"
        process = start(local_argv(self.server, port), env, pod.workdir, log)
        return process, port, env, pod.workdir, log


def stream_chat(client: httpx.Client, text: str, first_chunk: threading.Event | None = None) -> list[str]:
    chunks: list[str] = []
    with client.stream("POST", "/chat_stream", json={"user_input": text}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/plain")
        for chunk in response.iter_text():
            chunks.append(chunk)
            if first_chunk is not None:
                first_chunk.set()
    return chunks


def test_mock_release_runs_from_its_manifests(pg_database_url: str, tmp_path: Path) -> None:
    values = scenario_values("mock")
    rendered = render(values)
    run = ManifestRun(rendered, pg_database_url, tmp_path)
    job = rendered.one("Job", "migration")
    hooks = annotations(job)["helm.sh/hook"].split(",")
    assert "post-install" in hooks or "pre-install" in hooks

    if "pre-install" in hooks:  # Helm: pre-install hooks, then the release's objects
        run.run_job(job)
    process, port, env, workdir, log = run.start_server("server-a")
    try:
        wait_for_probe(run.server["startupProbe"], port, process, log, "startup")
        if "post-install" in hooks:  # Helm: the objects exist, then post-install hooks
            run.run_job(job)
        wait_for_probe(run.server["readinessProbe"], port, process, log, "readiness")
        assert probe_once(run.server["livenessProbe"], port)

        head = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini"))).get_current_head()
        assert schema_revision(run.database_url) == head

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            chunks = stream_chat(client, USER_INPUT)
            text = "".join(chunks)
            assert text.endswith(EOS) and text.replace(EOS, "").strip(), text
            assert len(chunks) > 1, "the reply came in one piece, not streamed"
            cookies = dict(client.cookies)
            exposition = client.get("/metrics").text
        exported = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}
        hpa_metric = render(scenario_values("mock", {"autoscaling": {"enabled": True}})).one(
            "HorizontalPodAutoscaler"
        )["spec"]["metrics"][0]["pods"]["metric"]["name"]
        assert hpa_metric in exported

        # `helm test`: the test pod's own command, with the Service's DNS name pointing here.
        test_pod = rendered.one("Pod", "test")
        test_container = test_pod["spec"]["containers"][0]
        test_env = {**resolve_env(test_container, rendered.objects), "SMOKE_URL": f"http://127.0.0.1:{port}"}
        test_local = LocalPod.create(tmp_path / "test-pod", test_container)
        run_to_completion(
            local_argv(test_container, 0),
            container_environment(test_local, test_env),
            test_local.workdir,
            run.logs / "helm-test.log",
            timeout=float(test_env["SMOKE_TIMEOUT"]) + 30,
        )
        assert "PASS" in (run.logs / "helm-test.log").read_text()

        # Pod deletion while a reply streams: preStop, SIGTERM, drain, exit within the grace period.
        first_chunk = threading.Event()
        result: dict[str, list[str]] = {}

        def stream_during_shutdown() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, cookies=cookies) as client:
                result["chunks"] = stream_chat(client, "A last question before the pod goes", first_chunk)

        streamer = threading.Thread(target=stream_during_shutdown, daemon=True)

        def start_stream() -> None:  # SIGTERM lands once the reply is under way
            streamer.start()
            assert first_chunk.wait(30), "the stream did not start"

        code = terminate(process, run.spec, env, workdir, before_sigterm=start_stream)
        assert code == 0, log.read_text(errors="replace")[-4000:]
        streamer.join(30)
        assert "".join(result.get("chunks", [])).endswith(EOS), "the running stream was cut by the shutdown"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    # A replacement pod continues the conversation from the database.
    process, port, env, workdir, log = run.start_server("server-b")
    try:
        wait_for_probe(run.server["startupProbe"], port, process, log, "startup")
        wait_for_probe(run.server["readinessProbe"], port, process, log, "readiness")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, cookies=cookies) as client:
            messages = client.get("/get_prompt").json()["messages"]
        contents = [str(message.get("content", "")) for message in messages]
        assert USER_INPUT in contents, messages
        assert terminate(process, run.spec, env, workdir) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
