"""``verify`` of a long log checks its lines in two processes, and finds what one process finds.

A JSON Lines log at least ``IN_TWO_BYTES`` long has each window of its lines
checked by this process and a fork (``parallel.in_two``), each part following
the chain from the line before it; so has a log of rows (SQLite, PostgreSQL)
or a shorter file, a window of lines read into memory at a time
(``store.VERIFY_BYTES``). Here the windows are made as short as a line, so
that every way of breaking a log lands in either part, and at the seam
between them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log import jsonl, parallel
from events_log import store as store_module
from events_log.errors import BrokenChainError, StoredEntryError, StoreError
from events_log.events import Retraction
from events_log.jsonl import JsonlStore
from events_log.known import KNOWN
from events_log.projection import frame, unframe
from events_log.stores import open_store

from . import helpers
from .conftest import StepClock
from .helpers import obs
from .strategies import small_logs
from .test_hardening import _rewrite
from .test_jsonl_store import NAMES


@contextlib.contextmanager
def checkers(two: bool, window: int = jsonl.VERIFY_WINDOW, share: float = 0.5) -> Iterator[None]:
    """A log verified by one process, or by two however short it is, a ``window`` of bytes at a time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "IN_TWO_BYTES", 0 if two else 1 << 62)
        patch.setattr(jsonl, "VERIFY_WINDOW", window)
        patch.setattr(jsonl, "_VERIFY_SHARE", share)
        yield


def outcome(path) -> tuple:
    """What ``verify`` says of a log and its sidecars: its head and notes, or the error it raises.

    The files beside the log are put back as they were: verify sets aside
    a sidecar that does not match, and the next verify must meet it too.
    """
    beside = {other: other.read_bytes() for other in path.parent.glob(path.name + ".*")}
    try:
        checked = JsonlStore(path).verify()
    except (BrokenChainError, StoredEntryError) as exc:
        return type(exc).__name__, str(exc), getattr(exc, "position", None)
    finally:
        for other in path.parent.glob(path.name + ".*"):
            other.unlink()
        for other, data in beside.items():
            other.write_bytes(data)
    return "verified", checked.head, checked.torn, checked.index_note, checked.index_mismatch


def rehashed(lines: list[bytes]) -> list[bytes]:
    """The lines with their hashes made anew, so that only what they hold is wrong."""
    out, prev = [], "0" * 64
    for line in lines:
        entry = orjson.loads(line)
        entry.pop("hash")
        entry["prev_hash"] = prev
        body = orjson.dumps(entry)
        prev = hashlib.sha256(body).hexdigest()
        out.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}')
    return out


def _unreadable_event(lines: list[bytes], at: int) -> list[bytes]:
    entry = orjson.loads(lines[at])
    entry["event"]["forged"] = True  # a field no event has: the chain holds, the event cannot be read
    return rehashed([*lines[:at], orjson.dumps(entry), *lines[at + 1 :]])


def _time_going_back(lines: list[bytes], at: int) -> list[bytes]:
    entry = orjson.loads(lines[at])
    entry["recorded_at"] = "2000-01-01T00:00:00.000000Z"
    return rehashed([*lines[:at], orjson.dumps(entry), *lines[at + 1 :]])


def _fix_of_nothing(lines: list[bytes], at: int) -> list[bytes]:
    entry = orjson.loads(lines[at])
    if entry["type"] not in ("Correction", "Retraction"):
        return lines
    # Readable, but it fixes nothing the log holds; as long as the id it had, so that no line moves.
    entry["event"]["observation_id"] = "z" * len(entry["event"]["observation_id"])
    return rehashed([*lines[:at], orjson.dumps(entry), *lines[at + 1 :]])


def _first_fix_of_nothing_then(tamper):
    """The first fix made to name nothing, and ``tamper`` at ``at``: which of the two does verify name?"""

    def both(lines: list[bytes], at: int) -> list[bytes]:
        fixes = [n for n, line in enumerate(lines) if b'"type":"Correction"' in line or b'"type":"Retraction"' in line]
        return tamper(_fix_of_nothing(lines, fixes[0]) if fixes else lines, at)

    return both


