"""Wrong values fail before anything reaches a cluster, with a message that names the key.

The schema (values.schema.json) catches types, enums, bounds and unknown keys; the templates `fail` on
combinations a schema cannot express. Both surface through `helm install`/`template`/`lint`.
"""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.deploy.chart import CHART_DIR, SCENARIOS, load_values, render

SCHEMA_CASES = [
    ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    ({"config": {"host": "0.0.0.0"}}, "at '/config': additional properties 'host' not allowed"),
    ({"config": {"database_url": "sqlite+aiosqlite://"}}, "additional properties 'database_url' not allowed"),
    ({"config": {"max_new_token": 10}}, "additional properties 'max_new_token' not allowed"),
    ({"config": {"dtype": "float8"}}, "at '/config/dtype': value must be one of"),
    ({"config": {"num_of_concurrent_executions": 0}}, "at '/config/num_of_concurrent_executions': minimum"),
    ({"config": {"top_p": 1.5}}, "at '/config/top_p': maximum"),
    ({"config": {"use_mock_response": "yes"}}, "at '/config/use_mock_response': got string, want"),
    ({"config": {"mock_params": "round"}}, "at '/config/mock_params': got string, want"),
    ({"config": {"drain_timeout_sec": -1}}, "at '/config/drain_timeout_sec': minimum"),
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    ({"image": {"digest": "latest"}}, "at '/image/digest'"),
    ({"modelCache": {"type": "hostPath"}}, "at '/modelCache/type': value must be one of"),
    ({"gpu": {"count": 0}}, "at '/gpu/count': minimum"),
    ({"gpu": {"resourceName": "gpu"}}, "at '/gpu/resourceName'"),
    ({"resources": {"limits": {"memory": "lots"}}}, "at '/resources/limits/memory'"),
    ({"autoscaling": {"behavior": {"scaleDown": {"selectPolicy": "Sometimes"}}}}, "selectPolicy"),
    ({"autoscaling": {"metricName": "queue-depth"}}, "at '/autoscaling/metricName'"),
    ({"keda": {"minReplicaCount": 0}}, "at '/keda/minReplicaCount': minimum: got 0, want 1"),
    ({"keda": {"prometheus": {"threshold": 2}}}, "at '/keda/prometheus/threshold': got number, want string"),
    ({"metrics": {"serviceMonitor": {"interval": "15 seconds"}}}, "at '/metrics/serviceMonitor/interval'"),
    ({"service": {"type": "ExternalName"}}, "at '/service/type': value must be one of"),
    ({"probes": {"readiness": {"path": "readyz"}}}, "at '/probes/readiness/path'"),
    ({"lifecycle": {"terminationGracePeriodSeconds": "60"}}, "terminationGracePeriodSeconds"),
    ({"externalDatabase": {"url": "postgres.db.svc:5432"}}, "at '/externalDatabase/url'"),
    ({"ingress": {"hosts": [{"host": "a.example.com", "paths": [{"path": "/"}]}]}}, "pathType"),
    ({"postgresql": {"auth": {"database": "chat-stream"}}}, "at '/postgresql/auth/database'"),
    ({"conversationAffinity": {"istio": {"hashOn": "ip"}}}, "at '/conversationAffinity/istio/hashOn'"),
    (
        {"conversationAffinity": {"istio": {"algorithm": "random"}}},
        "at '/conversationAffinity/istio/algorithm'",
    ),
    ({"conversationAffinity": {"ingressNginx": {"hashBy": "conversation"}}}, "/ingressNginx/hashBy"),
    ({"conversationAffinity": {"sticky": True}}, "additional properties 'sticky' not allowed"),
]


@pytest.mark.parametrize(("values", "message"), SCHEMA_CASES, ids=[m for _, m in SCHEMA_CASES])
def test_schema_rejects_bad_values(values: dict, message: str) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        with pytest.raises(helm.HelmValuesError) as caught:
            chart.validate_schema(chart.merge_values(values))
    assert message in str(caught.value)
    with pytest.raises(helm.HelmValuesError, match="values don't meet the specifications"):
        render(values)  # what `helm install` does with them
    report = helm.lint(CHART_DIR, values, strict=True)
    assert any(message in error for error in report["errors"]), report


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_shipped_values_pass_the_schema(scenario: str) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.merge_values(load_values(*SCENARIOS[scenario])))


TEMPLATE_CASES = [
    ({"autoscaling": {"enabled": True}, "keda": {"enabled": True}}, "autoscaling.enabled and keda.enabled"),
    ({"config": {"model": None}}, "config.model is empty"),
    ({"config": {"history": "sql"}}, "config.history=sql needs a database"),
    ({"config": {"history": "auto"}}, "config.history=auto needs a database"),
    (
        {"postgresql": {"enabled": True}, "externalDatabase": {"url": "postgresql+asyncpg://u:p@h/db"}},
        "postgresql.enabled and externalDatabase are both set",
    ),
    (
        {"externalDatabase": {"url": "postgresql+asyncpg://u:p@h/db", "existingSecret": "db"}},
        "externalDatabase.url and externalDatabase.existingSecret are both set",
    ),
    (
        {"secrets": {"existingSecret": "s"}, "externalDatabase": {"url": "postgresql+asyncpg://u:p@h/db"}},
        "put the URL in a Secret and set externalDatabase.existingSecret",
    ),
    ({"secrets": {"existingSecret": "s", "apiKeys": ["k"]}}, "put them in the existing Secret"),
    ({"modelCache": {"type": "existingClaim"}}, "modelCache.existingClaim names no claim"),
    ({"lifecycle": {"terminationGracePeriodSeconds": 5}}, "must be larger than"),
    (
        {"conversationAffinity": {"ingressNginx": {"enabled": True}}},
        "conversationAffinity.ingressNginx.enabled is true but ingress.enabled is false",
    ),
    (
        {
            "ingress": {
                "enabled": True,
                "annotations": {"nginx.ingress.kubernetes.io/upstream-hash-by": "$host"},
            },
            "conversationAffinity": {"ingressNginx": {"enabled": True}},
        },
        "give the hash key in one place",
    ),
    (
        {
            "ingress": {"enabled": True},
            "conversationAffinity": {"ingressNginx": {"enabled": True}},
            "config": {"session_cookie_name": "chat-session"},
        },
        "cannot be named by an nginx $cookie_ variable",
    ),
    (
        {
            "conversationAffinity": {
                "istio": {"enabled": True, "algorithm": "maglev", "maglevTableSize": 65536}
            }
        },
        "maglevTableSize=65536 is not a prime",
    ),
]


@pytest.mark.parametrize(("values", "message"), TEMPLATE_CASES, ids=[m for _, m in TEMPLATE_CASES])
def test_templates_refuse_contradictions(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    assert message in str(caught.value)
