"""Stateless replicas behind a real load balancer: the layout DEPLOY.md describes, run here.

PostgreSQL, two `assistant serve` processes sharing one models folder, one contact key
and one config file, and HAProxy (and nginx, where installed) in front with the configs
in deploy/. A customer's conversation, an agent's sign-in and a promoted release must
all carry from one replica to the other, and a replica killed with SIGKILL under load
must lose no acknowledged turn. Select these tests with `-m deployment`; they skip,
saying why, without PostgreSQL or HAProxy (Debian: apt-get install postgresql haproxy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests import deployment_harness as harness
from tests.conftest import AGENT_NAME, AGENT_PASSWORD, ROOT, copy_of_built

pytestmark = pytest.mark.deployment

REPLICAS = 2
LOAD_CONVERSATIONS = 64
LOAD_TURNS = 6
KILL_AFTER_REPLIES = LOAD_CONVERSATIONS * 2  # about a third of the way through
# Replies under way at the kill that the replica had begun to send: at most one or two of
# 64 requests in flight are in that instant (see the test).
MOST_CUT_REPLIES = 2
RELEASE_BOUND_S = 30.0  # each replica looks at the release pointer every 0.5 s here
# The retrain only has to promote a release (--force), not a good one: one epoch each.
QUICK_RETRAIN = {"ASSISTANT_EPOCHS": "1", "ASSISTANT_GENERATOR_EPOCHS": "1"}


@pytest.fixture(scope="module")
def installed() -> None:
    reason = harness.missing_for_replicas()
    if reason is not None:
        pytest.skip(f"no deployment to test here: {reason}")


@pytest.fixture(scope="module")
def database_url(installed, postgres_server) -> str:
    return postgres_server.database_url()


@pytest.fixture(scope="module")
def cluster_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployment")


@pytest.fixture(scope="module")
def replica_environment(installed, built_settings, staff, database_url, cluster_folder):
    """What the replicas share: one copy of the built models, the log, a contact key and
    one config file with the staff accounts."""
    settings = copy_of_built(built_settings, cluster_folder / "shared", database_url=database_url)
    config = harness.write_replica_config(cluster_folder / "assistant.toml", staff, ["127.0.0.1"])
    contact_key = Fernet.generate_key().decode("ascii")
    return harness.replica_environment(settings, database_url, contact_key, config)


@pytest.fixture(scope="module")
def cluster(replica_environment, cluster_folder) -> Iterator[list[harness.Replica]]:
    replicas = harness.start_replicas(REPLICAS, replica_environment, cluster_folder)
    with harness.stopping(*replicas):
        yield replicas


@pytest.fixture
def replicas(cluster) -> list[harness.Replica]:
    """Every replica serving: one a previous test killed is started again."""
    dead = [replica.start() for replica in cluster if not replica.running()]
    harness.wait_until_healthy(dead)
    return cluster


@pytest.fixture(scope="module")
def haproxy(cluster, cluster_folder) -> Iterator[harness.Balancer]:
    balancer = harness.start_haproxy(cluster, cluster_folder / "haproxy")
    with harness.stopping(balancer):
        yield balancer


@pytest.fixture(scope="module")
def nginx(cluster, cluster_folder) -> Iterator[harness.Balancer]:
    reason = harness.missing_nginx()
    if reason is not None:
        pytest.skip(reason)
    balancer = harness.start_nginx(cluster, cluster_folder / "nginx")
    with harness.stopping(balancer):
        yield balancer


def chat(url: str, message: str, conversation_id: str | None = None) -> dict:
    body = {"message": message, "conversation_id": conversation_id}
    response = httpx.post(f"{url}/api/chat", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# a. A conversation goes on from one replica to the other -------------------------------


def test_a_conversation_continues_on_the_other_replica_with_its_slots_and_status(replicas):
    first, second = replicas
    asked = chat(first.url, "where is my order")
    assert asked["trace"]["asked_for"] == ["order_id"]
    conversation = asked["conversation_id"]

    filled = chat(second.url, "it is PP-204817", conversation)
    assert filled["trace"]["reason"] == "the customer gave the order_id asked for last turn"
    assert "PP-204817" in filled["reply"]

    handed = httpx.post(
        f"{first.url}/api/handoff", json={"conversation_id": conversation}, timeout=30
    )
    assert handed.json()["status"] == "waiting"
    waiting = chat(second.url, "hello, anyone there?", conversation)
    assert (waiting["route"], waiting["status"]) == ("agent", "waiting")

    lines = httpx.get(f"{first.url}/api/conversations/{conversation}/messages").json()
    assert lines["status"] == "waiting"
    said = [line["text"] for line in lines["messages"] if line["author"] == "customer"]
    assert said[:2] == ["where is my order", "it is PP-204817"]
    assert said[-1] == "hello, anyone there?"


# b. An agent signs in on one replica and replies through the other ---------------------


def test_an_agent_signed_in_on_one_replica_replies_through_the_other(replicas):
    first, second = replicas
    handed = httpx.post(f"{first.url}/api/handoff", json={}, timeout=30).json()
    conversation = handed["conversation_id"]

    with httpx.Client(base_url=first.url, timeout=30) as on_first:
        assert harness.GradioPage(on_first, "/agent").sign_in(AGENT_NAME, AGENT_PASSWORD)
        cookies = on_first.cookies
    with httpx.Client(base_url=second.url, cookies=cookies, timeout=30) as on_second:
        page = harness.GradioPage(on_second, "/agent")
        # The queue row's last cell is the conversation id (agent_page.on_select).
        row = {"index": [0, 0], "value": conversation, "row_value": [conversation]}
        opened = page.run("on_select", [], event_data=row)
        assert opened["success"], opened
        reply = "Ana here: your parcel left our warehouse this morning."
        sent = page.run("on_send", [None, reply, None])
        assert sent["success"], sent

        seen = httpx.get(f"{first.url}/api/conversations/{conversation}/messages").json()
        agent_lines = [line for line in seen["messages"] if line["author"] == "agent"]
        assert [(line["agent"], line["text"]) for line in agent_lines] == [(AGENT_NAME, reply)]
        assert seen["status"] == "with_agent"

        # A sign-out on the second replica ends the session on the first one too.
        on_second.get("/agent/logout")
    with httpx.Client(base_url=first.url, cookies=cookies, timeout=30) as again:
        assert again.get("/agent/config").status_code == 401


# The balancer: API balanced freely, pages kept on one replica -------------------------


def served_by(response: httpx.Response) -> str:
    return response.headers["X-Replica"]


def test_api_requests_are_balanced_and_a_page_stays_on_one_replica(replicas, haproxy):
    harness.wait_until_checked_up(haproxy, replicas)
    with httpx.Client(base_url=haproxy.url, timeout=30) as api:
        answered = {served_by(api.get("/api/health")) for _ in range(4)}
    assert answered == {"replica1", "replica2"}

    with httpx.Client(base_url=haproxy.url, timeout=30) as browser:
        first_view = browser.get("/")
        assert first_view.status_code == 200
        home = served_by(first_view)
        assert browser.cookies["ASSISTANT_REPLICA"] == home
        page = harness.GradioPage(browser)
        asked = page.run("respond", page.inputs("respond", message="where is my order", chat=[]))
        history = asked["output"]["data"][1]
        filled = page.run(
            "respond", page.inputs("respond", message="it is PP-204817", chat=history)
        )
        assert filled["success"], filled
        answers = [m for m in filled["output"]["data"][1] if m["role"] == "assistant"]
        assert any("PP-204817" in json.dumps(m["content"]) for m in answers)
        assert {served_by(browser.get("/config")) for _ in range(4)} == {home}


def test_without_stickiness_a_page_event_is_lost(replicas):
    """Why the pages need the cookie: a replica does not know another one's page session,
    so the event stream of an event queued on the first is not found on the second."""
    first, second = replicas
    with httpx.Client(base_url=first.url, timeout=30) as to_first:
        page = harness.GradioPage(to_first)
        joined = page.join("respond", page.inputs("respond", message="hello", chat=[]))
        assert joined.status_code == 200
        said = stream_lines(f"{second.url}/gradio_api/queue/data", page.session_hash)
        assert any('"session_not_found":true' in line for line in said), said
        assert page.completion(joined.json()["event_id"])["success"]  # there it is


def stream_lines(url: str, session_hash: str) -> list[str]:
    """An event stream's lines, up to where the server breaks it off."""
    lines: list[str] = []
    try:
        with httpx.stream("GET", url, params={"session_hash": session_hash}, timeout=30) as got:
            lines.extend(got.iter_lines())
    except httpx.RemoteProtocolError:
        pass  # Gradio says why, then drops the connection
    return lines


