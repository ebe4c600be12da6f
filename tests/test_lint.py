"""The code base stays ruff-clean (lint and format), checked with the project's own configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = ["service", "tests", "bench", "migrations"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    existing = [p for p in PATHS if (REPO / p).exists()]
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *existing], cwd=REPO, capture_output=True, text=True
    )


def test_ruff_check():
    result = _ruff("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
