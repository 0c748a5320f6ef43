"""One incident read from its part of the replay index: equal to the replay from the whole index, or not read."""

from __future__ import annotations

import datetime as dt
import sqlite3
import struct
import subprocess
import sys
import zlib

import attrs
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log.errors import IndexMismatchWarning
from events_log.events import Correction
from events_log.jsonl import JsonlStore
from events_log.projection import frame, unframe
from events_log.store import Store
from events_log.stores import open_store
from timeline import incident_parts
from timeline.index import REPLAY_INDEX
from timeline.scratch import replay_from_scratch

from .conftest import StepClock
from .helpers import invoke, obs
from .strategies import descriptions_of, small_logs
from .test_kept_incidents import AS_OF, INCIDENTS, MONITORS, said


def from_the_whole_index(store, as_of, incident, monitor):
    return replay_from_scratch(store, store.projection(REPLAY_INDEX), as_of, None, incident, monitor, None)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None)
@given(batches=small_logs(), chosen=st.lists(st.tuples(st.sampled_from(INCIDENTS), st.sampled_from(MONITORS),
                                                       st.sampled_from(AS_OF)), min_size=1, max_size=4))  # fmt: skip
def test_one_incident_read_in_part_is_the_replay_from_the_whole_index(fresh_logs, log_kind, batches, chosen):
    """At every head, one block an append: corrections move rows between incidents and blocks."""
    store = open_store(fresh_logs(log_kind))
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    try:
        for batch in batches:
            store.append(batch, allow_duplicate=True)
            for incident, monitor, as_of in chosen:
                part = incident_parts.replay(store, as_of, incident, monitor)
                assert part is not None
                assert said(part) == said(from_the_whole_index(store, as_of, incident, monitor))
    finally:
        store.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30, deadline=None)
@given(batches=small_logs())
def test_a_block_kept_in_parts_is_read_back_whole_as_it_was(tmp_path_factory, batches):
    store = JsonlStore(tmp_path_factory.mktemp("log") / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    for batch in batches:
        store.append(batch, allow_duplicate=True)
    blocks = [block for _, block in unframe(store.sidecar_path(REPLAY_INDEX).read_bytes(), REPLAY_INDEX)]
    assert len(blocks) == len(batches)
    keys = [key for block in blocks for key in block.new_series]
    for block in blocks:
        body = REPLAY_INDEX.encode(block)
        assert REPLAY_INDEX.decode(body) == block == REPLAY_INDEX.decode_checked(body)
        incidents = [keys[n][0] for n in np.frombuffer(block.obs_series, "<i4").tolist()]
        assert {slug: np.frombuffer(rows, "<i4").tolist() for slug, rows in block.incident_rows.items()} == {
            slug: [k for k, incident in enumerate(incidents) if incident == slug] for slug in set(incidents)
        }


def moved_log(target) -> Store:
    """Two appends: the second moves an observation of zaraa-2016 into coastal-2025."""
    store = open_store(str(target))
    store.clock = StepClock()
    store.keep(REPLAY_INDEX)
    observations = [obs("a", 8, 532), obs("b", 10, 745), attrs.evolve(obs("z1", 9, 40), incident="zaraa-2016")]
    store.append([*descriptions_of(observations), *observations])
    store.append([Correction(observation_id="z1", replacement=obs("z1", 9, 41), reason="wrong incident"),
                  obs("c", 11, 800)])  # fmt: skip
    return store


def test_a_row_moved_into_the_incident_by_a_correction_is_read_from_the_correction(tmp_path):
    store = moved_log(tmp_path / "log.jsonl")
    for incident in ("coastal-2025", "zaraa-2016"):
        part = incident_parts.replay(store, None, incident, None)
        assert said(part) == said(from_the_whole_index(store, None, incident, None))
    [series] = incident_parts.replay(store, None, "coastal-2025", None).series
    assert series.on(dt.date(2025, 3, 9)).low == 41
    assert incident_parts.replay(store, None, "zaraa-2016", None).series == ()


def test_an_index_that_does_not_reach_the_head_or_kept_whole_is_not_read_in_part(tmp_path):
    path = tmp_path / "log.jsonl"
    store = moved_log(path)
    JsonlStore(path, clock=StepClock()).append([obs("d", 12, 900)])  # a writer that keeps no index
    assert incident_parts.replay(store, None, "coastal-2025", None) is None
    replay_from_scratch(store, store.projection(REPLAY_INDEX), None, None, None, None, None)  # brought up to date
    assert incident_parts.replay(store, None, "coastal-2025", None) is not None
    # Blocks kept whole, as versions before parts kept them: read whole, never in part.
    sidecar = store.sidecar_path(REPLAY_INDEX)
    blocks = [block for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)]
    sidecar.write_bytes(b"".join(frame(msgspec.msgpack.encode(list(msgspec.structs.astuple(b))[:-2])) for b in blocks))
    assert [block for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)] == [
        msgspec.structs.replace(block, correction_ids="", incident_rows={}) for block in blocks
    ]
    assert incident_parts.replay(store, None, "coastal-2025", None) is None
    assert said(from_the_whole_index(store, None, "coastal-2025", None))[0]