# c. A promoted release reaches every replica -------------------------------------------


def test_a_release_promoted_by_retrain_is_served_by_every_replica(
    replicas, replica_environment, record_property
):
    command = [sys.executable, "-m", "assistant.cli", "retrain", "--force", "--json"]
    environment = {**replica_environment, **QUICK_RETRAIN}
    retrain = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert retrain.returncode == 0, retrain.stderr[-3000:]
    result = json.loads(retrain.stdout)
    assert result["promoted"]
    seconds = harness.wait_for_model_version(replicas, result["candidate"], RELEASE_BOUND_S)
    assert set(seconds) == {replica.name for replica in replicas}
    record_property("seconds_until_served", seconds)
    print(f"\nthe promoted release was served after (s): {json.dumps(seconds)}")


# d. A replica killed under load --------------------------------------------------------


@pytest.mark.parametrize("balancer_name", ["haproxy", "nginx"])
def test_a_replica_killed_under_load_loses_no_acknowledged_turn(
    request, replicas, database_url, balancer_name, record_property
):
    balancer: harness.Balancer = request.getfixturevalue(balancer_name)
    victim = replicas[0] if balancer_name == "haproxy" else replicas[1]
    harness.wait_until_checked_up(balancer, replicas)
    result = harness.run_load(
        balancer.url, LOAD_CONVERSATIONS, LOAD_TURNS, KILL_AFTER_REPLIES, victim.kill
    )
    figures = failover_figures(result, database_url, balancer)
    record_property("failover", figures)
    print(f"\n{balancer_name}: {json.dumps(figures)}")

    assert result.killed_at is not None and not victim.running()
    assert figures["lost_turns"] == 0, figures
    # The balancer retried every request the dead replica held, except a reply it had
    # begun to pass on when the replica died (between the reply's headers and its body):
    # no balancer can take that back. Such a turn was answered and logged before the
    # reply began (the customer sees it on their next poll), so it is not lost.
    cut = figures["cut_mid_response"]
    assert figures["errors"] == cut <= MOST_CUT_REPLIES, figures
    assert figures["logged_unacknowledged_turns"] >= cut, figures
    assert len(result.acknowledged) == LOAD_CONVERSATIONS * LOAD_TURNS - cut, figures
    # Each conversation went on under its own id, most of them on the other replica.
    assert figures["split_conversations"] == 0, figures
    assert figures["continued_after_kill"] > LOAD_CONVERSATIONS // 2, figures
    assert figures["failover_seconds"] is not None, figures  # measured, not bounded here
    if balancer.kind == "haproxy":  # its health checks take the dead replica out
        down = harness.seconds_until_down(balancer, victim, result.killed_at, timeout_s=60)
        assert down is not None, harness.haproxy_server(balancer, "api", victim.name)


def failover_figures(
    result: harness.LoadResult, database_url: str, balancer: harness.Balancer
) -> dict:
    """The load's figures, with the acknowledged turns PostgreSQL lacks (lost) and the
    turns it holds that no customer saw acknowledged (retried after the kill)."""
    logged = harness.logged_turns(database_url, result.conversation_ids.values())
    acknowledged = set(result.acknowledged)
    figures = {
        "balancer": balancer.kind,
        **result.summary(),
        "lost_turns": len(acknowledged - logged),
        "logged_unacknowledged_turns": len(logged - acknowledged),
    }
    if balancer.kind == "haproxy":
        backend = harness.haproxy_server(balancer, "api", "BACKEND")
        figures["balancer_retries"] = int(backend.get("wretr") or 0)
        figures["balancer_redispatches"] = int(backend.get("wredis") or 0)
    return figures
