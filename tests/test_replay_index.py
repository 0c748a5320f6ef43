"""The fast paths of replay (the index beside the log, the warm replay kept in memory) equal a cold replay."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events_log import projection
from events_log.errors import IndexMismatchWarning, StoreError
from events_log.events import Correction
from events_log.jsonl import JsonlStore
from events_log.projection import frame, unframe
from events_log.stores import open_store
from timeline.index import REPLAY_INDEX
from timeline.output import replay_document
from timeline.replay import replay

from .conftest import StepClock
from .helpers import obs
from .strategies import START, small_logs
from .test_jsonl_store import NAMES


def cold(store) -> dict:
    """A replay from the log alone: a fresh copy of the file, no index beside it, nothing in memory."""
    return replay_document(replay(open_store(store)))


def copy_without_index(path, folder):
    fresh = folder / f"cold-{len(list(folder.iterdir()))}.jsonl"
    shutil.copy(path, fresh)
    return str(fresh)


@given(small_logs(), st.data())
def test_warm_replay_after_appends_equals_cold_replay(tmp_path_factory, batches, data):
    """Replaying after each append (index and fold carried on) gives what a cold replay of the log gives."""
    folder = tmp_path_factory.mktemp("warm")
    store = JsonlStore(folder / "log.jsonl", clock=StepClock())
    for batch in batches:
        store.append(batch, allow_duplicate=True)
        warm = replay(store)
        assert replay_document(warm) == cold(copy_without_index(store.path, folder))
        day = START + dt.timedelta(days=data.draw(st.integers(0, 10)))
        incident = data.draw(st.sampled_from([None, "coastal-2025", "zaraa-2016"]))
        narrowed = replay_document(replay(store, as_of=day, incident=incident))
        fresh = open_store(copy_without_index(store.path, folder))
        assert narrowed == replay_document(replay(fresh, as_of=day, incident=incident))


def _held(result) -> tuple:
    """What a caller holding a replay reads of it: its series, its corrected rows and their records."""
    figures, keys = result.figures()
    return replay_document(result), [c.tolist() for c in figures], keys, [o.id for o in result.observations()]


@given(small_logs())
def test_replays_a_caller_holds_are_unchanged_by_later_appends(tmp_path_factory, batches):
    """The rows of each append are written after the warm replay's (``growing``), and corrections of older rows
    in a copy: every replay handed out earlier still reads what it read when it was made."""
    store = JsonlStore(tmp_path_factory.mktemp("held") / "log.jsonl", clock=StepClock())
    held = []
    for batch in batches:
        store.append(batch, allow_duplicate=True)
        result = replay(store)
        held.append((result, _held(result)))
    assert [_held(result) for result, _ in held] == [seen for _, seen in held]


@given(small_logs())
def test_sqlite_warm_replay_equals_cold_replay(tmp_path_factory, batches):
    """The same holds for a store without an index file (SQLite parses what was appended)."""
    folder = tmp_path_factory.mktemp("sqlite")
    target = f"sqlite:///{folder / 'log.db'}"
    store = open_store(target)
    store.clock = StepClock()
    for batch in batches:
        store.append(batch, allow_duplicate=True)
        warm = replay_document(replay(store))
        other = f"sqlite:///{folder / 'copy.db'}"
        (folder / "copy.db").unlink(missing_ok=True)
        copy = open_store(other)
        copy.copy_from(store)
        assert warm == replay_document(replay(copy))


def test_index_survives_repair_and_rewrites(tmp_path):
    """After a torn tail, a repair, a rewritten log or a damaged index, replay still equals a cold replay."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    replay(store)
    with open(store.path, "ab") as f:
        f.write(b'{"position":4,"recor')
    assert replay_document(replay(store)) == cold(copy_without_index(store.path, tmp_path))
    store.repair()
    store.append([obs("c", 9, 303, "increment")])
    assert replay_document(replay(store)) == cold(copy_without_index(store.path, tmp_path))
    # Another log put in place of this one: the index no longer matches and is rebuilt, with a warning.
    other = JsonlStore(tmp_path / "other.jsonl", clock=StepClock())
    other.append([*NAMES, obs("x", 8, 1), obs("y", 9, 2)])
    shutil.copy(other.path, store.path)
    with pytest.warns(IndexMismatchWarning):
        assert [s.latest.low for s in replay(store).series] == [2]
    assert replay_document(replay(store)) == cold(copy_without_index(store.path, tmp_path))
    # A damaged index file is passed over, with a warning, and rebuilt.
    sidecar = store.sidecar_path(REPLAY_INDEX)
    sidecar.write_bytes(sidecar.read_bytes()[:-7] + b"garbage")
    assert replay_document(replay(JsonlStore(store.path))) == cold(copy_without_index(store.path, tmp_path))
    sidecar.write_bytes(b"\x00" * 100)
    with pytest.warns(IndexMismatchWarning, match="damaged block"):
        assert replay_document(replay(JsonlStore(store.path))) == cold(copy_without_index(store.path, tmp_path))


