"""Projections kept by the stores (the replay index, admission's index of ids) equal a fold of the log.

Every store keeps a projection's blocks somewhere of its own (a sidecar
file, rows of a table) and extends them in its append hook; whatever the
history of appends, fixes, torn writes and repairs, a fresh reader must get
exactly what folding the whole log from nothing gives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log import jsonl, projection
from events_log.errors import IndexMismatchWarning, StoredEntryError
from events_log.events import MAX_COUNT, Correction, Retraction
from events_log.jsonl import JsonlStore
from events_log.known import KNOWN
from events_log.projection import Ids, NewIds, extend
from events_log.stores import open_store
from timeline.index import REPLAY_INDEX
from timeline.output import replay_document
from timeline.replay import replay

from .conftest import StepClock
from .helpers import obs
from .strategies import small_logs
from .test_jsonl_store import NAMES


def folded(store, projection):
    """The projection folded from the log alone, from nothing (with each line's byte offsets, for a file)."""
    from events_log.envelope import decode_line

    def entries():
        at = 0
        for line in store.lines():
            end = at + len(line) + 1
            yield (decode_line(line), at, end) if isinstance(store, JsonlStore) else (decode_line(line), -1, -1)
            at = end

    return extend(projection.load([]), entries())[0]


def fresh(target: str):
    """Another store object on the same log: it knows nothing the first one read."""
    return open_store(target)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=15, deadline=None)
@given(batches=small_logs(), tear=st.lists(st.booleans(), min_size=8, max_size=8))
def test_kept_projections_equal_a_fold_of_the_log(fresh_logs, log_kind, batches, tear):
    """After appends, fixes (and, for a file, torn writes repaired), every store's projections equal a cold fold."""
    target = fresh_logs(log_kind)
    store = open_store(target)
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    try:
        for batch, torn in zip(batches, [False, *tear], strict=False):
            if torn and isinstance(store, JsonlStore):
                with open(store.path, "ab") as f:
                    f.write(b'{"position":999,"recor')
                store.repair()
            store.append(batch, allow_duplicate=True)
            reader = fresh(target)
            assert reader.projection(REPLAY_INDEX).same(folded(reader, REPLAY_INDEX))
            if isinstance(store, JsonlStore):
                assert reader.projection(KNOWN).same(folded(reader, KNOWN))
            reader.close()
        assert replay_document(replay(fresh(target))) == replay_document(replay(store))
    finally:
        store.close()


def stored_blocks(target: str) -> int:
    """How many blocks of the replay index a SQL store holds."""
    query = "SELECT COUNT(*) FROM timeline_projections WHERE name = 'index'"
    if target.startswith("sqlite:///"):
        with sqlite3.connect(target.removeprefix("sqlite:///")) as db:
            return db.execute(query).fetchone()[0]
    import psycopg

    with psycopg.connect(target) as db:
        return db.execute(query).fetchone()[0]


def test_sql_stores_keep_the_replay_index_in_the_database(fresh_logs, log_kind):
    """One block per append, in the database; a fresh reader reads them instead of parsing the log."""
    if log_kind == "jsonl":
        pytest.skip("the file store keeps it in a sidecar (test_replay_index.py)")
    target = fresh_logs(log_kind)
    store = open_store(target)
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 1)])
    store.append([obs("b", 9, 2)])
    index = fresh(target).projection(REPLAY_INDEX)
    assert index.entries == 4 and index.obs_ids.tolist() == ["a", "b"]
    assert stored_blocks(target) == 2  # one block per append, which the fresh reader read
    assert "replay index in timeline_projections matches the log" in store.verify().index_note
    store.close()


