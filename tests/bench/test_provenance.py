"""A benchmark report says which ``chatstream`` it measured, and warns when it is not this checkout's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRINT_CODE = "import json; from bench.provenance import code_under_test; print(json.dumps(code_under_test()))"


def _code_under_test(pythonpath: str) -> tuple[dict, str]:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    command = [sys.executable, "-c", PRINT_CODE]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_another_checkouts_package_is_named_and_warned_about(tmp_path: Path) -> None:
    foreign = tmp_path / "chatstream"
    foreign.mkdir()
    (foreign / "__init__.py").write_text("")
    code, stderr = _code_under_test(f"{tmp_path}{os.pathsep}{REPO}")
    assert code["chatstream"] == str(foreign) and code["this_checkout"] is False
    assert f"warning: measuring {foreign}" in stderr


def test_this_checkouts_package_is_quiet(tmp_path: Path) -> None:
    code, stderr = _code_under_test(f"{REPO / 'service'}{os.pathsep}{REPO}")
    assert code["this_checkout"] is True and "warning" not in stderr
    assert len(code["commit"]) == 40
