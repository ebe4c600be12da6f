"""Conversation affinity opt-ins: the ingress-nginx hash annotation and the Istio DestinationRule hash on
the names the service really uses (its conversation header and session cookie), stay off by default,
and validate like every other object (the DestinationRule against its CRD shape in crd_schemas.py)."""

from __future__ import annotations

import copy

import pytest

from chatstream.history.base import CONVERSATION_HEADER
from chatstream.settings import Settings
from tests.deploy.chart import KUBE_VERSIONS, SCENARIOS, annotations, render, scenario_values, validate_object

HASH_BY = "nginx.ingress.kubernetes.io/upstream-hash-by"
SCENARIO = "conversation-affinity"


def nginx_variable(header: str) -> str:
    """nginx's variable for a request header: $http_ + the name lowercased, dashes as underscores."""
    return "$http_" + header.lower().replace("-", "_")


def test_ingress_nginx_hashes_on_the_conversation_then_the_session_cookie() -> None:
    ingress = render(scenario_values(SCENARIO)).one("Ingress")
    cookie = Settings().session_cookie_name
    assert annotations(ingress)[HASH_BY] == f"{nginx_variable(CONVERSATION_HEADER)}$cookie_{cookie}"
    # the streaming annotations given in values stay next to it
    assert annotations(ingress)["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_ingress_nginx_hash_follows_the_cookie_name_and_an_explicit_key() -> None:
    renamed = render(scenario_values(SCENARIO, {"config": {"session_cookie_name": "cs_session"}}))
    assert annotations(renamed.one("Ingress"))[HASH_BY].endswith("$cookie_cs_session")
    assert renamed.one("ConfigMap", "server")["data"]["CHATSTREAM_SESSION_COOKIE_NAME"] == "cs_session"
    explicit = {"conversationAffinity": {"ingressNginx": {"hashBy": "$http_x_chatstream_conversation_id"}}}
    ingress = render(scenario_values(SCENARIO, explicit)).one("Ingress")
    assert annotations(ingress)[HASH_BY] == "$http_x_chatstream_conversation_id"


def test_destination_rule_hashes_the_service_on_the_conversation_header() -> None:
    rendered = render(scenario_values(SCENARIO))
    rule = rendered.one("DestinationRule")
    service = rendered.one("Service", "server")
    assert rule["apiVersion"] == "networking.istio.io/v1"
    assert rule["spec"]["host"] == f"{service['metadata']['name']}.chatstream.svc.cluster.local"
    assert rule["spec"]["trafficPolicy"]["loadBalancer"] == {
        "consistentHash": {"httpHeaderName": CONVERSATION_HEADER, "ringHash": {"minimumRingSize": 1024}}
    }
    assert "exportTo" not in rule["spec"]


def test_destination_rule_on_the_cookie_with_maglev_for_older_istio() -> None:
    values = {
        "conversationAffinity": {
            "istio": {
                "apiVersion": "networking.istio.io/v1beta1",
                "hashOn": "cookie",
                "algorithm": "maglev",
                "maglevTableSize": 131071,
                "clusterDomain": "corp.internal",
                "exportTo": ["."],
            }
        }
    }
    rule = render(scenario_values(SCENARIO, values)).one("DestinationRule")
    for kube_version in KUBE_VERSIONS:
        validate_object(rule, kube_version)
    assert rule["apiVersion"] == "networking.istio.io/v1beta1"
    assert rule["spec"]["host"].endswith(".chatstream.svc.corp.internal")
    assert rule["spec"]["exportTo"] == ["."]
    # Only read, never minted by Envoy: no ttl, so the service's own session cookie is the key.
    assert rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"] == {
        "httpCookie": {"name": Settings().session_cookie_name},
        "maglev": {"tableSize": 131071},
    }


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != SCENARIO])
def test_affinity_is_off_unless_asked_for(scenario: str) -> None:
    rendered = render(scenario_values(scenario))
    assert rendered.of_kind("DestinationRule") == []
    for ingress in rendered.of_kind("Ingress"):
        assert HASH_BY not in annotations(ingress)


def test_destination_rule_shape_rejects_two_hash_keys_and_unknown_fields() -> None:
    rule = render(scenario_values(SCENARIO)).one("DestinationRule")
    both = copy.deepcopy(rule)
    both["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpCookie"] = {"name": "x"}
    with pytest.raises(Exception, match="is valid under each of|should not be valid"):
        validate_object(both, KUBE_VERSIONS[0])
    misspelt = copy.deepcopy(rule)
    misspelt["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpHeader"] = "x"
    with pytest.raises(Exception, match="httpHeader"):
        validate_object(misspelt, KUBE_VERSIONS[0])
    nowhere = copy.deepcopy(rule)
    nowhere["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"].pop("httpHeaderName")
    with pytest.raises(Exception, match="is not valid under any of the given schemas"):
        validate_object(nowhere, KUBE_VERSIONS[0])
