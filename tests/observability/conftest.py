"""Parsed observability artifacts (dashboard, adapter rule, KEDA ScaledObject) as fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from .artifacts import ADAPTER_VALUES, DASHBOARD, KEDA_SCALEDOBJECT


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="session")
def adapter_rule() -> dict[str, Any]:
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    rules = values["rules"]["custom"]
    assert len(rules) == 1, "one adapter rule: chatstream_queue_depth"
    return rules[0]


@pytest.fixture(scope="session")
def keda_scaledobject() -> dict[str, Any]:
    return yaml.safe_load(KEDA_SCALEDOBJECT.read_text())
