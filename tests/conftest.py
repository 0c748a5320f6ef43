"""Fixtures shared by the test suite."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Fewer examples while developing, more in CI (HYPOTHESIS_PROFILE=ci).
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class StepClock:
    """A clock that moves one second per call, so every batch has its own known-at time."""

    def __init__(self, start: dt.datetime = dt.datetime(2025, 4, 1, 9, tzinfo=dt.UTC)) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


# -- a throwaway PostgreSQL server -------------------------------------------------------


def _postgres_binaries() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        pytest.fail(
            "no PostgreSQL server binaries (pg_ctl, initdb) on this machine and TIMELINE_TEST_POSTGRES_URL is unset: "
            "install the postgresql package (scripts/test.sh does) or point the variable at a server"
        )
    return candidates[-1].parent


def _as_server_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a PostgreSQL server for the tests: TIMELINE_TEST_POSTGRES_URL, or one started here."""
    given = os.environ.get("TIMELINE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    binaries = _postgres_binaries()
    # Not under pytest's own temporary folder: that one is private to the user running the tests.
    folder = Path(tempfile.mkdtemp(prefix="timeline-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=on"
    subprocess.run(
        _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                         "-w", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _schema_url(server: str, schema: str) -> str:
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def fresh_logs(tmp_path, postgres_server_if_needed):
    """A factory of new, empty logs of one kind: ``fresh_logs("sqlite")`` -> a --log target."""
    made_schemas = []

    def make(kind: str) -> str:
        name = uuid.uuid4().hex[:16]
        if kind == "jsonl":
            return str(tmp_path / f"{name}.jsonl")
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        import psycopg

        server = postgres_server_if_needed()
        schema = f"t_{name}"
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        made_schemas.append((server, schema))
        return _schema_url(server, schema)

    yield make
    for server, schema in made_schemas:
        import psycopg

        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_server_if_needed(request):
    """The server, started only by the first test that asks for a PostgreSQL log."""
    return lambda: request.getfixturevalue("postgres_server")


@pytest.fixture
def postgres_url(fresh_logs):
    """A URL whose search_path is a fresh schema: each test gets an empty log on the shared server."""
    return fresh_logs("postgres")


STORE_KINDS = ["jsonl", "sqlite", "postgres"]


@pytest.fixture(params=STORE_KINDS)
def log_kind(request):
    return request.param


@pytest.fixture
def log_target(fresh_logs, log_kind):
    """An empty log of each kind in turn: the store contract runs on all three."""
    return fresh_logs(log_kind)
