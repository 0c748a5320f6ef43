"""Projection bytes that cannot be read: verify never says such a projection matches; replay says it skipped them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings

import pytest

from events_log.errors import IndexMismatchWarning
from events_log.jsonl import JsonlStore
from events_log.known import KNOWN
from events_log.stores import open_store
from timeline.index import REPLAY_INDEX
from timeline.replay import replay

from .conftest import StepClock
from .helpers import invoke, obs
from .test_jsonl_store import NAMES

SIDECARS = {"replay index": REPLAY_INDEX, "index of ids and names": KNOWN}
# What a writer killed mid-write can leave: no finding by itself, yet never read as part of a whole sidecar.
TORN = {
    "replaced by text": lambda data: b"garbage\n",
    "cut short": lambda data: data[:-5],
    "a block begun after the last": lambda data: data + data[:30],
}


def _log(tmp_path) -> JsonlStore:
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    return store


def _flipped(data: bytes) -> bytes:
    """One byte of a block's body changed: the block is all there, its CRC-32 does not hold."""
    return data[:40] + bytes([data[40] ^ 0xFF]) + data[41:]


@pytest.mark.parametrize("title", SIDECARS)
@pytest.mark.parametrize("tear", TORN.values(), ids=TORN.keys())
def test_verify_sets_aside_and_rebuilds_a_sidecar_ending_in_bytes_that_are_not_a_block(tmp_path, title, tear):
    """Not a finding (a torn write is what a crash leaves), but never 'matches': it says what it found, keeps it."""
    store = _log(tmp_path)
    sidecar = store.sidecar_path(SIDECARS[title])
    torn = tear(sidecar.read_bytes())
    sidecar.write_bytes(torn)
    checked = store.verify()
    assert not checked.index_mismatch
    note = next(part for part in checked.index_note.split("; the ") if title in part)
    assert "matches it" not in note and "bytes that are not a whole block" in note
    kept = sidecar.with_name(sidecar.name + ".mismatch-1")
    assert kept.read_bytes() == torn and kept.name in checked.index_note
    assert f"the {title} beside the log matches it" in store.verify().index_note  # rebuilt at once


# Bytes no writer leaves: a finding, not a torn write.
DAMAGED = {
    "a block whose CRC-32 does not hold": _flipped,
    # A length no block has: random bytes (a hostile tester's 3,000 from /dev/urandom passed for a torn write, and
    # verify built a new sidecar without being asked and exited 0).
    "bytes of anything": lambda data: bytes(range(256)) * 12,
}


@pytest.mark.parametrize("title", SIDECARS)
@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_verify_finds_a_damaged_block_in_a_sidecar(tmp_path, title, damage):
    """Damage is a finding (exit 1), kept as evidence, and no new sidecar is built unless asked."""
    store = _log(tmp_path)
    sidecar = store.sidecar_path(SIDECARS[title])
    damaged = damage(sidecar.read_bytes())
    sidecar.write_bytes(damaged)
    ran = invoke(["verify", "--log", store.path])
    assert ran.exit_code == 1
    assert f"the {title} beside the log holds a damaged block at byte 0" in ran.stderr
    assert sidecar.with_name(sidecar.name + ".mismatch-1").read_bytes() == damaged
    assert not sidecar.exists()


