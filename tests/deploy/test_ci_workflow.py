"""The kind e2e workflow runs the e2e script on the Kubernetes versions the manifests are validated for."""

from __future__ import annotations

import yaml

from tests.deploy.chart import KUBE_VERSIONS, REPO

WORKFLOW = REPO / ".github" / "workflows" / "kind-e2e.yml"


def test_workflow_runs_the_script_on_the_tested_versions() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    assert "bash tests/e2e/kind/run_e2e.sh" in runs
    assert (REPO / "tests" / "e2e" / "kind" / "run_e2e.sh").exists()
    images = job["strategy"]["matrix"]["node_image"]
    minors = {image.split(":v")[1].rsplit(".", 1)[0] for image in images}
    assert minors == {version.rsplit(".", 1)[0] for version in KUBE_VERSIONS}
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    for trigger in ("push", "pull_request"):  # every path the e2e depends on re-triggers it
        for path in ("Dockerfile", "helm/**", "k8s/**", "service/**", "tests/e2e/kind/**"):
            assert path in triggers[trigger]["paths"], (trigger, path)
