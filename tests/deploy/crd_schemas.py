"""Shapes of the custom resources the chart renders, which kubernetes-validate has no schema for.

Each schema covers the fields this chart writes, taken from the CRDs (prometheus-operator
monitoring.coreos.com/v1 ServiceMonitor and PrometheusRule, KEDA keda.sh/v1alpha1 ScaledObject, Istio
networking.istio.io DestinationRule), with
``additionalProperties: false`` so a misspelt or misplaced field fails like kubernetes-validate's
strict mode does. A field the chart starts to use must be added here from the CRD.
"""

from __future__ import annotations

from typing import Any

# prometheus-operator's Duration pattern (e.g. 30s, 1m30s).
DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}


def strict(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


METADATA = strict(
    {"name": NAME, "namespace": NAME, "labels": STRING_MAP, "annotations": STRING_MAP}, ["name"]
)
LABEL_SELECTOR = strict(
    {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": strict(
                {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
                ["key", "operator"],
            ),
        },
    }
)


def resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return strict(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
        ["apiVersion", "kind", "metadata", "spec"],
    )


SERVICE_MONITOR = resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    strict(
        {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": strict(
                {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}
            ),
            "jobLabel": {"type": "string"},
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": strict(
                    {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                        "interval": DURATION,
                        "scrapeTimeout": DURATION,
                        "honorLabels": {"type": "boolean"},
                    }
                ),
            },
        },
        ["selector", "endpoints"],
    ),
)

RULE = {
    "type": "object",
    "properties": {
        "record": {"type": "string"},
        "alert": {"type": "string"},
        "expr": {"type": ["string", "integer"], "minLength": 1},
        "for": DURATION,
        "keep_firing_for": DURATION,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
}

PROMETHEUS_RULE = resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    strict(
        {
            "groups": {
                "type": "array",
                "items": strict(
                    {
                        "name": {"type": "string", "minLength": 1},
                        "interval": DURATION,
                        "query_offset": DURATION,
                        "limit": {"type": "integer"},
                        "partial_response_strategy": {"type": "string"},
                        "labels": STRING_MAP,
                        "rules": {"type": "array", "items": RULE},
                    },
                    ["name"],
                ),
            }
        }
    ),
)

SCALED_OBJECT = resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    strict(
        {
            "scaleTargetRef": strict(
                {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "envSourceContainerName": {"type": "string"},
                },
                ["name"],
            ),
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "initialCooldownPeriod": {"type": "integer", "minimum": 0},
            "idleReplicaCount": {"type": "integer", "minimum": 0},
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "fallback": strict(
                {"failureThreshold": {"type": "integer"}, "replicas": {"type": "integer"}},
                ["failureThreshold", "replicas"],
            ),
            "advanced": strict(
                {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    # The behavior itself is checked as an autoscaling/v2 HPA's (chart.validate_object).
                    "horizontalPodAutoscalerConfig": strict(
                        {"name": {"type": "string"}, "behavior": {"type": "object"}}
                    ),
                }
            ),
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": strict(
                    {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "useCachedMetrics": {"type": "boolean"},
                        # KEDA reads trigger metadata as map[string]string: numbers must be quoted.
                        "metadata": STRING_MAP,
                        "authenticationRef": strict({"name": {"type": "string"}, "kind": {"type": "string"}}),
                    },
                    ["type", "metadata"],
                ),
            },
        },
        ["scaleTargetRef", "triggers"],
    ),
)


def one_of_keys(*keys: str) -> list[dict[str, Any]]:
    """At most one of ``keys`` (a protobuf ``oneof``)."""
    return [{"not": {"required": [a, b]}} for i, a in enumerate(keys) for b in keys[i + 1 :]]


# Istio's ConsistentHashLB (destination_rule.proto): one hash key, one hash algorithm.
CONSISTENT_HASH = {
    **strict(
        {
            "httpHeaderName": {"type": "string", "minLength": 1},
            "httpCookie": strict(
                {"name": {"type": "string", "minLength": 1}, "path": {"type": "string"}, "ttl": DURATION},
                ["name"],
            ),
            "useSourceIp": {"type": "boolean"},
            "httpQueryParameterName": {"type": "string", "minLength": 1},
            "ringHash": strict({"minimumRingSize": {"type": "integer", "minimum": 1}}),
            "maglev": strict({"tableSize": {"type": "integer", "minimum": 1, "maximum": 5000011}}),
        }
    ),
    "allOf": [
        {
            "oneOf": [
                {"required": [key]}
                for key in ("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName")
            ]
        },
        *one_of_keys("ringHash", "maglev"),
    ],
}


def destination_rule(api_version: str) -> dict[str, Any]:
    return resource(
        api_version,
        "DestinationRule",
        strict(
            {
                "host": {"type": "string", "minLength": 1},
                "exportTo": {"type": "array", "items": {"type": "string"}},
                "trafficPolicy": strict(
                    {
                        "loadBalancer": {
                            **strict(
                                {
                                    "simple": {
                                        "enum": [
                                            "UNSPECIFIED",
                                            "RANDOM",
                                            "PASSTHROUGH",
                                            "ROUND_ROBIN",
                                            "LEAST_REQUEST",
                                        ]
                                    },
                                    "consistentHash": CONSISTENT_HASH,
                                }
                            ),
                            "allOf": one_of_keys("simple", "consistentHash"),
                        }
                    }
                ),
            },
            ["host"],
        ),
    )


CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("networking.istio.io/v1", "DestinationRule"): destination_rule("networking.istio.io/v1"),
    ("networking.istio.io/v1beta1", "DestinationRule"): destination_rule("networking.istio.io/v1beta1"),
}