def test_sql_readers_save_what_they_parsed(tmp_path):
    """A log appended to without the index kept: the first reader parses and saves, the next one reads."""
    target = f"sqlite:///{tmp_path / 'log.db'}"
    writer = open_store(target)
    writer.clock = StepClock()
    writer.append([*NAMES, obs("a", 8, 1), obs("b", 9, 2)])
    with sqlite3.connect(tmp_path / "log.db") as db:
        assert db.execute("SELECT COUNT(*) FROM timeline_projections").fetchone() == (0,)
    fresh(target).projection(REPLAY_INDEX)
    with sqlite3.connect(tmp_path / "log.db") as db:
        assert db.execute("SELECT name, first_entry, entries FROM timeline_projections").fetchall() == [("index", 0, 4)]
    assert stored_blocks(target) == 1


def test_sqlite_verify_sets_a_forged_index_aside(tmp_path):
    """Blocks edited in the database are read until verify catches them, keeps them aside, and a new index is built."""
    import msgspec
    import numpy as np

    target = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(target)
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    with sqlite3.connect(tmp_path / "log.db") as db:
        (body,) = db.execute("SELECT body FROM timeline_projections").fetchone()
        block = REPLAY_INDEX.decode(body)
        # Low and high both: a figure no event could hold (low above high) is refused when the block is read.
        numbers = np.array([532, 999], dtype="<i8").tobytes()
        forged = msgspec.structs.replace(block, obs_low=numbers, obs_high=numbers)
        db.execute("UPDATE timeline_projections SET body = ?", (REPLAY_INDEX.encode(forged),))
    assert [s.latest.low for s in replay(fresh(target)).series] == [999]
    checked = store.verify()
    assert checked.index_mismatch and "does not match the log" in checked.index_note
    assert "index.mismatch-1" in checked.index_note
    assert [s.latest.low for s in replay(fresh(target)).series] == [745]
    again = store.verify()
    assert not again.index_mismatch and "matches the log" in again.index_note
    with sqlite3.connect(tmp_path / "log.db") as db:
        names = sorted(name for (name,) in db.execute("SELECT DISTINCT name FROM timeline_projections"))
    assert names == ["index", "index.mismatch-1"]


def test_admission_survives_a_lost_known_sidecar(tmp_path):
    """Admission's index of ids is derived: deleted or damaged, it is rebuilt, and repeats are still refused."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 1)])
    store.sidecar_path(KNOWN).unlink()
    with pytest.raises(Exception, match="already in the log"):
        store.append([obs("a", 10, 3)])
    store.sidecar_path(KNOWN).write_bytes(b"\x00" * 40)
    with warnings.catch_warnings(record=True) as caught:  # not pytest.warns: it re-emits other tests' leaks
        warnings.simplefilter("always", IndexMismatchWarning)
        with pytest.raises(Exception, match="repeats observation 'a'"):
            store.append([obs("a2", 8, 1)])
        assert JsonlStore(store.path).projection(KNOWN).same(folded(store, KNOWN))
    # Said by the append, and by the read after it (the refused append left the sidecar as it was).
    assert [str(w.message).count("damaged block") for w in caught if w.category is IndexMismatchWarning] == [1, 1]


class _SmallPieces(NewIds):
    _JOINED = 3  # so that a few ids already span several joined strings
    _WINDOW = 2  # and lookups go back past the newest of them


@given(
    first_row=st.integers(0, 10**6),
    steps=st.lists(
        st.tuples(st.sampled_from(["add", "extend", "get", "map"]), st.sampled_from("abcdefg")), max_size=40
    ),
)
def test_new_ids_find_the_row_of_each_id_as_a_dict_would(first_row, steps):
    """Ids joined a few to a string and mapped only when asked for answer as a plain dict of id -> last row."""
    new_ids, plain, added = _SmallPieces(first_row), {}, 0
    for step, observation_id in steps:
        if step == "add":
            plain[observation_id] = new_ids.add(observation_id)
            assert plain[observation_id] == first_row + added  # rows follow on from the first
            added += 1
        elif step == "extend":  # several at once, across a joined string's end
            more = [observation_id, "x", observation_id.upper()]
            new_ids.extend(more)
            plain |= {more_id: first_row + added + n for n, more_id in enumerate(more)}
            added += len(more)
        elif step == "get":
            assert new_ids.get(observation_id) == plain.get(observation_id)
        else:
            assert new_ids.mapping() == plain
    assert [new_ids.get(i) for i in "abcdefg"] == [plain.get(i) for i in "abcdefg"]
    assert new_ids.count == added


_IDS = st.lists(st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=6), max_size=8)


@given(parts=st.lists(_IDS, min_size=1, max_size=40), data=st.data())
def test_ids_kept_joined_answer_as_a_plain_list(parts, data):
    """An index's ids, kept as each block joined them and extended append by append, read as the plain list."""
    ids, plain = Ids(["\n".join(parts[0])], [len(parts[0])]), list(parts[0])
    for more in parts[1:]:
        ids, plain = ids.extended(Ids(["\n".join(more)], [len(more)])), plain + more
    assert len(ids) == len(plain) and ids.tolist() == plain
    rows = data.draw(st.lists(st.integers(0, len(plain) - 1), max_size=20)) if plain else []
    assert ids.take(np.array(rows, dtype=np.int64)) == [plain[r] for r in rows]
    assert [ids[r] for r in rows] == [plain[r] for r in rows]
    wanted = set(data.draw(st.lists(st.sampled_from(plain), max_size=5)) if plain else []) | {"not one of them"}
    assert ids.among(wanted) == wanted & set(plain)
    with pytest.raises(IndexError):
        ids[len(plain)]


