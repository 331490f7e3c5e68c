"""The assistant as a deployment runs it: PostgreSQL, replicas, a load balancer in front.

Shared by `tests/test_deployment.py` and `benchmarks/replicas.py`. Each replica is a
real `assistant serve` process on a port of its own, all reading one models folder and
one PostgreSQL log, with one contact key and one config file (the staff accounts, and
the balancer named in `trusted_proxies`). The balancers are the real HAProxy and nginx
with the configs in `deploy/`, filled in with this machine's ports. Everything listens
on 127.0.0.1 only.

`GradioPage` drives a Gradio page over HTTP the way its JavaScript does (join the
queue, then read the event stream), and `run_load` sends many conversations at once
through a balancer and keeps what is needed to count errors and lost turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assistant.core.settings import Settings, UserAccount
from tests import postgres
from tests.conftest import environment_for, free_port

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
NGINX_CONFIG = ROOT / "deploy" / "nginx.conf"
START_TIMEOUT_S = 120.0  # two replicas loading their models at once on two cores
# The addresses the deploy/ configs take, as `${NAME}`.
LISTEN, REPLICA_VARIABLE = "ASSISTANT_LISTEN", "ASSISTANT_REPLICA_{}"


# What is installed ----------------------------------------------------------------------


def binary(name: str) -> str | None:
    """The program's path: on PATH, or in the sbin folders Debian installs daemons to
    (not on an ordinary user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing_for_replicas() -> str | None:
    """Why replicas behind HAProxy cannot run here, or None when they can."""
    reason = postgres.unavailable()
    if reason is not None:
        return reason
    if binary("haproxy") is None:
        return "HAProxy is not installed (Debian: apt-get install haproxy)"
    return None


def missing_nginx() -> str | None:
    return None if binary("nginx") else "nginx is not installed (apt-get install nginx)"


# The replicas ---------------------------------------------------------------------------


def write_replica_config(path: Path, users: Iterable[UserAccount], proxies: list[str]) -> Path:
    """The one config file every replica reads (ASSISTANT_CONFIG): the staff accounts, so
    the agent and admin pages are served, and the balancer as a trusted proxy, so each
    customer is rate limited by their own address, not the balancer's."""
    lines = [f"trusted_proxies = {json.dumps(proxies)}", ""]
    for user in users:
        lines += [
            "[[users]]",
            f"name = {json.dumps(user.name)}",
            f"role = {json.dumps(user.role)}",
            f"password_hash = {json.dumps(user.password_hash)}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def replica_environment(
    settings: Settings, database_url: str, contact_key: str, config_file: Path
) -> dict[str, str]:
    """What every replica shares: the settings (one models folder), the PostgreSQL log,
    the key customers' contact addresses are sealed with, and the config file."""
    return {
        **os.environ,
        **environment_for(settings),
        "ASSISTANT_DATABASE_URL": database_url,
        "ASSISTANT_CONTACT_KEY": contact_key,
        "ASSISTANT_CONFIG": str(config_file),
        "ASSISTANT_RELOAD_CHECK_SECONDS": "0.5",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }


@dataclass
class Replica:
    """One `assistant serve` process; its output goes to `log_path`."""

    name: str
    port: int
    environment: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Replica:
        command = [sys.executable, "-m", "assistant.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine or container dies."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if not self.running():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]


def start_replicas(count: int, environment: dict[str, str], folder: Path) -> list[Replica]:
    """`count` replicas started together (they load their models at the same time)."""
    replicas = [
        Replica(f"replica{n}", free_port(), environment, folder / f"replica{n}.log")
        for n in range(1, count + 1)
    ]
    for replica in replicas:
        replica.start()
    wait_until_healthy(replicas)
    return replicas


def health(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """`/api/health`'s answer, or None while nothing answers."""
    try:
        response = httpx.get(f"{url}/api/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def wait_until_healthy(replicas: Iterable[Replica], timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    for replica in replicas:
        while health(replica.url) is None:
            if not replica.running():
                raise RuntimeError(f"{replica.name} exited:\n{replica.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{replica.name} is not healthy:\n{replica.log_tail()}")
            time.sleep(0.25)


def wait_for_model_version(
    replicas: Iterable[Replica], version: str, timeout_s: float = 30.0
) -> dict[str, float]:
    """Seconds until each replica's `/api/health` reports `version`; raises past the
    bound, naming what each one serves."""
    started = time.monotonic()
    waiting = {replica.name: replica for replica in replicas}
    seconds: dict[str, float] = {}
    while waiting:
        for name, replica in list(waiting.items()):
            answer = health(replica.url)
            if answer and answer["model_version"] == version:
                seconds[name] = round(time.monotonic() - started, 2)
                del waiting[name]
        if waiting and time.monotonic() - started > timeout_s:
            serving = {
                name: (health(r.url) or {}).get("model_version") for name, r in waiting.items()
            }
            raise AssertionError(f"not serving {version} after {timeout_s} s: {serving}")
        time.sleep(0.2)
    return seconds


# The balancers --------------------------------------------------------------------------


@dataclass
class Balancer:
    """A load balancer process in front of the replicas."""

    kind: str  # "haproxy" or "nginx"
    port: int
    process: subprocess.Popen
    folder: Path
    stats_socket: Path | None = None  # HAProxy's, for `show stat`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, characters: int = 3000) -> str:
        log = self.folder / f"{self.kind}.log"
        return log.read_text(encoding="utf-8", errors="replace")[-characters:]


def addresses(listen_port: int, replicas: list[Replica]) -> dict[str, str]:
    """The `${...}` values the deploy/ configs take."""
    values = {LISTEN: f"127.0.0.1:{listen_port}"}
    for n, replica in enumerate(replicas, start=1):
        values[REPLICA_VARIABLE.format(n)] = replica.address
    return values


def start_haproxy(replicas: list[Replica], folder: Path) -> Balancer:
    """HAProxy with deploy/haproxy.cfg as it is (it reads the addresses from the
    environment), plus a stats socket so the test can read what HAProxy saw."""
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / "haproxy.sock"
    extra = folder / "stats.cfg"
    extra.write_text(f'global\n    stats socket "{socket_path}" mode 600 level admin\n')
    port = free_port()
    environment = {**os.environ, **addresses(port, replicas)}
    command = [str(binary("haproxy")), "-db", "-f", str(HAPROXY_CONFIG), "-f", str(extra)]
    with (folder / "haproxy.log").open("ab") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    balancer = Balancer("haproxy", port, process, folder, socket_path)
    _wait_until_serving(balancer)
    return balancer


def filled_nginx_config(listen_port: int, replicas: list[Replica]) -> str:
    """deploy/nginx.conf with the addresses put in, as `envsubst` with the names listed
    does: nginx's own `$variables` stay as they are."""
    text = NGINX_CONFIG.read_text(encoding="utf-8")
    for name, value in addresses(listen_port, replicas).items():
        text = text.replace("${" + name + "}", value)
    return text


def start_nginx(replicas: list[Replica], folder: Path) -> Balancer:
    """nginx with deploy/nginx.conf filled in, in the foreground, its files in `folder`."""
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(filled_nginx_config(port, replicas), encoding="utf-8")
    command = [str(binary("nginx")), "-p", str(folder), "-c", str(config)]
    command += ["-e", str(folder / "nginx.log")]
    command += ["-g", f"daemon off; pid {folder / 'nginx.pid'};"]
    with (folder / "nginx.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    balancer = Balancer("nginx", port, process, folder)
    _wait_until_serving(balancer)
    return balancer


def _wait_until_serving(balancer: Balancer, timeout_s: float = 20.0) -> None:
    """Until a health request through the balancer is answered by a replica."""
    deadline = time.monotonic() + timeout_s
    while health(balancer.url, timeout=2) is None:
        if balancer.process.poll() is not None:
            raise RuntimeError(f"{balancer.kind} exited:\n{balancer.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{balancer.kind} does not serve:\n{balancer.log_tail()}")
        time.sleep(0.1)


def haproxy_stats(balancer: Balancer) -> list[dict[str, str]]:
    """HAProxy's `show stat`: a row per frontend, backend and server."""
    assert balancer.stats_socket is not None
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(5)
        connection.connect(str(balancer.stats_socket))
        connection.sendall(b"show stat\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().strip().splitlines()
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def haproxy_server(balancer: Balancer, backend: str, server: str) -> dict[str, str]:
    rows = haproxy_stats(balancer)
    return next(r for r in rows if r["pxname"] == backend and r["svname"] == server)


def wait_until_checked_up(balancer: Balancer, replicas: Iterable[Replica], timeout_s=10.0) -> None:
    """Until HAProxy's health checks count every replica up (a restarted one needs two
    passing checks); nginx has no checks of its own to wait for."""
    if balancer.kind != "haproxy":
        return
    deadline = time.monotonic() + timeout_s
    for replica in replicas:
        while not haproxy_server(balancer, "api", replica.name)["status"].startswith("UP"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"HAProxy does not count {replica.name} up")
            time.sleep(0.1)


def seconds_until_down(
    balancer: Balancer, replica: Replica, since: float, timeout_s: float = 10.0
) -> float | None:
    """Seconds from `since` (monotonic) until HAProxy's health checks take `replica` out."""
    while time.monotonic() - since < timeout_s:
        if haproxy_server(balancer, "api", replica.name)["status"].startswith("DOWN"):
            return round(time.monotonic() - since, 2)
        time.sleep(0.05)
    return None


# Gradio pages over HTTP -----------------------------------------------------------------


class GradioPage:
    """A browser tab on one Gradio page: its cookies (in `client`), a session, and events
    run as the page's JavaScript runs them: POST the event to the queue, then read the
    session's event stream until the event completes. Both requests must reach the
    process that holds the session, which is what the balancers' stickiness is for."""

    def __init__(self, client: httpx.Client, path: str = "") -> None:
        self.client, self.path = client, path.rstrip("/")
        self.session_hash = secrets.token_hex(6)
        self._config: dict[str, Any] | None = None

    def sign_in(self, name: str, password: str) -> httpx.Response:
        form = {"username": name, "password": password}
        return self.client.post(f"{self.path}/login", data=form)

    def config(self) -> dict[str, Any]:
        if self._config is None:
            response = self.client.get(f"{self.path}/config")
            response.raise_for_status()
            self._config = response.json()
        return self._config

    def events(self) -> dict[str, dict[str, Any]]:
        """The page's events by API name (as in its `/config`)."""
        return {event["api_name"]: event for event in self.config()["dependencies"]}

    def inputs(self, api_name: str, **by_elem_id: Any) -> list[Any]:
        """An event's inputs as the browser sends them: the values given for components by
        their `elem_id`, and null for the rest (the state the server holds)."""
        elem_ids = {c["id"]: c["props"].get("elem_id") for c in self.config()["components"]}
        return [by_elem_id.get(elem_ids[i]) for i in self.events()[api_name]["inputs"]]

    def join(self, api_name: str, data: list[Any], event_data: Any = None) -> httpx.Response:
        event = self.events()[api_name]
        body = {
            "data": data,
            "event_data": event_data,
            "fn_index": event["id"],
            "trigger_id": event["targets"][0][0],
            "session_hash": self.session_hash,
        }
        return self.client.post(f"{self.path}/gradio_api/queue/join", json=body)

    def run(self, api_name: str, data: list[Any], event_data: Any = None) -> dict[str, Any]:
        """Run one event; its `process_completed` message (`success`, `output`)."""
        joined = self.join(api_name, data, event_data)
        joined.raise_for_status()
        return self.completion(joined.json()["event_id"])

    def completion(self, event_id: str) -> dict[str, Any]:
        url = f"{self.path}/gradio_api/queue/data"
        params = {"session_hash": self.session_hash}
        with self.client.stream("GET", url, params=params, timeout=60) as stream:
            stream.raise_for_status()
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[len("data:") :])
                if message.get("msg") == "process_completed" and message["event_id"] == event_id:
                    return message
                if message.get("msg") == "unexpected_error":
                    raise RuntimeError(f"the event failed: {message}")
        raise RuntimeError(f"the event stream closed before event {event_id} completed")


# Load through a balancer ----------------------------------------------------------------

# What each simulated customer says, one line a turn, starting at a line of its own: an
# order question answered over two turns (a slot), shipping, returns, small talk.
CUSTOMER_LINES = (
    "hello there",
    "where is my order",
    "it is PP-204817",
    "how much does delivery to Ireland cost",
    "can I return shoes that do not fit",
    "thanks, that is all",
)


QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


@dataclass
class Attempt:
    """One request: when it started and ended (monotonic seconds) and how it went."""

    conversation: int
    started: float
    ended: float
    turn_id: int | None = None  # set when acknowledged: a 200 with its turn
    conversation_id: str | None = None  # the conversation the reply says it belongs to
    error: str | None = None
    cut_mid_response: bool = False  # the status line came, the body never did


@dataclass
class LoadResult:
    """What the customers saw, and when the replica was killed."""

    attempts: list[Attempt] = field(default_factory=list)
    conversation_ids: dict[int, str] = field(default_factory=dict)
    killed_at: float | None = None
    started: float = 0.0
    ended: float = 0.0

    @property
    def acknowledged(self) -> list[int]:
        return [a.turn_id for a in self.attempts if a.turn_id is not None]

    @property
    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if a.error is not None]

    def errors_by_kind(self) -> Counter[str]:
        return Counter(a.error for a in self.failures if a.error)

    def turns_per_conversation(self) -> Counter[int]:
        return Counter(a.conversation for a in self.attempts if a.turn_id is not None)

    def split_conversations(self) -> int:
        """Customers whose replies name more than one conversation: a conversation that did
        not carry over to the other replica would start again under a new id."""
        ids: dict[int, set[str]] = {}
        for attempt in self.attempts:
            if attempt.conversation_id is not None:
                ids.setdefault(attempt.conversation, set()).add(attempt.conversation_id)
        return sum(len(named) > 1 for named in ids.values())

    def continued_after_kill(self) -> int:
        """Conversations with a turn acknowledged that was sent after the kill."""
        if self.killed_at is None:
            return 0
        after = self.killed_at
        return len({a.conversation for a in self.attempts if a.turn_id and a.started > after})

    def failover_seconds(self) -> float | None:
        """From the kill until requests succeed again: the end of the first successful
        request that started after the kill and after the last failure."""
        if self.killed_at is None:
            return None
        after = max([self.killed_at, *(a.ended for a in self.failures)])
        recovered = [a.ended for a in self.attempts if a.turn_id and a.started >= after]
        return round(min(recovered) - self.killed_at, 3) if recovered else None

    def slowest_in_flight_at_kill(self) -> float | None:
        """The longest request that was under way when the replica died (a retried one
        waited for the dead replica's connection to drop, then for the other replica)."""
        if self.killed_at is None:
            return None
        spans = [
            a.ended - a.started
            for a in self.attempts
            if a.started <= self.killed_at <= a.ended and a.turn_id
        ]
        return round(max(spans), 3) if spans else None

    def latency_ms(self) -> dict[str, float]:
        """Round trips of the acknowledged requests: median, 95th and 99th percentile."""
        spans = sorted((a.ended - a.started) * 1000 for a in self.attempts if a.turn_id)
        if not spans:
            return {}
        at = {name: spans[min(len(spans) - 1, int(q * len(spans)))] for name, q in QUANTILES}
        return {name: round(value, 1) for name, value in at.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "conversations": len(self.turns_per_conversation()),
            "requests": len(self.attempts),
            "acknowledged_turns": len(self.acknowledged),
            "errors": len(self.failures),
            "errors_by_kind": dict(self.errors_by_kind()),
            "cut_mid_response": sum(a.cut_mid_response for a in self.attempts),
            "seconds": round(self.ended - self.started, 2),
            "latency_ms": self.latency_ms(),
            "continued_after_kill": self.continued_after_kill(),
            "split_conversations": self.split_conversations(),
            "failover_seconds": self.failover_seconds(),
            "slowest_in_flight_at_kill_seconds": self.slowest_in_flight_at_kill(),
        }


def run_load(
    url: str,
    conversations: int,
    turns: int,
    kill_after_replies: int | None = None,
    kill: Callable[[], None] | None = None,
    think_time_s: float = 0.05,
) -> LoadResult:
    """`conversations` customers at once, each sending `turns` messages through `url`
    (a new conversation, then its id on every later turn), from addresses of their own
    (X-Forwarded-For, as a proxy in front of the balancer would add). Once
    `kill_after_replies` replies are in, `kill()` runs. No request is retried here: an
    error is what a customer would see."""
    return asyncio.run(_load(url, conversations, turns, kill_after_replies, kill, think_time_s))


async def _load(
    url: str,
    conversations: int,
    turns: int,
    kill_after_replies: int | None,
    kill: Callable[[], None] | None,
    think_time_s: float,
) -> LoadResult:
    result = LoadResult(started=time.monotonic())
    replies = 0

    def note_reply() -> None:
        nonlocal replies
        replies += 1
        if kill is not None and result.killed_at is None and replies >= (kill_after_replies or 0):
            result.killed_at = time.monotonic()
            # In a thread: reaping the dead process must not stall the customers.
            killing.append(asyncio.get_running_loop().run_in_executor(None, kill))

    killing: list[asyncio.Future] = []

    limits = httpx.Limits(max_connections=conversations, max_keepalive_connections=conversations)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def customer(number: int) -> None:
            headers = {"X-Forwarded-For": f"198.51.{100 + number // 250}.{number % 250 + 1}"}
            conversation_id: str | None = None
            for turn in range(turns):
                line = CUSTOMER_LINES[(number + turn) % len(CUSTOMER_LINES)]
                body = {"message": line, "conversation_id": conversation_id}
                attempt = Attempt(number, time.monotonic(), 0.0)
                await send_turn(client, body, headers, attempt)
                if attempt.conversation_id is not None:
                    conversation_id = attempt.conversation_id
                    result.conversation_ids[number] = conversation_id
                attempt.ended = time.monotonic()
                result.attempts.append(attempt)
                if attempt.turn_id is not None:
                    note_reply()
                await asyncio.sleep(think_time_s)

        await asyncio.gather(*(customer(n) for n in range(conversations)))
        await asyncio.gather(*killing)
    result.ended = time.monotonic()
    return result


async def send_turn(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], attempt: Attempt
) -> None:
    """POST one chat turn and note how it went on `attempt`. The body is read apart from
    the status line, so that a reply cut off after it began (its replica died between
    the headers and the body, too late for any balancer to retry) is told apart from a
    request that got no reply at all."""
    try:
        async with client.stream("POST", "/api/chat", json=body, headers=headers) as response:
            try:
                await response.aread()
            except httpx.HTTPError as error:
                attempt.cut_mid_response = True
                attempt.error = f"cut mid-response: {type(error).__name__}"
                return
    except httpx.HTTPError as error:
        attempt.error = f"{type(error).__name__}: {error}"
        return
    if response.status_code != 200:
        attempt.error = f"HTTP {response.status_code}"
        return
    reply = response.json()
    attempt.turn_id, attempt.conversation_id = reply["turn_id"], reply["conversation_id"]


def logged_turns(database_url: str, conversation_ids: Iterable[str]) -> set[int]:
    """The turn ids PostgreSQL holds for these conversations."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT id FROM turns WHERE conversation_id = ANY(%s)", [list(conversation_ids)]
        ).fetchall()
    return {row[0] for row in rows}


@contextlib.contextmanager
def stopping(*parts: Replica | Balancer) -> Iterator[None]:
    """Stop every part on the way out, whatever happened."""
    try:
        yield
    finally:
        for part in parts:
            with contextlib.suppress(Exception):
                part.stop()