def _parts(body: bytes) -> tuple[dict, int]:
    """A stored block's head (as plain msgpack) and where its parts start."""
    length, _ = struct.unpack("<II", body[1:9])
    return msgspec.msgpack.decode(body[9 : 9 + length]), 9 + length


def _rewritten(body: bytes, change) -> bytes:
    """A stored block with its head changed by ``change`` (head as a list), every CRC made to hold again."""
    head, start = _parts(body)
    change(head)
    new_head = msgspec.msgpack.encode(head)
    return body[:1] + struct.pack("<II", len(new_head), zlib.crc32(new_head)) + new_head + body[start:]


def test_a_damaged_part_is_passed_over_and_the_whole_index_rebuilt(tmp_path):
    store = moved_log(tmp_path / "log.jsonl")
    expected = said(incident_parts.replay(store, None, "coastal-2025", None))
    sidecar = store.sidecar_path(REPLAY_INDEX)
    data = bytearray(sidecar.read_bytes())
    size = int.from_bytes(data[:8], "little")
    head, start = _parts(bytes(data[12 : 12 + size]))
    (rows_place, _ids_place) = head[-1]["coastal-2025"]
    data[12 + start + rows_place[0] + rows_place[1] - 1] ^= 0x01  # the last byte of coastal-2025's rows
    sidecar.write_bytes(bytes(data))
    assert incident_parts.replay(store, None, "coastal-2025", None) is None
    with pytest.warns(IndexMismatchWarning, match="damaged block"):
        whole = from_the_whole_index(store, None, "coastal-2025", None)
    assert said(whole) == expected
    assert said(incident_parts.replay(store, None, "coastal-2025", None)) == expected


def _ids_forged(body: bytes) -> bytes:
    """A stored block with the ids of coastal-2025's rows in another order, every CRC made to hold."""
    head, start = _parts(body)
    (_, (offset, length, _)) = head[-1]["coastal-2025"]
    forged = b"\n".join(reversed(body[start + offset : start + offset + length].split(b"\n")))

    def change(head):
        rows, (at, size, _) = head[-1]["coastal-2025"]
        head[-1]["coastal-2025"] = [rows, [at, size, zlib.crc32(forged)]]

    return _rewritten(body[: start + offset] + forged + body[start + offset + length :], change)


def test_verify_fails_on_ids_of_an_incident_that_are_not_the_blocks(tmp_path):
    """Whole readers read the block's ids; a reader of one incident reads the incident's: verify compares them."""
    store = moved_log(tmp_path / "log.jsonl")
    sidecar = store.sidecar_path(REPLAY_INDEX)
    bodies = [REPLAY_INDEX.encode(block) for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)]
    sidecar.write_bytes(b"".join(frame(body) for body in [_ids_forged(bodies[0]), *bodies[1:]]))
    forged = said(incident_parts.replay(store, None, "coastal-2025", None))
    assert forged != said(from_the_whole_index(store, None, "coastal-2025", None))  # what verify must catch
    result = invoke(["verify", "--log", str(store.path)])
    assert result.exit_code == 1
    assert "replay index beside the log holds a damaged block at byte 0" in result.output
    assert sidecar.with_name(sidecar.name + ".mismatch-1").exists()  # set aside as evidence
    whole = said(from_the_whole_index(store, None, "coastal-2025", None))  # which builds the index again
    assert said(incident_parts.replay(store, None, "coastal-2025", None)) == whole != forged


