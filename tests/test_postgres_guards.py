"""PostgreSQL under attack from its own users: the database refuses every entry verify would refuse,
a held lock ends a writer's wait with one line, and no password is ever printed or written."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from events_log.envelope import encode_entry
from events_log.events import IncidentDescribed, MonitorDescribed
from events_log.postgres import LOCK_KEY
from events_log.stores import open_store, redact_url

from .conftest import StepClock
from .test_replay import obs

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Pw-19-never-shown"


def described():
    return [
        IncidentDescribed(
            slug="coastal-2025", title="Coastal massacres", place="Latakia", start_date=dt.date(2025, 3, 6),
            summary="Killings on the Syrian coast.",
        ),
        MonitorDescribed(slug="SOHR", full_name="Syrian Observatory for Human Rights", description="A monitor."),
    ]  # fmt: skip


def seed(url):
    """A log of two descriptions and three observations, stamped one second apart from 1 April 2025."""
    with open_store(url) as store:
        store.clock = StepClock()
        store.append(described())
        store.append([obs("a", 8, 532), obs("b", 8, 745)])
        store.append([obs("c", 9, 3)])


def with_user(url: str, user: str, password: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    userinfo = user if password is None else f"{user}:{password}"
    return urllib.parse.urlunsplit(
        (parts.scheme, f"{userinfo}@{parts.hostname}:{parts.port}", parts.path, parts.query, parts.fragment)
    )


def with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def readme_sql() -> str:
    """The team section's SQL block of README.md, exactly as printed."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### A team on one PostgreSQL server") :]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def team(postgres_server):
    """The README's team server: database tolls, a log made by the owner, then the README's SQL run as printed."""
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS tolls")
        admin.execute("DROP ROLE IF EXISTS reporter")
        admin.execute("CREATE DATABASE tolls")
    owner = with_database(postgres_server, "tolls")
    seed(owner)
    with psycopg.connect(owner, autocommit=True) as connection:
        connection.execute(readme_sql())
    try:
        yield owner, with_user(owner, "reporter")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute("DROP DATABASE tolls WITH (FORCE)")
            admin.execute("DROP ROLE reporter")


def next_row(url, *, recorded_at=None, batch_end=None, hash_column=None, line=None):
    """A hand-made row for the next position: by default exactly what an append would store."""
    with open_store(url) as store:
        last = next(store.records(store.head().entries - 1))
    position = last.position + 1
    recorded_at = recorded_at or "2025-04-01T09:00:10.000000Z"
    made, digest = encode_entry(
        obs("d", 10, 4, "increment"), position=position, recorded_at=recorded_at,
        batch_end=position if batch_end is None else batch_end, prev_hash=last.hash,
    )  # fmt: skip
    line = made if line is None else line
    return (position, recorded_at, "Observation", "d", hash_column or digest, last.hash, line)


def junk_line(position: int) -> bytes:
    """Bytes that are not JSON yet end in the true SHA-256 of their body, as a verified line's do."""
    body = b'{"position":' + str(position).encode() + b", not json at all}"
    return body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'


def insert(url, row):
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO timeline_entries (position, recorded_at, type, subject, hash, prev_hash, line) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            row,
        )


def assert_log_still_works(url, entries):
    with open_store(url) as store:
        assert store.verify().head.entries == entries
        store.clock = lambda: dt.datetime(2025, 4, 2, tzinfo=dt.UTC)
        store.append([obs("e", 11, 9, "increment")])
        assert store.verify().head.entries == entries + 1


def test_readme_sql_takes_temporary_tables_away_from_the_reporter(team):
    """After the README's setup the reporter cannot create the temporary table of the shadow attack."""
    _, reporter = team
    with psycopg.connect(reporter, autocommit=True) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute("CREATE TEMP TABLE timeline_entries (position bigint, hash text)")


@pytest.mark.parametrize("as_role", ["owner", "reporter"])
def test_a_temporary_table_does_not_stand_in_for_the_log(postgres_url, as_role):
    """The issue's shadow attack, where TEMP is still granted: the insert is refused and the log goes on."""
    seed(postgres_url)
    url = postgres_url
    if as_role == "reporter":
        schema = urllib.parse.parse_qs(urllib.parse.urlsplit(postgres_url).query)["options"][0].split("=")[1]
        role = f"r_{schema}"
        with psycopg.connect(postgres_url, autocommit=True) as owner:
            owner.execute(f"CREATE ROLE {role} LOGIN")
            owner.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            owner.execute(f"GRANT SELECT, INSERT ON timeline_entries TO {role}")
        url = with_user(postgres_url, role)
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            schema = connection.execute("SELECT current_schema()").fetchone()[0]
            connection.execute("CREATE TEMP TABLE timeline_entries (position bigint, hash text)")
            connection.execute("INSERT INTO pg_temp.timeline_entries VALUES (999, 'x')")
            with pytest.raises(psycopg.errors.RaiseException, match="extend the chain"):
                connection.execute(
                    f"INSERT INTO {schema}.timeline_entries VALUES "
                    "(1000, '2030-01-01T00:00:00.000000Z', 'Observation', 'z', repeat('a',64), 'x', '\\x00')"
                )
        assert_log_still_works(postgres_url, 5)
    finally:
        if as_role == "reporter":
            with psycopg.connect(postgres_url, autocommit=True) as owner:
                owner.execute(f"DROP OWNED BY {role}")
                owner.execute(f"DROP ROLE {role}")


