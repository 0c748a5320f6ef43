"""The full replay kept incident by incident: one incident as-of any date, equal to a replay from the index."""

from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import zlib

import msgspec
import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log.errors import InputError, StoreError
from events_log.events import Correction, Retraction
from events_log.jsonl import JsonlStore
from events_log.stores import open_store
from timeline import kept_incidents, stored
from timeline.index import ARRAYS, REPLAY_COLUMNS, REPLAY_INDEX
from timeline.replay import replay

from .conftest import StepClock
from .helpers import invoke, obs
from .strategies import START, descriptions_of, small_logs
from .test_jsonl_store import NAMES
from .test_stored_result import cold_csv

INCIDENTS = ("coastal-2025", "zaraa-2016")
MONITORS = (None, "SOHR", "SNHR")
AS_OF = (None, START - dt.timedelta(days=1), START, START + dt.timedelta(days=4), START + dt.timedelta(days=30))


def keep(store) -> None:
    """What a whole ``timeline replay --format csv`` does: fold, write, keep beside the log."""
    stored.keep(store, out=io.BytesIO())


def said(result) -> tuple:
    """Everything a replay says through its public interface."""
    series = [(s.key, list(s.segments()), s.flags) for s in result.series]
    ids = result.observation_ids()
    return (
        series, result.as_of, result.log, result.incidents, result.monitors, result.last_recorded_at, ids,
        [(i, data, reasons) for i, data, reasons in result.records()], result.tallies("incident"),
        result.tallies("monitor"), [(r, x, when) for r, x, when in result.retracted()],
        [(result.qualifier(i), result.corrected(i), result.corrections(i)) for i in ids],
        [column.tolist() for column in result.figures()[0]], result.figures()[1],
    )  # fmt: skip


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=10, deadline=None)
@given(batches=small_logs(), chosen=st.lists(st.tuples(st.sampled_from(INCIDENTS), st.sampled_from(MONITORS),
                                                       st.sampled_from(AS_OF)), min_size=1, max_size=4))  # fmt: skip
def test_one_incident_read_from_the_kept_replay_is_the_replay_from_the_index(fresh_logs, log_kind, batches, chosen):
    """At every head it was kept at; after an append it is stale and never read."""
    store = open_store(fresh_logs(log_kind))
    store.clock = StepClock()
    try:
        for batch in batches:
            store.append(batch, allow_duplicate=True)
            assert kept_incidents.replay(store, None, INCIDENTS[0], None) is None  # kept at an earlier head, if any
            keep(store)
            for incident, monitor, as_of in chosen:
                kept = kept_incidents.replay(store, as_of, incident, monitor)
                assert kept is not None
                assert said(kept) == said(replay(store, as_of, incident=incident, monitor=monitor))
    finally:
        store.close()


def test_a_replay_read_at_one_head_answers_at_that_head_after_the_log_grows(tmp_path):
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745)])
    keep(store)
    kept = kept_incidents.replay(store, None, "coastal-2025", None)
    before = said(replay(store, incident="coastal-2025"))
    store.append([obs("c", 11, 803)])
    store.append([Retraction(observation_id="a", reason="wrong"),
                  Correction(observation_id="b", replacement=obs("b", 10, 700), reason="typo")])  # fmt: skip
    assert said(kept) == before  # its records, corrections and retractions are still those of its head
    assert said(replay(store, incident="coastal-2025")) != before


def test_a_replay_read_from_a_log_cut_back_below_its_head_says_so(tmp_path):
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532)])
    store.append([obs("b", 10, 745)])
    keep(store)
    kept = kept_incidents.replay(store, None, "coastal-2025", None)
    lines = store.path.read_bytes().splitlines(keepends=True)
    store.path.write_bytes(b"".join(lines[:-1]))  # the log is no longer the one read
    with pytest.raises(StoreError, match="no longer holds the log this replay was read at"):
        kept.observation_ids()


def test_unreadable_kept_bytes_are_passed_over_and_verify_reports_them(tmp_path):
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745)])
    keep(store)
    path = tmp_path / "log.jsonl.replay.incidents"
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])
    assert kept_incidents.replay(store, None, "coastal-2025", None) is None
    result = invoke(["verify", "--log", str(log)])
    assert result.exit_code == 1 and "the replay kept by incident does not match" in result.output
    assert (tmp_path / "log.jsonl.replay.incidents.mismatch-1").read_bytes() == whole[:-3]
    assert invoke(["verify", "--log", str(log), "--repair-index"]).exit_code == 0
    assert path.read_bytes() == whole
    assert "the replay kept by incident matches the log" in invoke(["verify", "--log", str(log)]).output


