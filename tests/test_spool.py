"""A spooled batch (an import too large to hold) is admitted and written exactly as the same batch in memory."""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from events_log import importers, parallel, projection
from events_log import store as store_module
from events_log.errors import InputError, TimelineError
from events_log.events import (
    Correction,
    Figure,
    IncidentDescribed,
    Kind,
    MonitorDescribed,
    Observation,
    Qualifier,
    Retraction,
    Source,
)
from events_log.importers import COLUMNS, iter_csv, iter_csv_stored, iter_events, row_from_observation
from events_log.jsonl import JsonlStore
from events_log.known import KNOWN
from events_log.spool import Spool
from events_log.sql import FIGURES, PROJECTIONS, TABLE
from events_log.stores import open_store
from timeline.index import REPLAY_INDEX

from .conftest import StepClock
from .helpers import obs
from .strategies import SMALL_WORLD, figures, small_logs

# A tiny world, so that a batch's events collide: ids repeat, figures repeat, fixes hit or miss,
# names are described, misspelt or described later in the batch, and some figures lie in the future.
# Mostly well-formed, so that every check is reached, with a rare misspelt name or date in the future.
IDS = [f"o{n}" for n in range(3)] + [f"n{n}" for n in range(12)]
INCIDENTS = ["coastal-2025", "zaraa-2016"] * 12 + ["coastal-2052", "Coastal-2025"]
MONITORS = ["SOHR", "SNHR"] * 12 + ["sohr", "OTHER"]
# The StepClock records on 2025-04-01: figures may be reported up to a day after that.
DAYS = [dt.date(2025, 3, 30), dt.date(2025, 3, 31)] * 8 + [dt.date(2025, 4, 2), dt.date(2025, 4, 3)]


@st.composite
def hostile_observations(draw) -> Observation:
    low = draw(st.integers(0, 2))
    increment = draw(st.booleans())
    return Observation(
        id=draw(st.sampled_from(IDS)),
        incident=draw(st.sampled_from(INCIDENTS)),
        monitor=draw(st.sampled_from(MONITORS)),
        reported_on=draw(st.sampled_from(DAYS)),
        measure="killed",
        category="civilians",
        kind=Kind.INCREMENT if increment else Kind.CUMULATIVE,
        figure=Figure(low, low, Qualifier.EXACT),
        source=Source(title="t", quote=draw(st.sampled_from(["q", "r"]))),
    )


@st.composite
def hostile_events(draw):
    choice = draw(st.sampled_from(["obs", "obs", "obs", "obs", "correct", "retract", "describe"]))
    if choice == "obs":
        return draw(hostile_observations())
    version = draw(st.none() | st.integers(0, 12))
    if choice == "correct":
        replacement = draw(hostile_observations())
        return Correction(
            observation_id=replacement.id, replacement=replacement, reason="typo", expected_version=version
        )
    if choice == "retract":
        return Retraction(observation_id=draw(st.sampled_from(IDS)), reason="wrong", expected_version=version)
    if draw(st.booleans()):
        return IncidentDescribed(slug=draw(st.sampled_from(INCIDENTS[-3:])), title="t")
    return MonitorDescribed(slug=draw(st.sampled_from(MONITORS[-3:])), full_name="m")


def _outcome(act):
    """What an append did: the error it raised (type and message), or None."""
    try:
        act()
    except TimelineError as exc:
        return type(exc).__name__, str(exc)
    return None