# Rewrites of an observation's stored data that the exact path reads (``RawEntry``, then the index
# builder) but the skim does not, or that only an upcast makes current: each must come out the same.
def _as_schema_1(data: dict) -> dict:
    """The flat layout of schema 1 (``codec._observation_v1_to_v2`` undone)."""
    flat = {k: v for k, v in data.items() if k not in ("figure", "source")}
    return flat | data["figure"] | {"source_title": data["source"]["title"], "source_url": data["source"]["url"],
                                    "quote": data["source"]["quote"]}  # fmt: skip


OLD_OR_ODD = {
    "as stored": None,
    "schema 1": lambda data: (1, _as_schema_1(data)),
    "no location field": lambda data: (2, {k: v for k, v in data.items() if k != "location" or v is not None}),
    "a field nobody reads": lambda data: (2, data | {"note_added_later": [1, {"x": None}]}),
}
# Rewrites no writer could have admitted: both paths refuse them, naming the position (test_stored_events.py
# tries every kind of figure).
BROKEN = {
    "a float low": lambda data: (2, data | {"figure": data["figure"] | {"low": float(data["figure"]["low"])}}),
    "an unknown kind": lambda data: (2, data | {"kind": "weekly"}),
    "an unknown kind, in schema 1": lambda data: (1, _as_schema_1(data) | {"kind": "weekly"}),
    "a date that is no day": lambda data: (2, data | {"reported_on": "2025-02-30"}),
}


def rechained(lines: list[bytes], rewrite) -> bytes:
    """The log's lines with ``rewrite`` (position, type, schema, data) -> (schema, data) applied, hashes made anew."""
    out, prev = [], "0" * 64
    for line in lines:
        entry = orjson.loads(line)
        entry.pop("hash")
        entry["schema"], entry["event"] = rewrite(entry["position"], entry["type"], entry["schema"], entry["event"])
        entry["prev_hash"] = prev
        body = orjson.dumps(entry)
        prev = hashlib.sha256(body).hexdigest()
        out.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}\n')
    return b"".join(out)


