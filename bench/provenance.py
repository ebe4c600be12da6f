"""Which code a benchmark measured: the ``chatstream`` it imported and the checkout's commit.

An editable install points at one checkout; a benchmark run from another one (a worktree, a CI
clone) silently measures the installed code unless ``service/`` comes first on ``PYTHONPATH``.
Every report records the package's path and says on stderr when it lies outside this checkout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def code_under_test() -> dict[str, Any]:
    """The imported package's directory, whether it is this checkout's, and this checkout's commit."""
    import chatstream

    package = Path(chatstream.__file__).resolve().parent
    ours = package.is_relative_to(REPO / "service")
    if not ours:
        print(f"warning: measuring {package}, not this checkout's service/ (set PYTHONPATH)", file=sys.stderr)
    return {
        "chatstream": str(package),
        "this_checkout": ours,
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""
