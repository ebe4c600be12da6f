"""``/v1/conversations`` for the chat page: keyset paging and renaming, over real HTTP, on PostgreSQL
and on the SQLite file."""

from __future__ import annotations

import httpx
import pytest

from .conftest import KEY_A, KEY_B, bearer, sql_server
from .store import query

ENV = {"CHATSTREAM_API_KEYS": f"{KEY_A},{KEY_B}"}
#: updated_at per conversation (by creation index): three share one instant, two another
TIMES = [
    "2026-12-01 10:00:00.250000",
    "2026-12-01 10:00:00.250000",
    "2026-12-01 10:00:00.250000",
    "2026-12-01 09:00:00.000000",
    "2026-12-01 09:00:00.000000",
    "2026-12-01 11:30:00.000001",
    "2026-11-30 08:00:00.000000",
]


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    return request.getfixturevalue("pg_database_url")


def set_updated_at(url: str, conversation_id: str, when: str) -> None:
    # SQLite holds times as text in SQLAlchemy's layout (always with microseconds); PostgreSQL as timestamptz
    literal = when if url.startswith("sqlite") else when + "+00"
    query(url, f"UPDATE conversations SET updated_at = '{literal}' WHERE id = '{conversation_id}'")


def pages(client: httpx.Client, limit: int) -> list[dict]:
    """Every page of the listing, following next_before until has_more is false."""
    answers, before = [], None
    while True:
        params = {"limit": limit, **({"before": before} if before else {})}
        response = client.get("/v1/conversations", params=params)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        before = answers[-1]["next_before"]
        if not answers[-1]["has_more"]:
            assert before is None
            return answers
        assert len(answers) < 10, "paging does not end"


def test_paging_returns_each_conversation_once_newest_first(database_url):
    with sql_server(database_url, env=ENV) as server:
        owner = httpx.Client(base_url=server.url, headers=bearer(KEY_A), timeout=30)
        other = httpx.Client(base_url=server.url, headers=bearer(KEY_B), timeout=30)
        ids = [owner.post("/v1/conversations", json={}).json()["id"] for _ in TIMES]
        stranger = other.post("/v1/conversations", json={}).json()["id"]
        for conversation_id, when in zip(ids, TIMES, strict=True):
            set_updated_at(database_url, conversation_id, when)
        set_updated_at(database_url, stranger, TIMES[0])
        by_id = sorted(zip(TIMES, ids, strict=True), key=lambda pair: pair[1])
        expected = [i for _, i in sorted(by_id, key=lambda pair: pair[0], reverse=True)]  # stable: ties by id

        answers = pages(owner, limit=3)
        assert [len(a["data"]) for a in answers] == [3, 3, 1]
        assert [a["has_more"] for a in answers] == [True, True, False]
        assert all(a["object"] == "list" for a in answers)
        listed = [c["id"] for a in answers for c in a["data"]]
        assert listed == expected  # each exactly once, newest first, equal times ordered by id
        assert all(c["title"] == "" and c["message_count"] == 0 for a in answers for c in a["data"])

        # a limit that ends exactly at the last row says so at once
        exact = owner.get("/v1/conversations", params={"limit": 7}).json()
        assert [c["id"] for c in exact["data"]] == expected
        assert exact["has_more"] is False and exact["next_before"] is None

        # the older form: a plain ISO time lists what was updated strictly before it
        older = owner.get("/v1/conversations", params={"before": "2026-12-01T10:00:00.250000Z"}).json()
        assert [c["id"] for c in older["data"]] == expected[4:]
        assert older["has_more"] is False

        for bad in ["not-a-time", "bm90LWEtdGltZXxhYmM", "MjAyNi0xMi0wMVQxMDowMDowMCswMDowMA"]:
            refused = owner.get("/v1/conversations", params={"before": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert refused.json()["error"] == "invalid_request" and refused.json()["param"] == "before"


def test_rename_persists_and_stays_with_its_owner(database_url):
    with sql_server(database_url, env=ENV) as server:
        owner = httpx.Client(base_url=server.url, headers=bearer(KEY_A), timeout=30)
        other = httpx.Client(base_url=server.url, headers=bearer(KEY_B), timeout=30)
        conversation_id = owner.post("/v1/conversations", json={}).json()["id"]
        before = owner.get(f"/v1/conversations/{conversation_id}").json()

        renamed = owner.patch(f"/v1/conversations/{conversation_id}", json={"title": "  Trip plans  "})
        assert renamed.status_code == 200, renamed.text
        summary = renamed.json()
        assert summary["id"] == conversation_id and summary["title"] == "Trip plans"
        assert summary["message_count"] == 0
        assert summary["updated_at"] == before["updated_at"]  # its place in the list stays
        stored = query(database_url, f"SELECT title FROM conversations WHERE id = '{conversation_id}'")
        assert stored == [{"title": "Trip plans"}]

        # a turn keeps the chosen title: the first user message titles only untitled conversations
        reply = owner.post("/chat_stream", json={"user_input": "hello", "conversation_id": conversation_id})
        assert reply.status_code == 200, reply.text
        assert owner.get(f"/v1/conversations/{conversation_id}").json()["title"] == "Trip plans"
        listed = owner.get("/v1/conversations").json()["data"]
        assert [(c["id"], c["title"], c["message_count"]) for c in listed] == [
            (conversation_id, "Trip plans", 2)
        ]
        assert (
            owner.patch(f"/v1/conversations/{conversation_id}", json={"title": "é" * 200}).status_code == 200
        )

        for body in [
            {"title": "   "},
            {"title": ""},
            {"title": "x" * 201},
            {"title": 5},
            {},
            {"title": "a", "x": 1},
        ]:
            refused = owner.patch(f"/v1/conversations/{conversation_id}", json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["error"] == "invalid_request"
        not_json = owner.patch(f"/v1/conversations/{conversation_id}", content=b"{")
        assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_request"

        missing = owner.patch("/v1/conversations/" + "0" * 32, json={"title": "x"})
        stolen = other.patch(f"/v1/conversations/{conversation_id}", json={"title": "mine now"})
        assert missing.status_code == stolen.status_code == 404
        assert stolen.json() == missing.json() and stolen.json()["error"] == "not_found"
        assert query(database_url, f"SELECT title FROM conversations WHERE id = '{conversation_id}'") == [
            {"title": "é" * 200}
        ]
