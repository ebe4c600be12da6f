"""Replicas sharing one PostgreSQL behind nginx, and multi-turn conversations driven through it.

Each conversation is its own browser-like client: it creates the conversation with
``POST /v1/conversations`` (which gives it a session cookie) and sends every turn to ``/chat_stream``
with the conversation header and that cookie, so nginx hashes on both, as the chart's expression says.
Every request has a timeout; a stream cut by a killed replica is recorded with the text seen so far.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chatstream.history.base import CONVERSATION_HEADER
from chatstream.history.migrate import upgrade_to_head
from chatstream.settings import Settings
from tests.deploy.chart import render, scenario_values
from tests.e2e.affinity.proxy import UPSTREAM_HEADER, Nginx, run_nginx
from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.server import ServerHandle, run_server
from tests.reliability.helpers import last_text

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
HASH_BY = "nginx.ingress.kubernetes.io/upstream-hash-by"


def chart_hash_key() -> str:
    """The hash expression the chart puts on the Ingress for ingress-nginx."""
    ingress = render(scenario_values("conversation-affinity")).one("Ingress")
    return ingress["metadata"]["annotations"][HASH_BY]


def history_args(database_url: str) -> list[str]:
    """SQL history with short leases, so a killed replica's turn is released within seconds."""
    return [
        "--history",
        "sql",
        "--database-url",
        database_url,
        "--turn-lease-sec",
        "2",
        "--history-write-interval-sec",
        "0.2",
    ]


@dataclass
class Cluster:
    """Replicas on one database, and nginx in front of them."""

    replicas: list[ServerHandle]
    proxy: Nginx
    database_url: str

    def address(self, replica: ServerHandle) -> str:
        return f"127.0.0.1:{replica.port}"

    def replica_at(self, address: str) -> ServerHandle:
        return next(r for r in self.replicas if self.address(r) == address)

    def logs(self) -> str:
        return "\n".join([self.proxy.log(), *(f"--- {r.url}\n{r.log()[-4000:]}" for r in self.replicas)])


@contextlib.contextmanager
def run_cluster(
    pg_cluster: PostgresCluster, root: Path, replica_args: list[str], count: int = 2
) -> Iterator[Cluster]:
    """``count`` ``chatstream serve`` replicas (started at once) on a fresh database, behind nginx."""
    name = pg_cluster.create_database()
    url = pg_cluster.url(name)
    upgrade_to_head(url, 30)  # once, before replicas that would each migrate at start
    try:
        with contextlib.ExitStack() as stack:
            managers = [run_server(*history_args(url), *replica_args) for _ in range(count)]
            with ThreadPoolExecutor(count) as pool:
                started = [pool.submit(m.__enter__) for m in managers]
                replicas = []
                for manager, future in zip(managers, started, strict=True):
                    exc = future.exception()
                    if exc is None:
                        replicas.append(future.result())
                        stack.push(manager.__exit__)
                for future in started:
                    future.result()  # raise the first start failure (the started ones stop above)
            proxy = stack.enter_context(run_nginx(root, [r.port for r in replicas], chart_hash_key()))
            yield Cluster(replicas, proxy, url)
    finally:
        pg_cluster.drop_database(name)


def upstreams_of(response: httpx.Response) -> list[str]:
    """The replicas nginx tried for this response, the one that answered last."""
    return [part.strip() for part in response.headers.get(UPSTREAM_HEADER, "").split(",") if part.strip()]


@dataclass
class Turn:
    """One user message and what came back through nginx."""

    user: str
    status: int | None = None
    upstreams: list[str] = field(default_factory=list)
    reply: str = ""
    cut: bool = False  # the stream broke off (its replica was killed)
    conflicts: int = 0  # 409s while the previous turn's lease had not expired yet

    @property
    def served_by(self) -> str:
        return self.upstreams[-1] if self.upstreams else ""


