"""Import at scale: files read line by line, big batches written in pieces, all or nothing either way."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sqlite3
import subprocess
import sys
import threading

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log.envelope import encode_entry
from events_log.errors import InputError, StoreError
from events_log.events import Retraction
from events_log.importers import COLUMNS, observation_from_row, read_events, row_from_observation
from events_log.jsonl import JsonlStore
from events_log.sqlite import SCHEMA
from events_log.store import LogHead
from events_log.stores import open_store
from tests.conftest import StepClock
from tests.helpers import invoke, obs
from tests.strategies import observations
from timeline.index import REPLAY_INDEX

from .test_cli import HEADER, ROWS, assert_user_error


def _csv_text(rows: list[dict[str, str]], terminator: str) -> str:
    out = io.StringIO()
    # A cell holding a line break must be quoted (RFC 4180), but csv's writer quotes only the characters
    # of its own line terminator: with "\r" it would leave a "\n" bare, and no reader could tell the rows.
    breaks = any("\r" in cell or "\n" in cell for row in rows for cell in row.values())
    quoting = csv.QUOTE_ALL if breaks else csv.QUOTE_MINIMAL
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator=terminator, quoting=quoting)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@given(
    st.lists(observations(), min_size=1, max_size=8),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)
def test_csv_read_line_by_line_gives_each_row_as_written(tmp_path_factory, batch, terminator, bom):
    """Any line ending, a BOM, and cells holding line breaks, U+2028 or quotes read back row for row."""
    rows = [row_from_observation(o) for o in batch]
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + _csv_text(rows, terminator).encode("utf-8"))
    read = read_events(path)
    assert [event for _, event in read] == [observation_from_row(row) for row in rows]
    assert len({label for label, _ in read}) == len(rows)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (f"{HEADER}\r\n{ROWS[0]}\r\n{ROWS[1]}\r\n".encode() + b"\xff\r\n", ["rows.csv:4", "not UTF-8", "0xff"]),
        (f"{HEADER}\n{ROWS[0]}\n".encode() + "bad \u00e9".encode("latin-1") + b"\n", ["rows.csv:3", "not UTF-8"]),
        (f"{HEADER}\n{ROWS[0]}\nx\x00y\n".encode(), ["rows.csv:3", "NUL byte"]),
        (b"  \r\n\t\n \r", ["rows.csv", "the file is empty"]),
        (b"", ["rows.csv", "the file is empty"]),
        (b"\xef\xbb\xbf", ["rows.csv", "the file is empty"]),
        (f"{HEADER}\n\n  \n".encode(), ["rows.csv", "no rows below the header"]),
        (f"\n{HEADER}\n{ROWS[0]}\n".encode(), ["rows.csv:2", "12 cells where the header has 0"]),
        (f" \n{HEADER}\n{ROWS[0]}\n".encode(), ["rows.csv:1", "unknown column"]),
    ],
)
def test_csv_read_line_by_line_names_the_bad_line(tmp_path, content, fragments):
    """A bad byte, a NUL, an empty or blank file is refused naming the line a whole read would name."""
    path = tmp_path / "rows.csv"
    path.write_bytes(content)
    result = invoke(["import", "--log", str(tmp_path / "log.jsonl"), str(path)])
    assert_user_error(result, *fragments)
    assert not (tmp_path / "log.jsonl").exists()


def test_a_csv_read_from_a_pipe_is_read_once(tmp_path):
    """A FIFO (or /dev/stdin) cannot be read twice: its lines are not counted first for the progress bar."""
    fifo = tmp_path / "rows.pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(f"{HEADER}\n{ROWS[0]}\n{ROWS[1]}\n"))
    writer.start()
    lengths = []
    read = read_events(fifo, "csv", progress=lambda lines, length: lengths.append(length) or lines)
    writer.join()
    assert len(read) == 2 and lengths == [None]  # a pipe's length is not known before it is read


def test_import_reads_standard_input(tmp_path):
    """`cat rows.csv | timeline import /dev/stdin --format csv` imports the rows (it said "the file is empty")."""
    log = tmp_path / "log.jsonl"
    for kind, slug, name in (("incident", "coastal-2025", "--title"), ("monitor", "SOHR", "--name")):
        assert invoke(["describe", kind, slug, name, "t", "--log", str(log)]).exit_code == 0
    command = [sys.executable, "-m", "timeline", "import", "/dev/stdin", "--format", "csv", "--log", str(log)]
    done = subprocess.run(command, input=f"{HEADER}\n{ROWS[0]}\n{ROWS[1]}\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported 2 events from /dev/stdin" in done.stdout
    assert JsonlStore(log).head().entries == 4


def test_jsonl_read_line_by_line_names_the_bad_line(tmp_path):
    """JSON Lines are read one line at a time too: a bad byte after good lines is named by its line."""
    path = tmp_path / "events.jsonl"
    good = '{"type": "IncidentDescribed", "slug": "x", "title": "X \u2028 line"}\n'
    path.write_bytes(good.encode() + b"\n" + b'{"type": "\xfe"}\n')
    assert_user_error(invoke(["import", "--log", str(tmp_path / "log.jsonl"), str(path)]),
                      "events.jsonl:3", "not UTF-8")  # fmt: skip
    path.write_bytes(b" \n\n\t\n")
    assert_user_error(invoke(["import", "--log", str(tmp_path / "log.jsonl"), str(path)]),
                      "events.jsonl", "the file is empty")  # fmt: skip


BAD_LAST_ROWS = {
    "bad count": ("coastal-2025,SOHR,2025-03-12,killed,civilians,cumulative,-4,,exact,Wiki,q,s12", "low"),
    "id repeated in the file": ("coastal-2025,SNHR,2025-03-12,killed,civilians,cumulative,900,,exact,Wiki,q,s8", "id"),
    "figure repeated in the file": (ROWS[2].replace(",n11", ",n11b"), "repeat"),
    "undescribed monitor": ("coastal-2025,OTHER,2025-03-12,killed,civilians,cumulative,9,,exact,Wiki,q,o12", "OTHER"),
    "after the store's day": ("coastal-2025,SNHR,2031-01-01,killed,civilians,cumulative,900,,exact,Wiki,q,f1", "2031"),
}


@pytest.mark.parametrize("bad", BAD_LAST_ROWS)
def test_import_refused_at_its_last_row_leaves_the_log_as_it_was(tmp_path, log_target, bad):
    """An import refused at its last row, by its cells or by admission, leaves every store line for line."""
    for args in (["incident", "coastal-2025", "--title", "Coast"], ["monitor", "SOHR", "--name", "S"],
                 ["monitor", "SNHR", "--name", "N"]):  # fmt: skip
        assert invoke(["describe", *args, "--log", log_target]).exit_code == 0
    first = tmp_path / "first.csv"
    first.write_text(f"{HEADER}\n{ROWS[0]}\n", encoding="utf-8")
    assert invoke(["import", "--log", log_target, str(first)]).exit_code == 0
    with open_store(log_target) as store:
        before = list(store.lines())
    row, fragment = BAD_LAST_ROWS[bad]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([HEADER, *ROWS[1:], row]) + "\n", encoding="utf-8")
    result = invoke(["import", "--log", log_target, str(path)])
    assert_user_error(result, "rows.csv:4", fragment)
    with open_store(log_target) as store:
        assert list(store.lines()) == before


def test_a_big_batch_cut_off_after_its_first_writes_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    """A batch written in several pieces is cut back whole when a later piece fails (disk full)."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([obs("first", 1, 1)], describe_new=True)
    before = store.path.read_bytes()
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def full_disk_later(fd, data, offset):
        calls["n"] += 1
        if calls["n"] <= 2:
            return real_pwrite(fd, data, offset)
        raise OSError(28, "No space left on device")

    batch = [obs(f"o{i}", 1 + i % 28, i, monitor=f"m{i // 28}") for i in range(10_000)]
    monkeypatch.setattr(os, "pwrite", full_disk_later)
    with pytest.raises(StoreError, match="the disk is full; nothing was appended"):
        store.append(batch, describe_new=True)
    monkeypatch.undo()
    assert calls["n"] == 3 and store.path.read_bytes() == before
    assert store.append(batch, describe_new=True)[-1].position == store.head().entries - 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_batch_larger_than_one_piece_lands_whole_in_a_database(fresh_logs, kind):
    """A batch written in several pieces lands whole, with every piece's figures kept for refusing repeats."""
    with open_store(fresh_logs(kind)) as store:
        store.clock = StepClock()
        batch = [obs(f"o{i}", 1 + i % 28, i, monitor=f"m{i // 28}") for i in range(9_000)]
        entries = store.append(batch, describe_new=True)
        assert store.head().entries == len(entries) == entries[-1].position + 1
        assert [e.event for e in store.entries(entries[0].position + len(entries) - len(batch))] == batch
        before = list(store.lines())
        for repeated in (batch[0], batch[5_000], batch[-1]):
            with pytest.raises(InputError, match="allow-duplicate"):
                store.append([attrs.evolve(repeated, id=f"again-{repeated.id}")])
        assert list(store.lines()) == before


