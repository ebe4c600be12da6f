"""Render the Helm chart with Helm's own engine (helm-python-sdk) and validate what comes out.

``Chart.render`` of the SDK does not expose the kube version, but the C ABI under it does (the same
options struct as ``helm template --kube-version``), so :func:`render` passes it directly.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from helm_python import _native

from tests.deploy.crd_schemas import CRD_SCHEMAS

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm"
HERE = Path(__file__).resolve().parent
KUBE_VERSIONS = ("1.29.0", "1.32.0")
RELEASE = "chatstream"
NAMESPACE = "chatstream"

# Values files per scenario, merged in order like `helm -f a.yaml -f b.yaml`.
SCENARIOS: dict[str, tuple[Path, ...]] = {
    "default": (),
    "mock": (CHART_DIR / "values-mock.yaml",),
    "gpu": (CHART_DIR / "values-gpu.yaml",),
    "keda": (HERE / "values" / "keda.yaml",),
    "external-database": (HERE / "values" / "external-database.yaml",),
    "conversation-affinity": (HERE / "values" / "conversation-affinity.yaml",),
    "multi-gpu": (HERE / "values" / "multi-gpu.yaml",),
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (maps merge, everything else is replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_values(*files: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        values = merge(values, yaml.safe_load(path.read_text()) or {})
    return merge(values, overrides or {})


def scenario_values(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return load_values(*SCENARIOS[name], overrides=overrides)


@dataclass
class Rendered:
    """The output of one render: parsed objects (with their template) and NOTES.txt."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = [
            obj
            for obj in self.of_kind(kind)
            if component is None
            or obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} (component={component}), got {len(found)}"
        return found[0]

    def hooks(self) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if "helm.sh/hook" in annotations(obj)]


def render(
    values: dict[str, Any] | None = None,
    *,
    kube_version: str = KUBE_VERSIONS[-1],
    chart_dir: Path = CHART_DIR,
    is_upgrade: bool = False,
) -> Rendered:
    """Render like ``helm template chatstream ./helm -n chatstream --kube-version X`` (schema checked)."""
    options = {
        "name": RELEASE,
        "namespace": NAMESPACE,
        "kube_version": f"v{kube_version}",
        "is_install": not is_upgrade,
        "is_upgrade": is_upgrade,
    }
    with helm.Chart.load(chart_dir) as chart:
        manifests: dict[str, str] = json.loads(
            _native.call_string("helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options))
        )
    rendered = Rendered(templates=manifests)
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            rendered.notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document:
                rendered.objects.append(document)
    return rendered


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def validate_object(obj: dict[str, Any], kube_version: str) -> None:
    """Strict schema check: Kubernetes' own schemas, or the CRD shapes in crd_schemas.py."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.Draft202012Validator(CRD_SCHEMAS[key]).validate(obj)
        behavior = (
            obj.get("spec", {}).get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        )
        if behavior is not None:  # KEDA passes it to the HPA it creates: check it as one.
            kubernetes_validate.validate(hpa_with_behavior(behavior), kube_version, strict=True)
        return
    kubernetes_validate.validate(obj, kube_version, strict=True)


def hpa_with_behavior(behavior: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "behavior-check"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "maxReplicas": 2,
            "behavior": behavior,
        },
    }


# --- pods and containers -------------------------------------------------------------------------


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, Deployment, StatefulSet or Job."""
    if obj["kind"] == "Pod":
        return obj["spec"]
    return obj["spec"]["template"]["spec"]


def workloads(rendered: Rendered) -> Iterator[dict[str, Any]]:
    for obj in rendered.objects:
        if obj["kind"] in ("Pod", "Deployment", "StatefulSet", "Job"):
            yield obj


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def server_container(rendered: Rendered) -> dict[str, Any]:
    return pod_spec(rendered.one("Deployment", "server"))["containers"][0]


def decode_secret(secret: dict[str, Any]) -> dict[str, str]:
    data = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    return {**data, **(secret.get("stringData") or {})}


def env_names(container: dict[str, Any], objects: Iterable[dict[str, Any]]) -> set[str]:
    """Every environment variable name the container gets, ConfigMap keys from envFrom included."""
    objects = list(objects)
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            config_map = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref)
            names |= set(config_map.get("data", {}))
        else:
            raise AssertionError(f"unexpected envFrom source {source}")
    return names


def resolve_env(
    container: dict[str, Any], objects: Iterable[dict[str, Any]], *, external_secrets: bool = False
) -> dict[str, str]:
    """The container's environment as the kubelet builds it from rendered ConfigMaps and Secrets.

    ``external_secrets``: leave out variables from Secrets the manifests do not create (existingSecret).
    """
    objects = list(objects)

    def find(kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = find("ConfigMap", source["configMapRef"]["name"])
        assert config_map is not None, f"envFrom names a ConfigMap the manifests lack: {source}"
        env.update(config_map.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            key_ref = ref["secretKeyRef"]
            secret = find("Secret", key_ref["name"])
            if secret is None and external_secrets:
                continue
            data = decode_secret(secret) if secret else {}
        elif "configMapKeyRef" in ref:
            key_ref = ref["configMapKeyRef"]
            config_map = find("ConfigMap", key_ref["name"])
            data = (config_map or {}).get("data", {})
        else:
            raise AssertionError(f"unsupported env source {item}")
        if key_ref["key"] in data:
            env[item["name"]] = data[key_ref["key"]]
        elif not key_ref.get("optional"):
            raise AssertionError(f"{item['name']}: {key_ref} is not in the manifests")
    return env