@contextlib.contextmanager
def readers(two: bool, block: int = projection.BLOCK_ENTRIES, window: int = jsonl.IN_TWO_WINDOW) -> Iterator[None]:
    """A log read by one process, or by two (``parallel.in_two``) however short, a ``window`` of bytes at a time,
    cutting blocks of ``block`` entries."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "IN_TWO_BYTES", 0 if two else 1 << 62)
        patch.setattr(jsonl, "IN_TWO_WINDOW", window)
        patch.setattr(projection, "BLOCK_ENTRIES", block)
        yield


@settings(max_examples=40, deadline=None)
@given(batches=small_logs(), changes=st.lists(st.sampled_from(sorted(OLD_OR_ODD)), min_size=1, max_size=40),
       old_fixes=st.booleans(), two=st.booleans(), block=st.sampled_from([1, 3, 7, 100_000]),
       window=st.sampled_from([1, 3_000, 1 << 30]))  # fmt: skip
def test_the_index_read_from_lines_equals_the_exact_fold(
    tmp_path_factory, batches, changes, old_fixes, two, block, window
):
    """A log read with no index beside it (its observations skimmed) gives the index the exact path gives.

    Observations are rewritten as an older schema or with fields the skim
    does not take, and so are corrections' observations (where their schema
    allows), or fixes all as schema 1: those lines must go the exact way,
    among fixes that are skimmed, and the index must not tell them apart. So must a reading
    shared by two processes (in windows as short as a line), and one whose
    blocks end inside a run read.
    """
    folder = tmp_path_factory.mktemp("skim")
    written = JsonlStore(folder / "written.jsonl", clock=StepClock())
    for batch in batches:
        written.append(batch, allow_duplicate=True)

    def rewrite(position, type_name, schema, data):
        change = OLD_OR_ODD[changes[position % len(changes)]]
        if type_name == "Observation":
            return (schema, data) if change is None else change(data)
        if type_name in ("Correction", "Retraction") and old_fixes:
            return 1, {k: v for k, v in data.items() if k != "expected_version"}
        if type_name == "Correction" and change is not None:  # its observation, as odd, where its schema allows
            replaced_schema, replacement = change(data["replacement"])
            if replaced_schema == schema:
                return schema, data | {"replacement": replacement}
        return schema, data

    path = folder / "log.jsonl"
    path.write_bytes(rechained(list(written.lines()), rewrite))
    store = JsonlStore(path)
    # Not verify: it also structures each event whole, and refuses a field nobody reads, as input does.
    assert store.head().entries == sum(len(b) for b in batches)
    with readers(two, block, window):
        read = store.projection(REPLAY_INDEX)
    assert read.same(folded(store, REPLAY_INDEX))
    assert JsonlStore(path).projection(REPLAY_INDEX).same(read)  # as kept in the sidecar it wrote
    # A projection that does not read lines itself gets each one decoded, with the same offsets.
    assert store.projection(KNOWN).same(folded(store, KNOWN))


# Rewrites the index of ids (``KNOWN``) must leave to its exact path: its figure key hashes what is stored,
# whatever that is, so nothing here is refused, but only ``KnownBuilder.add`` may read it.
KNOWN_ODD = {
    **{name: change for name, change in OLD_OR_ODD.items() if change is not None},
    **BROKEN,
    "a count past any": lambda data: (2, data | {"figure": {"low": 1, "high": MAX_COUNT + 1, "qualifier": "range"}}),
    "a negative low": lambda data: (2, data | {"figure": data["figure"] | {"low": -1}}),
    "a count of 2**63": lambda data: (2, data | {"figure": {"low": 2**63, "high": None, "qualifier": "at_least"}}),
    "a low in words": lambda data: (2, data | {"figure": data["figure"] | {"low": "twelve"}}),
    "a bool high": lambda data: (2, data | {"figure": data["figure"] | {"high": True}}),
    "a monitor that is a number": lambda data: (2, data | {"monitor": 7}),
    "a location written as null": lambda data: (2, data | {"location": None}),
    "a location with quotes and accents": lambda data: (2, data | {"location": 'Idlib "east" — Ma\u0027arrat'}),
    "a day with a time": lambda data: (2, data | {"reported_on": data["reported_on"] + "T00:00"}),
}


@settings(max_examples=40, deadline=None)
@given(batches=small_logs(), changes=st.lists(st.sampled_from([None, *sorted(KNOWN_ODD)]), min_size=1, max_size=40),
       two=st.booleans(), block=st.sampled_from([1, 3, 7, 100_000]),
       window=st.sampled_from([1, 3_000, 1 << 30]))  # fmt: skip
def test_the_index_of_ids_read_from_lines_equals_the_exact_fold(tmp_path_factory, batches, changes, two, block, window):
    """A log copied without its sidecars (a clone) gets the index of ids the exact path gives.

    Its observations are read by msgspec (``known.read_lines``), in one
    process or two, in windows as short as a line, with blocks ending inside
    a run read; every line stored in a way a writer does not write is left
    to the exact path, which hashes it as stored.
    """
    folder = tmp_path_factory.mktemp("known")
    written = JsonlStore(folder / "written.jsonl", clock=StepClock())
    for batch in batches:
        written.append(batch, allow_duplicate=True)

    def rewrite(position, type_name, schema, data):
        change = KNOWN_ODD.get(changes[position % len(changes)]) if type_name == "Observation" else None
        return (schema, data) if change is None else change(data)

    path = folder / "log.jsonl"
    path.write_bytes(rechained(list(written.lines()), rewrite))
    store = JsonlStore(path)
    with readers(two, block, window):
        read = store.projection(KNOWN)
    assert read.same(folded(store, KNOWN))
    assert JsonlStore(path).projection(KNOWN).same(read)  # as kept in the sidecar it wrote


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize("stored_id", ["-starts-badly", "has a space", "x" * 101, 17, None])
def test_the_index_of_ids_refuses_a_stored_id_no_writer_could_admit(tmp_path, stored_id, two):
    """Whether the line is read by this process or the second one, the refusal names its position."""
    written = JsonlStore(tmp_path / "written.jsonl", clock=StepClock())
    written.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745), obs("c", 9, 800)])
    path = tmp_path / "log.jsonl"

    def rewrite(position, type_name, schema, data):
        return (schema, data | {"id": stored_id}) if position == 3 else (schema, data)

    path.write_bytes(rechained(list(written.lines()), rewrite))
    with readers(two), pytest.raises(StoredEntryError) as caught:
        JsonlStore(path).projection(KNOWN)
    assert caught.value.position == 3
    with pytest.raises(StoredEntryError) as exact:
        folded(JsonlStore(path), KNOWN)
    assert str(caught.value) == f"{path}: {exact.value}"  # the store names its log


def rehashed(lines: list[bytes], edit) -> bytes:
    """The log's lines with ``edit(line) -> line`` applied to their bytes, every hash and link made anew.

    Bytes, not data: orjson writes no text that is not UTF-8, no number out
    of range and no key twice.
    """
    out, prev = [], b"0" * 64
    for line in lines:
        body = edit(line)[: -len(b',"hash":"') - 64 - 2]
        body = re.sub(rb'"prev_hash":"[0-9a-f]{64}"', b'"prev_hash":"' + prev + b'"', body, count=1)
        prev = hashlib.sha256(body + b"}").hexdigest().encode()
        out.append(body + b',"hash":"' + prev + b'"}\n')
    return b"".join(out)


def _in(observation: bytes, old: bytes, new: bytes):
    """An edit of one observation's line (by its id): ``old`` replaced by ``new``."""
    return lambda line: line.replace(old, new, 1) if b'"id":"%s"' % observation in line else line


