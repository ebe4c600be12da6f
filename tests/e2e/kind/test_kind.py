"""kind end to end (tests/e2e/kind/run_e2e.sh): the mock release on a real cluster.

Runs wherever docker (with a running engine), kind, kubectl and helm exist, e.g. the kind-e2e CI
workflow; skips with the reason elsewhere. `pytest -m kind tests/e2e/kind -s` shows its progress.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("run_e2e.sh")
TOOLS = ("docker", "kind", "kubectl", "helm", "python3")

pytestmark = pytest.mark.kind


def unusable_reason() -> str | None:
    """Why this machine cannot run the e2e, or None when it can."""
    reasons = []
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        reasons.append(f"not installed: {', '.join(missing)}")
    if "docker" not in missing:
        try:
            info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
            if info.returncode != 0:
                detail = (info.stderr or info.stdout).strip().splitlines()
                reasons.append(f"docker has no usable engine ({detail[-1] if detail else info.returncode})")
        except subprocess.TimeoutExpired:
            reasons.append("docker info timed out (no usable engine)")
    return "; ".join(reasons) or None


@pytest.mark.timeout(3600)
def test_mock_release_on_kind() -> None:
    reason = unusable_reason()
    if reason:
        pytest.skip(f"kind e2e needs docker, kind, kubectl and helm: {reason}")
    result = subprocess.run(["bash", str(SCRIPT)], timeout=3500)
    assert result.returncode == 0, f"{SCRIPT.name} failed ({result.returncode}); logs in test-artifacts/kind"
