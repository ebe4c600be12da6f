"""The seed's endpoints over real HTTP against `chatstream serve --mock`."""

from __future__ import annotations

from chatstream.engine.mock import ROUND_REPLIES

from .helpers import EOS, chat, last_text, sse_events


def test_multi_turn_round_replies_and_prompt_history(mock_server):
    with mock_server.client() as client:
        first = chat(client, "hello")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain")
        assert first.text.endswith(EOS)
        assert last_text(first.text) == ROUND_REPLIES[0]
        # every chunk is the cumulative reply so far
        chunks = [c for c in first.text.split(EOS) if c]
        assert len(chunks) > 3 and all(chunks[i + 1].startswith(chunks[i]) for i in range(len(chunks) - 1))
        second = chat(client, "and then?")
        assert last_text(second.text) == ROUND_REPLIES[1]
        prompt = client.get("/get_prompt").json()
        assert [m["role"] for m in prompt["messages"]] == ["user", "assistant", "user", "assistant"]
        assert prompt["messages"][2]["content"] == "and then?"
        assert "and then?" in prompt["prompt"]


def test_sessions_are_separate_per_client(mock_server):
    with mock_server.client() as alice, mock_server.client() as bob:
        chat(alice, "one")
        chat(alice, "two")
        assert last_text(chat(bob, "first for bob").text) == ROUND_REPLIES[0]
        assert len(bob.get("/get_prompt").json()["messages"]) == 2


def test_sse_stream_of_deltas(mock_server):
    with mock_server.client() as client:
        response = client.post(
            "/chat_stream", json={"user_input": "hi"}, headers={"Accept": "text/event-stream"}
        )
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text)
        assert events[-1] == "[DONE]"
        final = events[-2]
        assert final["finished"] and final["finish_reason"] == "stop"
        assert "".join(e["delta"] for e in events[:-1]) == final["text"] == ROUND_REPLIES[0]
        assert final["message_id"] == response.headers["x-chatstream-last-generated-message-id"]


def test_regenerate_replaces_the_last_reply(mock_server):
    with mock_server.client() as client:
        chat(client, "hello")
        again = chat(client, regenerate=True)
        assert again.status_code == 200 and last_text(again.text)
        messages = client.get("/get_prompt").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["content"] == last_text(again.text)


def test_regenerate_without_history_is_a_clear_400(mock_server):
    with mock_server.client() as client:
        response = chat(client, regenerate=True)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


def test_clear_context(mock_server):
    with mock_server.client() as client:
        chat(client, "hello")
        assert client.post("/clear_context").json() == {"success": True}
        assert client.get("/get_prompt").json()["messages"] == []


def test_generation_params_per_session_with_ranges(mock_server):
    with mock_server.client() as client, mock_server.client() as other:
        assert client.get("/get_generation_params").json()["generation_params"] == {
            "temperature": 1.0,
            "top_k": 50,
            "top_p": 1.0,
        }
        ok = client.post("/set_generation_params", json={"temperature": 0.5, "top_k": 10})
        assert ok.status_code == 200
        assert client.get("/get_generation_params").json()["generation_params"]["temperature"] == 0.5
        assert other.get("/get_generation_params").json()["generation_params"]["temperature"] == 1.0
        for bad in ({"temperature": 1.5}, {"top_k": 0}, {"top_k": 501}, {"top_p": -0.1}, {"nope": 1}, {}):
            response = client.post("/set_generation_params", json=bad)
            assert response.status_code == 400, bad
            assert response.json()["error"] == "invalid_request"
        assert client.get("/get_generation_params").json()["generation_params"]["top_k"] == 10


def test_feedback_on_a_generated_message(mock_server):
    with mock_server.client() as client:
        response = chat(client, "hello")
        message_id = response.headers["x-chatstream-last-generated-message-id"]
        ok = client.post(
            "/set_feedback", json={"message_id": message_id, "is_like": True, "form_data": {"a": 1}}
        )
        assert ok.status_code == 200 and ok.json() == {"success": True}
        unknown = client.post("/set_feedback", json={"message_id": "nope", "is_like": False})
        assert unknown.status_code == 404
        assert client.post("/set_feedback", json={"is_like": True}).status_code == 400


def test_load_resources_health_and_page(mock_server):
    with mock_server.client() as client:
        load = client.get("/get_load").json()
        assert load["chatstream_workers"][0] == {
            "name": "default",
            "processing": 0,
            "waiting": 0,
            "max_processing": 2,
            "max_waiting": 5,
        }
        usage = client.get("/get_resource_usage").json()
        assert usage["memory"]["total_bytes"] > 0 and "gpus" in usage
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["ready"] is True
        page = client.get("/")
        assert page.status_code == 200 and "chatstream.js" in page.text
        assert client.get("/chatstream.js").headers["content-type"].startswith("text/javascript")
        missing = client.get("/no-such-page")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