def _edited_event(change):
    """The event of one line changed, its hash left as it was: the sidecars still end where they did, so the
    index of ids and names is rebuilt over the line (by this process, before the fork has checked it)."""

    def edited(lines: list[bytes], at: int) -> list[bytes]:
        entry = orjson.loads(lines[at])
        change(entry)
        return [*lines[:at], orjson.dumps(entry), *lines[at + 1 :]]

    return edited


TAMPERS = {
    "edited": lambda ls, at: [*ls[:at], ls[at].replace(b'"position"', b'"position" '), *ls[at + 1 :]],
    "deleted": lambda ls, at: [*ls[:at], *ls[at + 1 :]],
    "swapped": lambda ls, at: [*ls[:at], *ls[at + 1 : at + 2], ls[at], *ls[at + 2 :]],
    "repeated": lambda ls, at: [*ls[: at + 1], ls[at], *ls[at + 1 :]],
    "not JSON": lambda ls, at: [*ls[:at], b"{not json", *ls[at + 1 :]],
    "unreadable event": _unreadable_event,
    "time going back": _time_going_back,
    "untouched": lambda ls, at: ls,
    "id removed": _edited_event(lambda entry: entry["event"].pop("id", None)),
    "figure removed": _edited_event(lambda entry: entry["event"].pop("figure", None)),
    "unknown type": _edited_event(lambda entry: entry.update(type="Bogus")),
    "unknown schema": _edited_event(lambda entry: entry.update(schema=99)),
    "fix of nothing": _fix_of_nothing,
    "fix of nothing, then deleted": _first_fix_of_nothing_then(lambda ls, at: [*ls[:at], *ls[at + 1 :]]),
    "fix of nothing, then cut back": lambda ls, at: _fix_of_nothing(ls, at)[: at + 1],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=small_logs(), tamper=st.sampled_from(sorted(TAMPERS)), where=st.floats(0, 1),
       window=st.sampled_from([1, 700, 3_000, 1 << 30]), share=st.sampled_from([0.05, 0.5, 0.95]))  # fmt: skip
def test_two_processes_find_what_one_finds(tmp_path_factory, batches, tamper, where, window, share):
    """The same head, or the same first bad position with the same message, wherever the parts meet."""
    path = tmp_path_factory.mktemp("verify") / "log.jsonl"
    store = JsonlStore(path, clock=StepClock())
    for batch in batches:
        store.append(batch, allow_duplicate=True)
    lines = list(store.lines())
    broken = TAMPERS[tamper](lines, min(int(where * len(lines)), len(lines) - 1))
    path.write_bytes(b"".join(line + b"\n" for line in broken))
    with checkers(two=False):
        alone = outcome(path)
    with checkers(two=True, window=window, share=share):
        assert outcome(path) == alone
    if tamper == "untouched":
        assert alone[0] == "verified" and alone[1].entries == len(lines)


def test_a_log_ending_in_a_torn_write_is_verified_up_to_it_in_two_processes(tmp_path):
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(40))])
    with open(store.path, "ab") as f:
        f.write(b'{"position":42,"recorded_at"')  # a writer killed mid-line
    with checkers(two=False):
        alone = outcome(store.path)
    with checkers(two=True, window=500):
        assert outcome(store.path) == alone
    assert alone[0] == "verified" and alone[2] is not None and alone[1].entries == 42


