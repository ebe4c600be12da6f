"""The chart against the code it deploys: every name it uses is derived from the service, not a list.

- every CHATSTREAM_* variable is a field of ``chatstream.settings.Settings`` and parses into the value
  the chart was given; every settings field is either a ``config`` key of the schema or set by the chart;
- the commands and flags are ones ``chatstream``'s CLI accepts;
- probe, metrics and Service paths/ports exist in ``create_app()``;
- the autoscaling metric names are exported by a running server's /metrics;
- dashboards and rules land in their objects unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from chatstream.app import create_app
from chatstream.cli import build_parser, settings_from_args
from chatstream.settings import Settings
from tests.deploy.chart import (
    CHART_DIR,
    REPO,
    SCENARIOS,
    containers,
    env_names,
    pod_spec,
    render,
    resolve_env,
    scenario_values,
    server_container,
    workloads,
)

SCENARIO_NAMES = list(SCENARIOS)
PREFIX = "CHATSTREAM_"
FIELDS = set(Settings.model_fields)
SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
CONFIG_SCHEMA = SCHEMA["properties"]["config"]["properties"]


def settings_field(env_name: str) -> str:
    assert env_name.startswith(PREFIX), env_name
    return env_name[len(PREFIX) :].lower()


def cli_flags(args: list[str]) -> list[str]:
    return [arg[2:].split("=")[0].replace("-", "_") for arg in args if arg.startswith("--")]


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_every_chatstream_variable_is_a_settings_field(scenario: str) -> None:
    rendered = render(scenario_values(scenario))
    for workload in workloads(rendered):
        for container in containers(pod_spec(workload)):
            for name in env_names(container, rendered.objects):
                if name.startswith(PREFIX):
                    assert settings_field(name) in FIELDS, f"{workload['metadata']['name']}: {name}"


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_environment_parses_into_the_configured_settings(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the pod would get (ConfigMap + Secrets + args) builds Settings holding the chart's values."""
    values = scenario_values(scenario)
    rendered = render(values)
    container = server_container(rendered)
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in resolve_env(container, rendered.objects, external_secrets=True).items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args([*container["command"][1:], *container["args"]])
    assert args.command == "serve"
    settings = settings_from_args(args)
    assert settings.host == "0.0.0.0"
    assert settings.port == container["ports"][0]["containerPort"]
    with helm.Chart.load(CHART_DIR) as chart:
        config = chart.merge_values(values)["config"]
    for key, value in config.items():
        if value is not None:
            assert getattr(settings, key) == value, key
    configmap = rendered.one("ConfigMap", "server")["data"]
    assert settings.history == configmap["CHATSTREAM_HISTORY"]
    if values.get("secrets", {}).get("apiKeys"):
        assert settings.api_keys == values["secrets"]["apiKeys"]


def test_every_settings_field_is_configurable_or_set_by_the_chart() -> None:
    """No setting is out of reach: a new Settings field fails here until the schema exposes it."""
    chart_set: set[str] = set()
    for scenario in SCENARIO_NAMES:
        rendered = render(scenario_values(scenario))
        container = server_container(rendered)
        chart_set |= {settings_field(e["name"]) for e in container["env"] if e["name"].startswith(PREFIX)}
        chart_set |= set(cli_flags(container["args"]))
        # Settings the ConfigMap derives from other values (auto_migrate from migrations.enabled).
        configmap = rendered.one("ConfigMap", "server")["data"]
        chart_set |= {settings_field(key) for key in configmap} - set(CONFIG_SCHEMA)
    assert set(CONFIG_SCHEMA) <= FIELDS, set(CONFIG_SCHEMA) - FIELDS
    assert not set(CONFIG_SCHEMA) & chart_set, "a setting the chart sets must not be a config key too"
    missing = FIELDS - set(CONFIG_SCHEMA) - chart_set
    assert not missing, f"add these Settings fields to values.schema.json's config: {sorted(missing)}"
    assert FIELDS - set(CONFIG_SCHEMA) == chart_set