def test_verify_catches_a_forged_figure_kept_by_incident_in_sqlite(tmp_path):
    target = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(target)
    store.clock = StepClock()
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745)])
    keep(store)
    with sqlite3.connect(tmp_path / "log.db") as db:
        (body,) = db.execute("SELECT body FROM timeline_projections WHERE name = 'replay.incidents'").fetchone()
        # 745 as a little-endian int64 in the lows array: the forger edits a figure, not the framing.
        forged = body.replace((745).to_bytes(8, "little"), (7).to_bytes(8, "little"))
        assert forged != body
        db.execute("UPDATE timeline_projections SET body = ? WHERE name = 'replay.incidents'", (forged,))
    assert kept_incidents.replay(store, None, "coastal-2025", None) is None  # its CRC-32 no longer matches
    assert [s.latest.low for s in replay(store, incident="coastal-2025").series] == [745]
    result = invoke(["verify", "--log", target])
    assert result.exit_code == 1 and "replay.incidents.mismatch-1" in result.output
    assert invoke(["verify", "--log", target, "--repair-index"]).exit_code == 0
    assert kept_incidents.replay(store, None, "coastal-2025", None).series[0].latest.low == 745
    store.close()


def test_a_fresh_process_answers_one_incident_from_the_kept_replay_and_refuses_a_typo(tmp_path):
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*descriptions_of([obs("c", 9, 600, monitor="SNHR")]), *NAMES, obs("a", 8, 532), obs("b", 10, 745),
                  obs("c", 9, 600, monitor="SNHR")])  # fmt: skip
    assert invoke(["replay", "--log", str(log), "--format", "csv"]).exit_code == 0
    assert (tmp_path / "log.jsonl.replay.incidents").exists()
    expected = invoke(["replay", "--log", str(log), "--incident", "coastal-2025", "--as-of", "2025-03-09"]).output

    def fresh(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "timeline", "replay", "--log", str(log), *args],
                              capture_output=True, text=True)  # fmt: skip

    done = fresh("--incident", "coastal-2025", "--as-of", "2025-03-09")
    assert done.returncode == 0 and done.stdout == expected and "532" in done.stdout and "745" not in done.stdout
    typo = fresh("--incident", "coastal-2052")
    assert typo.returncode != 0 and "coastal-2052" in typo.stderr and typo.stderr.count("\n") == 1
    with pytest.raises(InputError):
        replay(open_store(str(log)), incident="coastal-2052")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=10, deadline=None)
@given(batches=small_logs(), kept=st.lists(st.booleans(), min_size=9, max_size=9))
def test_the_index_read_for_a_whole_fold_is_the_index_without_some_columns(fresh_logs, log_kind, batches, kept):
    """Read from blocks that lag behind the log (appends by a store that keeps no index), then extended."""
    target = fresh_logs(log_kind)
    try:
        for batch, keeping in zip(batches, kept, strict=False):
            store = open_store(target)
            store.clock = StepClock()
            if keeping:
                store.keep(REPLAY_INDEX)
            store.append(batch, allow_duplicate=True)
            store.close()
            store = open_store(target)
            part = store.projection(REPLAY_COLUMNS)  # first: it extends the lagging blocks itself
            whole = store.projection(REPLAY_INDEX)
            for name in ARRAYS:
                if name in REPLAY_COLUMNS.without:
                    assert getattr(part, name) is None
                else:
                    assert np.array_equal(getattr(part, name), getattr(whole, name)), name
            assert (part.entries, part.last_hash, part.last_time) == (whole.entries, whole.last_hash,
                                                                      int(whole.times[-1]))  # fmt: skip
            assert (part.series, part.described, part.obs_ids.tolist()) == (whole.series, whole.described,
                                                                           whole.obs_ids.tolist())  # fmt: skip
            assert stored.keep(store)
            with stored.kept_csv(store) as csv:
                assert csv.read() == cold_csv(store)
            store.close()
    finally:
        store.close()


@pytest.mark.parametrize(
    "figures",
    [
        [obs("a", 8, 2**31 + 5), obs("b", 9, 2**31 + 7)],  # beyond 32 bits in the observations
        [obs("a", 8, 5), Correction(observation_id="a", replacement=obs("a", 8, 10**12), reason="typo")],  # in a fix
        [obs("a", 8, 5, high=2**31 - 1), obs("b", 9, 2**31 - 1, high=None)],  # at the edge: still narrowed
    ],
)
def test_figures_too_wide_for_32_bits_are_folded_as_stored(tmp_path, figures):
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *figures])
    assert stored.keep(store)
    with stored.kept_csv(store) as csv:
        assert csv.read() == cold_csv(store)
    kept = kept_incidents.replay(store, None, "coastal-2025", None)
    assert said(kept) == said(replay(store, incident="coastal-2025"))


