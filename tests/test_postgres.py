"""PostgreSQL only: the database refuses to change history, and the day-to-day role can only append and read."""

from __future__ import annotations

import urllib.parse
import uuid

import psycopg
import pytest

from events_log.errors import BrokenChainError, StoreError
from events_log.sql import SqlStore
from events_log.stores import open_store
from timeline.replay import replay

from .conftest import StepClock
from .helpers import obs
from .test_jsonl_store import NAMES
from .test_kept_incidents import said

pytestmark = pytest.mark.postgres


def seeded(url):
    store = open_store(url)
    store.clock = StepClock()
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745), obs("c", 9, 3)])
    return store


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE timeline_entries SET line = '\\x00' WHERE position = 0",
        "DELETE FROM timeline_entries WHERE position = 2",
        "TRUNCATE timeline_entries",
        "INSERT INTO timeline_entries VALUES (7, 't', 'Observation', 'z', 'h', 'p', '\\x00')",
    ],
)
def test_the_owner_cannot_change_history_either(postgres_url, statement):
    """UPDATE, DELETE, TRUNCATE and out-of-chain INSERTs fail in the database's own triggers."""
    seeded(postgres_url)
    with (
        psycopg.connect(postgres_url, autocommit=True) as connection,
        pytest.raises(psycopg.errors.RaiseException, match=r"append-only|extend the chain"),
    ):
        connection.execute(statement)
    assert open_store(postgres_url).verify().head.entries == 5


def test_tampering_behind_disabled_triggers_is_named(postgres_url):
    """A superuser who disables the triggers and edits a row is still caught by verify, at that position."""
    seeded(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE timeline_entries DISABLE TRIGGER USER")
        connection.execute(
            "UPDATE timeline_entries SET line = convert_to(replace(convert_from(line, 'UTF8'), '745', '754'), 'UTF8') "
            "WHERE position = 3"
        )
    with pytest.raises(BrokenChainError) as caught:
        open_store(postgres_url).verify()
    assert caught.value.position == 3


def _as_role(url: str, role: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{role}@{parts.hostname}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def test_least_privilege_role_appends_and_reads_but_cannot_change_history(postgres_url):
    """The README's day-to-day role (SELECT and INSERT only) appends and reads, and can change nothing."""
    seeded(postgres_url)
    role = f"reporter_{uuid.uuid4().hex[:8]}"
    schema = urllib.parse.parse_qs(urllib.parse.urlsplit(postgres_url).query)["options"][0].split("=")[1]
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        owner.execute(f"GRANT SELECT, INSERT ON timeline_entries, timeline_figures TO {role}")
    try:
        url = _as_role(postgres_url, role)
        store = open_store(url)
        store.append([obs("d", 10, 4, "increment")])
        assert [e.event.id for e in store.entries(len(NAMES))] == ["a", "b", "c", "d"]
        assert store.verify().head.entries == 6
        with psycopg.connect(url, autocommit=True) as connection:
            for statement in (
                "UPDATE timeline_entries SET type = 'x'",
                "DELETE FROM timeline_entries",
                "TRUNCATE timeline_entries",
                "DROP TABLE timeline_entries",
                "ALTER TABLE timeline_entries DISABLE TRIGGER USER",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    connection.execute(statement)
        store.close()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")


def test_unreachable_server_is_one_clear_error(postgres_server):
    """A server that does not answer gives one line naming the log, without its password."""
    store = open_store("postgresql://someone:secret@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(
        StoreError, match=r"cannot connect to postgresql://someone:\*\*\*@127.0.0.1:1/nowhere"
    ) as caught:
        store.head()
    assert "secret" not in str(caught.value)


def test_an_append_reads_past_index_blocks_deleted_once_listed(postgres_url, tmp_path, monkeypatch):
    """A writer reads the stored index in its own transaction, which sees what other sessions commit meanwhile:
    blocks that one not taking the writers' lock deletes between their listing and their reading are read from
    the log again; the append lands, and replays as a log of the same lines does."""
    store = seeded(postgres_url)
    replay(store)  # the replay index is kept in the database from now on, and appends extend it
    listed = SqlStore._select_matching

    def then_deleted(self, cursor, projection, column):
        listed(self, cursor, projection, column)
        with psycopg.connect(postgres_url, autocommit=True) as other:
            other.execute("DELETE FROM timeline_projections WHERE name = %s", (projection.name,))

    monkeypatch.setattr(SqlStore, "_select_matching", then_deleted)
    store.append([obs("d", 10, 9)])
    monkeypatch.undo()
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(b"".join(line + b"\n" for line in open_store(postgres_url).lines()))
    assert said(replay(open_store(postgres_url))) == said(replay(open_store(str(copy))))
