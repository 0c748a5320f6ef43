"""Hostile input, crashes, tampering and a failing environment: the log keeps every acknowledged entry."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from events_log.errors import BrokenChainError, StoreError
from events_log.importers import COLUMNS
from events_log.jsonl import JsonlStore
from events_log.stores import open_store
from timeline import replay
from timeline.cli import cli
from timeline.output import safe_cell

from .conftest import STORE_KINDS, StepClock
from .test_replay import obs

GOOD_ROW = {
    "id": "",
    "incident": "coastal-2025",
    "monitor": "SOHR",
    "reported_on": "2025-03-12",
    "period_start": "2025-03-06",
    "period_end": "2025-03-12",
    "measure": "killed",
    "category": "civilians",
    "location": "",
    "kind": "cumulative",
    "low": "1383",
    "high": "",
    "qualifier": "exact",
    "source_url": "https://en.wikipedia.org/wiki/2025_massacres_of_Syrian_Alawites",
    "source_title": "2025 massacres of Syrian Alawites",
    "quote": "The death toll reached 1383 by 12 March per the SOHR",
    "note": "",
}
NASTY = [
    "", " ", "-5", "1.5", "1,383", "abc", "0x10", "1e3", "٣", "2025-02-30", "2025-13-01", "20250312", "12/03/2025",
    "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "@SUM(A1)", "\ufeffkilled", "<script>alert(1)</script>",
    "javascript:alert(1)", "x" * 30_000, "9" * 40, "\x00", "line\nbreak", "ק\u05bcשׁ", "e\u0301", "exact", "range",
    "at_least", "increment", "killed", "civilians", "SOHR", "2025-03-01", "5", "0",
]  # fmt: skip


def invoke(args, log):
    """Run the CLI in-process the way the console script does, catching nothing on its behalf."""
    return CliRunner().invoke(cli, [*args[:1], "--log", str(log), *args[1:]], catch_exceptions=True)


def assert_clean_outcome(result, log: Path, before: bytes | None):
    """Either a correct append, or exit 2 with one line and the log byte-for-byte unchanged."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        JsonlStore(log).verify()
        return True
    assert result.exit_code == 2, (result.exit_code, result.output)
    message = result.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message and message.startswith("timeline: error: ")
    assert len(message) < 600, message
    after = log.read_bytes() if log.exists() else None
    assert after == before
    return False


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buffer.getvalue()


@st.composite
def hostile_csv(draw) -> bytes:
    """A CSV that starts from good rows and breaks them: cells, columns, encoding, BOM, line ends."""
    columns = draw(st.permutations(list(COLUMNS)))
    if draw(st.booleans()):
        columns = columns[: draw(st.integers(8, len(columns)))]
    if draw(st.integers(0, 9)) == 0:
        columns = [*columns, draw(st.sampled_from(["colour", "Low", "low ", "id"]))]
    rows = []
    for n in range(draw(st.integers(1, 4))):
        row = dict(GOOD_ROW, low=str(1383 + n), id=draw(st.sampled_from(["", f"r{n}", "r0"])))
        for _ in range(draw(st.integers(0, 3))):
            row[draw(st.sampled_from(COLUMNS))] = draw(st.sampled_from(NASTY))
        rows.append(row)
    text = _csv_text(rows, columns)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1256"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut]
    return data


@given(hostile_csv())
def test_hostile_csv_ends_in_one_clear_error_or_a_correct_append(tmp_path_factory, data):
    """Broken cells, columns, encodings, BOMs and line ends: a clean error or a correct import, never a partial one."""
    folder = tmp_path_factory.mktemp("csv")
    log = folder / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([obs("seed", 8, 1)])
    before = log.read_bytes()
    path = folder / "rows.csv"
    path.write_bytes(data)
    result = invoke(["import", str(path)], log)
    if assert_clean_outcome(result, log, before):
        added = JsonlStore(log).head().entries - 1
        assert f"imported {added} events" in result.output


@given(st.binary(max_size=400))
def test_random_bytes_never_crash_an_import(tmp_path_factory, data):
    """Any bytes at all, as CSV or JSON Lines: a clean error or a correct append."""
    folder = tmp_path_factory.mktemp("bytes")
    for name in ("rows.csv", "events.jsonl"):
        log = folder / f"{name}.log.jsonl"
        path = folder / name
        path.write_bytes(data)
        assert_clean_outcome(invoke(["import", str(path)], log), log, None)


def _json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
        max_leaves=8,
    )


@given(st.lists(st.one_of(_json_values(), st.builds(lambda k, v: {"type": "Observation", k: v}, st.text(max_size=8),
                                                     _json_values())), min_size=1, max_size=4))  # fmt: skip