def _both(*edits):
    def edit(line: bytes) -> bytes:
        for one in edits:
            line = one(line)
        return line

    return edit


# Lines only a reader that decodes the whole event refuses, edited as bytes (see ``rehashed``); the last two follow
# an id no event could have, which must be what both ways name first.
UNREADABLE_IN_PART = {
    "a number out of range in a quote": _in(b"b", b'"quote":"..."', b'"quote":1e400'),
    "text that is not UTF-8 in a title": _in(b"b", b'"title":"', b'"title":"\xff'),
    "an unknown field holding a number out of range": _in(b"b", b'"event":{', b'"event":{"later":1e400,'),
    "a source given twice, the first not UTF-8": _in(b"b", b'"source":{', b'"source":{"title":"\xff"},"source":{'),
    "a field of the source nobody reads, not UTF-8": _in(b"b", b'"source":{', b'"source":{"later":"\xff",'),
    "an id holding a newline": _in(b"b", b'"id":"b"', b'"id":"b\\nzz"'),
    "a count past 64 bits, after a bad id": _both(_in(b"a", b'"id":"a"', b'"id":"a a"'),
                                                  _in(b"c", b'"low":800', b'"low":18446744073709551616')),
    "a quote nested past any depth, after a bad id": _both(_in(b"a", b'"id":"a"', b'"id":"a a"'),
                                                           _in(b"c", b'"quote":"..."', b'"quote":' + b"[" * 5000
                                                               + b"]" * 5000)),
    "an envelope field nested past any depth, after a bad id": _both(_in(b"a", b'"id":"a"', b'"id":"a a"'),
                                                                     _in(b"c", b'"schema":', b'"later":' + b"[" * 5000
                                                                         + b"]" * 5000 + b',"schema":')),
}  # fmt: skip


