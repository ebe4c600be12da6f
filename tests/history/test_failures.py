"""What the store holds when things go wrong: disconnects, killed processes, concurrent turns, and the
database itself going away under traffic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.fixtures.server import run_server
from tests.reliability.helpers import EOS, BackgroundStream, last_text, wait_for

from .conftest import SECRET, sql_server
from .store import conversation_ids, messages, query

CONVERSATION = "X-ChatStream-Conversation-Id"
SLOW = {"type": "long", "time_per_token_sec": 0.05}


def conversation_status(server, conversation_id: str, cookies=None) -> list[tuple[str, str]]:
    detail = httpx.get(f"{server.url}/v1/conversations/{conversation_id}", cookies=cookies, timeout=10).json()
    return [(m["role"], m.get("status", "")) for m in detail["messages"]]


def test_disconnect_mid_stream_keeps_the_partial_reply_as_interrupted(pg_database_url):
    with sql_server(pg_database_url, mock=SLOW) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            with client.stream(
                "POST", "/chat_stream", json={"user_input": "tell me a long story"}
            ) as response:
                conversation_id = response.headers[CONVERSATION]
                received = ""
                for chunk in response.iter_text():
                    received += chunk
                    if len(last_text(received)) > 40:
                        break  # the client goes away mid-reply
            seen = last_text(received)
            wait_for(
                lambda: messages(pg_database_url, conversation_id)[-1]["status"] == "interrupted",
                what="the reply marked interrupted",
            )
            reply = messages(pg_database_url, conversation_id)[-1]
            assert reply["text"].startswith(seen) and len(reply["text"]) < 2000
            assert conversation_status(server, conversation_id, client.cookies)[-1] == (
                "assistant",
                "interrupted",
            )
            # the conversation goes on at once
            assert client.post("/chat_stream", json={"user_input": "shorter please"}).status_code == 200


def test_a_killed_process_leaves_an_interrupted_reply_that_never_blocks(pg_database_url):
    with sql_server(pg_database_url, mock=SLOW) as doomed, sql_server(pg_database_url) as survivor:
        stream = BackgroundStream(doomed.url, "a reply that will be cut").start()
        assert stream.first_byte.wait(20)
        conversation_id = stream.response_headers[CONVERSATION.lower()]
        # the partial text reaches the store while the reply streams (every write interval)
        wait_for(
            lambda: len(messages(pg_database_url, conversation_id)[-1]["text"]) > 10, what="partial write"
        )
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(10)
        stream.done.wait(10)

        cookies = {"chatstream_session": _cookie_from(stream)}
        # the dead pod's lease (2 s in these tests) expires: the row reads as interrupted ...
        wait_for(
            lambda: (
                conversation_status(survivor, conversation_id, cookies)[-1] == ("assistant", "interrupted")
            ),
            timeout=10,
            what="the killed turn reported as interrupted",
        )
        # ... and the conversation accepts the next turn on another replica
        response = httpx.post(
            survivor.url + "/chat_stream",
            json={"user_input": "are you still there?"},
            cookies=cookies,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        rows = messages(pg_database_url, conversation_id)
        assert [(r["role"], r["status"]) for r in rows] == [
            ("user", "complete"),
            ("assistant", "interrupted"),
            ("user", "complete"),
            ("assistant", "complete"),
        ]
        assert rows[1]["text"], "the partial reply written before the kill was kept"


def _cookie_from(stream: BackgroundStream) -> str:
    header = stream.response_headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def test_a_second_turn_on_a_busy_conversation_gets_409_at_once(pg_database_url):
    with sql_server(pg_database_url, mock=SLOW) as a, sql_server(pg_database_url) as b:
        with httpx.Client(base_url=a.url, timeout=30) as client:
            client.post("/set_generation_params", json={"temperature": 0.5})  # creates the conversation
            cookies = dict(client.cookies)
        first = BackgroundStream(
            a.url, "first", headers={"Cookie": f"chatstream_session={cookies['chatstream_session']}"}
        )
        first.start()
        assert first.first_byte.wait(20)
        for server in (a, b):  # the same replica and another one
            started = time.monotonic()
            second = httpx.post(
                server.url + "/chat_stream", json={"user_input": "second"}, cookies=cookies, timeout=30
            )
            assert second.status_code == 409, second.text
            assert second.json()["error"] == "turn_in_progress"
            assert time.monotonic() - started < 2
        busy_clear = httpx.post(a.url + "/clear_context", cookies=cookies, timeout=10)
        assert busy_clear.status_code == 409
        assert first.done.wait(60) and first.status == 200 and first.body.endswith(EOS)
        conversation_id = first.response_headers[CONVERSATION.lower()]
        rows = messages(pg_database_url, conversation_id)
        assert [(r["role"], r["text"] if r["role"] == "user" else r["status"]) for r in rows] == [
            ("user", "first"),
            ("assistant", "complete"),
        ]
        after = httpx.post(b.url + "/chat_stream", json={"user_input": "second"}, cookies=cookies, timeout=30)
        assert after.status_code == 200


def test_database_down_answers_503_then_recovers_without_restart(pg_cluster, pg_database_url):
    if not pg_cluster.controllable:
        pytest.skip("CHATSTREAM_TEST_DATABASE_URL points at a server these tests cannot stop")
    with sql_server(pg_database_url, "--db-timeout-sec", "2") as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/chat_stream", json={"user_input": "before"}).status_code == 200
            conversation_id = conversation_ids(pg_database_url)[0]
            pg_cluster.stop("fast")
            try:
                outcomes = []
                for n in range(3):
                    started = time.monotonic()
                    response = client.post("/chat_stream", json={"user_input": f"during {n}"})
                    outcomes.append((response.status_code, response.json(), time.monotonic() - started))
                ready = client.get("/readyz")
                listing = client.get("/v1/conversations")
            finally:
                pg_cluster.start()
            for status, body, elapsed in outcomes:
                assert status == 503 and body["error"] == "database_unavailable", body
                assert elapsed < 10
            assert ready.status_code == 503
            assert ready.json()["history"]["ok"] is False and "database" in ready.json()["history"]["error"]
            assert listing.status_code == 503

            # back: the pool reconnects by itself, the same process serves again
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
            after = client.post("/chat_stream", json={"user_input": "after"})
            assert after.status_code == 200 and after.text.endswith(EOS)
        rows = messages(pg_database_url, conversation_id)
        assert [r["text"] for r in rows if r["role"] == "user"] == ["before", "after"]
        assert all(r["status"] == "complete" for r in rows)


def test_database_lost_mid_reply_loses_no_stored_message(pg_cluster, pg_database_url):
    """Replies that were streaming when the database went away are stored once it is back."""
    if not pg_cluster.controllable:
        pytest.skip("CHATSTREAM_TEST_DATABASE_URL points at a server these tests cannot stop")
    slow = {"type": "round", "time_per_token_sec": 0.15}
    with sql_server(pg_database_url, "--db-timeout-sec", "1", mock=slow) as server:
        stream = BackgroundStream(server.url, "keep me").start()
        assert stream.first_byte.wait(20)
        pg_cluster.stop("fast")
        time.sleep(0.5)
        pg_cluster.start()
        assert stream.done.wait(60) and stream.status == 200
        conversation_id = stream.response_headers[CONVERSATION.lower()]
        wait_for(
            lambda: messages(pg_database_url, conversation_id)[-1]["status"] == "complete",
            timeout=20,
            what="the reply stored after the outage",
        )
        assert messages(pg_database_url, conversation_id)[-1]["text"] == last_text(stream.body)


def test_sqlite_is_the_default_store_and_survives_a_restart(tmp_path):
    args = ("--mock", "--mock-params", '{"type": "round", "time_per_token_sec": 0.002}')
    env = {"CHATSTREAM_SESSION_SECRET": SECRET, "CHATSTREAM_SQLITE_PATH": str(tmp_path / "chat.db")}
    with run_server(*args, env=env) as server:
        assert server.client().get("/readyz").json()["history"]["database"] == "sqlite"
        with server.client() as client:
            first = client.post("/chat_stream", json={"user_input": "remember me"})
            cookies = dict(client.cookies)
    assert (tmp_path / "chat.db").exists()
    with run_server(*args, env=env) as server:
        with server.client(cookies=cookies) as client:
            contents = [m["content"] for m in client.get("/get_prompt").json()["messages"]]
            assert contents == ["remember me", last_text(first.text)]
            assert client.post("/chat_stream", json={"user_input": "second"}).status_code == 200
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    assert [r["status"] for r in messages(url)] == ["complete"] * 4


def test_zero_config_start_keeps_browser_conversations_across_restarts(tmp_path):
    """No secret configured, SQLite history: the generated cookie key is kept beside the database."""
    from chatstream.settings import DEFAULT_SESSION_SECRET

    env = {
        "CHATSTREAM_SESSION_SECRET": DEFAULT_SESSION_SECRET,
        "CHATSTREAM_SQLITE_PATH": str(tmp_path / "c.db"),
    }
    args = ("--mock", "--mock-params", '{"type": "echo", "time_per_token_sec": 0.002}')
    with run_server(*args, env=env) as server:
        with server.client() as client:
            assert client.post("/chat_stream", json={"user_input": "still here?"}).status_code == 200
            cookies = dict(client.cookies)
        assert "generated key kept in" in server.log()
    secret_file = tmp_path / "c.session-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    with run_server(*args, env=env) as server:
        with server.client(cookies=cookies) as client:
            assert [m["content"] for m in client.get("/get_prompt").json()["messages"]][0] == "still here?"


def test_prune_deletes_only_old_conversations(pg_database_url):
    with sql_server(pg_database_url) as server:
        for text in ("old", "new"):
            with server.client() as client:
                assert client.post("/chat_stream", json={"user_input": text}).status_code == 200
    old_id, new_id = conversation_ids(pg_database_url)
    query(
        pg_database_url,
        "UPDATE conversations SET updated_at = now() - interval '40 days' WHERE id = $1",
        old_id,
    )
    env = {**os.environ, "CHATSTREAM_DATABASE_URL": pg_database_url}
    result = subprocess.run(
        [sys.executable, "-m", "chatstream", "prune", "--older-than", "30d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"deleted_conversations": 1' in result.stdout
    assert conversation_ids(pg_database_url) == [new_id]
    assert {r["conversation_id"] for r in messages(pg_database_url)} == {new_id}
    bad = subprocess.run(
        [sys.executable, "-m", "chatstream", "prune", "--older-than", "soon"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_concurrent_first_requests_of_many_clients_all_land(pg_database_url):
    """32 clients at once: every admitted turn has its rows; every refused one wrote nothing."""
    limits = (
        "--num-of-concurrent-executions",
        "8",
        "--max-queue-size",
        "16",
        "--too-many-request-as-http-error",
    )
    with sql_server(pg_database_url, *limits) as server:
        results: list[int] = []
        lock = threading.Lock()

        def one(n: int) -> None:
            response = httpx.post(server.url + "/chat_stream", json={"user_input": f"client {n}"}, timeout=60)
            with lock:
                results.append(response.status_code)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    admitted = results.count(200)
    assert admitted >= 24 and set(results) <= {200, 429}, results
    rows = messages(pg_database_url)
    assert len([r for r in rows if r["role"] == "user"]) == admitted
    assert len([r for r in rows if r["role"] == "assistant" and r["status"] == "complete"]) == admitted