@pytest.mark.parametrize("title", SIDECARS)
def test_something_other_than_a_file_in_a_sidecars_place_is_passed_over(tmp_path, title):
    """A FIFO there made every reader and writer wait for its other end forever (opened plainly): each reads the
    log instead; a writer removes it, and the next reader keeps a sidecar in its place."""
    store = _log(tmp_path)
    sidecar = store.sidecar_path(SIDECARS[title])
    sidecar.unlink()
    os.mkfifo(sidecar)
    timeline = [sys.executable, "-m", "timeline"]
    fixes = ({"type": "Retraction", "observation_id": "a", "reason": "entered twice"},
             {"type": "Retraction", "observation_id": "b", "reason": "entered twice"})  # fmt: skip
    said = []
    for command in (["replay", "--format", "csv"], ["verify"], ["append", "--json", json.dumps(fixes[0])],
                    ["append", "--json", json.dumps(fixes[1])], ["verify"]):  # fmt: skip
        done = subprocess.run([*timeline, command[0], "--log", str(store.path), *command[1:]], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, (command, done.stderr)
        said.append(done.stdout)
    assert stat.S_ISREG(os.stat(sidecar).st_mode)  # the first append removed it, the second wrote a file
    assert f"the {title} beside the log matches it" in said[-1]


def test_replay_warns_once_when_it_passes_over_unreadable_sidecar_bytes(tmp_path):
    """The answer comes from the log; stderr says, in one line, that the sidecar's bytes were not used."""
    store = _log(tmp_path)
    sidecar = store.sidecar_path(REPLAY_INDEX)
    sidecar.write_bytes(_flipped(sidecar.read_bytes()))
    ran = invoke(["replay", "--log", store.path, "--format", "csv"])
    assert ran.exit_code == 0 and ",745," in ran.stdout
    assert ran.stderr.count("\n") == 1
    assert ran.stderr.startswith("timeline: warning: the replay index beside") and "damaged block" in ran.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_damaged_block_in_the_projections_table_is_reported(fresh_logs, kind):
    """As beside a file: a replay passes over it with a warning, and verify reports it and sets it aside."""
    target = fresh_logs(kind)
    store = open_store(target)
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    _damage_blocks(target)
    with pytest.warns(IndexMismatchWarning, match="cannot be read"), open_store(target) as reading:
        assert [s.latest.low for s in replay(reading).series] == [745]
    checked = store.verify()
    assert checked.index_mismatch and "holds a block from entry 0 whose bytes cannot be read" in checked.index_note
    assert "index.mismatch-1" in checked.index_note
    assert not store.verify(repair_index=True).index_mismatch
    store.close()


def _damage_blocks(target: str) -> None:
    """Overwrite the body of every replay index block in the database."""
    if target.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(target.removeprefix("sqlite:///")) as database:
            database.execute("UPDATE timeline_projections SET body = X'00112233' WHERE name = 'index'")
        return
    import psycopg

    with psycopg.connect(target, autocommit=True) as database:
        database.execute("UPDATE timeline_projections SET body = '\\x00112233'::bytea WHERE name = 'index'")


@pytest.mark.parametrize("change", ["first_entry = 'zz'", "entries = CAST(entries AS TEXT)"])
def test_a_block_row_naming_its_entries_by_text_is_damage(tmp_path, change):
    """A projections table remade without its columns' types may hold text where a block names its entries: readers
    pass the row over with a warning, and verify reports it and repairs it, where all three failed with a
    traceback."""
    import sqlite3

    path = tmp_path / "log.db"
    store = open_store(f"sqlite:///{path}")
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    store.close()
    with sqlite3.connect(path) as database:
        database.executescript(
            "CREATE TABLE untyped (name, first_entry, entries, last_hash, body); "
            "INSERT INTO untyped SELECT * FROM timeline_projections; DROP TABLE timeline_projections; "
            f"ALTER TABLE untyped RENAME TO timeline_projections; UPDATE timeline_projections SET {change} "
            "WHERE name = 'index'"
        )
    with pytest.warns(IndexMismatchWarning, match="damage"), open_store(f"sqlite:///{path}") as reading:
        assert [s.latest.low for s in replay(reading).series] == [745]
    with open_store(f"sqlite:///{path}") as checking:
        checking.keep(REPLAY_INDEX)  # as `timeline verify` does
        checked = checking.verify()
        assert checked.index_mismatch and "index.mismatch-1" in checked.index_note
        assert not checking.verify(repair_index=True).index_mismatch
    with warnings.catch_warnings(), open_store(f"sqlite:///{path}") as reading:
        warnings.simplefilter("error")  # nothing passed over now
        assert [s.latest.low for s in replay(reading).series] == [745]