def _stopping_encoder(batch: list, stop: int):
    """An encoder whose lines are made as the store takes them, and that is stopped (Ctrl-C) at line ``stop``."""

    def encode(last, now, known):
        head = LogHead.of(last)
        batch_end = head.entries + len(batch) - 1

        def lines():
            prev = head.head
            for position, event in enumerate(batch, head.entries):
                if position - head.entries == stop:
                    raise KeyboardInterrupt
                line, prev = encode_entry(
                    event, position=position, recorded_at=now, batch_end=batch_end, prev_hash=prev
                )
                yield line

        return lines()

    return encode


BIG = [obs(f"big-{i}", 1 + i % 28, i, monitor=f"m{i // 28 % 9}") for i in range(9_000)]  # more than two pieces


@pytest.mark.parametrize("kind", ["jsonl", "sqlite", "postgres"])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stop=st.integers(min_value=0, max_value=len(BIG)))
def test_a_batch_stopped_while_its_lines_are_made_leaves_the_log_as_it_was(fresh_logs, kind, stop):
    """Stopped at any line (even after pieces were written), a batch leaves the log and its indexes as they were."""
    with open_store(fresh_logs(kind)) as store:
        store.clock = StepClock()
        store.keep(REPLAY_INDEX)
        firsts = [obs("first", 1, 1), *(obs(f"m{i}-0", 2, 1, monitor=f"m{i}") for i in range(9))]
        store.append(firsts, describe_new=True)
        before = list(store.lines())
        subjects = {o.id for o in BIG}
        if stop == len(BIG):
            store.append_lines(subjects, _stopping_encoder(BIG, stop))
            assert list(store.lines())[: len(before)] == before
            assert store.head().entries == len(before) + len(BIG)
        else:
            with pytest.raises(KeyboardInterrupt):
                store.append_lines(subjects, _stopping_encoder(BIG, stop))
            assert list(store.lines()) == before
        verified = store.verify()
        assert not verified.index_mismatch and verified.torn is None
        assert store.append([obs("after", 3, 5)])[0].position == store.head().entries - 1


