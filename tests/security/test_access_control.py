"""API keys, session cookies, the default-secret refusal, CORS, body limits and the token cap.

Every test drives a real ``chatstream serve`` process over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from itsdangerous import BadSignature, URLSafeTimedSerializer

from chatstream.engine.mock import ROUND_REPLIES
from chatstream.security import principal_for_key
from chatstream.settings import DEFAULT_SESSION_SECRET
from tests.fixtures.server import run_server

from ..reliability.helpers import last_text

FAST = json.dumps({"type": "round", "time_per_token_sec": 0.001})
KEY_A = "sk-alpha-0123456789abcdef"
KEY_B = "sk-bravo-fedcba9876543210"
OPENAI_BODY = {"model": "chatstream-mock", "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--mock-params",
        FAST,
        env={"CHATSTREAM_API_KEYS": f"{KEY_A},{KEY_B}"},
        log_dir=tmp_path_factory.mktemp("keyed"),
    ) as server:
        yield server


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/chatstream.js", "/openapi.json"])
def test_open_paths_need_no_key(keyed_server, path):
    assert httpx.get(keyed_server.url + path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat_stream"),
        ("POST", "/clear_context"),
        ("GET", "/get_prompt"),
        ("GET", "/get_generation_params"),
        ("POST", "/set_generation_params"),
        ("POST", "/set_feedback"),
        ("GET", "/get_load"),
        ("GET", "/get_resource_usage"),
        ("GET", "/no-such-route"),  # deny by default: unknown paths do not reveal what exists
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", f"Basic {KEY_A}", f"Bearer {KEY_A}x"])
def test_seed_endpoints_refuse_missing_or_wrong_keys(keyed_server, method, path, auth):
    headers = {"Authorization": auth} if auth else {}
    response = httpx.request(method, keyed_server.url + path, headers=headers, json={"user_input": "hi"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "unauthorized"


def test_openai_endpoints_refuse_in_openai_shape(keyed_server):
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        response = httpx.request(method, keyed_server.url + path, json=OPENAI_BODY, headers=bearer("nope"))
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"


def test_each_configured_key_works(keyed_server):
    for key in (KEY_A, KEY_B):
        chat = httpx.post(keyed_server.url + "/chat_stream", json={"user_input": "hi"}, headers=bearer(key))
        assert chat.status_code == 200
        assert last_text(chat.text) == ROUND_REPLIES[0]
        completion = httpx.post(
            keyed_server.url + "/v1/chat/completions", json=OPENAI_BODY, headers=bearer(key)
        )
        assert completion.status_code == 200, completion.text


def test_keys_never_reach_the_log_but_principals_are_stable(keyed_server):
    httpx.post(keyed_server.url + "/chat_stream", json={"user_input": "hi"}, headers=bearer(KEY_A))
    httpx.get(keyed_server.url + "/get_load", headers=bearer(KEY_B + "-wrong"))
    log = keyed_server.log()
    assert KEY_A not in log and KEY_B not in log
    assert principal_for_key(KEY_A) == principal_for_key(KEY_A) != principal_for_key(KEY_B)
    assert KEY_A not in principal_for_key(KEY_A) and principal_for_key(KEY_A).startswith("key-")


# --- session cookies and the secret ------------------------------------------------------------


def _session_cookie(response: httpx.Response) -> str:
    header = response.headers["set-cookie"]
    assert header.startswith("chatstream_session=")
    return header


def test_session_cookie_is_httponly_lax_and_signed(tmp_path):
    secret = "a-long-configured-secret-for-tests-0001"
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--mock-params",
        FAST,
        env={"CHATSTREAM_SESSION_SECRET": secret},
        log_dir=tmp_path,
    ) as server:
        with server.client() as client:
            first = client.post("/chat_stream", json={"user_input": "hi"})
            header = _session_cookie(first)
            attributes = [part.strip().lower() for part in header.split(";")]
            assert "httponly" in attributes and "samesite=lax" in attributes and "secure" not in attributes
            second = client.post("/chat_stream", json={"user_input": "again"})
            assert last_text(second.text) == ROUND_REPLIES[1]  # the cookie continued the session

        value = first.cookies["chatstream_session"]
        session_id = URLSafeTimedSerializer(secret, salt="chatstream-session").loads(value)
        # The same session id signed with any other secret (e.g. the public default) is not accepted.
        for other in (DEFAULT_SESSION_SECRET, "guessed"):
            forged = URLSafeTimedSerializer(other, salt="chatstream-session").dumps(session_id)
            reply = httpx.post(
                server.url + "/chat_stream",
                json={"user_input": "again"},
                cookies={"chatstream_session": forged},
            )
            assert last_text(reply.text) == ROUND_REPLIES[0], "a forged cookie continued someone's session"
            assert server.log().count(secret) == 0


def test_secure_flag_is_configurable(tmp_path):
    with run_server(
        "--mock", "--history", "memory", "--mock-params", FAST, "--session-cookie-secure", log_dir=tmp_path
    ) as server:
        response = httpx.post(server.url + "/chat_stream", json={"user_input": "hi"})
        assert "secure" in [part.strip().lower() for part in _session_cookie(response).split(";")]


def test_mock_mode_without_a_secret_signs_with_a_random_key(tmp_path):
    """The README's no-config command works, and never signs cookies with the public default."""
    unset = {"CHATSTREAM_SESSION_SECRET": DEFAULT_SESSION_SECRET}  # as if none were configured
    with run_server(
        "--mock", "--history", "memory", "--mock-params", FAST, env=unset, log_dir=tmp_path
    ) as server:
        first = httpx.post(server.url + "/chat_stream", json={"user_input": "hi"})
        value = first.cookies["chatstream_session"]
        with pytest.raises(BadSignature):
            URLSafeTimedSerializer(DEFAULT_SESSION_SECRET, salt="chatstream-session").loads(value)
        assert "random per-process key" in server.log()