def _log(target, history) -> object:
    store = open_store(target)
    store.clock = StepClock()
    for batch in history:
        store.append(batch, allow_duplicate=True)
    return store


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=small_logs(),
    batch=st.lists(hostile_events(), min_size=1, max_size=8),
    describe_new=st.booleans(),
    allow_duplicate=st.booleans(),
)
def test_a_spooled_batch_is_refused_or_written_as_the_same_batch_in_memory(
    fresh_logs, log_kind, history, batch, describe_new, allow_duplicate
):
    """Same refusal (first name, then first event in order, then first repeat), or the same lines, in every store."""
    in_memory, spooled = _log(fresh_logs(log_kind), history), _log(fresh_logs(log_kind), history)
    labels = [f"rows.csv:{n + 2}" for n in range(len(batch))]
    options = {"describe_new": describe_new, "allow_duplicate": allow_duplicate}
    expected = _outcome(lambda: in_memory.append(batch, labels=labels, **options))
    with Spool.of(zip(labels, batch, strict=True)) as spool:
        got = _outcome(lambda: spooled.append_spool(spool, **options))
    event("refused: " + expected[1].split(": ")[-1][:24] if expected else "written")
    assert got == expected
    assert list(spooled.lines()) == list(in_memory.lines())
    assert spooled.verify().head == in_memory.verify().head


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=small_logs(), batch=st.lists(hostile_observations(), min_size=2, max_size=40))
def test_a_spooled_batch_finds_the_first_repeat_as_the_same_batch_in_memory(fresh_logs, log_kind, history, batch):
    """Fresh ids, a handful of figures: repeats of the log's records and of the batch's own, checked in order."""
    batch = [attrs.evolve(o, id=f"r{n}", incident="coastal-2025", monitor="SOHR") for n, o in enumerate(batch)]
    in_memory, spooled = _log(fresh_logs(log_kind), history), _log(fresh_logs(log_kind), history)
    labels = [f"rows.csv:{n + 2}" for n in range(len(batch))]
    expected = _outcome(lambda: in_memory.append(batch, labels=labels))
    with Spool.of(zip(labels, batch, strict=True)) as spool:
        got = _outcome(lambda: spooled.append_spool(spool))
    event("refused: " + expected[1].split(": ")[-1][:12] if expected else "written")
    assert got == expected
    assert list(spooled.lines()) == list(in_memory.lines())


@st.composite
def varied_observations(draw) -> Observation:
    """``hostile_observations`` with any figure and a place or none: series, kinds and bounds of every sort."""
    observation = draw(hostile_observations())
    location = draw(st.sampled_from([None, "Jableh", "Baniyas"]))
    return attrs.evolve(observation, figure=draw(figures()), location=location)


