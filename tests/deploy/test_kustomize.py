"""Plain manifests (k8s/): `kubectl kustomize` renders them, every object is valid, and they are wired
to the service like the chart is."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatstream.cli import build_parser, settings_from_args
from chatstream.settings import Settings
from tests.deploy.chart import (
    CHART_DIR,
    KUBE_VERSIONS,
    REPO,
    containers,
    env_names,
    pod_spec,
    render,
    resolve_env,
    validate_object,
)
from tests.deploy.checks import check_drain_fits, check_hardened

K8S = REPO / "k8s"
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with built-in kustomize) is not installed")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def mock_overlay() -> list[dict[str, Any]]:
    return kustomize(K8S / "overlays" / "mock")


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(K8S / "base")


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and component in (None, o["metadata"].get("labels", {}).get("app.kubernetes.io/component"))
    ]
    assert len(found) == 1, (kind, component, len(found))
    return found[0]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("directory", ["base", "overlays/mock"])
def test_renders_valid_objects(directory: str, kube_version: str) -> None:
    objects = kustomize(K8S / directory)
    assert {"Deployment", "Service", "ConfigMap", "Job"} <= {o["kind"] for o in objects}
    for obj in objects:
        validate_object(obj, kube_version)
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "chatstream"


def test_mock_overlay_is_self_contained(mock_overlay: list[dict[str, Any]]) -> None:
    """Every ConfigMap/Secret a container reads exists in the overlay (generated names included)."""
    for obj in mock_overlay:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            check_hardened(obj)
            for container in containers(pod_spec(obj)):
                resolve_env(container, mock_overlay)


@pytest.mark.parametrize("overlay", ["base", "overlays/mock"])
def test_chatstream_variables_are_settings_fields(overlay: str) -> None:
    objects = kustomize(K8S / overlay)
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            for container in containers(pod_spec(obj)):
                for name in env_names(container, objects):
                    if name.startswith("CHATSTREAM_"):
                        assert name[len("CHATSTREAM_") :].lower() in Settings.model_fields, name


def test_mock_overlay_environment_builds_mock_settings(
    mock_overlay: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = pod_spec(one(mock_overlay, "Deployment"))["containers"][0]
    for name in list(os.environ):
        if name.startswith("CHATSTREAM_"):
            monkeypatch.delenv(name)
    for name, value in resolve_env(container, mock_overlay).items():
        monkeypatch.setenv(name, value)
    settings = settings_from_args(build_parser().parse_args([*container["command"][1:], *container["args"]]))
    assert settings.use_mock_response is True
    assert settings.mock_params["type"] == "round"
    assert settings.history == "sql" and settings.auto_migrate is False
    assert settings.database_url.startswith(
        "postgresql+asyncpg://chatstream:chatstream@chatstream-postgresql:"
    )
    service = one(mock_overlay, "Service", "database")
    assert service["metadata"]["name"] == "chatstream-postgresql"
    check_drain_fits(one(mock_overlay, "Deployment"), settings.drain_timeout_sec)


def test_base_matches_the_chart(base: list[dict[str, Any]]) -> None:
    """Same probes, port, command, hardening and drain as the chart's default release."""
    chart = render({"externalDatabase": {"url": "postgresql+asyncpg://u:p@db:5432/c"}})
    plain = pod_spec(one(base, "Deployment"))["containers"][0]
    helm_container = pod_spec(chart.one("Deployment", "server"))["containers"][0]
    for key in ("command", "args", "ports", "startupProbe", "livenessProbe", "securityContext"):
        assert plain[key] == helm_container[key], key
    assert plain["readinessProbe"]["httpGet"] == helm_container["readinessProbe"]["httpGet"]
    check_hardened(one(base, "Deployment"))
    drain = float(one(base, "ConfigMap")["data"]["CHATSTREAM_DRAIN_TIMEOUT_SEC"])
    check_drain_fits(one(base, "Deployment"), drain)
    assert (
        pod_spec(one(base, "Deployment"))["terminationGracePeriodSeconds"]
        == pod_spec(chart.one("Deployment", "server"))["terminationGracePeriodSeconds"]
    )
    helm_job = pod_spec(chart.one("Job"))
    plain_job = pod_spec(one(base, "Job"))
    assert plain_job["containers"][0]["command"] == helm_job["containers"][0]["command"]
    # The database wait is the chart's script, unchanged.
    script = (CHART_DIR / "files" / "wait_for_database.py").read_text()
    assert plain_job["initContainers"][0]["command"][:3] == ["python", "-c", script]
    assert helm_job["initContainers"][0]["command"][:3] == ["python", "-c", script]


def test_autoscaling_component_scales_the_deployment(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "base", overlay)],
                "components": [os.path.relpath(K8S / "components" / "autoscaling", overlay)],
            }
        )
    )
    objects = kustomize(overlay)
    hpa = one(objects, "HorizontalPodAutoscaler")
    validate_object(hpa, KUBE_VERSIONS[0])
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(objects, "Deployment")["metadata"]["name"]
    chart_hpa = render({"autoscaling": {"enabled": True}}).one("HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"] == chart_hpa["spec"]["metrics"]
    assert hpa["spec"]["behavior"] == chart_hpa["spec"]["behavior"]


def test_kind_cluster_config_runs_a_tested_version() -> None:
    config = yaml.safe_load((K8S / "kind" / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    versions = {node["image"].split(":v")[1] for node in config["nodes"]}
    tested_minors = {v.rsplit(".", 1)[0] for v in KUBE_VERSIONS}
    assert {v.rsplit(".", 1)[0] for v in versions} <= tested_minors, versions
    assert len(config["nodes"]) >= 2  # a deleted pod can be rescheduled elsewhere