BROKEN = {
    "a junk line": lambda url: next_row(url, line=junk_line(5), hash_column=junk_line(5)[-66:-2].decode()),
    "a hash column that disagrees with the line": lambda url: next_row(url, hash_column="ab" * 32),
    "a recorded_at that goes back": lambda url: next_row(url, recorded_at="2025-04-01T08:59:59.000000Z"),
    "a recorded_at column that is not the line's": lambda url: (
        *next_row(url)[:1],
        "2025-04-01T09:00:11.000000Z",
        *next_row(url)[2:],
    ),
    "a batch left open": lambda url: next_row(url, batch_end=6),
}


@pytest.mark.parametrize("as_role", ["owner", "reporter"])
@pytest.mark.parametrize("broken", list(BROKEN))
def test_the_database_refuses_what_verify_would_refuse(team, as_role, broken):
    """Rows inserted with plain SQL by either role that verify would reject are refused; the log stays usable."""
    owner, reporter = team
    url = owner if as_role == "owner" else reporter
    with pytest.raises(psycopg.errors.RaiseException, match="position 5"):
        insert(url, BROKEN[broken](owner))
    assert_log_still_works(owner, 5)


@pytest.mark.parametrize("as_role", ["owner", "reporter"])
def test_a_hand_made_entry_that_verify_accepts_is_accepted(team, as_role):
    """The guards refuse what is broken, not what is hand-made: a correct row inserted with SQL is kept."""
    owner, reporter = team
    insert(owner if as_role == "owner" else reporter, next_row(owner))
    assert_log_still_works(owner, 6)


def test_the_owners_next_write_restores_missing_guards(postgres_url):
    """A table whose guards are older or missing gets them back at the owner's next write."""
    seed(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP TRIGGER timeline_entries_chain ON timeline_entries")
        connection.execute("COMMENT ON TABLE timeline_entries IS NULL")
    assert_log_still_works(postgres_url, 5)
    with pytest.raises(psycopg.errors.RaiseException, match="position 6"):
        insert(postgres_url, next_row(postgres_url, line=junk_line(6), hash_column=junk_line(6)[-66:-2].decode()))


def timeline(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "timeline", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "TIMELINE_LOG": "", **(env or {})},
    )  # fmt: skip


def source_log(tmp_path) -> str:
    """A file log that extends the seeded one by one entry."""
    path = str(tmp_path / "source.jsonl")
    if Path(path).exists():
        return path
    seed(path)
    with open_store(path) as store:
        store.clock = lambda: dt.datetime(2025, 4, 2, tzinfo=dt.UTC)
        store.append([obs("e", 10, 7, "increment")])
    return path


