"""Property-based fuzzing of a real mock server with schemathesis, driven by the service's own /openapi.json.

Checks: no 5xx, documented responses match their schemas and headers, undeclared methods get 405 with
``Allow``. Status-code and body conformance are not checked: the chat routes read the raw request
(to keep the seed's error messages), so the schema declares no request bodies and no error statuses
(see docs/security.md); a schema-valid empty body is then rightly refused with 400.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.fixtures.server import run_server

CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "response_headers_conformance",
        "unsupported_method",
        "allow_header_conformance",
    ]
)
FAST = json.dumps({"type": "round", "time_per_token_sec": 0.001})
KEY = "sk-schemathesis-0123456789"


@pytest.mark.parametrize("with_keys", [False, True], ids=["open", "api-keys"])
def test_schemathesis_finds_no_server_errors(tmp_path, with_keys):
    st = shutil.which("schemathesis") or shutil.which("st")
    assert st, "schemathesis is a test dependency"
    env = {"CHATSTREAM_API_KEYS": KEY} if with_keys else {}
    with run_server(
        "--mock", "--history", "memory", "--mock-params", FAST, env=env, log_dir=tmp_path
    ) as server:
        command = [
            st,
            "run",
            server.url + "/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--max-response-time",
            "5",
            "--seed",
            "8",
            "--no-color",
        ]
        if with_keys:
            command += ["--header", f"Authorization: Bearer {KEY}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
        assert "Traceback" not in server.log(), server.log()[-4000:]
