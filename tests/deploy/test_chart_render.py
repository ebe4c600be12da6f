"""The chart under Helm's engine: lint, render every scenario for two Kubernetes versions, validate every
object strictly, and check the properties a platform engineer relies on (probes, drain, security,
GPU scheduling, hooks, autoscaling)."""

from __future__ import annotations

import copy

import helm_python as helm
import kubernetes_validate
import pytest

from tests.deploy.chart import (
    CHART_DIR,
    KUBE_VERSIONS,
    SCENARIOS,
    annotations,
    containers,
    decode_secret,
    pod_spec,
    render,
    scenario_values,
    server_container,
    validate_object,
    workloads,
)
from tests.deploy.checks import check_drain_fits, check_hardened

SCENARIO_NAMES = list(SCENARIOS)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_lint_is_clean(scenario: str, kube_version: str) -> None:
    report = helm.lint(CHART_DIR, scenario_values(scenario), strict=True, kube_version=f"v{kube_version}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_every_rendered_object_is_valid(scenario: str, kube_version: str) -> None:
    rendered = render(scenario_values(scenario), kube_version=kube_version)
    assert rendered.objects
    for obj in rendered.objects:
        try:
            validate_object(obj, kube_version)
        except Exception as exc:  # name the object in the failure
            raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']}: {exc}") from exc
        assert obj["metadata"]["namespace"] == "chatstream", obj["metadata"]["name"]
        labels = obj["metadata"]["labels"]
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"):
            assert label in labels, (obj["kind"], obj["metadata"]["name"], label)


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The validator is not vacuous: a field Kubernetes does not know fails."""
    deployment = copy.deepcopy(render().one("Deployment", "server"))
    pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz", "port": 8000}
    with pytest.raises(kubernetes_validate.ValidationError, match="httpGett"):
        validate_object(deployment, KUBE_VERSIONS[0])


def test_crd_shape_rejects_an_unknown_field() -> None:
    scaled_object = copy.deepcopy(render(scenario_values("keda")).one("ScaledObject"))
    scaled_object["spec"]["triggers"][0]["metadata"]["threshold"] = 3  # KEDA wants strings
    with pytest.raises(Exception, match="not of type 'string'"):
        validate_object(scaled_object, KUBE_VERSIONS[0])
    scaled_object["spec"]["triggers"][0]["metadata"]["threshold"] = "3"
    scaled_object["spec"]["maxReplicas"] = 3
    with pytest.raises(Exception, match="maxReplicas"):
        validate_object(scaled_object, KUBE_VERSIONS[0])


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_pods_run_unprivileged_on_a_read_only_root(scenario: str) -> None:
    for workload in workloads(render(scenario_values(scenario))):
        check_hardened(workload)


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_drain_fits_in_the_grace_period(scenario: str) -> None:
    rendered = render(scenario_values(scenario))
    drain = float(rendered.one("ConfigMap", "server")["data"]["CHATSTREAM_DRAIN_TIMEOUT_SEC"])
    check_drain_fits(rendered.one("Deployment", "server"), drain)


def test_grace_period_too_short_is_refused() -> None:
    values = {"lifecycle": {"terminationGracePeriodSeconds": 40, "preStopSleepSeconds": 10}}
    with pytest.raises(helm.HelmError, match=r"terminationGracePeriodSeconds=40 must be larger than .* = 40"):
        render(values)
    ok = render({"lifecycle": {"terminationGracePeriodSeconds": 41, "preStopSleepSeconds": 10}})
    assert pod_spec(ok.one("Deployment", "server"))["terminationGracePeriodSeconds"] == 41


def test_probes_and_cache_volumes() -> None:
    rendered = render()
    container = server_container(rendered)
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    volumes = {v["name"]: v for v in pod_spec(rendered.one("Deployment", "server"))["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["dshm"] == "/dev/shm"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HOME"].startswith(mounts["model-cache"] + "/")


def test_gpu_scheduling() -> None:
    values = scenario_values("gpu")
    rendered = render(values)
    spec = pod_spec(rendered.one("Deployment", "server"))
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    limits = spec["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1 and limits["memory"] == "48Gi"
    assert rendered.one("ConfigMap", "server")["data"]["CHATSTREAM_DEVICE"] == "cuda"
    claim = rendered.one("PersistentVolumeClaim")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    # The migration Job and the test pod never ask for a GPU.
    for obj in (rendered.one("Job"), rendered.one("Pod")):
        for container in containers(pod_spec(obj)):
            assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    mig = render(scenario_values("gpu", {"gpu": {"resourceName": "nvidia.com/mig-1g.10gb", "count": 2}}))
    assert server_container(mig)["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == 2


def test_gpu_with_cpu_device_is_refused() -> None:
    with pytest.raises(helm.HelmError, match="gpu.enabled is true but config.device is cpu"):
        render(scenario_values("gpu", {"config": {"device": "cpu"}}))


def test_hpa_scales_on_queue_depth_with_slow_scale_down() -> None:
    rendered = render(scenario_values("gpu"))
    hpa = rendered.one("HorizontalPodAutoscaler")
    deployment = rendered.one("Deployment", "server")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "chatstream_queue_depth"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "4"}
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    assert rendered.of_kind("ScaledObject") == []


def test_keda_replaces_the_hpa() -> None:
    rendered = render(scenario_values("keda"))
    assert rendered.of_kind("HorizontalPodAutoscaler") == []
    scaled = rendered.one("ScaledObject")
    deployment = rendered.one("Deployment", "server")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == (
        'sum(chatstream_queue_depth{namespace="chatstream",service="chatstream"})'
    )
    assert trigger["metadata"]["threshold"] == "3"
    service = rendered.one("Service", "server")
    assert service["metadata"]["name"] == "chatstream"  # the `service` label Prometheus attaches


def test_hpa_and_keda_together_are_refused() -> None:
    with pytest.raises(helm.HelmError, match="autoscaling.enabled and keda.enabled are both true"):
        render(scenario_values("keda", {"autoscaling": {"enabled": True}}))


def test_default_release_has_no_database_and_keeps_history_in_memory() -> None:
    rendered = render()
    assert rendered.one("ConfigMap", "server")["data"]["CHATSTREAM_HISTORY"] == "memory"
    assert rendered.of_kind("Job") == [] and rendered.of_kind("StatefulSet") == []
    assert "CHATSTREAM_DATABASE_URL" not in {e["name"] for e in server_container(rendered)["env"]}
    assert "history lives in each pod's memory" in rendered.notes


def test_migration_hook_has_its_secret_before_it_runs() -> None:
    """External database by URL: the Job runs pre-install, before the chart's Secret exists, so a hook
    Secret with a lower weight carries the URL."""
    values = scenario_values("external-database")
    rendered = render(values)
    job = rendered.one("Job", "migration")
    hook_secret = rendered.one("Secret", "migration")
    assert annotations(job)["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations(hook_secret)["helm.sh/hook"] == annotations(job)["helm.sh/hook"]
    assert int(annotations(hook_secret)["helm.sh/hook-weight"]) < int(annotations(job)["helm.sh/hook-weight"])
    assert "hook-succeeded" in annotations(hook_secret)["helm.sh/hook-delete-policy"]
    for container in containers(pod_spec(job)):
        (url,) = [e for e in container["env"] if e["name"] == "CHATSTREAM_DATABASE_URL"]
        assert url["valueFrom"]["secretKeyRef"]["name"] == hook_secret["metadata"]["name"]
        assert "envFrom" not in container  # the ConfigMap does not exist yet on a first install
    url = values["externalDatabase"]["url"]
    assert decode_secret(hook_secret)["database-url"] == url
    assert decode_secret(rendered.one("Secret", "server"))["database-url"] == url
    assert rendered.one("ConfigMap", "server")["data"]["CHATSTREAM_AUTO_MIGRATE"] == "false"
    # Every hook references only hook objects or objects that exist before the release.
    regular = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects if o not in rendered.hooks()}
    for container in containers(pod_spec(job)):
        for item in container["env"]:
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ("Secret", ref["name"]) not in regular


def test_bundled_database_migrates_after_it_exists() -> None:
    rendered = render(scenario_values("mock"))
    job = rendered.one("Job", "migration")
    assert annotations(job)["helm.sh/hook"] == "post-install,pre-upgrade"
    assert [o for o in rendered.hooks() if o["kind"] == "Secret"] == []
    statefulset = rendered.one("StatefulSet", "database")
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    url = decode_secret(rendered.one("Secret", "database"))["database-url"]
    service = rendered.one("Service", "database")
    assert url.startswith("postgresql+asyncpg://chatstream:chatstream@")
    assert f"@{service['metadata']['name']}.chatstream.svc:5432/chatstream" in url
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    # The server's selector matches neither the database nor the migration and test pods.
    server_selector = rendered.one("Service", "server")["spec"]["selector"]
    for obj in (statefulset, job):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert not server_selector.items() <= labels.items()
    assert len(rendered.of_kind("NetworkPolicy")) == 2


def test_existing_secrets_are_referenced_not_created() -> None:
    rendered = render(scenario_values("gpu"))
    assert rendered.of_kind("Secret") == []
    container = server_container(rendered)
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert env["CHATSTREAM_DATABASE_URL"] == {"name": "chatstream-db", "key": "database-url"}
    assert env["CHATSTREAM_SESSION_SECRET"] == {"name": "chatstream-secrets", "key": "session-secret"}
    assert env["CHATSTREAM_API_KEYS"]["optional"] is True
    job = rendered.one("Job", "migration")
    assert annotations(job)["helm.sh/hook"] == "pre-install,pre-upgrade"


def test_api_keys_are_a_json_list_in_the_secret() -> None:
    rendered = render(scenario_values("external-database"))
    assert decode_secret(rendered.one("Secret", "server"))["api-keys"] == '["sk-test-one","sk-test-two"]'


def test_test_pod_is_a_helm_test_hook() -> None:
    rendered = render(scenario_values("mock"))
    pod = rendered.one("Pod", "test")
    assert annotations(pod)["helm.sh/hook"] == "test"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    service = rendered.one("Service", "server")
    assert env["SMOKE_URL"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_ingress_routes_to_the_service() -> None:
    rendered = render(scenario_values("external-database"))
    ingress = rendered.one("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = rendered.one("Service", "server")
    port = service["spec"]["ports"][0]["name"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": port}}
    assert ingress["spec"]["tls"][0]["secretName"] == "chat-tls"


def test_pdb_and_network_policy_select_the_server_pods() -> None:
    rendered = render(scenario_values("external-database"))
    selector = rendered.one("Deployment", "server")["spec"]["selector"]["matchLabels"]
    assert rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    policy = rendered.one("NetworkPolicy", "server")
    assert policy["spec"]["podSelector"]["matchLabels"] == selector
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_config_change_rolls_the_pods() -> None:
    before = render()
    after = render({"config": {"max_queue_size": 9}})
    key = "checksum/config"
    annotations_before = before.one("Deployment", "server")["spec"]["template"]["metadata"]["annotations"]
    annotations_after = after.one("Deployment", "server")["spec"]["template"]["metadata"]["annotations"]
    assert annotations_before[key] != annotations_after[key]