@pytest.mark.parametrize("broken_at", [None, 50, 110], ids=["a sound log", "bad in this part", "bad in the fork's"])
def test_a_fork_that_dies_while_checking_leaves_the_check_to_this_process(tmp_path, broken_at):
    """A fork killed partway through its part is no finding: this process checks that part itself."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(60))])
    store.append([obs(f"p{n}", 1 + n % 28, 100 + n) for n in range(60)])
    if broken_at is not None:
        lines = list(store.lines())
        store.path.write_bytes(b"".join(line + b"\n" for line in _unreadable_event(lines, broken_at)))
    with checkers(two=False):
        alone = outcome(store.path)
    parent, check_readable, checked = os.getpid(), JsonlStore.check_readable, []

    def dying(self, raw):
        if os.getpid() != parent:
            checked.append(raw.position)
            if len(checked) > 20:
                time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGKILL)
        return check_readable(self, raw)

    with checkers(two=True, share=0.4), pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "_BLOCK", 2048)  # a few lines a run
        patch.setattr(JsonlStore, "check_readable", dying)
        assert outcome(store.path) == alone
    assert (alone[0] == "verified") == (broken_at is None)
    if broken_at is not None:
        assert alone[2] == broken_at


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize(
    ("tamper", "at", "said"),
    [(_time_going_back, 61, "position 61: recorded_at goes back in time"),
     (TAMPERS["not JSON"], 81, "position 81: the line does not end in its hash"),
     (TAMPERS["id removed"], 57, "position 57: the line's content does not match its hash")],
    ids=["time going back", "last line not JSON", "an id removed"],
)  # fmt: skip
def test_verify_names_the_first_bad_position_on_the_command_line(tmp_path, monkeypatch, tamper, at, said, two):
    """The command line's progress bar (silent here) changes nothing of what verify says."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(80))])
    store.path.write_bytes(b"".join(line + b"\n" for line in tamper(list(store.lines()), at)))
    monkeypatch.setattr(jsonl, "IN_TWO_BYTES", 0 if two else 1 << 62)
    monkeypatch.setattr(jsonl, "VERIFY_WINDOW", 4_000)
    result = helpers.invoke(["verify", "--log", str(store.path)])
    assert result.exit_code == 1
    assert said in result.stderr


@pytest.mark.parametrize(("window", "share"), [(3_000, 0.5), (1 << 20, 0.9), (1 << 20, 0.1)],
                         ids=["a few lines a window", "its end read here", "its end read by the fork"])  # fmt: skip
