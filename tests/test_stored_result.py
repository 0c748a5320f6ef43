"""The full replay kept beside the log as CSV: used only at the head it was made at, and equal to a cold replay."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log.jsonl import JsonlStore
from events_log.stores import open_store
from timeline import stored
from timeline.output import write_csv
from timeline.replay import replay

from .conftest import StepClock
from .helpers import invoke, obs
from .strategies import small_logs
from .test_jsonl_store import NAMES


def cold_csv(store) -> bytes:
    """The CSV of a replay of the log alone: its entries copied into a new log, nothing beside it."""
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="cold-") as folder:
        copy = JsonlStore(f"{folder}/copy.jsonl")
        copy.copy_from(store)
        write_csv(replay(copy), out)
    return out.getvalue().encode()


def kept_bytes(store) -> bytes | None:
    kept = stored.kept_csv(store)
    if kept is None:
        return None
    with kept:
        return kept.read()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=12, deadline=None)
@given(batches=small_logs(), tear=st.lists(st.booleans(), min_size=8, max_size=8))
def test_the_kept_replay_is_a_cold_replay_at_its_head_and_unused_after(fresh_logs, log_kind, batches, tear):
    """Kept after each append (some torn and repaired first), it equals a cold replay; stale, it is never used."""
    store = open_store(fresh_logs(log_kind))
    store.clock = StepClock()
    try:
        for batch, torn in zip(batches, [False, *tear], strict=False):
            if torn and isinstance(store, JsonlStore):
                with open(store.path, "ab") as f:
                    f.write(b'{"position":999,"recor')
                assert kept_bytes(store) in (None, cold_csv(store))  # a torn tail changes nothing acknowledged
                store.repair()
            store.append(batch, allow_duplicate=True)
            assert kept_bytes(store) is None  # made at an earlier head: not used
            out = io.BytesIO()
            stored.keep(store, out=out)
            assert out.getvalue() == cold_csv(store) == kept_bytes(store)
    finally:
        store.close()


def run(*args: str):
    return invoke(list(args))


def kept_files(store: JsonlStore) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(store.path.parent.glob("log.jsonl.replay.*"))}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=10, deadline=None)
@given(batches=small_logs(), share=st.sampled_from([0.0, 0.5, 1.0]), killed_at=st.none() | st.integers(0, 3))
def test_a_replay_kept_by_two_processes_is_the_one_process_keeps(tmp_path_factory, batches, share, killed_at):
    """A fork folds the later series and makes their CSV rows and kept form; if it is killed after any series,
    this process makes what it did not send. Either way both kept files are byte for byte one process's."""
    from timeline import scratch

    one = JsonlStore(tmp_path_factory.mktemp("one") / "log.jsonl", clock=StepClock())
    for batch in batches:
        one.append(batch, allow_duplicate=True)
    two = JsonlStore(tmp_path_factory.mktemp("two") / "log.jsonl")
    shutil.copy(one.path, two.path)
    assert stored.keep(one)
    parent, written = os.getpid(), stored._written

    def dying():
        made, sent = written(), []

        def one_series(series):
            if killed_at is not None and os.getpid() != parent and len(sent) == killed_at:
                os.kill(os.getpid(), signal.SIGKILL)
            sent.append(series)
            return made(series)

        return one_series

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scratch, "IN_TWO_ROWS", 0)
        patch.setattr(scratch, "_WRITTEN_SHARE", share)
        patch.setattr(stored, "_written", dying)
        assert stored.keep(two)
    assert kept_files(two) == kept_files(one) and len(kept_files(one)) == 2


def test_import_keeps_the_replay_and_replay_uses_it_until_the_log_grows(tmp_path):
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append(NAMES)
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "incident,monitor,reported_on,measure,category,kind,low,high,qualifier,source_title,quote\n"
        "coastal-2025,SOHR,2025-03-08,killed,civilians,cumulative,532,532,exact,t,q\n"
        "coastal-2025,SOHR,2025-03-10,killed,civilians,cumulative,745,745,exact,t,q\n"
    )
    assert run("import", "--log", str(log), str(rows)).exit_code == 0
    kept = tmp_path / "log.jsonl.replay.csv"
    assert kept.exists()
    first = run("replay", "--log", str(log), "--format", "csv").output
    assert first.encode() == cold_csv(store) and ",745," in first
    added = run("append", "--log", str(log), "--incident", "coastal-2025", "--monitor", "SOHR",
                "--reported-on", "2025-03-11", "--measure", "killed", "--category", "civilians",
                "--kind", "cumulative", "--low", "803", "--qualifier", "exact", "--source-title", "t", "--quote", "q")
    assert added.exit_code == 0, added.output
    second = run("replay", "--log", str(log), "--format", "csv").output
    assert ",803," in second and second.encode() == cold_csv(store)
    assert kept_bytes(store) == second.encode()  # kept anew at the new head


def test_a_small_import_into_a_larger_log_leaves_the_replay_to_the_next_whole_replay(tmp_path):
    """An import keeps the whole replay only for a batch at least as large as the log was: a day's rows do not pay
    a replay of the whole log, and the replay kept at the earlier head is not used."""
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745), obs("c", 11, 803)])
    assert run("replay", "--log", str(log), "--format", "csv").exit_code == 0
    kept = tmp_path / "log.jsonl.replay.csv"
    before = kept.read_bytes()
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "incident,monitor,reported_on,measure,category,kind,low,high,qualifier,source_title,quote\n"
        "coastal-2025,SOHR,2025-03-12,killed,civilians,cumulative,1383,1383,exact,t,q\n"
    )
    assert run("import", "--log", str(log), str(rows)).exit_code == 0
    assert kept.read_bytes() == before  # 1 row into a log of 5 entries: nothing replayed, nothing kept anew
    assert kept_bytes(store) is None  # kept at an earlier head: not used
    replayed = run("replay", "--log", str(log), "--format", "csv").output
    assert ",1383," in replayed and replayed.encode() == cold_csv(store) == kept_bytes(store)