def test_verify_fails_on_ids_of_an_incident_that_are_not_the_blocks_in_sqlite(tmp_path):
    path = tmp_path / "log.db"
    store = moved_log(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        rowid, body = db.execute("SELECT rowid, body FROM timeline_projections WHERE name = 'index' "
                                 "ORDER BY first_entry LIMIT 1").fetchone()  # fmt: skip
        db.execute("UPDATE timeline_projections SET body = ? WHERE rowid = ?", (_ids_forged(body), rowid))
    db.close()
    forged = said(incident_parts.replay(store, None, "coastal-2025", None))
    assert forged != said(from_the_whole_index(store, None, "coastal-2025", None))
    result = invoke(["verify", "--log", f"sqlite:///{path}"])
    assert result.exit_code == 1
    assert "the replay index in timeline_projections" in result.output
    assert invoke(["verify", "--log", f"sqlite:///{path}", "--repair-index"]).exit_code == 0
    whole = said(from_the_whole_index(store, None, "coastal-2025", None))
    assert said(incident_parts.replay(store, None, "coastal-2025", None)) == whole != forged


def test_a_fresh_process_answers_one_incident_from_its_part_with_no_replay_kept(tmp_path):
    """As the command line is used: an append after the last whole replay; the answer is the whole index's."""
    path = tmp_path / "log.jsonl"
    store = moved_log(path)
    assert invoke(["replay", "--log", str(path), "--format", "csv"]).exit_code == 0  # keeps a whole replay
    assert invoke(["append", "--log", str(path), "--incident", "coastal-2025", "--monitor", "SOHR", "--reported-on",
                  "2025-03-12", "--measure", "killed", "--category", "civilians", "--kind", "cumulative", "--low",
                  "900", "--qualifier", "at_least", "--quote", "q", "--source-title", "t", "--source-url",
                  "https://example.org/x"]).exit_code == 0  # fmt: skip
    assert incident_parts.replay(store, None, "coastal-2025", None) is not None
    args = ["-m", "timeline", "replay", "--log", str(path), "--incident", "coastal-2025", "--as-of", "2025-03-11"]
    fresh = subprocess.run([sys.executable, *args, "--format", "csv"], capture_output=True, text=True, check=True)
    assert fresh.stdout == invoke(["replay", "--log", str(path), "--incident", "coastal-2025", "--as-of",
                                  "2025-03-11", "--format", "csv"]).output  # fmt: skip
    assert "745" in fresh.stdout
    typo = subprocess.run([sys.executable, *args[:-4], "--incident", "costal-2025", *args[-2:]], capture_output=True,
                          text=True)  # fmt: skip
    assert typo.returncode != 0 and "coastal-2025" in typo.stderr


def _forged(store, change) -> None:
    """The sidecar with each block re-encoded after ``change(k, block)`` (every CRC holds)."""
    sidecar = store.sidecar_path(REPLAY_INDEX)
    blocks = [block for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)]
    sidecar.write_bytes(b"".join(frame(REPLAY_INDEX.encode(change(k, block))) for k, block in enumerate(blocks)))


def _rows(*rows: int) -> bytes:
    return np.array(rows, dtype="<i4").tobytes()


PARTS_UNLIKE_COLUMNS = {
    "a row in another incident's part": lambda k, b: msgspec.structs.replace(
        b, incident_rows={"coastal-2025": _rows(0, 1, 2)}) if k == 0 else b,
    "the incidents' parts swapped": lambda k, b: msgspec.structs.replace(
        b, incident_rows={"coastal-2025": _rows(2), "zaraa-2016": _rows(0, 1)}) if k == 0 else b,
    "a correction naming another id": lambda k, b: msgspec.structs.replace(b, correction_ids="a") if k == 1 else b,
}  # fmt: skip


@pytest.mark.parametrize("change", PARTS_UNLIKE_COLUMNS.values(), ids=PARTS_UNLIKE_COLUMNS)
def test_verify_fails_on_parts_that_do_not_say_what_the_columns_say(tmp_path, change):
    """Each CRC holds, and a whole reader reads the same columns: only a reader of one incident is misled."""
    store = moved_log(tmp_path / "log.jsonl")
    _forged(store, change)
    result = invoke(["verify", "--log", str(store.path)])
    assert result.exit_code == 1
    assert "the replay index beside the log does not match it" in result.output
    assert store.sidecar_path(REPLAY_INDEX).with_name("log.jsonl.index.mismatch-1").exists()
    for incident in ("coastal-2025", "zaraa-2016"):
        whole = said(from_the_whole_index(store, None, incident, None))
        assert said(incident_parts.replay(store, None, incident, None)) == whole


# What no reader of the parts takes, and the incident whose part it is in.
PARTS_NO_READER_TAKES = {
    "rows in reverse": (lambda k, b: msgspec.structs.replace(
        b, incident_rows={"coastal-2025": _rows(1, 0), "zaraa-2016": _rows(2)}) if k == 0 else b, "coastal-2025"),
    "a row twice": (lambda k, b: msgspec.structs.replace(
        b, incident_rows={"coastal-2025": _rows(0, 1, 1)}) if k == 0 else b, "coastal-2025"),
    "an empty part": (lambda k, b: msgspec.structs.replace(
        b, incident_rows={**b.incident_rows, "zaraa-2016": b""}) if k == 1 else b, "zaraa-2016"),
    "a row past its block": ("past", "coastal-2025"),
}  # fmt: skip


