"""Bad input gets a 4xx JSON error naming the problem; nothing is queued, the session is untouched."""

from __future__ import annotations

import pytest

from .helpers import chat

CASES = [
    (b"{not json", 400, "invalid_json"),
    (b"", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_body"),
    (b'"text"', 400, "invalid_body"),
    (b"{}", 400, "invalid_request"),
    (b'{"user_input": null}', 400, "invalid_request"),
    (b'{"user_input": 42}', 400, "invalid_request"),
    (b'{"user_input": ["a"]}', 400, "invalid_request"),
    (b'{"user_input": "   "}', 400, "invalid_request"),
    (b'{"user_input": "hi", "regenerate": "yes"}', 400, "invalid_request"),
    (b"\xff\xfe", 400, "invalid_json"),
]


@pytest.mark.parametrize(("body", "status", "code"), CASES)
def test_bad_bodies(mock_server, body, status, code):
    with mock_server.client() as client:
        chat(client, "keep me")
        before = client.get("/get_prompt").json()
        response = client.post("/chat_stream", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status
        payload = response.json()
        assert payload["error"] == code and payload["detail"]
        assert client.get("/get_prompt").json() == before
        assert client.get("/get_load").json()["waiting"] == 0


def test_input_over_the_size_limit(mock_server):
    with mock_server.client() as client:
        response = chat(client, "x" * 16_001)
        assert response.status_code == 413
        assert response.json()["param"] == "user_input"
        assert client.get("/get_prompt").json()["messages"] == []
        assert chat(client, "x" * 16_000).status_code == 200


def test_body_over_the_byte_limit(mock_server):
    with mock_server.client() as client:
        response = client.post("/chat_stream", content=b"{" + b" " * 1_100_000 + b"}")
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"


def test_wrong_method_is_json(mock_server):
    with mock_server.client() as client:
        response = client.get("/chat_stream")
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