def _serve_without_a_secret(tmp_path, *args: str, extra_env: dict[str, str] | None = None):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CHATSTREAM_")}
    env.update(extra_env or {})
    command = [sys.executable, "-m", "chatstream", "serve", "--data-dir", str(tmp_path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)


@pytest.mark.parametrize(
    "args, extra_env, reason",
    [
        (
            ("--database-url", "postgresql+asyncpg://127.0.0.1:9/none", "--mock"),
            {},
            "a database is configured",
        ),
        (("--model", "/nonexistent", "--database-url", "sqlite+aiosqlite:////tmp/x.db"), {}, "a database"),
        (("--mock", "--history", "memory"), {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "Kubernetes pod"),
    ],
)
def test_the_placeholder_secret_is_refused_where_processes_must_share_a_key(
    tmp_path, args, extra_env, reason
):
    """Exit 2 before anything loads, with a message that says exactly what to set."""
    result = _serve_without_a_secret(tmp_path, *args, extra_env=extra_env)
    assert result.returncode == 2, result.stderr
    message = result.stderr
    assert (
        message.startswith("chatstream: error: CHATSTREAM_SESSION_SECRET is not set and ")
        and reason in message
    )
    assert (
        'CHATSTREAM_SESSION_SECRET="$(openssl rand -hex 32)"' in message
        and "secrets.sessionSecret" in message
    )
    assert "Traceback" not in message


def test_dev_mode_accepts_the_placeholder_where_it_would_be_refused(tmp_path):
    env = {"CHATSTREAM_SESSION_SECRET": DEFAULT_SESSION_SECRET, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    with run_server("--mock", "--history", "memory", "--dev-mode", env=env, log_dir=tmp_path) as server:
        assert httpx.post(server.url + "/chat_stream", json={"user_input": "hi"}).status_code == 200
        assert "random per-process key" in server.log()


def test_the_secret_policy_lives_in_the_settings():
    from chatstream.settings import Settings

    local = Settings(model="m", _env_file=None)
    assert local.uses_default_secret and local.session_secret_refusal(environ={}) is None
    assert Settings(model="m", database_url="postgresql://h/db").session_secret_refusal(environ={})
    assert local.session_secret_refusal(environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    keyed = Settings(model="m", database_url="postgresql://h/db", session_secret="s" * 40)
    assert keyed.session_secret_refusal(environ={"KUBERNETES_SERVICE_HOST": "x"}) is None
    assert (
        Settings(dev_mode=True, database_url="postgresql://h/db").session_secret_refusal(environ={}) is None
    )


# --- CORS ----------------------------------------------------------------------------------------

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def test_cors_is_off_by_default(keyed_server):
    origin = {"Origin": "https://evil.example"}
    preflight = httpx.options(keyed_server.url + "/chat_stream", headers={**origin, **PREFLIGHT})
    assert "access-control-allow-origin" not in preflight.headers
    simple = httpx.get(keyed_server.url + "/healthz", headers=origin)
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_listed_origins_with_credentials_only(tmp_path):
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--cors-origins",
        "https://app.example,https://admin.example",
        env={"CHATSTREAM_API_KEYS": KEY_A},
        log_dir=tmp_path,
    ) as server:
        good = {"Origin": "https://app.example"}
        preflight = httpx.options(
            server.url + "/chat_stream",
            headers={**good, **PREFLIGHT, "Access-Control-Request-Headers": "authorization,content-type"},
        )
        assert preflight.status_code == 200  # preflights carry no credentials: no key needed
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        refused = httpx.post(server.url + "/chat_stream", headers=good, json={"user_input": "x"})
        assert refused.status_code == 401  # the page can read why
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        ok = httpx.post(
            server.url + "/chat_stream", headers={**good, **bearer(KEY_A)}, json={"user_input": "x"}
        )
        assert ok.status_code == 200
        assert "x-chatstream-last-generated-message-id" in ok.headers["access-control-expose-headers"].lower()

        evil = {"Origin": "https://evil.example"}
        assert httpx.options(server.url + "/chat_stream", headers={**evil, **PREFLIGHT}).status_code == 400
        leaked = httpx.get(server.url + "/healthz", headers=evil)
        assert "access-control-allow-origin" not in leaked.headers


def test_cors_wildcard_never_allows_credentials(tmp_path):
    with run_server("--mock", "--history", "memory", "--cors-origins", "*", log_dir=tmp_path) as server:
        origin = {"Origin": "https://anyone.example"}
        for response in (
            httpx.options(server.url + "/chat_stream", headers={**origin, **PREFLIGHT}),
            httpx.get(server.url + "/healthz", headers=origin, cookies={"chatstream_session": "x"}),
        ):
            assert response.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in response.headers


# --- request size and token cap -------------------------------------------------------------


def test_body_size_limit_with_and_without_content_length(tmp_path):
    with run_server("--mock", "--history", "memory", "--max-body-bytes", "2048", log_dir=tmp_path) as server:
        big = json.dumps({"user_input": "x" * 4000})
        declared = httpx.post(
            server.url + "/chat_stream", content=big, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413 and declared.json()["error"] == "body_too_large"

        def chunks():
            for _ in range(8):
                yield b"x" * 1024

        streamed = httpx.post(server.url + "/v1/chat/completions", content=chunks())
        assert streamed.status_code == 413 and streamed.json()["error"] == "body_too_large"
        small = httpx.post(server.url + "/chat_stream", json={"user_input": "hi"})
        assert small.status_code == 200


def test_max_new_tokens_is_capped_whatever_the_client_asks(tmp_path):
    long_fast = json.dumps({"type": "long", "time_per_token_sec": 0.001})
    with run_server(
        "--mock",
        "--history",
        "memory",
        "--mock-params",
        long_fast,
        "--max-new-tokens",
        "500",
        "--max-new-tokens-cap",
        "5",
        log_dir=tmp_path,
    ) as server:
        for field in ("max_tokens", "max_completion_tokens"):
            response = httpx.post(server.url + "/v1/chat/completions", json={**OPENAI_BODY, field: 100_000})
            assert response.status_code == 200, response.text
            assert response.json()["usage"]["completion_tokens"] == 5
            assert response.json()["choices"][0]["finish_reason"] == "length"
        seed = httpx.post(server.url + "/chat_stream", json={"user_input": "hi"})
        assert len(last_text(seed.text).split()) == 5  # the server default (500) is capped too