@dataclass
class Conversation:
    id: str
    client: httpx.Client
    cookie: str | None = None  # the session cookie it was given when it was created
    turns: list[Turn] = field(default_factory=list)
    first_byte: threading.Event = field(default_factory=threading.Event)

    @property
    def replicas(self) -> set[str]:
        return {turn.served_by for turn in self.turns}

    def say(self, text: str, busy_deadline: float = 15.0) -> Turn:
        """Send one turn and read its stream to the end (or to the break, if its replica dies)."""
        turn = Turn(text)
        self.turns.append(turn)
        deadline = time.monotonic() + busy_deadline
        while True:
            body = ""
            try:
                with self.client.stream("POST", "/chat_stream", json={"user_input": text}) as response:
                    turn.status = response.status_code
                    turn.upstreams = upstreams_of(response)
                    if response.status_code == 409 and time.monotonic() < deadline:
                        response.read()  # the conversation's last turn died with its replica: its
                        turn.conflicts += 1  # lease runs out within seconds, nothing was stored
                        time.sleep(0.2)
                        continue
                    for chunk in response.iter_text():
                        if chunk:
                            body += chunk
                            self.first_byte.set()
            except httpx.TransportError:
                turn.cut = True
            turn.reply = last_text(body)
            return turn

    def stored(self) -> list[dict]:
        """The conversation as the service returns it (GET /v1/conversations/{id}, through nginx)."""
        response = self.client.get(f"/v1/conversations/{self.id}")
        response.raise_for_status()
        return response.json()["messages"]


def session_cookie(client: httpx.Client) -> str | None:
    return client.cookies.get(Settings().session_cookie_name)


def open_conversation(proxy_url: str, system: str) -> Conversation:
    client = httpx.Client(base_url=proxy_url, timeout=TIMEOUT)
    created = client.post("/v1/conversations", json={"system": system})
    assert created.status_code == 201, created.text
    conversation_id = created.json()["id"]
    client.headers[CONVERSATION_HEADER] = conversation_id
    return Conversation(conversation_id, client, session_cookie(client))


def placed_conversations(
    cluster: Cluster, per_replica: int, system: Callable[[int], str], batch: int = 12, batches: int = 6
) -> list[Conversation]:
    """``per_replica`` conversations on each replica, so that every replica carries load.

    Conversations are created a batch at a time; a moment later (as a user would type, and past the
    one-second resolution of the cookie's signature timestamp, so a replica that signed the cookie anew
    would change it) a cheap GET of each, hashed on the same header and cookie as its turns, shows
    where nginx sends it. Conversations beyond the count for their replica are dropped.
    """
    placed: dict[str, list[Conversation]] = {cluster.address(r): [] for r in cluster.replicas}
    for first in range(0, batch * batches, batch):
        candidates = [open_conversation(cluster.proxy.url, system(i)) for i in range(first, first + batch)]
        time.sleep(1.1)
        for conversation in candidates:
            probe = conversation.client.get(f"/v1/conversations/{conversation.id}")
            assert probe.status_code == 200, probe.text
            group = placed[upstreams_of(probe)[-1]]
            if len(group) < per_replica:
                group.append(conversation)
            else:
                conversation.client.close()
        if all(len(group) >= per_replica for group in placed.values()):
            break
    assert all(len(group) == per_replica for group in placed.values()), {k: len(v) for k, v in placed.items()}
    return [conversation for group in placed.values() for conversation in group]


@contextlib.contextmanager
def round_running(
    conversations: list[Conversation], message: Callable[[int, int], str], turn: int
) -> Iterator[None]:
    """Turn ``turn`` of every conversation at once (each conversation's own turns stay in order),
    running while the block runs; its end waits for every stream to finish."""
    for conversation in conversations:
        conversation.first_byte.clear()
    with ThreadPoolExecutor(len(conversations)) as pool:
        futures = [pool.submit(c.say, message(i, turn)) for i, c in enumerate(conversations)]
        yield
        for future in futures:
            future.result()


def run_round(conversations: list[Conversation], message: Callable[[int, int], str], turn: int) -> None:
    with round_running(conversations, message, turn):
        pass


def metric_totals(url: str, names: tuple[str, ...]) -> dict[str, float | None]:
    """Each sample name's sum over its label sets on ``url``/metrics; None where it is not exported."""
    text = httpx.get(url + "/metrics", timeout=10).text
    totals: dict[str, float | None] = dict.fromkeys(names)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] = (totals[sample.name] or 0.0) + sample.value
    return totals


def request_counts(replica: ServerHandle) -> float:
    """Requests the replica finished with success (chatstream_requests_total{outcome="success"})."""
    text = httpx.get(replica.url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "chatstream_requests_total" and sample.labels.get("outcome") == "success":
                return sample.value
    return 0.0