def _kept(store) -> object:
    """What a store keeps beside its entries: the sidecars of a file, or every row of a database's tables."""
    if isinstance(store, JsonlStore):
        paths = (store.sidecar_path(projection) for projection in (KNOWN, REPLAY_INDEX))
        return [path.read_bytes() if path.exists() else None for path in paths]
    cursor = store._connection(write=False).cursor()
    kept = []
    for table in (TABLE, FIGURES, PROJECTIONS):
        cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
        kept.append([tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor.fetchall()])
    return kept


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=small_logs(),
    batch=st.lists(hostile_events() | varied_observations(), min_size=1, max_size=10),
    describe_new=st.booleans(),
    block=st.integers(1, 4),
)
def test_a_spooled_batch_keeps_the_indexes_the_same_batch_in_memory_keeps(
    fresh_logs, log_kind, history, batch, describe_new, block
):
    """Indexes folded from the spool's columns are byte for byte those folded from the lines decoded again.

    Blocks are cut every ``block`` entries, so that runs of observations
    are cut where blocks end, and between fixes and descriptions.
    """
    stores = _log(fresh_logs(log_kind), history), _log(fresh_logs(log_kind), history)
    for store in stores:
        store.keep(REPLAY_INDEX)
    in_memory, spooled = stores
    labels = [f"rows.csv:{n + 2}" for n in range(len(batch))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(projection, "BLOCK_ENTRIES", block)
        expected = _outcome(lambda: in_memory.append(batch, labels=labels, describe_new=describe_new))
        with Spool.of(zip(labels, batch, strict=True)) as spool:
            got = _outcome(lambda: spooled.append_spool(spool, describe_new=describe_new))
    event("refused" if expected else "written")
    assert got == expected
    assert list(spooled.lines()) == list(in_memory.lines())
    assert _kept(spooled) == _kept(in_memory)


@pytest.mark.parametrize("rows", [1, 3, 9_000])
def test_a_csv_imported_through_its_spooled_columns_keeps_the_indexes_of_its_lines(fresh_logs, log_kind, rows):
    """A CSV's rows spooled by blocks (``iter_csv_stored``) index as the same rows appended as events."""
    folder = Path(fresh_logs("jsonl")).parent
    path = _big_file(folder, rows)
    stores = open_store(fresh_logs(log_kind)), open_store(fresh_logs(log_kind))
    for store in stores:
        store.clock = StepClock()
        store.keep(REPLAY_INDEX)
        store.append(SMALL_WORLD)
    in_memory, spooled = stores
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(projection, "BLOCK_ENTRIES", 4_000)
        events = list(iter_csv(path))
        in_memory.append([event for _, event in events], [label for label, _ in events], describe_new=True)
        with Spool.of(iter_csv_stored(path, block=1_000)) as spool:
            spooled.append_spool(spool, describe_new=True)
    assert list(spooled.lines()) == list(in_memory.lines())
    assert _kept(spooled) == _kept(in_memory)


def test_a_spooled_import_says_what_it_appended(tmp_path):
    """The descriptions put before the batch, where its events begin, and how many there are."""
    store = open_store(str(tmp_path / "log.jsonl"))
    store.append(SMALL_WORLD)
    new = attrs.evolve(
        Observation(
            id="n1", incident="new-incident", monitor="SOHR", reported_on=dt.date(2025, 3, 1), measure="killed",
            category="civilians", kind=Kind.CUMULATIVE, figure=Figure(3, 3, Qualifier.EXACT), source=Source(title="t"),
        )
    )  # fmt: skip
    with Spool.of([("a.csv:2", new), ("a.csv:3", attrs.evolve(new, id="n2", reported_on=dt.date(2025, 3, 2)))]) as s:
        appended = store.append_spool(s, describe_new=True)
    assert [e.slug for e in appended.described] == ["new-incident"]
    assert (appended.first, appended.count) == (len(SMALL_WORLD) + 1, 2)
    assert [e.event.id for e in store.entries(appended.first)] == ["n1", "n2"]


@pytest.mark.parametrize("taken", [None, 0, 150, 299])
def test_a_few_ids_against_a_long_log_are_checked_as_the_batch_in_memory(fresh_logs, log_kind, taken):
    """A small import into a log of many observations (its ids scanned, not mapped) is refused or written alike."""
    first = Observation(
        id="a", incident="coastal-2025", monitor="SOHR", reported_on=dt.date(2025, 3, 1), measure="killed",
        category="civilians", kind=Kind.CUMULATIVE, figure=Figure(3, 3, Qualifier.EXACT), source=Source(title="t"),
    )  # fmt: skip
    history = [SMALL_WORLD, [attrs.evolve(first, id=f"old-{n}", figure=Figure(n, n, Qualifier.EXACT))
                             for n in range(300)]]  # fmt: skip
    batch = [
        attrs.evolve(first, id="new-1", reported_on=dt.date(2025, 3, 2)),
        attrs.evolve(first, id="new-2" if taken is None else f"old-{taken}", reported_on=dt.date(2025, 3, 3)),
    ]
    in_memory, spooled = _log(fresh_logs(log_kind), history), _log(fresh_logs(log_kind), history)
    labels = ["a.csv:2", "a.csv:3"]
    expected = _outcome(lambda: in_memory.append(batch, labels=labels))
    with Spool.of(zip(labels, batch, strict=True)) as spool:
        got = _outcome(lambda: spooled.append_spool(spool))
    assert got == expected and (got is None) == (taken is None)
    assert list(spooled.lines()) == list(in_memory.lines())


def test_a_refused_spooled_batch_names_its_file_and_line(tmp_path):
    store = open_store(str(tmp_path / "log.jsonl"))
    store.append(SMALL_WORLD)
    before = list(store.lines())
    first = Observation(
        id="a", incident="coastal-2025", monitor="SOHR", reported_on=dt.date(2025, 3, 1), measure="killed",
        category="civilians", kind=Kind.CUMULATIVE, figure=Figure(3, 3, Qualifier.EXACT), source=Source(title="t"),
    )  # fmt: skip
    rows = [(f"big.csv:{n}", attrs.evolve(first, id=f"r{n}", reported_on=dt.date(2025, 1, 1) + dt.timedelta(n % 50)))
            for n in range(2, 3000)]  # fmt: skip
    rows.append(("big.csv:3000", attrs.evolve(first, id="r17")))
    refused = r"^big.csv:3000: id: observation id 'r17' is given twice \(also at line 17\)$"
    with Spool.of(rows) as spool, pytest.raises(InputError, match=refused):
        store.append_spool(spool)
    assert list(store.lines()) == before


def _spooled(spool: Spool) -> tuple:
    """Everything a spool holds of its events: records, columns and names."""
    columns = (spool._types, spool._id_hashes, spool._keys, spool._days, spool._offsets)
    ids = [line for lines in spool.id_lines() for line in lines]
    figures = spool.figure_rows(0, spool.count).tobytes(), list(spool.series)
    return list(spool.events(range(spool.count))), list(spool.stored()), *map(bytes, columns), ids, spool.names.used, \
        figures  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(hostile_observations(), min_size=1, max_size=12), block=st.integers(1, 5))