def _sqlite_indexes(database: str) -> tuple[list[tuple], list[str], list[tuple]]:
    """The database's indexes (name, table, SQL), the columns of the table's unique indexes, and what ANALYZE
    keeps of each index."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        indexes = sorted(connection.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"))
        unique = [column for (name,) in connection.execute(
            "SELECT name FROM pragma_index_list('timeline_entries') WHERE \"unique\" AND origin != 'pk'")
            for (column,) in connection.execute("SELECT name FROM pragma_index_info(?)", (name,))]  # fmt: skip
        analyzed = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
        statistics = sorted(connection.execute("SELECT tbl, idx, stat FROM sqlite_stat1")) if analyzed else []
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]  # each index holds each row
    return indexes, unique, statistics


# A log made before the hashes had an index of their own: their table holds them unique.
_OLDER_SCHEMA = SCHEMA.replace("hash        TEXT NOT NULL,", "hash        TEXT NOT NULL UNIQUE,")
# A user's own trigger on the log's table, reading through one of its indexes by name.
_USERS_TRIGGER = """
CREATE TABLE audit (subject TEXT, seen INTEGER);
CREATE TRIGGER audit_entries AFTER INSERT ON timeline_entries WHEN NEW.position % 1000 = 0 BEGIN
    INSERT INTO audit SELECT NEW.subject, count(*) FROM timeline_entries INDEXED BY timeline_entries_subject
    WHERE subject = NEW.subject;