def test_a_kept_result_replaced_while_sqlite_reads_it_is_read_whole_as_it_was(tmp_path):
    """The reader keeps its snapshot of the row (WAL): never a mix of two results, never short bytes."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    store.clock = StepClock()
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745)])
    keep(store)
    with sqlite3.connect(tmp_path / "log.db") as db:
        (body,) = db.execute("SELECT body FROM timeline_projections WHERE name = 'replay.csv'").fetchone()
        forged = body.replace(b",745,", b",999,")
        db.execute("UPDATE timeline_projections SET body = ? WHERE name = 'replay.csv'", (forged,))
    kept = store.result(stored.NAME, store.head())  # as stored, seal and all (its seal fails: a row unlike any)
    first = kept.read(10)
    other = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    assert stored.keep(other)  # another process makes it again: its row is replaced
    assert first + kept.read() == forged
    kept.close()
    with store.result(stored.NAME, store.head()) as again:
        assert again.read() == body
    store.close()
    other.close()


def test_postgres_reads_a_kept_result_a_range_at_a_time_and_says_so_if_it_is_gone(postgres_url):
    """Its last 64 KiB come with its length (the directory a one-incident question reads first), the rest a range
    at a time: a row gone meanwhile is said to be, and never read as short bytes."""
    store = open_store(postgres_url)
    store.clock = StepClock()
    places = [obs(f"p{n}", 1 + n % 28, n, location=f"place {n // 28}") for n in range(3000)]  # > 64 KiB kept
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745), *places])
    keep(store)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        body = bytes(db.execute("SELECT body FROM timeline_projections WHERE name = 'replay.incidents'").fetchone()[0])
        storage = db.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'timeline_projections'::regclass "
                             "AND attname = 'body'").fetchone()[0]  # fmt: skip
        assert storage == "e"  # uncompressed: a range is read without inflating the whole
        kept = store.result(kept_incidents.NAME, store.head())
        kept.seek(-8, os.SEEK_END)
        assert kept.read() == body[-8:] and kept.tell() == len(body)
        kept.seek(3)
        assert kept.read(5) == body[3:8]
        assert len(body) > 1 << 16
        kept.seek(len(body) - (1 << 16) - 10)  # ten bytes before the tail read with the length, and into it
        assert kept.read(30) == body[len(body) - (1 << 16) - 10 : len(body) - (1 << 16) + 20]
        kept.close()
        kept = store.result(kept_incidents.NAME, store.head())
        db.execute("DELETE FROM timeline_projections WHERE name = 'replay.incidents'")
        kept.seek(-100, os.SEEK_END)
        assert kept.read() == body[-100:]  # the tail, read as the row was when opened
        kept.seek(0)
        with pytest.raises(StoreError, match="was replaced while it was read"):
            kept.read()
    assert kept_incidents.replay(store, None, "coastal-2025", None) is None  # nothing kept now: the index answers
    assert [s.latest.low for s in replay(store, incident="coastal-2025").series if s.location is None] == [745]
    store.close()


def test_a_changed_byte_anywhere_in_the_kept_replay_is_passed_over(tmp_path):
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 100, high=300), obs("b", 10, 745)])
    keep(store)
    path = tmp_path / "log.jsonl.replay.incidents"
    whole = path.read_bytes()
    start = whole.index(b"\n") + 1  # after the header naming the head
    for at in range(start, len(whole)):
        changed = bytearray(whole)
        changed[at] ^= 0x5A
        path.write_bytes(changed)
        kept = kept_incidents.replay(store, None, "coastal-2025", None)
        assert kept is None or said(kept) == said(replay(store, incident="coastal-2025")), at


def test_a_whole_replay_makes_the_replay_kept_by_incident_again_when_it_is_missing(tmp_path):
    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 532)])
    assert invoke(["replay", "--log", str(log), "--format", "csv"]).exit_code == 0
    (tmp_path / "log.jsonl.replay.incidents").unlink()
    again = invoke(["replay", "--log", str(log), "--format", "csv"])
    assert again.exit_code == 0 and ",532," in again.output
    assert (tmp_path / "log.jsonl.replay.incidents").exists()


def test_an_empty_filter_is_refused_whether_or_not_a_replay_is_kept(tmp_path):
    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 532)])
    for _ in range(2):  # nothing kept, then kept
        for option in ("--incident=", "--monitor="):
            refused = invoke(["replay", "--log", str(log), "--format", "csv", option])
            assert refused.exit_code == 2 and "is not described" in refused.output, refused.output
        assert invoke(["replay", "--log", str(log), "--format", "csv"]).exit_code == 0


def test_a_whole_replay_that_cannot_write_its_output_says_so_and_keeps_nothing(tmp_path):
    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 532)])
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "timeline", "replay", "--log", str(log), "--format", "csv"],
                              stdout=full, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "timeline: error: cannot write the output: No space left on device\n"
    assert not (tmp_path / "log.jsonl.replay.csv").exists()  # never a kept CSV cut short


def test_something_other_than_a_file_in_the_kept_replays_place_is_passed_over(tmp_path):
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532)])
    os.mkfifo(tmp_path / "log.jsonl.replay.incidents")  # opened plainly, it would wait for a writer forever
    done = subprocess.run([sys.executable, "-m", "timeline", "replay", "--log", str(log), "--incident", "coastal-2025"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "532" in done.stdout


def _kept_by_version_one(store) -> list[bytes]:
    """The replay kept by incident as the version before ``FORMAT`` 2 kept it: a segment's ids as a tuple of
    them, and a directory that says no format."""

    class Series(msgspec.Struct, array_like=True):
        key: tuple
        last: int
        starts: bytes
        lows: bytes
        highs: bytes
        basis_codes: str
        observations: tuple[tuple[str, ...], ...]
        flags: tuple
        base: tuple | None
        pending: tuple

    body, places = b"", {}
    for s in replay(store).series:
        f = s.folded
        series = Series(s.key, f.last, f.starts.tobytes(), f.lows.tobytes(), f.highs.tobytes(), f.basis_codes,
                        tuple(f.observations_by_segment()), f.flags, f.base, f.pending)  # fmt: skip
        data = msgspec.msgpack.encode(series)
        offset, length, count, crc = places.get(s.incident, (len(body), 0, 0, 0))
        places[s.incident] = (offset, length + len(data), count + 1, zlib.crc32(data, crc))
        body += data
    index = store.projection(REPLAY_INDEX)
    directory = msgspec.msgpack.encode([places, index.described, index.last_time])
    return [body, directory, kept_incidents.SEAL.pack(len(directory), zlib.crc32(directory))]


def test_a_replay_kept_by_incident_by_an_older_version_is_stale_not_damaged(tmp_path):
    """Not read (the index answers), not a finding of ``verify``, and kept anew by the next whole replay."""
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 100, high=300), obs("b", 10, 745), obs("c", 11, 3, "increment")])
    keep(store)
    expected = said(replay(JsonlStore(log), incident="coastal-2025"))
    assert store.keep_result(kept_incidents.NAME, store.head(), _kept_by_version_one(store))
    assert kept_incidents.replay(store, None, "coastal-2025", None) is None
    assert said(replay(JsonlStore(log), incident="coastal-2025")) == expected
    result = invoke(["verify", "--log", str(log)])
    assert result.exit_code == 0, result.output
    assert "the replay kept by incident was kept by another version, in another format" in result.output
    assert "does not match" not in result.output
    assert invoke(["replay", "--log", str(log), "--format", "csv"]).exit_code == 0  # a whole replay keeps it anew
    assert said(kept_incidents.replay(store, None, "coastal-2025", None)) == expected
    assert "another version" not in invoke(["verify", "--log", str(log)]).output


def test_a_full_temporary_disk_keeps_nothing_by_incident_and_every_command_answers(tmp_path):
    """The replay kept by incident is made in a temporary file first: where it cannot be written (``/dev/full``),
    a whole replay still prints its answer and exits 0, keeping the CSV alone, and ``verify`` says what it could
    not compare rather than calling the kept copy wrong."""
    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 100, high=300), obs("b", 10, 745)])
    expected = invoke(["replay", "--log", str(log), "--format", "csv"]).stdout  # and both kept
    kept = log.with_name(log.name + ".replay.incidents")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "TemporaryFile", lambda **_: open("/dev/full", "r+b"))  # noqa: SIM115
        checked = invoke(["verify", "--log", str(log)])
        assert checked.exit_code == 0, checked.output
        assert "the replay kept by incident was not compared" in checked.output and "mismatch" not in checked.output
        assert kept.exists()
        kept.unlink()
        log.with_name(log.name + ".replay.csv").unlink()
        again = invoke(["replay", "--log", str(log), "--format", "csv"])
    assert (again.exit_code, again.stdout) == (0, expected)
    assert log.with_name(log.name + ".replay.csv").exists() and not kept.exists()
