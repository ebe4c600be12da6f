"""The recording and alert rules: promtool validates them and runs their unit tests.

Every alert must have a case in rules_test.yaml where it fires and one where it stays quiet, so a rule
that can never fire (or always fires) is caught.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from .artifacts import RULES_DIR, RULES_TEST

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def rule_files():
    files = sorted(RULES_DIR.glob("*.yaml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def promtool(*args: str) -> subprocess.CompletedProcess:
    if not shutil.which(PROMTOOL):
        pytest.fail(f"promtool not found ({PROMTOOL}): install Debian's 'prometheus' package (.ci/run does)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def all_rules() -> list[dict]:
    return [
        rule
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_promtool_check_rules():
    result = promtool("check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet():
    alerts = {rule["alert"] for rule in all_rules() if "alert" in rule}
    assert alerts >= {
        "ChatstreamQueueBacklog",
        "ChatstreamRejectionRatioHigh",
        "ChatstreamTimeToFirstTokenHigh",
        "ChatstreamNoTokensGenerated",
        "ChatstreamPodDown",
    }
    cases = [
        case for test in yaml.safe_load(RULES_TEST.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    for alert in alerts:
        outcomes = {bool(case.get("exp_alerts")) for case in cases if case["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: needs a firing and a quiet case, has {outcomes}"


def test_every_recording_rule_is_tested():
    recorded = {rule["record"] for rule in all_rules() if "record" in rule}
    tested_text = RULES_TEST.read_text()
    untested = {name for name in recorded if f"expr: {name}\n" not in tested_text}
    assert not untested, f"recording rules without a promtool case: {sorted(untested)}"


def test_alerts_carry_severity_and_text():
    for rule in all_rules():
        if "alert" not in rule:
            assert rule["record"].startswith("chatstream:"), rule["record"]
            continue
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "for" in rule, f"{rule['alert']} would fire on a single evaluation"
