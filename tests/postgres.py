"""A throwaway PostgreSQL server for the tests, started from the installed binaries.

`PostgresServer.start()` makes a cluster in a temporary folder, listening on a free
local port and a socket in that folder, and `database_url()` gives each test a schema
of its own on it. Without PostgreSQL's binaries (Debian's `postgresql` package), or
with psycopg missing, `unavailable()` says why, and the tests that need it skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

SERVER_USER = "postgres"  # initdb refuses to run as root


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def unavailable() -> str | None:
    """Why no server can be started here, or None when one can."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return 'psycopg is not installed (pip install -e ".[postgresql]")'
    if _binaries() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root with no {SERVER_USER!r} user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One cluster, its own folder and port; `stop()` removes both."""

    def __init__(self, durable: bool = False) -> None:
        """`durable`: commits wait for the disk, as in production; the tests' server does
        not (fsync off), which only a power cut would tell apart."""
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
        self.port = _free_port()
        self.user = SERVER_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._bin = _binaries()

    def _run(self, *arguments: str) -> None:
        command = [str(self._bin / arguments[0]), *arguments[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, SERVER_USER)
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        """The server's own database, over TCP on the loopback address."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def database_url(self) -> str:
        """A URL whose tables all land in a new, empty schema of their own."""
        import psycopg

        schema = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        return f"{self.url}?options={quote(f'-csearch_path={schema}')}"


_for_every_log: PostgresServer | None = None  # set under `pytest --database postgresql`


def use_for_every_log(server: PostgresServer) -> None:
    global _for_every_log
    _for_every_log = server


def log_for_test(path: Path) -> Path | str:
    """Where a test's log goes: `path` (SQLite), or under `--database postgresql` a schema
    of its own on the session's PostgreSQL server."""
    return path if _for_every_log is None else _for_every_log.database_url()