def test_a_csv_spooled_in_blocks_of_stored_rows_is_the_csv_spooled_as_events(tmp_path_factory, batch, block):
    """Names counted by block are filed as row by row (first use, order), and every column is the same."""
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    rows = [row_from_observation(o) for o in batch]
    path.write_text(",".join(COLUMNS) + "\n" + "".join(",".join(f'"{r[c]}"' for c in COLUMNS) + "\n" for r in rows))
    with Spool.of(iter_csv(path)) as events, Spool.of(iter_csv_stored(path, block=block)) as stored:
        assert _spooled(stored) == _spooled(events)
        # Read back a few bytes at a time (as a batch being written reads them), the ids are the same.
        assert [i for ids in stored.id_lines(block) for i in ids] == [i for ids in stored.id_lines() for i in ids]


@contextlib.contextmanager
def csv_readers(two: bool, window: int = importers.IN_TWO_WINDOW, share: float = 0.35) -> Iterator[None]:
    """A CSV read by one process, or by two (``parallel.in_two``) however short, a ``window`` of bytes at a time,
    this process taking ``share`` of each."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importers, "IN_TWO_BYTES", 0 if two else 1 << 62)
        patch.setattr(importers, "IN_TWO_WINDOW", window)
        patch.setattr(importers, "_FIRST_SHARE", share)
        yield


# Lines a CSV may hold besides plain rows, each refused or read as one process reads it.
_ODD_LINES = [
    "\n", "  ,  \n", "\r\n", "\r", "x,y\n", '"open quote\n', 'a"b\n', "\x00\n", "caf\xe9\n",
]  # fmt: skip


@st.composite
def csv_files(draw) -> bytes:
    """CSV files of observations, their cells quoted or bare, holding line breaks (CR, LF, CRLF) inside quoted
    cells and between rows, literal quotes in bare cells, blank lines, a BOM, and now and then a bad line."""
    rows = [row_from_observation(o) for o in draw(st.lists(hostile_observations(), min_size=1, max_size=12))]
    lines = [",".join(COLUMNS) + draw(st.sampled_from(["\n", "\r\n", "\r", "\r\r"]))]
    for row in rows:
        breaks = draw(st.sampled_from(["", "\n", "\r\n", "\r", "\n\n"]))
        # A quoted cell may hold line breaks: around its text they are stripped, inside it they are refused.
        row["quote"] = f"{breaks}{row['quote']}" if draw(st.integers(0, 9)) else f"{row['quote']}{breaks}said"
        if draw(st.booleans()) and not breaks:
            row["source_title"] += '"5"'  # a literal quote in a bare cell
            cells = [row[c] for c in COLUMNS]
        else:
            cells = [f'"{row[c]}"' for c in COLUMNS]
        lines.append(",".join(cells) + draw(st.sampled_from(["\n", "\r\n", "\r"])))
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(_ODD_LINES)))
    text = "".join(lines)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no line break at the end
    data = text.encode("latin-1" if "\xe9" in text else "utf-8")
    return (codecs.BOM_UTF8 if draw(st.booleans()) else b"") + data


def _read_csv(path: Path) -> tuple:
    """What reading the file in blocks gives: the spool of its rows, or the refusal."""
    try:
        with Spool.of(iter_csv_stored(path, block=3)) as spool:
            return _spooled(spool)
    except InputError as exc:
        return ("refused", str(exc))


@pytest.mark.parametrize("dies", ["before its first row", "after its part's end was sent"])
def test_a_csv_fork_that_dies_reads_the_csv_one_process_reads(tmp_path, dies):
    """Whatever the fork sent before it died was taken in as it came (its part's end too, the last thing it
    sends): this process reads what it did not send, from where its own part ended, not from the fork's end."""
    path = tmp_path / "rows.csv"
    rows = [row_from_observation(obs(f"o{n}", 1 + n % 28, n)) for n in range(400)]
    path.write_text(",".join(COLUMNS) + "\n" + "".join(",".join(f'"{r[c]}"' for c in COLUMNS) + "\n" for r in rows))
    with csv_readers(two=False):
        alone = _read_csv(path)
    parent, forked = os.getpid(), importers._Reading.forked

    def dying(reading, split, window):
        if os.getpid() != parent and dies == "before its first row":
            os.kill(os.getpid(), signal.SIGKILL)
        yield from forked(reading, split, window)
        if os.getpid() != parent:
            time.sleep(0.3)  # this process takes in all it was sent
            os.kill(os.getpid(), signal.SIGKILL)

    with csv_readers(two=True, share=0.1), pytest.MonkeyPatch.context() as patch:
        patch.setattr(importers._Reading, "forked", dying)
        shared = _read_csv(path)
    assert alone[0] != "refused" and len(alone[0]) == 400
    assert shared == alone


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=csv_files(),
    window=st.integers(1, 600),
    share=st.sampled_from([0.0, 0.2, 0.35, 0.5, 0.9]),
    read=st.sampled_from([1, 5, 200, importers._CHUNK]),
)
def test_a_csv_read_by_two_processes_is_the_csv_read_by_one(tmp_path_factory, data, window, share, read):
    """A fork reads the later part of each window from a line that may fall inside a quoted cell; the rows,
    their line numbers and the first refusal are those one process reads, however short the windows and the
    reads of the file (a line longer than a read, the last line without a line break)."""
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_bytes(data)
    with csv_readers(two=False):
        alone = _read_csv(path)
    with csv_readers(two=True, window=window, share=share), pytest.MonkeyPatch.context() as patch:
        patch.setattr(importers, "_CHUNK", read)
        shared = _read_csv(path)
    event("refused" if alone[0] == "refused" else "read")
    assert shared == alone