def test_hostile_json_lines_end_cleanly(tmp_path_factory, values):
    """Arbitrary JSON values as events: a clean error naming the line, never a crash."""
    folder = tmp_path_factory.mktemp("jsonl")
    log = folder / "log.jsonl"
    path = folder / "events.jsonl"
    path.write_text("\n".join(json.dumps(v) for v in values))
    assert_clean_outcome(invoke(["import", str(path)], log), log, None)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"reported_on": "2025-02-30"}, "rows.csv:2: reported_on: 2025-02-30 is not a calendar date"),
        ({"low": "-5"}, "rows.csv:2: low: '-5' is not a whole number"),
        ({"low": "1.5"}, "rows.csv:2: low: '1.5' is not a whole number"),
        ({"low": "many"}, "rows.csv:2: low: 'many' is not a whole number"),
        ({"low": "9" * 40}, "rows.csv:2: low: a number of 40 digits is not a casualty count"),
        ({"low": "10", "high": "5", "qualifier": "range"}, "rows.csv:2: high: high (5) is below low (10)"),
        ({"quote": "x" * 30_000}, "rows.csv:2: quote: is 30,000 characters long; the limit is 20,000"),
        ({"source_url": "javascript:alert(1)"}, "rows.csv:2: source_url: not a valid http(s) URL"),
        ({"monitor": '=HYPERLINK("x")'}, "rows.csv:2: monitor: not a valid monitor slug"),
        ({"measure": "Killed"}, "rows.csv:2: measure: not a valid measure"),
        ({"note": "a\x07bell"}, "rows.csv:2: note: contains control characters"),
    ],
)
def test_each_bad_field_is_named(tmp_path, change, fragment):
    """Impossible dates, negative, fractional, huge or non-numeric figures, low above high, bad text."""
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([{**GOOD_ROW, **change}], list(COLUMNS)))
    log = tmp_path / "log.jsonl"
    result = invoke(["import", str(path)], log)
    assert_clean_outcome(result, log, None)
    assert fragment in result.stderr


def test_formulas_in_text_are_kept_as_text_and_neutralised_in_csv(tmp_path):
    """A quote or place that looks like a formula is stored as written and exported with a leading quote."""
    path = tmp_path / "rows.csv"
    row = {**GOOD_ROW, "location": '=HYPERLINK("http://evil.example","click")', "quote": "@SUM(A1) +1"}
    path.write_text(_csv_text([row], list(COLUMNS)))
    log = tmp_path / "log.jsonl"
    assert invoke(["import", str(path)], log).exit_code == 0
    exported = list(csv.reader(io.StringIO(invoke(["replay", "--format", "csv"], log).output)))
    assert exported[1][4] == '\'=HYPERLINK("http://evil.example","click")'
    for value in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(value) == "'" + value
    assert safe_cell("Baniyas") == "Baniyas"


# -- crashes ---------------------------------------------------------------------------------

_CRASHING_WRITER = """
import sys
from events_log.stores import open_store
from tests.test_replay import obs
store = open_store(sys.argv[1])
start = int(sys.argv[2])
for i in range(start, start + 100000):
    store.append([obs(f"k{i}", 1 + i % 28, i), obs(f"k{i}b", 1 + i % 28, i, "increment")])
    print(f"k{i}", flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_append_loses_no_acknowledged_entry(log_target):
    """A writer killed at random moments: after repair, verify passes and every acknowledged entry replays."""
    root = Path(__file__).resolve().parents[1]
    acknowledged: list[str] = []
    for round_ in range(12):
        process = subprocess.Popen(
            [sys.executable, "-c", _CRASHING_WRITER, log_target, str(round_ * 100_000)],
            cwd=root, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Wait for the first acknowledgement, so a slow start-up on a loaded machine still leaves
        # the kill landing mid-stream of appends, then kill at a moment that varies by round.
        first = process.stdout.readline()
        time.sleep((round_ % 5) * 0.07)
        os.kill(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        acknowledged += [first.strip(), *out.split()] if first.strip() else out.split()
        store = open_store(log_target)
        if hasattr(store, "repair"):
            store.repair()
        store.verify()
        ids = {e.event.id for e in store.entries()}
        missing = [i for i in acknowledged if i not in ids or f"{i}b" not in ids]
        assert missing == []
        assert len(ids) % 2 == 0  # batches of two: never half of one
        store.close()
    assert len(acknowledged) > 12
    replay(open_store(log_target))


# -- tampering in every store ----------------------------------------------------------------


def _rewrite(target: str, lines: list[bytes]) -> None:
    """Put these lines in place of the log's, going around every guard the store has."""
    if target.startswith("sqlite:///"):
        import sqlite3

        database = sqlite3.connect(target.removeprefix("sqlite:///"))
        for trigger in ("no_update", "no_delete", "extends_chain"):
            database.execute(f"DROP TRIGGER timeline_entries_{trigger}")
        database.execute("DELETE FROM timeline_entries")
        database.executemany(
            "INSERT INTO timeline_entries VALUES (?, '', '', NULL, ?, '', ?)",
            [(i, f"h{i}", line) for i, line in enumerate(lines)],
        )
        database.commit()
    elif target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as database:
            database.execute("ALTER TABLE timeline_entries DISABLE TRIGGER USER")
            database.execute("DELETE FROM timeline_entries")
            with database.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO timeline_entries VALUES (%s, '', '', NULL, %s, '', %s)",
                    [(i, f"h{i}", line) for i, line in enumerate(lines)],
                )
    else:
        Path(target).write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.mark.parametrize(
    ("name", "tamper", "position"),
    [
        ("edited", lambda ls: [ls[0], ls[1].replace(b"745", b"754"), *ls[2:]], 1),
        ("deleted", lambda ls: [ls[0], *ls[2:]], 1),
        ("reordered", lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 1),
        ("inserted", lambda ls: [ls[0], ls[1], ls[1], *ls[2:]], 2),
        ("last edited", lambda ls: [*ls[:-1], ls[-1].replace(b'"low":3', b'"low":4')], 3),
    ],
)
def test_verify_names_every_tampered_entry(log_target, name, tamper, position):
    """Edited, deleted, reordered or inserted past entries are named by position, in every store."""
    store = open_store(log_target)
    store.clock = StepClock()
    store.append([obs("a", 8, 532), obs("b", 8, 745)])
    store.append([obs("c", 9, 1)])
    store.append([obs("d", 10, 3)])
    lines = list(store.lines())
    store.close()
    _rewrite(log_target, tamper(lines))
    with pytest.raises(BrokenChainError) as caught:
        open_store(log_target).verify()
    assert caught.value.position == position, name
    result = CliRunner().invoke(cli, ["verify", "--log", log_target])
    assert result.exit_code == 1 and f"position {position}" in result.stderr


