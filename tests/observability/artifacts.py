"""Paths of the observability artifacts and helpers that fill their templates like Grafana and the adapter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "helm" / "dashboards" / "chatstream.json"
RULES_DIR = REPO / "helm" / "rules"
RULES_TEST = Path(__file__).parent / "rules_test.yaml"
ADAPTER_VALUES = REPO / "k8s" / "prometheus-adapter" / "values.yaml"
KEDA_SCALEDOBJECT = REPO / "k8s" / "keda" / "scaledobject.yaml"


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of every panel, rows' nested panels included."""
    out = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return out


def fill_dashboard_variables(expr: str, values: dict[str, str]) -> str:
    """Substitute ``$name`` / ``${name}`` the way Grafana does for a single selected value."""
    for name, value in values.items():
        expr = expr.replace("${" + name + "}", value)
        expr = re.sub(r"\$" + re.escape(name) + r"\b", lambda _m, v=value: v, expr)
    return expr


def fill_adapter_template(template: str, series: str, label_matchers: str, group_by: str) -> str:
    """prometheus-adapter's metricsQuery Go template, filled as the adapter fills it."""
    return (
        template.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", label_matchers)
        .replace("<<.GroupBy>>", group_by)
    )