def test_a_bad_row_is_refused_before_a_bad_line_after_it_in_the_same_block(tmp_path):
    """The first refusal of a file read in blocks is the first one row by row: line 3, not the short line 5."""
    path = tmp_path / "rows.csv"
    good = "r{},coastal-2025,SOHR,2025-03-01,killed,civilians,cumulative,3,,exact,t"
    lines = ["id,incident,monitor,reported_on,measure,category,kind,low,high,qualifier,source_title", good.format(1),
             good.format(2).replace(",3,", ",3x,"), good.format(3), "r4,coastal-2025"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    for read in (iter_csv, iter_csv_stored):
        with pytest.raises(InputError, match=r"rows.csv:3: low: '3x' is not a whole number"):
            list(read(path))


def _big_file(tmp_path, rows: int):
    """A CSV of ``rows`` cumulative figures of a new incident (described by the import) and two monitors."""
    path = tmp_path / "big.csv"
    lines = [
        f"i{n},idlib-2026,{('SOHR', 'SNHR')[n % 2]},2025-01-01,killed,civilians,{'Idlib' if n % 3 else ''},"
        f'cumulative,{n},,exact,Report {n},https://example.org/{n},"at least {n} ""dead"""'
        for n in range(rows)
    ]
    header = ",".join(("id,incident,monitor,reported_on,measure,category,location,kind,low,high,qualifier",
                       "source_title,source_url,quote"))  # fmt: skip
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _stopped_at(line: int):
    """A progress wrapper that stops the writing (as Ctrl-C would) when line ``line`` is asked for."""

    def progress(lines, length):
        for n, made in enumerate(lines):
            if n == line:
                raise KeyboardInterrupt
            yield made

    return progress


@pytest.mark.parametrize("kind", ["jsonl", "sqlite", "postgres"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stop=st.integers(min_value=0, max_value=9_003))
def test_a_spooled_import_stopped_at_any_line_leaves_the_log_as_it_was(tmp_path_factory, fresh_logs, kind, stop):
    """Stopped at any line of its writing, a spooled batch leaves the log and its indexes as they were (its
    lines made by a fork, however short it is)."""
    folder = tmp_path_factory.mktemp("import")
    target = fresh_logs(kind)
    with open_store(target) as store, pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "FORKED_LINES", 0)
        store.clock = StepClock()
        store.keep(REPLAY_INDEX)
        store.append(SMALL_WORLD)
        before = list(store.lines())
        with Spool.of(iter_events(_big_file(folder, 9_000))) as spool:
            if stop >= spool.count + 1:  # the batch (with one new description) is written whole
                store.append_spool(spool, describe_new=True, progress=_stopped_at(stop))
                assert list(store.lines())[: len(before)] == before
                assert store.head().entries == len(before) + spool.count + 1
            else:
                with pytest.raises(KeyboardInterrupt):
                    store.append_spool(spool, describe_new=True, progress=_stopped_at(stop))
                assert list(store.lines()) == before
        verified = store.verify()
        assert not verified.index_mismatch and verified.torn is None
    _assert_the_chain_is_guarded(target)


def _assert_the_chain_is_guarded(target: str) -> None:
    """A SQLite log still refuses an INSERT out of its chain (its writer drops that trigger while it inserts
    a long batch, and must have it back whatever stopped the batch)."""
    if target.startswith("sqlite:///"):
        database = sqlite3.connect(target.removeprefix("sqlite:///"), isolation_level=None)
        try:
            database.execute("BEGIN")
            with pytest.raises(sqlite3.DatabaseError, match="extend the chain"):
                database.execute(
                    "INSERT INTO timeline_entries VALUES (999999, 't', 'Observation', 'z', 'h', 'p', x'00')"
                )
        finally:
            database.execute("ROLLBACK")
            database.close()


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=st.integers(1, 700), killed_at=st.one_of(st.none(), st.integers(0, 600)))
def test_lines_made_by_a_fork_are_the_lines_one_process_makes(tmp_path_factory, fresh_logs, kind, piece, killed_at):
    """The lines of a spooled batch are made by a fork (``parallel.in_two``) ``piece`` at a time; killed after
    any line, this process makes what it did not send: the log is byte for byte the one written without it."""
    path = _big_file(tmp_path_factory.mktemp("import"), 600)
    parent, making = os.getpid(), store_module.spooled_lines

    def dying(*args):
        for n, line in enumerate(making(*args)):
            if n == killed_at and os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            yield line

    logs = []
    for forked in (True, False):
        with open_store(fresh_logs(kind)) as store, Spool.of(iter_events(path, stored=True)) as spool:
            store.clock = StepClock()
            store.append(SMALL_WORLD)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(store_module, "FORKED_LINES", 0)
                patch.setattr(store_module, "_MADE_AT_ONCE", piece)
                patch.setattr(store_module, "spooled_lines", dying)
                if not forked:  # as in a process with a second thread, which never forks
                    patch.setattr(parallel, "_fork", lambda room: None)
                store.append_spool(spool, describe_new=True)
            logs.append(list(store.lines()))
            assert store.verify().head.entries == len(SMALL_WORLD) + 601
    assert logs[0] == logs[1]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["jsonl", "sqlite", "postgres"])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=st.floats(min_value=0.0, max_value=1.0))
def test_a_spooled_import_killed_at_any_moment_lands_whole_or_not_at_all(tmp_path_factory, fresh_logs, kind, delay):
    """`timeline import` killed at any moment: the log is as it was (after `repair`), or holds the whole file."""
    folder = tmp_path_factory.mktemp("killed")
    target = fresh_logs(kind)
    with open_store(target) as store:
        store.append(SMALL_WORLD)
        before = list(store.lines())
    path = _big_file(folder, 20_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "timeline", "import", "--log", target, str(path), "--describe-new"],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3 + delay * 3)  # from reading the file to writing the batch and keeping its replay
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with open_store(target) as store:
        store.repair()
        lines = list(store.lines())
        assert lines[: len(before)] == before
        assert len(lines) in (len(before), len(before) + 20_001)  # nothing, or the file and its one description
        event("landed" if len(lines) > len(before) else "nothing landed")
        verified = store.verify()
        assert not verified.index_mismatch and verified.torn is None
    _assert_the_chain_is_guarded(target)