@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
def test_an_index_of_ids_behind_its_log_is_compared_with_as_many_entries(tmp_path, two, window, share):
    """A sidecar may lag behind its log (a reader that could not save): it is compared with the log's first
    entries only, wherever they end (in this process's part of a window, or in the fork's); the same sidecar
    edited is a mismatch."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(40))])
    sidecar = store.sidecar_path(KNOWN)
    first = sidecar.read_bytes()
    store.append([obs(f"p{n}", 1 + n % 28, 100 + n) for n in range(40)])
    store.append([Retraction(observation_id="o3", reason="wrong")])
    sidecar.write_bytes(first)  # its blocks for the first batch only
    with checkers(two=two, window=window, share=share):
        said = outcome(store.path)
        assert said[0] == "verified" and said[1].entries == 83
        assert not said[4] and "index of ids and names beside the log matches it" in said[3]
        [(_, block)] = list(unframe(first, KNOWN))
        forged = msgspec.structs.replace(block, obs_ids=block.obs_ids.replace("o7", "o8"))
        sidecar.write_bytes(frame(KNOWN.encode(forged)))
        said = outcome(store.path)
        assert said[4] and "index of ids and names beside the log does not match it: it says 42 entries" in said[3]


@pytest.mark.parametrize("later", [None, 60], ids=["alone", "then a later line deleted"])
@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
def test_a_fix_of_nothing_is_named_once_the_whole_chain_holds(tmp_path, two, later):
    """The index of ids and names rebuilt while the chain is checked refuses a fix that names no observation
    (its chain intact) only once every line is checked: a broken chain after it is named first, as by one process.

    The sidecar says the rewritten log's hashes, so that it is rebuilt over the fix to be compared.
    """
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(40))])
    store.append([Retraction(observation_id="o3", reason="wrong")])
    store.append([obs(f"p{n}", 1 + n % 28, 100 + n) for n in range(40)])
    lines = _fix_of_nothing(list(store.lines()), 42)
    hashes = [orjson.loads(line)["hash"] for line in lines]
    sidecar = store.sidecar_path(KNOWN)
    blocks = [block for _, block in unframe(sidecar.read_bytes(), KNOWN)]
    sidecar.write_bytes(b"".join(
        frame(KNOWN.encode(msgspec.structs.replace(block, last_hash=hashes[block.first + block.count - 1])))
        for block in blocks
    ))  # fmt: skip
    if later is not None:
        lines = [*lines[:later], *lines[later + 1 :]]
    store.path.write_bytes(b"".join(line + b"\n" for line in lines))
    with checkers(two=two, window=3_000):
        said = outcome(store.path)
    if later is None:
        assert said[:1] == ("StoredEntryError",) and said[2] == 42 and "'zz'" in said[1]
    else:
        assert said[:1] == ("BrokenChainError",) and said[2] == later


_APPEND = """
import sys
from events_log.jsonl import JsonlStore
from tests.helpers import obs
JsonlStore(sys.argv[1]).append([obs("late1", 20, 7), obs("late2", 21, 8)])
"""


def test_an_append_while_verify_starts_leaves_the_index_of_ids_matching(tmp_path, monkeypatch):
    """An append that lands just as verify has read where the log ends is not taken for a mismatch.

    The append, from another process, is started as verify reads the
    sidecar's length, and lands as soon as it can.
    """
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(40))])
    sidecar_entries, appending = JsonlStore._sidecar_entries, []

    def with_an_append(self, projection):
        if not appending:
            root = Path(__file__).resolve().parent.parent
            appending.append(subprocess.Popen([sys.executable, "-c", _APPEND, str(store.path)], cwd=root))
            time.sleep(1)  # time for it to land, if nothing holds it back
        return sidecar_entries(self, projection)

    monkeypatch.setattr(JsonlStore, "_sidecar_entries", with_an_append)
    with checkers(two=True, window=3_000):
        checked = JsonlStore(store.path).verify()
    assert appending[0].wait(timeout=60) == 0
    assert not checked.index_mismatch and "index of ids and names beside the log matches it" in checked.index_note
    assert not list(tmp_path.glob("*.mismatch-*"))
    assert JsonlStore(store.path).head().entries == checked.head.entries + 2


@pytest.mark.parametrize("tamper", ["id removed", "figure removed", "unknown type", "unknown schema"])
def test_a_line_this_process_folds_before_the_fork_checks_it_is_named_as_one_process_names_it(tmp_path, tamper):
    """Every line of a log edited in turn, its hash left: wherever it lies, two processes say what one says."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(24))])
    lines, beside = list(store.lines()), {p: p.read_bytes() for p in tmp_path.glob("log.jsonl.*")}
    for at in range(len(lines)):
        store.path.write_bytes(b"".join(line + b"\n" for line in TAMPERS[tamper](lines, at)))
        for path, data in beside.items():
            path.write_bytes(data)
        with checkers(two=False):
            alone = outcome(store.path)
        with checkers(two=True, window=4_000):
            assert outcome(store.path) == alone, at


@contextlib.contextmanager
def row_checkers(two: bool, window: int = store_module.VERIFY_BYTES, share: float = 0.5) -> Iterator[list]:
    """A log verified a ``window`` of bytes of lines at a time, as a log of rows is, by one process or by two;
    yields the forks made."""
    forks, fork = [], os.fork

    def counted():
        pid = fork()
        if pid:
            forks.append(pid)
        return pid

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "IN_TWO_BYTES", 1 << 62)  # a file checked as a log of rows is
        patch.setattr(store_module, "IN_TWO_LINES", 2 if two else 1 << 62)
        patch.setattr(store_module, "VERIFY_BYTES", window)
        patch.setattr(store_module, "_VERIFY_SHARE", share)
        patch.setattr(parallel.os, "fork", counted)
        yield forks


def verified(target: str) -> tuple:
    """What ``verify`` says of a log, read-only (so that a projection it cannot vouch for stays as it is)."""
    try:
        checked = open_store(target, read_only=True).verify()
    except (BrokenChainError, StoredEntryError) as exc:
        return type(exc).__name__, str(exc), exc.position
    return "verified", checked.head, checked.torn, checked.index_note, checked.index_mismatch