@pytest.mark.parametrize("kept", [KNOWN, REPLAY_INDEX], ids=["index of ids", "replay index"])
def test_observations_as_writers_store_them_are_read_in_part(tmp_path, kept):
    """Only descriptions are left to the exact way, and fixes where the index of ids reads them (a struct that
    refused every observation, or every fix, would be right, and as slow as the exact way)."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745, high=None), obs("c", 9, 800, location="Baniyas")])
    fixed = obs("c", 9, 802, location="Baniyas")
    store.append([Retraction(observation_id="a", reason="wrong"), obs("d", 9, 810, kind="increment", high=900),
                  Correction(observation_id="c", replacement=fixed, reason="typo")])  # fmt: skip
    lines = list(store.lines())
    run = kept.read_lines(lines, 0)
    fixes = [n for n, line in enumerate(lines) if b'"type":"Retraction"' in line or b'"type":"Correction"' in line]
    assert len(fixes) == 2
    observations = [n for n, line in enumerate(lines) if b'"type":"Observation"' in line]
    left = [n for n in range(len(lines)) if n not in observations and (kept is KNOWN or n not in fixes)]
    assert sorted(run.others) == left
    if kept is REPLAY_INDEX:
        assert sorted(run.fixes) == fixes and len(left) == len(NAMES)


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize("kept", [KNOWN, REPLAY_INDEX], ids=["index of ids", "replay index"])
@pytest.mark.parametrize("edit", UNREADABLE_IN_PART.values(), ids=UNREADABLE_IN_PART.keys())
def test_a_line_read_in_part_is_read_as_the_whole_line_is(tmp_path, edit, kept, two):
    """A line whose event only a whole decoding refuses is refused when a projection reads its lines, with the
    message and at the place the exact way gives: after the lines before it, whichever process read it."""
    written = JsonlStore(tmp_path / "written.jsonl", clock=StepClock())
    written.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745), obs("c", 9, 800), obs("d", 9, 900)])
    path = tmp_path / "log.jsonl"
    path.write_bytes(rehashed(list(written.lines()), edit))

    def outcome(exact: bool):
        with contextlib.ExitStack() as stack:
            if exact:  # the store without the reading of lines: each line decoded whole, then added
                patch = stack.enter_context(pytest.MonkeyPatch.context())
                patch.delattr(type(kept), "read_lines")
            stack.enter_context(readers(two, window=500))
            try:
                return JsonlStore(path, read_only=True).projection(kept)
            except Exception as exc:  # what each way raises is the finding
                return type(exc), str(exc)

    exact, read = outcome(exact=True), outcome(exact=False)
    assert isinstance(exact, tuple), "the edit must be one the exact way refuses"
    assert read == exact


def _with_envelope(folder: Path, envelope: dict) -> bytes:
    """A small log's lines with ``envelope`` put in observation a's (position 2, not the last), hashes made anew."""
    written = JsonlStore(folder / "written.jsonl", clock=StepClock())
    written.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    lines, prev = [], "0" * 64
    for line in written.lines():
        entry = orjson.loads(line)
        entry.pop("hash")
        entry |= {"prev_hash": prev, **(envelope if entry["position"] == 2 else {})}
        body = json.dumps(entry, separators=(",", ":")).encode()  # orjson writes no int beyond 64 bits
        prev = hashlib.sha256(body).hexdigest()
        lines.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}\n')
    return b"".join(lines)


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize("position", [-3, 2**63, 2**64 - 1, 10**30])
def test_the_index_of_ids_refuses_a_position_no_log_reaches(tmp_path, position, two):
    """As the replay index refuses it: one error naming the log, not an overflow's traceback."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(_with_envelope(tmp_path, {"position": position}))
    with readers(two), pytest.raises(StoredEntryError, match=rf"log\.jsonl: position {position} .*can reach"):
        JsonlStore(path).projection(KNOWN)


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_the_index_refuses_a_stored_observation_no_writer_could_admit(tmp_path, change, two):
    """Whichever path reads it (the skim, or the exact path an older schema takes), naming its position.

    The last line is in the part a second process reads, when two do.
    """
    written = JsonlStore(tmp_path / "written.jsonl", clock=StepClock())
    written.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    path = tmp_path / "log.jsonl"

    def rewrite(position, type_name, schema, data):
        return change(data) if position == 3 else (schema, data)

    path.write_bytes(rechained(list(written.lines()), rewrite))
    with readers(two), pytest.raises(StoredEntryError) as caught:
        JsonlStore(path).projection(REPLAY_INDEX)
    assert caught.value.position == 3