def _past_its_block(store) -> None:
    """The sidecar with the one row of coastal-2025's part of the last block named as the row after it."""
    sidecar = store.sidecar_path(REPLAY_INDEX)
    bodies = [REPLAY_INDEX.encode(block) for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)]
    head, start = _parts(bodies[-1])
    (offset, length, _), ids = head[-1]["coastal-2025"]
    part = msgspec.msgpack.decode(bodies[-1][start + offset : start + offset + length])
    part[0] = _rows(1)
    forged = msgspec.msgpack.encode(part)
    assert len(forged) == length

    def change(head):
        head[-1]["coastal-2025"] = [[offset, length, zlib.crc32(forged)], ids]

    body = bodies[-1][: start + offset] + forged + bodies[-1][start + offset + length :]
    sidecar.write_bytes(b"".join(frame(body) for body in [*bodies[:-1], _rewritten(body, change)]))


@pytest.mark.parametrize(("change", "incident"), PARTS_NO_READER_TAKES.values(), ids=PARTS_NO_READER_TAKES)
def test_a_part_no_reader_takes_is_passed_over_by_both_readers(tmp_path, change, incident):
    store = moved_log(tmp_path / "log.jsonl")
    expected = {slug: said(incident_parts.replay(store, None, slug, None)) for slug in INCIDENTS}
    if change == "past":
        _past_its_block(store)
    else:
        _forged(store, change)
    assert incident_parts.replay(store, None, incident, None) is None
    with pytest.warns(IndexMismatchWarning, match="damaged block"):
        assert said(from_the_whole_index(store, None, "coastal-2025", None)) == expected["coastal-2025"]
    assert {slug: said(incident_parts.replay(store, None, slug, None)) for slug in INCIDENTS} == expected


def test_a_head_that_misnames_its_last_entrys_time_is_damage(tmp_path):
    store = moved_log(tmp_path / "log.jsonl")
    sidecar = store.sidecar_path(REPLAY_INDEX)
    bodies = [REPLAY_INDEX.encode(block) for _, block in unframe(sidecar.read_bytes(), REPLAY_INDEX)]

    def later(head):
        head[4] += 365 * 86_400_000_000  # a year on

    sidecar.write_bytes(b"".join(frame(body) for body in [*bodies[:-1], _rewritten(bodies[-1], later)]))
    result = invoke(["verify", "--log", str(store.path)])
    assert result.exit_code == 1
    assert "holds a damaged block" in result.output


def _damaged_in_sqlite(path, change) -> None:
    """The body of the first index block of a SQLite log changed by ``change`` (bytes -> any value), no CRC fixed."""
    with sqlite3.connect(path) as db:
        rowid, body = db.execute("SELECT rowid, body FROM timeline_projections WHERE name = 'index' "
                                 "ORDER BY first_entry LIMIT 1").fetchone()  # fmt: skip
        db.execute("UPDATE timeline_projections SET body = ? WHERE rowid = ?", (change(body), rowid))
    db.close()


def _flipped_in_a_part(body: bytes) -> bytes:
    """A bit of coastal-2025's rows flipped where every other check holds: a day, one later (its CRC-32 left)."""
    head, start = _parts(body)
    (offset, length, _), _ = head[-1]["coastal-2025"]
    part = msgspec.msgpack.decode(body[start + offset : start + offset + length])
    part[3] = bytes([part[3][0] ^ 0x01]) + part[3][1:]  # obs_day of its first row
    forged = msgspec.msgpack.encode(part)
    return body[: start + offset] + forged + body[start + offset + length :]


SQLITE_DAMAGE = {
    "a bit of a part flipped": _flipped_in_a_part,
    "a number for a body": lambda body: 12345,
    "text for a body": lambda body: "not a block",
}


@pytest.mark.parametrize("change", SQLITE_DAMAGE.values(), ids=SQLITE_DAMAGE)
def test_a_damaged_block_of_a_sqlite_log_is_passed_over_by_both_readers(tmp_path, change):
    """A database row has no frame's CRC-32: its parts' are checked as its reader of one incident checks them."""
    path = tmp_path / "log.db"
    store = moved_log(f"sqlite:///{path}")
    expected = {slug: said(incident_parts.replay(store, None, slug, None)) for slug in INCIDENTS}
    _damaged_in_sqlite(path, change)
    assert incident_parts.replay(store, None, "coastal-2025", None) is None
    with pytest.warns(IndexMismatchWarning, match="cannot be read"):
        assert said(from_the_whole_index(store, None, "coastal-2025", None)) == expected["coastal-2025"]
    other = tmp_path / "other.db"
    moved_log(f"sqlite:///{other}")
    _damaged_in_sqlite(other, change)
    result = invoke(["verify", "--log", f"sqlite:///{other}"])
    assert result.exit_code == 1
    assert "the replay index in timeline_projections" in result.output