ROW_TAMPERS = ["edited", "deleted", "swapped", "repeated", "not JSON", "unreadable event", "time going back",
               "untouched"]  # fmt: skip


@pytest.mark.parametrize("tamper", ROW_TAMPERS)
@pytest.mark.parametrize(("window", "share"), [(1_000, 0.5), (4_000, 0.2), (1 << 20, 0.95)],
                         ids=["2 lines", "7 lines", "all"])  # fmt: skip
def test_a_log_of_rows_is_checked_in_two_processes_as_in_one(log_target, tamper, window, share):
    """In every store: the same head, or the same first bad position with the same message, wherever a window
    and its parts begin; a sound log is checked by forks."""
    store = open_store(log_target)
    store.clock = StepClock()
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(30))])
    store.append([Retraction(observation_id="o3", reason="wrong"), obs("p", 3, 900)])
    lines = list(store.lines())
    store.close()
    for at in (4, 17, len(lines) - 1):
        _rewrite(log_target, TAMPERS[tamper](lines, at))
        with row_checkers(two=False):
            alone = verified(log_target)
        with row_checkers(two=True, window=window, share=share) as forks:
            assert verified(log_target) == alone
        if tamper == "untouched":
            assert alone[0] == "verified" and alone[1].entries == len(lines) and forks


def _sqlite_log(fresh_logs, count: int) -> tuple[str, list[bytes]]:
    """A new SQLite log of ``count`` observations after its names, and its lines."""
    target = fresh_logs("sqlite")
    store = open_store(target)
    store.clock = StepClock()
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(count))])
    lines = list(store.lines())
    store.close()
    return target, lines


@pytest.mark.parametrize("broken_at", [None, 10, 60], ids=["a sound log", "bad in this part", "bad in the fork's"])
def test_a_fork_that_dies_while_checking_rows_leaves_the_check_to_this_process(fresh_logs, broken_at):
    target, lines = _sqlite_log(fresh_logs, 80)
    if broken_at is not None:
        _rewrite(target, _unreadable_event(lines, broken_at))
    with row_checkers(two=False):
        alone = verified(target)
    parent, check_readable = os.getpid(), store_module.Store.check_readable

    def dying(self, raw):
        if os.getpid() != parent and raw.position > 50:
            os.kill(os.getpid(), signal.SIGKILL)
        return check_readable(self, raw)

    with row_checkers(two=True, window=1 << 20, share=0.4) as forks, pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module.Store, "check_readable", dying)
        assert verified(target) == alone
    assert forks and (alone[0] == "verified") == (broken_at is None)
    if broken_at is not None:
        assert alone[2] == broken_at


@pytest.mark.parametrize(("two", "window"), [(False, 1 << 20), (True, 1 << 20), (True, 4_000), (False, 4_000)],
                         ids=["one process", "two processes", "two, short windows", "one, short windows"])  # fmt: skip
def test_a_row_the_database_cannot_give_back_is_named_after_the_lines_before_it(fresh_logs, two, window):
    """A row that cannot be read (text that is not UTF-8) comes after a broken line: the broken line is named,
    as when the log is read a line at a time, however many lines a window holds."""
    import sqlite3

    target, lines = _sqlite_log(fresh_logs, 40)
    _rewrite(target, TAMPERS["edited"](lines, 10))
    database = sqlite3.connect(target.removeprefix("sqlite:///"), isolation_level=None)
    database.execute("UPDATE timeline_entries SET line = CAST(X'7BFF7D' AS TEXT) WHERE position = 30")
    database.close()
    with row_checkers(two=two, window=window):
        said = verified(target)
    assert said[0] == "BrokenChainError" and said[2] == 10
    _rewrite(target, lines[:30])
    database = sqlite3.connect(target.removeprefix("sqlite:///"), isolation_level=None)
    database.execute("INSERT INTO timeline_entries VALUES (30, '', '', NULL, 'h30', '', CAST(X'7BFF7D' AS TEXT))")
    database.close()
    with row_checkers(two=two, window=window), pytest.raises(StoreError, match="UTF-8"):
        open_store(target, read_only=True).verify()
