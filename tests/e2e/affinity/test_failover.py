"""A replica killed mid-load behind real nginx: every conversation goes on, and no message is lost.

Two mock-engine replicas (slow replies, so streams are surely running when the kill comes) share one
PostgreSQL behind nginx hashing consistently on the chart's expression. Six conversations, three per
replica, take five turns in step; during turn 3, once every stream has started, one replica gets
SIGKILL. Its streams break off; nginx marks it failed and sends the next turns of its conversations
to the survivor, which continues them from the database (the dead replica's turn lease runs out
within seconds and its partial reply reads as interrupted). The survivor's own conversations never
move: consistent hashing moves only the dead replica's share.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from chatstream.engine.mock import ROUND_REPLIES
from tests.e2e.affinity.load import placed_conversations, round_running, run_cluster, run_round

TURNS = 5
KILLED_DURING = 3
PER_REPLICA = 3
# The mock's "round" replies: turn k answers ROUND_REPLIES[k - 1], counted from the stored history,
# so a reply on the survivor shows it read the conversation from the database.
MOCK = ["--mock", "--mock-params", json.dumps({"type": "round", "time_per_token_sec": 0.1})]
MOCK += ["--num-of-concurrent-executions", "4"]  # a replica's three streams run at once, none queued


def message(index: int, turn: int) -> str:
    return f"conversation {index}, turn {turn}"


def expected_reply(turn: int) -> str:
    return ROUND_REPLIES[(turn - 1) % len(ROUND_REPLIES)]


@pytest.mark.timeout(120)
def test_killed_replica_mid_load_loses_no_message(pg_cluster, tmp_path) -> None:
    started = time.monotonic()
    with run_cluster(pg_cluster, tmp_path / "nginx", MOCK) as cluster:
        conversations = placed_conversations(cluster, PER_REPLICA, lambda i: f"Conversation {i}.")
        # placed_conversations groups them by replica, in the order of cluster.replicas
        doomed, survivor = cluster.replicas
        on_doomed = conversations[:PER_REPLICA]
        survivor_address = cluster.address(survivor)

        for turn in range(1, KILLED_DURING):
            run_round(conversations, message, turn)
        with round_running(conversations, message, KILLED_DURING):
            for conversation in conversations:
                assert conversation.first_byte.wait(20), cluster.logs()
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait(10)
        for turn in range(KILLED_DURING + 1, TURNS + 1):
            run_round(conversations, message, turn)

        for conversation in conversations:
            turns = conversation.turns
            assert [t.status for t in turns] == [200] * TURNS, (conversation.id, cluster.logs())
            killed_here = conversation in on_doomed
            home = cluster.address(doomed) if killed_here else survivor_address
            assert {t.served_by for t in turns[:KILLED_DURING]} == {home}
            # The dead replica's conversations move to the survivor; the survivor's never move.
            assert {t.served_by for t in turns[KILLED_DURING:]} == {survivor_address}
            assert [t.cut for t in turns] == [
                killed_here and n == KILLED_DURING for n in range(1, TURNS + 1)
            ], [(t.cut, t.reply, t.upstreams, t.conflicts) for t in turns]
            for number, turn in enumerate(turns, 1):
                if not turn.cut:
                    assert turn.reply == expected_reply(number), (conversation.id, number)

            stored = conversation.stored()
            assert [m["role"] for m in stored] == ["user", "assistant"] * TURNS
            assert [m["content"] for m in stored[::2]] == [t.user for t in turns]
            for number, (reply, turn) in enumerate(zip(stored[1::2], turns, strict=True), 1):
                if turn.cut:
                    # Recorded as interrupted, with the text written before the kill (the client may
                    # have seen a little more, or the store a little more than reached the client).
                    assert reply["status"] == "interrupted", reply
                    seen, kept = turn.reply, reply["content"]
                    assert kept.startswith(seen) or seen.startswith(kept), (seen, kept)
                    assert expected_reply(number).startswith(kept)
                else:
                    assert (reply["status"], reply["content"]) == ("complete", turn.reply)
    assert time.monotonic() - started < 60