# A correction's observation no writer could have admitted: the skim leaves its line to the exact way.
BROKEN_REPLACEMENTS = {
    **{name: change for name, change in BROKEN.items() if "schema 1" not in name},
    "an id no event could have": lambda data: (2, data | {"id": "a b"}),
    "high below low": lambda data: (2, data | {"figure": {"low": 9, "high": 3, "qualifier": "range"}}),
    "an open exact figure": lambda data: (2, data | {"figure": {"low": 9, "high": None, "qualifier": "exact"}}),
}


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize("change", BROKEN_REPLACEMENTS.values(), ids=BROKEN_REPLACEMENTS.keys())
def test_the_index_refuses_a_stored_correction_no_writer_could_admit_as_the_exact_path_does(tmp_path, change, two):
    """The skim reads a correction's observation as it reads one on its own, and what it refuses is refused by
    the exact path, in the same words, naming the correction's position."""
    written = JsonlStore(tmp_path / "written.jsonl", clock=StepClock())
    written.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    written.append([Correction(observation_id="b", replacement=obs("b", 8, 746), reason="typo"), obs("c", 9, 800)])
    path = tmp_path / "log.jsonl"

    def rewrite(position, type_name, schema, data):
        if type_name != "Correction":
            return schema, data
        return schema, data | {"replacement": change(data["replacement"])[1]}

    path.write_bytes(rechained(list(written.lines()), rewrite))
    with pytest.raises(StoredEntryError) as exact:
        folded(JsonlStore(path), REPLAY_INDEX)
    with readers(two), pytest.raises(StoredEntryError) as caught:
        JsonlStore(path).projection(REPLAY_INDEX)
    assert caught.value.position == exact.value.position == 4
    assert str(exact.value) in str(caught.value)


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
@pytest.mark.parametrize(
    "envelope", [{"recorded_at": "yesterday"}, {"recorded_at": "2025-13-45T99:00:00Z"}, {"position": 2**64 - 1},
                 {"position": 10**30}], ids=["a word", "no such time", "2**64 - 1", "10**30"])  # fmt: skip
