"""Conversations kept in PostgreSQL, driven over real HTTP against `chatstream serve` processes."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from tests.reliability.helpers import EOS, last_text

from .conftest import KEY_A, KEY_B, bearer, sql_server
from .store import conversation_ids, messages, query

CONVERSATION = "X-ChatStream-Conversation-Id"
MESSAGE_ID = "X-ChatStream-Last-Generated-Message-Id"


def chat(client: httpx.Client, text: str, **kwargs) -> httpx.Response:
    return client.post("/chat_stream", json={"user_input": text}, **kwargs)


def test_multi_turn_conversation_is_stored_turn_by_turn(pg_server, pg_database_url):
    with pg_server.client() as client:
        first = chat(client, "Hello there")
        assert first.status_code == 200 and first.text.endswith(EOS)
        conversation_id = first.headers[CONVERSATION]
        second = chat(client, "And again")
        assert second.headers[CONVERSATION] == conversation_id
        prompt = client.get("/get_prompt").json()

    rows = messages(pg_database_url, conversation_id)
    assert [(r["ordinal"], r["role"], r["status"]) for r in rows] == [
        (0, "user", "complete"),
        (1, "assistant", "complete"),
        (2, "user", "complete"),
        (3, "assistant", "complete"),
    ]
    assert rows[0]["text"] == "Hello there" and rows[2]["text"] == "And again"
    assert rows[1]["text"] == last_text(first.text) and rows[3]["text"] == last_text(second.text)
    assert rows[3]["message_id"] == second.headers[MESSAGE_ID]
    assert [m["content"] for m in prompt["messages"]] == [r["text"] for r in rows]
    # usage, timings and the parameters used are kept with each reply
    stored = query(
        pg_database_url,
        "SELECT completion_tokens, duration_seconds, generation_params FROM messages WHERE message_id = $1",
        rows[3]["message_id"],
    )[0]
    assert stored["completion_tokens"] > 0 and stored["duration_seconds"] > 0
    assert '"temperature"' in stored["generation_params"]


def test_two_processes_continue_each_others_conversation(pg_database_url):
    with sql_server(pg_database_url) as a, sql_server(pg_database_url) as b:
        cookies: httpx.Cookies | None = None
        replies = []
        for turn, server in enumerate([a, b, a, b]):
            with server.client(cookies=cookies) as client:
                response = chat(client, f"turn {turn}")
                assert response.status_code == 200
                replies.append(last_text(response.text))
                cookies = client.cookies
        # the mock's "round" replies go on with the turn number, whichever process served it
        assert len(set(replies)) == 4
        with b.client(cookies=cookies) as client:
            listed = client.get("/v1/conversations").json()["data"]
        assert len(listed) == 1 and listed[0]["message_count"] == 8
        rows = messages(pg_database_url, listed[0]["id"])
        assert [r["text"] for r in rows if r["role"] == "user"] == ["turn 0", "turn 1", "turn 2", "turn 3"]


def test_api_clients_continue_by_conversation_id_on_any_replica(pg_database_url):
    env = {"CHATSTREAM_API_KEYS": f"{KEY_A},{KEY_B}"}
    with sql_server(pg_database_url, env=env) as a, sql_server(pg_database_url, env=env) as b:
        created = httpx.post(a.url + "/v1/conversations", json={"system": "Be brief."}, headers=bearer(KEY_A))
        assert created.status_code == 201
        conversation_id = created.json()["id"]
        for turn, server in enumerate([a, b, a]):
            response = httpx.post(
                server.url + "/chat_stream",
                json={"user_input": f"q{turn}", "conversation_id": conversation_id},
                headers=bearer(KEY_A),
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.headers[CONVERSATION] == conversation_id
        detail = httpx.get(f"{b.url}/v1/conversations/{conversation_id}", headers=bearer(KEY_A)).json()
        assert detail["system"] == "Be brief."
        assert [m["role"] for m in detail["messages"]] == ["user", "assistant"] * 3
        assert all(m["status"] == "complete" for m in detail["messages"] if m["role"] == "assistant")


def test_conversations_belong_to_their_owner(pg_database_url):
    env = {"CHATSTREAM_API_KEYS": f"{KEY_A},{KEY_B}"}
    with sql_server(pg_database_url, env=env) as server:
        owner = httpx.Client(base_url=server.url, headers=bearer(KEY_A), timeout=30)
        other = httpx.Client(base_url=server.url, headers=bearer(KEY_B), timeout=30)
        conversation_id = owner.post("/v1/conversations", json={}).json()["id"]
        reply = owner.post(
            "/chat_stream", json={"user_input": "mine"}, headers={CONVERSATION: conversation_id}
        )
        assert reply.status_code == 200
        message_id = reply.headers[MESSAGE_ID]
        before = messages(pg_database_url)

        missing = other.get("/v1/conversations/" + "0" * 32)
        attempts = [
            other.get(f"/v1/conversations/{conversation_id}"),
            other.delete(f"/v1/conversations/{conversation_id}"),
            other.post("/chat_stream", json={"user_input": "x"}, headers={CONVERSATION: conversation_id}),
            other.post("/clear_context", json={"conversation_id": conversation_id}),
            other.get("/get_prompt", headers={CONVERSATION: conversation_id}),
            other.post("/set_feedback", json={"message_id": message_id, "is_like": False}),
        ]
        for response in [missing, *attempts]:
            assert response.status_code == 404, (response.request.url, response.text)
            assert response.json()["error"] == "not_found"
        # a stranger's 404 is word for word the answer for a conversation that does not exist
        assert attempts[0].json() == missing.json()
        assert other.get("/v1/conversations").json()["data"] == []
        assert messages(pg_database_url) == before

        assert (
            owner.post("/set_feedback", json={"message_id": message_id, "is_like": True}).status_code == 200
        )
        detail = owner.get(f"/v1/conversations/{conversation_id}").json()
        assert detail["messages"][-1]["feedback"] == {"is_like": True, "form_data": None}
        assert owner.delete(f"/v1/conversations/{conversation_id}").json() == {
            "id": conversation_id,
            "deleted": True,
        }
        assert owner.get(f"/v1/conversations/{conversation_id}").status_code == 404
        assert messages(pg_database_url) == [] and query(pg_database_url, "SELECT * FROM feedback") == []


def test_seed_endpoints_work_against_the_store(pg_server, pg_database_url):
    with pg_server.client() as client:
        assert client.post("/set_generation_params", json={"temperature": 0.3, "top_k": 7}).status_code == 200
        first = chat(client, "one")
        conversation_id = first.headers[CONVERSATION]
        assert client.get("/get_generation_params").json()["generation_params"]["temperature"] == 0.3
        stored = query(
            pg_database_url, "SELECT generation_params FROM conversations WHERE id = $1", conversation_id
        )
        assert '"top_k": 7' in stored[0]["generation_params"]

        old_reply = messages(pg_database_url, conversation_id)[-1]
        regenerated = client.post("/chat_stream", json={"user_input": "", "regenerate": True})
        assert regenerated.status_code == 200, regenerated.text
        rows = messages(pg_database_url, conversation_id)
        assert [r["role"] for r in rows] == ["user", "assistant"]
        assert rows[-1]["message_id"] != old_reply["message_id"]
        assert rows[-1]["message_id"] == regenerated.headers[MESSAGE_ID]

        feedback = client.post(
            "/set_feedback",
            json={"message_id": rows[-1]["message_id"], "is_like": False, "form_data": {"why": "x"}},
        )
        assert feedback.status_code == 200
        assert query(pg_database_url, "SELECT is_like FROM feedback")[0]["is_like"] is False
        assert client.post("/set_feedback", json={"message_id": "nope", "is_like": True}).status_code == 404

        assert client.post("/clear_context").status_code == 200
        assert messages(pg_database_url, conversation_id) == []
        assert client.get("/get_prompt").json()["messages"] == []
        again = chat(client, "fresh start")
        assert again.headers[CONVERSATION] == conversation_id
        assert [r["text"] for r in messages(pg_database_url, conversation_id)][0] == "fresh start"


@pytest.mark.parametrize(
    "body",
    [
        {"user_input": ""},
        {"user_input": 5},
        {"regenerate": True, "user_input": ""},
        {"user_input": "x", "conversation_id": ["not", "a", "string"]},
    ],
)
def test_invalid_requests_write_nothing(pg_server, pg_database_url, body):
    with pg_server.client() as client:
        response = client.post("/chat_stream", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]
    assert messages(pg_database_url) == []


def test_openai_client_keeps_a_conversation(pg_database_url):
    with sql_server(pg_database_url) as server:
        with httpx.Client(base_url=server.url) as http:
            conversation_id = http.post("/v1/conversations", json={}).json()["id"]
            client = OpenAI(
                base_url=server.url + "/v1",
                api_key="unused",
                http_client=http,
                default_headers={CONVERSATION: conversation_id},
            )
            history = [{"role": "user", "content": "first question"}]
            reply = client.chat.completions.create(model="chatstream-mock", messages=history)
            history.append({"role": "assistant", "content": reply.choices[0].message.content})
            history.append({"role": "user", "content": "second question"})
            chunks = client.chat.completions.create(model="chatstream-mock", messages=history, stream=True)
            second = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        rows = messages(pg_database_url, conversation_id)
        assert [(r["role"], r["text"]) for r in rows] == [
            ("user", "first question"),
            ("assistant", history[1]["content"]),
            ("user", "second question"),
            ("assistant", second),
        ]
        # without a conversation id, nothing is stored
        OpenAI(base_url=server.url + "/v1", api_key="unused").chat.completions.create(
            model="chatstream-mock", messages=[{"role": "user", "content": "stateless"}]
        )
        assert conversation_ids(pg_database_url) == [conversation_id]