def test_a_held_advisory_lock_ends_the_wait_with_one_line(team, tmp_path):
    """Another session holding the writers' lock makes a write fail within the timeout, naming that session."""
    owner, reporter = team
    with psycopg.connect(reporter, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = time.monotonic()
        done = timeline("copy", source_log(tmp_path), owner, env={"TIMELINE_LOCK_TIMEOUT": "1.5"})
        waited = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert f"session {pid} (user reporter" in done.stderr
    assert "waited 1.5 s" in done.stderr
    assert waited < 30
    with open_store(owner) as store:
        assert store.verify().head.entries == 5
    assert timeline("copy", source_log(tmp_path), owner).returncode == 0


@pytest.mark.parametrize("form", ["user-info", "query parameter"])
def test_no_password_in_any_output_or_page(postgres_url, tmp_path, form):
    """A password in the URL, in either form, appears in no command's output and no file of a report."""
    parts = urllib.parse.urlsplit(postgres_url)
    if form == "user-info":
        url = with_user(postgres_url, parts.username, PASSWORD)
        unreachable = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/nowhere?connect_timeout=2"
        unreadable = f"postgresql://someone:{PASSWORD}@127.0.0.1:{parts.port}/db?bogus=1"
    else:
        url = f"{postgres_url}&password={PASSWORD}"
        unreachable = f"postgresql://someone@127.0.0.1:1/nowhere?connect_timeout=2&password={PASSWORD}"
        unreadable = f"postgresql://someone@127.0.0.1:{parts.port}/db?password={PASSWORD}&bogus=1"
    source = source_log(tmp_path)
    runs = {
        "copy": timeline("copy", source, url),
        "copy again": timeline("copy", source, url),
        "verify": timeline("verify", "--log", url),
        "log": timeline("log", "--log", url),
        "log jsonl": timeline("log", "--log", url, "--format", "jsonl"),
        "replay": timeline("replay", "--log", url),
        "report --log": timeline("report", "--log", url, "--out", str(tmp_path / "by-option")),
        "report from TIMELINE_LOG": timeline("report", "--out", str(tmp_path / "by-env"), env={"TIMELINE_LOG": url}),
        "copy out": timeline("copy", url, str(tmp_path / "back.jsonl")),
        "checkpoint": timeline("checkpoint", "--log", url, "--out", str(tmp_path / "checkpoints.jsonl")),
        "verify checkpoints": timeline("verify", "--log", url, "--checkpoints", str(tmp_path / "checkpoints.jsonl")),
        "unreachable": timeline("verify", "--log", unreachable),
        "unreadable URL": timeline("verify", "--log", unreadable),
        "mistyped scheme": timeline("verify", "--log", "postgresq" + url.removeprefix("postgresql")),
    }
    for name, done in runs.items():
        assert PASSWORD not in done.stdout + done.stderr, name
        assert done.stderr.count("\n") <= 1, (name, done.stderr)
    succeeded = ("copy", "copy again", "verify", "log", "report --log", "checkpoint", "verify checkpoints")
    assert [runs[n].returncode for n in succeeded] == [0] * len(succeeded)
    # Issue 12: a reader that cannot reach the server has no log to read ("no log at", exit 2).
    assert (runs["unreachable"].returncode, runs["unreadable URL"].returncode) == (2, 2)
    assert "no log at" in runs["unreachable"].stderr
    assert runs["mistyped scheme"].returncode == 2
    assert "***" in runs["verify"].stdout
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len([f for f in files if f.suffix == ".html"]) >= 4
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    assert '--log "$TIMELINE_LOG"' in html.unescape((tmp_path / "by-env" / "index.html").read_text())
    assert f"--log {shlex.quote(postgres_url)} " in html.unescape((tmp_path / "by-option" / "index.html").read_text())


def test_a_junk_row_in_the_table_is_named_by_log_and_position(postgres_url):
    """A row that slipped past disabled guards stops replay with one line naming the log and its position."""
    seed(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE timeline_entries DISABLE TRIGGER USER")
    insert(postgres_url, next_row(postgres_url, line=b"junk"))
    done = timeline("replay", "--log", postgres_url)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "position 5 is not a readable entry" in done.stderr
    assert open_store(postgres_url).location in done.stderr


def test_a_connection_cut_during_copy_is_one_line(postgres_url, tmp_path):
    """A server that ends the session in the middle of a COPY gives one line, psycopg's own warning silenced."""
    source = str(tmp_path / "big.jsonl")
    with open_store(source) as store:
        store.clock = StepClock()
        store.append(described())
        store.append([obs(f"o{day}-{n}", day, n) for day in range(8, 28) for n in range(1, 250)])
    process = subprocess.Popen(
        [sys.executable, "-m", "timeline", "copy", source, postgres_url],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with psycopg.connect(postgres_url, autocommit=True) as killer:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            killed = killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COPY timeline_entries%%' "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
            if killed or process.poll() is not None:
                break
            time.sleep(0.005)
    _, stderr = process.communicate(timeout=60)
    assert killed, "the copy ended before it could be cut"
    assert process.returncode == 1
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("timeline: error: ")


@given(
    # Any text libpq can take as a password: no NUL, no lone surrogates.
    secret=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=30).map(
        lambda text: "Zq9" + text
    ),
    form=st.sampled_from(["postgresql://{u}:{p}@db.example.org:5432/tolls?sslmode=require",
                          "postgresql://{u}@db.example.org:5432/tolls?sslmode=require&password={p}",
                          "postgres://{u}@db.example.org/tolls?pass%77ord={p}&application_name=x"]),
)  # fmt: skip
def test_redacted_urls_keep_everything_but_the_password(secret, form):
    """Any password, in any URL form, is gone from both redactions, and the rest of the URL still reads the same."""
    url = form.format(u="ed", p=urllib.parse.quote(secret, safe=""))
    for shown in (redact_url(url), redact_url(url, mask=None)):
        assert secret not in shown
        assert urllib.parse.quote(secret, safe="") not in shown
    given_parts = conninfo_to_dict(url)
    kept = conninfo_to_dict(redact_url(url, mask=None))
    assert {k: v for k, v in given_parts.items() if k != "password"} == kept
