"""Properties every manifest set must have, shared by the Helm chart and the kustomize tests."""

from __future__ import annotations

from typing import Any

from tests.deploy.chart import containers, pod_spec


def check_hardened(workload: dict[str, Any]) -> None:
    """Non-root, seccomp, no token, read-only root, no privilege escalation, no capabilities, limits."""
    spec = pod_spec(workload)
    name = workload["metadata"]["name"]
    assert spec["securityContext"]["runAsNonRoot"] is True, name
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
    assert spec["automountServiceAccountToken"] is False, name
    for container in containers(spec):
        context = container["securityContext"]
        where = f"{name}/{container['name']}"
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["capabilities"]["drop"] == ["ALL"], where
        assert container.get("resources", {}).get("limits", {}).get("memory"), where
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        if container.get("command", [""])[0] == "chatstream":
            assert "/tmp" in mounts, where  # writable scratch space next to the read-only root


def check_drain_fits(deployment: dict[str, Any], drain_timeout_sec: float) -> None:
    """terminationGracePeriodSeconds > preStop sleep + the service's drain timeout."""
    spec = pod_spec(deployment)
    command = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > int(command[1]) + drain_timeout_sec