# -- a failing environment ---------------------------------------------------------------------


@contextmanager
def small_filesystem(folder: Path, size: str):
    """A real tmpfs of ``size`` mounted at ``folder`` (needs root, as in CI)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); "
                    "test_jsonl_store simulates the full disk at the write call instead")  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_a_full_disk_appends_whole_batches_or_nothing(tmp_path, kind):
    """On a real 256 KiB filesystem, appends stop with a clear error; every acknowledged entry stays."""
    with small_filesystem(tmp_path / "disk", "256k") as disk:
        target = str(disk / "log.jsonl") if kind == "jsonl" else f"sqlite:///{disk / 'log.db'}"
        store = open_store(target)
        store.clock = StepClock()
        acknowledged, error = [], None
        for i in range(5000):
            batch = [obs(f"f{i}-{j}", 1 + i % 28, i, location="x" * 200) for j in range(3)]
            try:
                store.append(batch)
            except StoreError as exc:
                error = str(exc)
                break
            acknowledged += [o.id for o in batch]
        assert error is not None and "full" in error and "\n" not in error
        store.close()
        reopened = open_store(target)
        assert reopened.verify().head.entries == len(acknowledged)
        assert [e.event.id for e in reopened.entries()] == acknowledged
        result = invoke(["verify"], target)
        assert result.exit_code == 0
        reopened.close()


def test_a_read_only_filesystem_is_a_clear_error(tmp_path):
    """A log on a read-only filesystem can be read, and appending says why it cannot."""
    with small_filesystem(tmp_path / "disk", "1m") as disk:
        log = disk / "log.jsonl"
        JsonlStore(log, clock=StepClock()).append([obs("a", 8, 1)])
        before = log.read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = invoke(["append", "--json", json.dumps({"type": "Retraction", "observation_id": "a",
                                                          "reason": "x"})], log)  # fmt: skip
        assert result.exit_code == 1 and "read-only file system" in result.stderr.lower()
        assert invoke(["replay"], log).exit_code == 0
        assert log.read_bytes() == before


def test_a_read_only_file_is_a_clear_error(tmp_path):
    """Without write permission on the log file, appending is refused with one line."""
    if os.geteuid() == 0:
        pytest.skip("root writes through file permissions; the read-only filesystem test covers root")
    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([obs("a", 8, 1)])
    log.chmod(0o444)
    result = invoke(["retract", "a", "--reason", "x"], log)
    assert result.exit_code == 1 and "permission denied" in result.stderr


_LOCK_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def test_a_lock_held_by_a_dead_process_does_not_block(tmp_path):
    """A writer killed while holding the lock leaves nothing behind: the next append goes through."""
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock(), lock_timeout=5)
    store.append([obs("a", 8, 1)])
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(log)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(StoreError, match="stayed locked by another writer"):
        JsonlStore(log, lock_timeout=0.3).append([obs("b", 9, 2)])
    holder.kill()
    holder.wait()
    store.append([obs("b", 9, 2)])
    assert store.verify().head.entries == 2


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_pointing_at_the_wrong_thing_is_one_line(tmp_path, kind, fresh_logs):
    """A folder, a non-database file, or a non-log file as --log: one line, exit 1, nothing written."""
    if kind == "jsonl":
        target = str(tmp_path)
    elif kind == "sqlite":
        junk = tmp_path / "notes.db"
        junk.write_text("these are my notes, not a database")
        target = f"sqlite:///{junk}"
    else:
        target = fresh_logs("postgres").replace("postgres@", "nosuchrole@")
    for args in (["replay"], ["append", "--json", json.dumps({"type": "Retraction", "observation_id": "a",
                                                              "reason": "x"})]):  # fmt: skip
        result = invoke(args, target)
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