def test_appending_uses_and_extends_the_index(tmp_path):
    """Appends keep the index beside the log up to date, so a fresh reader does not parse the log."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 1)])
    store.append([obs("b", 9, 2)])
    index = JsonlStore(store.path).projection(REPLAY_INDEX)
    assert index.entries == 4 and index.obs_ids.tolist() == ["a", "b"]
    assert len(list(unframe(store.sidecar_path(REPLAY_INDEX).read_bytes(), REPLAY_INDEX))) == 2  # one per append
    with pytest.raises(Exception, match="already in the log"):
        store.append([obs("a", 10, 3)])


@given(st.lists(st.integers(1, 13), min_size=1, max_size=5), st.booleans())
def test_appends_cut_into_many_blocks_keep_whole_sidecars(tmp_path_factory, sizes, spill_fails):
    """An append long enough to cut several blocks writes them all once its lines are durable.

    They wait in a temporary file meanwhile; where none can be made (no
    ``TMPDIR``), the append still lands and the next reader parses what the
    sidecars lack. Either way a fresh reader trusts them without a warning,
    and they hold what a rebuild from the log holds.
    """
    folder = tmp_path_factory.mktemp("blocks")
    store = JsonlStore(folder / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(projection, "BLOCK_ENTRIES", 4)
        if spill_fails:
            patch.setattr(tempfile, "tempdir", str(folder / "no such folder"))
        store.append(NAMES)
        for n, size in enumerate(sizes):
            store.append([obs(f"{n}-{k}", 1 + n, k) for k in range(size)])
        entries = len(NAMES) + sum(sizes)
        blocks = [block for _, block in unframe(store.sidecar_path(REPLAY_INDEX).read_bytes(), REPLAY_INDEX)]
        assert (sum(b.count for b in blocks) < entries) == spill_fails
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            index = JsonlStore(store.path).projection(REPLAY_INDEX)
        rebuilt = open_store(copy_without_index(store.path, folder)).projection(REPLAY_INDEX)
    assert index.entries == entries and index.same(rebuilt)
    checked = store.verify()
    assert not checked.index_mismatch and "replay index beside the log matches it" in checked.index_note


def test_verify_checks_the_index_against_the_log(tmp_path):
    """verify says the index matches; an edited index (numbers changed) is caught and set aside as evidence."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    assert "replay index beside the log matches it" in store.verify().index_note
    sidecar = store.sidecar_path(REPLAY_INDEX)
    [(_, block)] = list(unframe(sidecar.read_bytes(), REPLAY_INDEX))
    import msgspec
    import numpy as np

    # Low and high both: a figure no event could hold (low above high) is refused when the block is read.
    numbers = np.array([532, 999], dtype="<i8").tobytes()
    forged = msgspec.structs.replace(block, obs_low=numbers, obs_high=numbers)
    sidecar.write_bytes(frame(REPLAY_INDEX.encode(forged)))
    assert [s.latest.low for s in replay(JsonlStore(store.path)).series] == [999]  # the forged index is read...
    checked = store.verify()  # ...until verify catches it
    assert checked.index_mismatch and "replay index beside the log does not match it" in checked.index_note
    assert not sidecar.exists()
    assert sidecar.with_name(sidecar.name + ".mismatch-1").read_bytes() == frame(REPLAY_INDEX.encode(forged))
    assert [s.latest.low for s in replay(JsonlStore(store.path)).series] == [745]


def test_a_replay_held_while_its_log_is_replaced_refuses_to_read_another_logs_records(tmp_path):
    """Appends leave a held replay's records readable; a log put in its place (another log, a copy cut back)
    makes them a clear error, not another log's lines read at this one's offsets."""
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 9, 745)])
    store.append([Correction(observation_id="a", replacement=obs("a", 8, 533), reason="typo")])
    held = replay(store)
    expected = list(held.records())
    store.append([obs("c", 10, 800)])
    assert list(held.records()) == expected  # the log only grew
    other = JsonlStore(tmp_path / "other.jsonl", clock=StepClock())
    other.append([*NAMES, obs("x", 8, 1), obs("y", 9, 2), obs("z", 10, 3), obs("w", 11, 4)])
    for replaced in (other.path.read_bytes(), b"".join(log.read_bytes().splitlines(keepends=True)[:4])):
        log.write_bytes(replaced)
        for read in (lambda: list(held.records()), lambda: held.observation_data("a"), lambda: held.corrections("a"),
                     held.retracted, lambda: held.observation("b")):  # fmt: skip
            with pytest.raises(StoreError, match="no longer holds the log this replay was read at"):
                read()


@pytest.mark.parametrize("moved", [-5, -1, 7], ids=["inside the last line", "at its newline", "past the log"])
def test_verify_finds_an_index_whose_end_is_not_where_a_line_ends(tmp_path, moved):
    """The index is rebuilt up to where it says it ends: an end moved off a line's end is a mismatch, not a crash."""
    import msgspec

    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    store.append([obs("c", 9, 800)])
    sidecar = store.sidecar_path(REPLAY_INDEX)
    blocks = [block for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)]
    forged = msgspec.structs.replace(blocks[0], end_offset=blocks[0].end_offset + moved)
    sidecar.write_bytes(frame(REPLAY_INDEX.encode(forged)))
    checked = store.verify()
    assert checked.index_mismatch and "replay index beside the log does not match it" in checked.index_note
    assert sidecar.with_name(sidecar.name + ".mismatch-1").exists()