def test_config_schema_matches_the_settings_types() -> None:
    """Types, enums and bounds of values.schema.json's config equal the pydantic ones."""
    pydantic_schema = Settings.model_json_schema()["properties"]
    for name, chart in CONFIG_SCHEMA.items():
        variants = pydantic_schema[name].get("anyOf") or [pydantic_schema[name]]
        chart_types = set(chart["type"]) if isinstance(chart["type"], list) else {chart["type"]}
        for variant in variants:
            assert variant["type"] in chart_types, (name, variant)
            if variant["type"] == "null":
                continue
            for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                assert chart.get(bound) == variant.get(bound), (name, bound)
            if "enum" in variant:
                assert [v for v in chart["enum"] if v is not None] == variant["enum"], name


def test_probe_and_metrics_paths_exist_in_the_app() -> None:
    app = create_app(Settings(use_mock_response=True, history="memory"))
    routes = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    for scenario in SCENARIO_NAMES:
        rendered = render(scenario_values(scenario))
        container = server_container(rendered)
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        args = container["args"]
        assert int(args[args.index("--port") + 1]) == port_names["http"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            http_get = container[probe]["httpGet"]
            assert ("GET", http_get["path"]) in routes, (probe, http_get)
            assert http_get["port"] in port_names
        service = rendered.one("Service", "server")
        assert service["spec"]["ports"][0]["targetPort"] in port_names
        for monitor in rendered.of_kind("ServiceMonitor"):
            (endpoint,) = monitor["spec"]["endpoints"]
            assert endpoint["port"] == service["spec"]["ports"][0]["name"]
            assert ("GET", endpoint["path"]) in routes
            assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert ("POST", "/chat_stream") in routes  # what the helm test pod streams from


def test_commands_are_chatstream_subcommands() -> None:
    parser = build_parser()
    rendered = render(scenario_values("mock"))
    job = rendered.one("Job", "migration")
    (migrate,) = pod_spec(job)["containers"]
    assert migrate["command"][0] == "chatstream"
    assert parser.parse_args(migrate["command"][1:]).command == "migrate"
    server = server_container(rendered)
    assert server["command"] == ["chatstream"]
    assert parser.parse_args(server["args"]).command == "serve"


@pytest.fixture(scope="module")
def exported_metrics() -> set[str]:
    """Names a real mock server exports on /metrics (family and sample names)."""
    from tests.fixtures.server import run_server

    with run_server("--mock", "--history", "memory") as server:
        # One request so that lazily created series exist too.
        httpx.post(server.url + "/chat_stream", json={"user_input": "hi"}, timeout=30).raise_for_status()
        text = httpx.get(server.url + "/metrics", timeout=10).text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def test_autoscaling_metrics_are_exported_by_the_service(exported_metrics: set[str]) -> None:
    hpa = render(scenario_values("gpu")).one("HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] in exported_metrics
    trigger = render(scenario_values("keda")).one("ScaledObject")["spec"]["triggers"][0]
    queried = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", trigger["metadata"]["query"]))
    assert queried and queried <= exported_metrics, queried - exported_metrics
    test_pod = render(scenario_values("mock")).one("Pod", "test")
    smoke = next(e["value"] for e in test_pod["spec"]["containers"][0]["env"] if e["name"] == "SMOKE_METRICS")
    assert set(smoke.split(",")) <= exported_metrics


def test_prometheus_adapter_rules_serve_the_hpa_metric() -> None:
    """The chart sends HPA users to k8s/prometheus-adapter/values.yaml: it must map the metric per pod."""
    path = REPO / "k8s" / "prometheus-adapter" / "values.yaml"
    assert path.exists(), f"{path} is missing (the HPA needs its rules)"
    metric = render(scenario_values("gpu")).one("HorizontalPodAutoscaler")["spec"]["metrics"][0]
    name = metric["pods"]["metric"]["name"]
    rules = yaml.safe_load(path.read_text())["rules"]["custom"]
    matching = [r for r in rules if r.get("name", {}).get("as") == name or f'"{name}"' in r["seriesQuery"]]
    assert matching, f"no prometheus-adapter rule serves {name}"
    overrides = matching[0]["resources"]["overrides"]
    assert {v["resource"] for v in overrides.values()} >= {"namespace", "pod"}


def chart_copy(tmp_path: Path) -> Path:
    target = tmp_path / "helm"
    shutil.copytree(CHART_DIR, target)
    return target


SYNTHETIC_DASHBOARD = (
    '{\r\n  "title": "Synthetic — ünïcode ✓ \\u2028",\n\t"panels": [{"expr": "sum(rate(x[5m])) by (pod)",'
    ' "legend": "{{pod}} ${DS_PROMETHEUS} <&>"}],\n  "quote": "it\'s \\"quoted\\""\n}'
)


def dashboard_configmaps(rendered: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for config_map in rendered.of_kind("ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            found.update(config_map["data"])
    return found


def test_dashboard_configmap_holds_the_file_byte_for_byte(tmp_path: Path) -> None:
    chart = chart_copy(tmp_path)
    (chart / "dashboards").mkdir(exist_ok=True)
    (chart / "dashboards" / "zz_synthetic.json").write_bytes(SYNTHETIC_DASHBOARD.encode())
    rendered = render({"metrics": {"grafanaDashboard": {"enabled": True}}}, chart_dir=chart)
    assert dashboard_configmaps(rendered)["zz_synthetic.json"] == SYNTHETIC_DASHBOARD
    assert dashboard_configmaps(render(chart_dir=chart)) == {}  # off by default


@pytest.mark.parametrize("path", sorted((CHART_DIR / "dashboards").glob("*.json")), ids=lambda p: p.name)
def test_shipped_dashboards_are_in_configmaps(path: Path) -> None:
    rendered = render(scenario_values("gpu"))
    assert dashboard_configmaps(rendered)[path.name] == path.read_bytes().decode("utf-8")
    json.loads(path.read_bytes())


SYNTHETIC_RULES = """groups:
  - name: synthetic
    rules:
      - alert: SyntheticQueueBacklog
        expr: sum(chatstream_queue_depth) by (pod) > 3
        for: 5m
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.pod }} has {{ $value }} waiting"
      - record: synthetic:queue_depth:sum
        expr: sum(chatstream_queue_depth)
"""


def test_prometheus_rule_holds_the_rule_files(tmp_path: Path) -> None:
    chart = chart_copy(tmp_path)
    (chart / "rules").mkdir(exist_ok=True)
    (chart / "rules" / "zz_synthetic.yaml").write_text(SYNTHETIC_RULES)
    rendered = render({"metrics": {"prometheusRule": {"enabled": True}}}, chart_dir=chart)
    groups = rendered.one("PrometheusRule")["spec"]["groups"]
    expected = [
        group
        for path in sorted((chart / "rules").glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    assert groups == expected
    assert groups[-1]["rules"][0]["annotations"]["summary"] == "{{ $labels.pod }} has {{ $value }} waiting"


def test_shipped_rules_are_in_the_prometheus_rule() -> None:
    files = sorted((CHART_DIR / "rules").glob("*.yaml"))
    rendered = render(scenario_values("gpu"))
    expected = [group for path in files for group in yaml.safe_load(path.read_text())["groups"]]
    rules = rendered.of_kind("PrometheusRule")
    assert [g for r in rules for g in r["spec"]["groups"]] == expected


def test_a_pod_over_several_gpus_spreads_one_model_over_them() -> None:
    """gpu.count > 1: the pod requests that many GPUs and the service spreads the model over them."""
    rendered = render(scenario_values("multi-gpu"))
    container = server_container(rendered)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    config = rendered.one("ConfigMap", "server")["data"]
    assert (config["CHATSTREAM_NUM_GPUS"], config["CHATSTREAM_MAX_GPU_MEMORY"]) == ("4", "70GiB")
    settings = Settings(
        num_gpus=config["CHATSTREAM_NUM_GPUS"], max_gpu_memory=config["CHATSTREAM_MAX_GPU_MEMORY"]
    )
    assert (settings.num_gpus, settings.max_gpu_memory) == (4, "70GiB")
    single = render(scenario_values("gpu")).one("ConfigMap", "server")["data"]
    assert "CHATSTREAM_NUM_GPUS" not in single