END;
"""


@pytest.mark.parametrize("made", ["now", "before the hash index", "with a trigger of a user's", "analyzed"])
@pytest.mark.parametrize("stop", [0, 4_095, 4_096, 4_097, 8_191, 8_192, 8_500, len(BIG)])  # pieces of 4,096
def test_a_batch_larger_than_the_sqlite_log_leaves_its_indexes_whole(tmp_path_factory, made, stop):
    """A batch as large as the log drops the indexes it fills while it inserts, and makes them again before
    its commit: landed or stopped at any line, the database has the indexes it had, each holding every row,
    with what ANALYZE said of them. A trigger of a user's on the table keeps them all where they are."""
    database = str(tmp_path_factory.mktemp("sqlite") / "log.db")
    assert _OLDER_SCHEMA != SCHEMA
    if made == "before the hash index":
        with contextlib.closing(sqlite3.connect(database)) as connection:
            connection.executescript(_OLDER_SCHEMA)
    with open_store(f"sqlite:///{database}") as store:
        store.clock = StepClock()
        store.append([obs("first", 1, 1), *(obs(f"m{i}-0", 2, 1, monitor=f"m{i}") for i in range(9))],
                     describe_new=True)  # fmt: skip
        if made in ("with a trigger of a user's", "analyzed"):
            with contextlib.closing(sqlite3.connect(database)) as connection:
                connection.executescript(_USERS_TRIGGER if made != "analyzed" else "ANALYZE")
        before, indexes = list(store.lines()), _sqlite_indexes(database)
        assert indexes[1] == ["hash"]  # held unique once, by the table's constraint or by the index
        assert bool(indexes[2]) == (made == "analyzed")
        encode = _stopping_encoder(BIG, stop)
        if stop < len(BIG):
            with pytest.raises(KeyboardInterrupt):
                store.append_lines({o.id for o in BIG}, encode)
            assert list(store.lines()) == before
        else:
            store.append_lines({o.id for o in BIG}, encode)
            assert store.head().entries == len(before) + len(BIG)
            with pytest.raises(InputError, match="allow-duplicate"):  # the figures' index answers
                store.append([attrs.evolve(BIG[-1], id="again")])
            store.fix(
                BIG[4_500].id, lambda record, version: Retraction(record.id, reason="wrong", expected_version=version)
            )
        assert _sqlite_indexes(database) == indexes
        assert store.verify().head.entries == store.head().entries


def test_an_import_into_sqlite_leaves_its_pages_in_the_database_not_the_write_ahead_log(tmp_path):
    """Closing the writer moves the import out of the WAL, so readers do not read hundreds of MB through it."""
    database = tmp_path / "log.db"
    rows = [
        f"coastal-2025,SOHR,2025-03-{1 + i % 28:02d},killed,civilians,increment,{i},,exact,Wiki,q{i},w{i}"
        for i in range(3_000)
    ]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    result = invoke(["import", "--log", f"sqlite:///{database}", str(path), "--describe-new"])
    assert result.exit_code == 0, result.output
    wal = database.with_name("log.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with open_store(f"sqlite:///{database}") as store:
        assert store.head().entries == len(rows) + 2