def _replayed_log(tmp_path):
    """A log of two figures, replayed whole once: its path, its store, and the path of the CSV kept beside it."""
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745)])
    assert run("replay", "--log", str(log), "--format", "csv").exit_code == 0
    return log, store, tmp_path / "log.jsonl.replay.csv"


def test_verify_catches_an_edited_kept_replay_and_keeps_it_as_evidence(tmp_path):
    log, _, kept = _replayed_log(tmp_path)
    assert "replay kept as CSV matches the log" in run("verify", "--log", str(log)).output
    kept.write_bytes(kept.read_bytes().replace(b",745,", b",999,"))
    replayed = run("replay", "--log", str(log), "--format", "csv")  # its seal fails: passed over, with a warning
    assert ",745," in replayed.stdout and ",999," not in replayed.stdout
    assert replayed.stderr == ("timeline: warning: the replay kept as CSV does not hold what was kept (damaged or "
                               "edited, or kept by an older version); replaying instead, and keeping it anew\n")
    kept.write_bytes(kept.read_bytes().replace(b",745,", b",999,"))  # edited again, seal and all: verify finds it
    result = invoke(["verify", "--log", str(log)])
    assert result.exit_code == 1 and "does not match a replay of the log" in result.output
    assert b",999," in (tmp_path / "log.jsonl.replay.csv.mismatch-1").read_bytes() and not kept.exists()
    assert ",745," in run("replay", "--log", str(log), "--format", "csv").output
    assert run("verify", "--log", str(log)).exit_code == 0


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[:-1], lambda b: b[:-20], lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], lambda b: b + b"junk"],
    ids=["last byte gone", "torn", "one bit", "bytes added"],
)
def test_a_damaged_kept_csv_is_passed_over_with_a_warning_and_kept_anew(tmp_path, damage):
    """The kept CSV is copied out as the answer: one whose seal fails is never printed, and is made again."""
    log, store, kept = _replayed_log(tmp_path)
    header, body = kept.read_bytes().split(b"\n", 1)
    kept.write_bytes(header + b"\n" + damage(body))
    replayed = run("replay", "--log", str(log), "--format", "csv")
    assert replayed.exit_code == 0 and replayed.stdout.encode() == cold_csv(store)
    assert replayed.stderr.startswith("timeline: warning: the replay kept as CSV does not hold what was kept")
    assert kept_bytes(store) == cold_csv(store)  # kept anew, sealed
    again = run("replay", "--log", str(log), "--format", "csv")
    assert again.stdout.encode() == cold_csv(store) and again.stderr == ""


def test_a_kept_csv_without_a_seal_is_stale_for_verify_not_a_finding(tmp_path):
    """A kept CSV an older version wrote (the CSV alone) is not used; verify says so without failing."""
    log, store, kept = _replayed_log(tmp_path)
    kept.write_bytes(kept.read_bytes()[:-12])  # as an older version kept it
    result = invoke(["verify", "--log", str(log)])
    assert result.exit_code == 0, result.output
    assert "the replay kept as CSV was kept without its seal by an older version" in result.output
    assert kept_bytes(store) is None
    assert run("replay", "--log", str(log), "--format", "csv").stdout.encode() == cold_csv(store) == kept_bytes(store)


def test_sqlite_keeps_the_replay_in_its_projections_table(tmp_path):
    target = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(target)
    store.clock = StepClock()
    store.append([*NAMES, obs("a", 8, 532), obs("b", 10, 745)])
    out = run("replay", "--log", target, "--format", "csv").output
    with sqlite3.connect(tmp_path / "log.db") as db:
        (body,) = db.execute("SELECT body FROM timeline_projections WHERE name = 'replay.csv'").fetchone()
        assert body[:-12] == out.encode() == cold_csv(store)  # then the seal: its length and CRC-32
        forged = body.replace(b",745,", b",7,")
        db.execute("UPDATE timeline_projections SET body = ? WHERE name = 'replay.csv'", (forged,))
    result = invoke(["verify", "--log", target])
    assert result.exit_code == 1 and "replay.csv.mismatch-1" in result.output
    assert run("verify", "--log", target, "--repair-index").exit_code == 0
    assert run("replay", "--log", target, "--format", "csv").output == out
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_files_left_half_written_by_killed_writers_are_removed_and_live_writers_files_kept(tmp_path):
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532)])
    gone = subprocess.Popen(["true"])
    gone.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        abandoned = tmp_path / f"log.jsonl.replay.csv.writing-{gone.pid}"
        busy = tmp_path / f"log.jsonl.replay.csv.writing-{live.pid}"
        other = tmp_path / f"log.jsonl.replay.incidents.writing-{gone.pid}"
        for path in (abandoned, busy, other):
            path.write_bytes(b"half a replay")
        stored.keep(store, out=io.BytesIO())
        assert not abandoned.exists() and not other.exists() and busy.exists()
        assert kept_bytes(store) == cold_csv(store)
    finally:
        live.kill()
        live.wait()


def test_a_replay_of_a_log_with_no_entries_keeps_nothing_beside_it(tmp_path):
    """An empty log (made by someone, or for a moment by a write then refused) replays to a header and keeps no
    replay beside it: there is nothing to save, and nothing should outlive a log removed again."""
    log = tmp_path / "empty.jsonl"
    log.write_bytes(b"")
    ran = invoke(["replay", "--log", str(log), "--format", "csv"])
    assert ran.exit_code == 0 and ran.stdout.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.jsonl"]