def test_the_index_refuses_a_stored_envelope_no_writer_could_make(tmp_path, envelope, two):
    """A time that is none, or a position beyond any log's: one error naming the log, not a traceback."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(_with_envelope(tmp_path, envelope))
    with readers(two), pytest.raises(StoredEntryError, match=r"log\.jsonl.*position"):
        JsonlStore(path).projection(REPLAY_INDEX)


@settings(max_examples=10, deadline=None)
@given(batches=small_logs(), failure=st.sampled_from(["raises", "exits", "killed"]))
def test_a_second_reader_that_fails_changes_nothing(tmp_path_factory, batches, failure):
    """The forked reader dies (an error, an exit, a kill): this process reads its part, to the same index."""
    folder = tmp_path_factory.mktemp("fork")
    store = JsonlStore(folder / "log.jsonl", clock=StepClock())
    for batch in batches:
        store.append(batch, allow_duplicate=True)
    parent, read_lines = os.getpid(), type(REPLAY_INDEX).read_lines

    def failing(lines, start):
        if os.getpid() != parent:
            if failure == "raises":
                raise MemoryError
            if failure == "exits":
                os._exit(0)
            os.kill(os.getpid(), signal.SIGKILL)
        return read_lines(lines, start)

    with readers(two=True), pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(REPLAY_INDEX), "read_lines", staticmethod(failing))
        read = JsonlStore(store.path).projection(REPLAY_INDEX)
    assert read.same(folded(store, REPLAY_INDEX))


@pytest.mark.parametrize("dies_after", [1, 4], ids=["after its first run", "after four runs"])
def test_a_second_reader_that_dies_after_some_runs_were_taken_in_changes_nothing(tmp_path, dies_after):
    """What the fork sent before it died was taken in as it came: this process reads only the runs it did not send.

    Each run is a few lines, and this process's share is short, so it is
    taking the fork's runs in by the time the fork is killed.
    """
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(60))])
    store.append([obs(f"p{n}", 1 + n % 28, 100 + n) for n in range(60)])
    parent, read_lines, runs = os.getpid(), type(REPLAY_INDEX).read_lines, []

    def dying(lines, start):
        if os.getpid() != parent:
            runs.append(start)
            if len(runs) > dies_after:
                time.sleep(0.5)  # this process has taken in what was sent meanwhile
                os.kill(os.getpid(), signal.SIGKILL)
        return read_lines(lines, start)

    with readers(two=True), pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "_BLOCK", 2048)  # a few lines a run
        patch.setattr(jsonl, "_FIRST_SHARE", 0.05)
        patch.setattr(type(REPLAY_INDEX), "read_lines", staticmethod(dying))
        read = JsonlStore(store.path).projection(REPLAY_INDEX)
    assert read.same(folded(store, REPLAY_INDEX))


_READ_FOR_A_KILLED_PROCESS = """
import os, sys, time
from events_log import jsonl
from events_log.jsonl import JsonlStore
from timeline.index import REPLAY_INDEX

jsonl.IN_TWO_BYTES = 0
parent, read_lines = os.getpid(), type(REPLAY_INDEX).read_lines

def slow(lines, start):  # the fork reads a run a second, and says who it is
    if os.getpid() != parent:
        with open(sys.argv[2], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(1)
    return read_lines(lines, start)

type(REPLAY_INDEX).read_lines = staticmethod(slow)
JsonlStore(sys.argv[1]).projection(REPLAY_INDEX)
"""


def test_a_fork_stops_soon_after_the_process_it_reads_for_is_killed(tmp_path):
    """Its files, and so the lock on the log, go with it: it must not read on for its whole part."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(obs(f"o{n}", 1 + n % 28, n) for n in range(6000))])  # about twenty runs of lines
    pid_file = tmp_path / "fork.pid"
    reader = subprocess.Popen([sys.executable, "-c", _READ_FOR_A_KILLED_PROCESS, str(store.path), str(pid_file)],
                              cwd=Path(__file__).parent.parent)  # fmt: skip
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and reader.poll() is None
        time.sleep(0.05)
    fork = int(pid_file.read_text())
    reader.kill()
    reader.wait()
    killed = time.monotonic()
    while _running(fork):
        assert time.monotonic() - killed < 3, "the fork read on after its process was killed"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has exited: it holds no files)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
