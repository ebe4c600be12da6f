"""Static checks of the dashboard, the autoscaler configs and the rules against the metrics contract.

Whether the queries return the right numbers is test_prometheus_e2e.py's job; this file checks that
every metric they name is one the service exports, that the dashboard is portable (templated data
source, variables) and that the adapter and KEDA configs have the shape their controllers need.
"""

from __future__ import annotations

import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from chatstream.engine.base import EngineStats
from chatstream.metrics import ServiceMetrics

from .artifacts import REPO, RULES_DIR, dashboard_targets

METRIC_TOKEN = re.compile(r"\bchatstream_[a-z_]+\b")


def exported_sample_names() -> set[str]:
    metrics = ServiceMetrics(
        model_name="m",
        engine_info={},
        max_concurrency=1,
        max_queue_size=1,
        load_fn=lambda: (0, 0),
        engine_stats_fn=EngineStats,
        version="0",
    )
    body, _ = metrics.render()
    return {
        sample.name for family in text_string_to_metric_families(body.decode()) for sample in family.samples
    }


def test_every_metric_named_anywhere_is_exported(dashboard, adapter_rule, keda_scaledobject):
    exported = exported_sample_names()
    texts = {"dashboard": " ".join(expr for _, expr in dashboard_targets(dashboard))}
    texts["dashboard variables"] = " ".join(v.get("definition", "") for v in dashboard["templating"]["list"])
    texts.update({path.name: path.read_text() for path in RULES_DIR.glob("*.yaml")})
    texts["adapter"] = adapter_rule["seriesQuery"] + " " + adapter_rule["name"]["as"]
    texts["keda"] = " ".join(t["metadata"]["query"] for t in keda_scaledobject["spec"]["triggers"])
    for where, text in texts.items():
        names = set(METRIC_TOKEN.findall(text))
        assert names, f"{where} names no chatstream metric"
        assert names <= exported, f"{where} uses metrics the service does not export: {names - exported}"


def test_dashboard_is_portable_and_templated(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job", "model"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables[name]["definition"].startswith("label_values(chatstream_model_info")
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    assert dashboard["uid"] == "chatstream" and dashboard.get("id") is None

    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            if "chatstream_" in target["expr"]:
                for var in ("$namespace", "$job", "$model"):
                    assert var in target["expr"], f"{panel['title']}: {target['expr']} ignores {var}"
            else:  # `up` has no model label
                assert "$namespace" in target["expr"] and "$job" in target["expr"], target["expr"]


def test_dashboard_has_the_panels_the_issue_lists(dashboard):
    exprs = " ".join(expr for _, expr in dashboard_targets(dashboard))
    for needle in (
        "sum by (pod) (chatstream_queue_depth",
        "sum by (pod) (chatstream_requests_running",
        "count(up{",
        "rate(chatstream_generated_tokens_total",
        "sum by (outcome) (rate(chatstream_requests_total",
        'outcome="rejected"',
        "chatstream_history_write_seconds_bucket",
    ):
        assert needle in exprs, needle
    for histogram in ("time_to_first_token", "inter_token_latency"):
        for q in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({q}, sum by (le) (rate(chatstream_{histogram}_seconds_bucket" in exprs


def test_panels_do_not_overlap(dashboard):
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_adapter_rule_maps_namespace_and_pod(adapter_rule):
    assert adapter_rule["seriesQuery"] == '{__name__="chatstream_queue_depth",namespace!="",pod!=""}'
    overrides = adapter_rule["resources"]["overrides"]
    assert overrides == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert re.fullmatch(adapter_rule["name"]["matches"], "chatstream_queue_depth")
    for placeholder in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
        assert placeholder in adapter_rule["metricsQuery"]


def test_adapter_metric_is_the_one_the_chart_hpa_asks_for(adapter_rule):
    values = yaml.safe_load((REPO / "helm" / "values.yaml").read_text())
    assert values["autoscaling"]["metricName"] == adapter_rule["name"]["as"]


def test_keda_scaledobject_shape(keda_scaledobject):
    assert keda_scaledobject["apiVersion"] == "keda.sh/v1alpha1"
    assert keda_scaledobject["kind"] == "ScaledObject"
    spec = keda_scaledobject["spec"]
    assert spec["scaleTargetRef"]["kind"] == "Deployment"
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert "metricName" not in meta, "metricName is deprecated since KEDA 2.10"
    assert all(isinstance(meta[key], str) for key in ("threshold", "activationThreshold", "query"))
    assert float(meta["threshold"]) > 0
    assert meta["query"].startswith("sum(chatstream_queue_depth{"), "must return one number"
