"""Structured logs on request, with the request id on every line of a request."""

from __future__ import annotations

import json

from tests.fixtures.server import run_server


def test_json_logs_carry_the_request_id():
    with run_server(
        "--mock", "--history", "memory", "--log-json", "--mock-params", '{"time_per_token_sec": 0}'
    ) as server:
        with server.client() as client:
            response = client.post(
                "/chat_stream", json={"user_input": "hi"}, headers={"X-Request-Id": "req-42"}
            )
            assert response.headers["x-request-id"] == "req-42"
            generated = client.get("/get_load").headers["x-request-id"]
            assert generated and generated != "req-42"
        server.stop()
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "request_id", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "chatstream.access"]
    assert any(
        line["request_id"] == "req-42" and "POST /chat_stream 200" in line["message"] for line in access
    )
