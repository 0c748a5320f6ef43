"""Stored events are read under the rules events are built under: a figure no writer could admit is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tempfile
from pathlib import Path

import attrs
import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events_log import jsonl
from events_log.errors import IndexMismatchWarning, InputError, StoredEntryError
from events_log.events import MAX_COUNT, Figure, Qualifier, Retraction
from events_log.jsonl import JsonlStore
from events_log.projection import frame, unframe
from events_log.spool import Spool
from events_log.stores import open_store
from timeline.index import REPLAY_INDEX
from timeline.replay import replay

from .conftest import StepClock
from .helpers import invoke, obs
from .test_hardening import _rewrite
from .test_jsonl_store import NAMES

# Positions 0 and 1 describe the names; observation "a" (532) is at 2, "b" (745) at 3.
FIGURE = b'"figure":{"low":745,"high":745,"qualifier":"exact"}'
BROKEN = {
    "negative": b'"figure":{"low":-5,"high":-5,"qualifier":"exact"}',
    "above MAX_COUNT": b'"figure":{"low":5000000000000,"high":5000000000000,"qualifier":"exact"}',
    "low above high": b'"figure":{"low":959,"high":745,"qualifier":"range"}',
    "not a number": b'"figure":{"low":"abc","high":745,"qualifier":"exact"}',
    "exact with two bounds": b'"figure":{"low":700,"high":745,"qualifier":"exact"}',
    "unknown qualifier": b'"figure":{"low":745,"high":745,"qualifier":"nearly"}',
}


def _lines() -> list[bytes]:
    """The stored lines of a small log: the names, then observations a (532) and b (745) of 8 March."""
    with tempfile.TemporaryDirectory() as folder:
        store = JsonlStore(Path(folder) / "log.jsonl", clock=StepClock())
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        return list(store.lines())


LINES = _lines()


def _forged(figure: bytes, lines: list[bytes] = LINES, was: bytes = FIGURE, at: int = 3) -> list[bytes]:
    """The log with b's figure (or ``was`` in line ``at``) replaced and every hash after it recomputed: the chain
    holds."""
    assert was in lines[at]
    out, prev = [], None
    for n, line in enumerate(lines):
        if n == at:
            line = line.replace(was, figure)
        if prev is not None:
            line = re.sub(rb'"prev_hash":"[0-9a-f]{64}"', b'"prev_hash":"' + prev + b'"', line, count=1)
        body = line[: line.rindex(b',"hash"')]
        prev = hashlib.sha256(body + b"}").hexdigest().encode()
        out.append(body + b',"hash":"' + prev + b'"}')
    return out


def _log_of(target: str, lines: list[bytes]) -> str:
    """``target`` (a new log of any store) holding ``lines``, put there around the store's guards."""
    with open_store(target) as store:
        store.append(NAMES)  # creates the log and its tables
    _rewrite(target, lines)
    return target


@pytest.mark.parametrize("figure", BROKEN.values(), ids=BROKEN.keys())
def test_replay_and_verify_refuse_a_stored_figure_no_writer_could_admit(log_target, figure):
    """Replay, built from the lines or from a store's projection, and verify name the log and position 3."""
    target = _log_of(log_target, _forged(figure))
    for read in (replay, lambda store: store.verify()):
        with open_store(target) as store, pytest.raises(StoredEntryError) as caught:
            store.keep(REPLAY_INDEX)
            read(store)
        assert caught.value.position == 3
        assert str(caught.value).startswith(f"{store.location}: position 3 is not a readable entry (")


# b was recorded on 1 April 2025 (``StepClock``), reported on 8 March: a writer admits a figure dated up to the day
# after the day it records it (``admission.SLACK``), and stamps a time the replay index can read. Forged text, the
# text it replaces, and what verify says of it (None: nothing, it is an entry a writer could have made).
DATED = {
    "reported the day after it was recorded": (b'"reported_on":"2025-04-02"', b'"reported_on":"2025-03-08"', None),
    "reported two days after": (b'"reported_on":"2025-04-03"', b'"reported_on":"2025-03-08"',
                                "its reported_on, 2025-04-03, is after the day it was recorded (2025-04-01, UTC)"),
    "reported in 2999": (b'"reported_on":"2999-12-31"', b'"reported_on":"2025-03-08"', "reported_on, 2999-12-31"),
    "a period reported in 2999": (b'"reported_on":"2999-12-31","measure":"killed","category":"civilians",'
                                  b'"kind":"cumulative","figure":{"low":745,"high":745,"qualifier":"exact"},'
                                  b'"source":{"title":"2025 massacres of Syrian Alawites","url":null,"quote":"..."},'
                                  b'"period_start":"2999-12-30","period_end":"2999-12-31"',
                                  LINES[3][LINES[3].index(b'"reported_on"') : LINES[3].index(b',"location"')],
                                  "reported_on, 2999-12-31"),
    "recorded at an hour that is none": (b'"recorded_at":"2025-04-01T99:00:01.000000Z"',
                                         b'"recorded_at":"2025-04-01T09:00:01.000000Z"', "time data"),
    # Times strptime reads but no writer writes (and that sort after the entry before): text order is time order
    # only for the fixed width writers write.
    "recorded at a time cut short": (b'"recorded_at":"2025-04-01T09:00:01.5Z"',
                                     b'"recorded_at":"2025-04-01T09:00:01.000000Z"',
                                     "recorded_at '2025-04-01T09:00:01.5Z' is not a time as writers write one"),
    "recorded at a time ending in z": (b'"recorded_at":"2025-04-01T09:00:01.000000z"',
                                       b'"recorded_at":"2025-04-01T09:00:01.000000Z"', "not a time as writers"),
    "recorded at a time in Arabic-Indic digits": ('"recorded_at":"\u0662\u0660\u0662\u0665-04-01T09:00:01.000000Z"'
                                                  .encode(), b'"recorded_at":"2025-04-01T09:00:01.000000Z"',
                                                  "not a time as writers"),
}  # fmt: skip


@pytest.mark.parametrize(("forged", "was", "said"), DATED.values(), ids=DATED.keys())
def test_verify_and_copy_refuse_a_stored_entry_dated_as_no_writer_dates_one(log_target, tmp_path, forged, was, said):
    """A figure reported after the day its entry was recorded, or a time no writer stamps, can be hashed into the
    chain by whoever rewrites it; verify said the chain was intact while replay refused the time. Verify names it,
    and a copy lands none of it."""
    target = _log_of(log_target, _forged(forged, was=was))
    with open_store(target) as store:
        if said is None:
            assert store.verify().head.entries == 4
            return
        with pytest.raises(StoredEntryError, match=re.escape(said)) as caught:
            store.verify()
        assert caught.value.position == 3
        copied = JsonlStore(tmp_path / "copy.jsonl")
        with pytest.raises(StoredEntryError, match=re.escape(said)):
            copied.copy_from(store)
        assert copied.head().entries == 0


@pytest.mark.parametrize("clock", [dt.datetime(9999, 12, 31, 23, tzinfo=dt.UTC), dt.datetime(9999, 12, 30, 23, 59,
                                                                                      tzinfo=dt.UTC)])  # fmt: skip
def test_a_log_recorded_on_the_last_days_of_the_calendar_is_written_and_verified(tmp_path, clock):
    """A day of slack after 31 December 9999 is no day: the rule must not overflow, for a writer (in memory or
    spooled, as an import writes) or for verify."""
    reported = clock.date() + dt.timedelta(days=1) if clock.day == 30 else clock.date()
    late = {"id": "c", "reported_on": reported}
    store = JsonlStore(tmp_path / "log.jsonl", clock=lambda: clock)
    store.append([*NAMES, obs("a", 8, 532)])
    with Spool.of([("row 2", obs("b", 8, 745)), ("row 3", attrs.evolve(obs("c", 9, 800), **late))]) as spool:
        store.append_spool(spool)
    assert store.verify().head.entries == 5
    assert JsonlStore(tmp_path / "copy.jsonl").copy_from(store).entries == 5


FORGED_IDS = {
    "a space": "b c", "a newline": "b\nc", "empty": "", "a last newline": "c\n", "a number": 5, "null": None,
    "a slash": "b/c", "a tab": "b\tc", "a quote": 'b"c', "101 characters": "b" * 101, "a leading dot": ".b",
    "not ASCII": "bé", "a right-to-left mark": "b\u200f",
}  # fmt: skip


@pytest.mark.parametrize("forged", FORGED_IDS.values(), ids=FORGED_IDS.keys())
def test_replay_and_verify_refuse_a_stored_id_no_event_could_have(log_target, log_kind, forged):
    """Ids are kept joined by newlines, a segment's by spaces: such an id would shift every id after it, and
    one that is not text stopped replay with a traceback. Any other id no event could have (verify refuses
    it) is refused by replay too, though the fast path reads ids without checking each."""
    target = _log_of(log_target, _forged(b'"id":' + orjson.dumps(forged), was=b'"id":"b"'))
    for read in (replay, lambda store: store.verify()):
        with open_store(target) as store, pytest.raises(StoredEntryError) as caught:
            store.keep(REPLAY_INDEX)
            read(store)
        assert caught.value.position == 3
        assert read is not replay or "not a valid id" in str(caught.value) or "expected text" in str(caught.value)
    if log_kind != "jsonl":  # lines put in a database around its guards fail its own checks on an append first
        return
    with open_store(target) as store:  # an append reads the log's ids too, and lands nothing
        entries = store.head().entries
        with pytest.raises(StoredEntryError, match="position 3"):
            store.append([*NAMES, obs("c", 9, 1)])
        assert store.head().entries == entries


def _lines_with_a_retraction() -> list[bytes]:
    """``LINES``, then a retraction of observation b at position 4."""
    with tempfile.TemporaryDirectory() as folder:
        store = JsonlStore(Path(folder) / "log.jsonl", clock=StepClock())
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        store.append([Retraction(observation_id="b", reason="entered twice")])
        return list(store.lines())


A_FIGURE = b'"figure":{"low":532,"high":532,"qualifier":"exact"}'
# Forged lines (new text, the text it replaces, the line), then the position to be named and why.
EARLIER_FAULTS = {
    "b's id with a slash": ([(b'"id":"b/c"', b'"id":"b"', 3)], 3, "not a valid id"),
    "b's id with a space": ([(b'"id":"b c"', b'"id":"b"', 3)], 3, "not a valid id"),
    "a's figure, then b's id": ([(BROKEN["low above high"], A_FIGURE, 2), (b'"id":"b/c"', b'"id":"b"', 3)], 2, "high"),
    "a's id, then b's figure": (
        [(b'"id":"a/c"', b'"id":"a"', 2), (BROKEN["exact with two bounds"], FIGURE, 3)], 2, "valid id"
    ),
}


@pytest.mark.parametrize("forged", EARLIER_FAULTS.values(), ids=EARLIER_FAULTS.keys())
def test_replay_names_the_first_entry_it_cannot_read_as_verify_does(log_target, forged):
    """The fast path checks figures and ids a block at a time; a later entry that fails at once (here a retraction
    of b, which a forged id leaves naming nothing), or a later row's other fault, must not be named instead."""
    forgeries, at, reason = forged
    lines = _lines_with_a_retraction()
    for text, was, line in forgeries:
        lines = _forged(text, lines, was, line)
    target = _log_of(log_target, lines)
    for read in (replay, lambda store: store.verify()):
        with open_store(target) as store, pytest.raises(StoredEntryError) as caught:
            store.keep(REPLAY_INDEX)
            read(store)
        assert caught.value.position == at, str(caught.value)
        assert reason in str(caught.value)


def test_a_stored_fix_of_an_observation_not_in_the_log_is_refused_naming_its_position(tmp_path):
    """Replay, and an append (which reads the log's ids), say which entry it is: the log is what is broken."""
    with tempfile.TemporaryDirectory() as folder:
        store = JsonlStore(Path(folder) / "log.jsonl", clock=StepClock())
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        store.append([Retraction(observation_id="a", reason="twice")])
        lines = list(store.lines())
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(line + b"\n" for line in _forged(b'"observation_id":"zz"', lines,
                                                                 b'"observation_id":"a"', at=4)))  # fmt: skip
    for act in (lambda store: replay(store), lambda store: store.append([*NAMES, obs("c", 9, 1)])):
        with pytest.raises(StoredEntryError, match=r"position 4 .*observation 'zz', not in the log before it"):
            act(JsonlStore(log))
    assert len(log.read_bytes().splitlines()) == 5


@pytest.mark.parametrize("two", [False, True], ids=["one process", "two processes"])
def test_verify_refuses_a_stored_fix_of_an_observation_not_in_the_log_as_replay_does(log_target, log_kind, two):
    """The chain holds and every event reads on its own: only a reader that knows the ids before it refuses the
    fix. Verify said the chain was intact while replay refused it, when no index was kept beside the log to compare
    (verify now reads the log through as a reader would), the JSON Lines log read by one process or two."""
    lines = _forged(b'"observation_id":"zz"', _lines_with_a_retraction(), b'"observation_id":"b"', at=4)
    target = _log_of(log_target, lines)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "IN_TWO_BYTES", 0 if two else 1 << 62)
        for read in (replay, lambda store: store.verify()):
            with open_store(target) as store, pytest.raises(StoredEntryError) as caught:
                store.keep(REPLAY_INDEX)
                read(store)
            assert caught.value.position == 4
            assert "it fixes observation 'zz', not in the log before it" in str(caught.value)


def test_the_command_line_refuses_a_stored_figure_in_one_line(tmp_path):
    """Exit 1 (the log is broken, not the command), one line naming the position, no traceback."""
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(line + b"\n" for line in _forged(BROKEN["not a number"])))
    for command in ("replay", "verify"):
        ran = invoke([command, "--log", log])
        assert ran.exit_code == 1, ran.output
        assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr
        assert f"{log}: position 3 is not a readable entry" in ran.stderr
        # Replay says where to look further; verify is where.
        assert ("run `timeline verify`" in ran.stderr) == (command == "replay")


@pytest.mark.parametrize("where", [b'"note":null', b'"quote":'], ids=["a note", "a quote"])
def test_a_stored_value_nested_past_what_a_reader_reads_is_refused_in_one_line(tmp_path, where):
    """A line nested a hundred thousand deep holds, chained, what no writer wrote: msgspec stops at its own limit,
    and replay, verify and the log listing each refuse it in one line naming where it lies, not a traceback."""
    deep = b"[" * 100_000 + b"]" * 100_000
    log = tmp_path / "log.jsonl"
    nested = where.replace(b"null", deep) if where.endswith(b"null") else where + deep + b',"was":'
    log.write_bytes(b"".join(line + b"\n" for line in _forged(nested, was=where)))
    for command in ("replay", "verify", "log"):
        ran = invoke([command, "--log", log])
        assert ran.exit_code == 1, ran.output
        assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr
        # A line no reader can decode is named by its place in the file where its position is not read.
        assert ("position 3" in ran.stderr or "line 4 " in ran.stderr) and "nested too deeply to read" in ran.stderr


COUNTS = st.one_of(
    st.integers(-2, 2), st.integers(0, 10**6), st.sampled_from([MAX_COUNT, MAX_COUNT + 1, 2**63]),
    st.none(), st.booleans(), st.text(max_size=2), st.just(1.0),
)  # fmt: skip


def _figure_of(low, high, qualifier) -> Figure | None:
    """The figure a person could have entered with these values, or None."""
    try:
        return Figure(low, high, Qualifier(qualifier))
    except (InputError, ValueError):
        return None


@settings(max_examples=150, deadline=None)
@given(low=COUNTS, high=COUNTS, qualifier=st.sampled_from([*(q.value for q in Qualifier), "nearly"]))
def test_replay_reads_a_stored_figure_exactly_when_a_figure_could_be_built_from_it(low, high, qualifier):
    """The index's fast path (skim) and its exact path take the figures ``Figure`` takes, as it takes them.

    "at most" with a floor of its own is among them: older versions stored it.
    """
    stored = b'"figure":' + orjson.dumps({"low": low, "high": high, "qualifier": qualifier})
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.jsonl"
        log.write_bytes(b"".join(line + b"\n" for line in _forged(stored)))
        figure = _figure_of(low, high, qualifier)
        if figure is None:
            with pytest.raises(StoredEntryError):
                replay(JsonlStore(log))
            return
        [series] = replay(JsonlStore(log)).series
        floor = 0 if figure.qualifier is Qualifier.AT_MOST else figure.low  # "at most N" is [0, N] (DESIGN.md)
        assert (series.latest.low, series.latest.high) == (floor, figure.high)  # b: the later total of the day


def test_an_index_holding_a_figure_no_event_could_hold_is_not_used(tmp_path):
    """An index built before stored figures were checked may hold one: its block is passed over and the log read."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.keep(REPLAY_INDEX)
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    sidecar = store.sidecar_path(REPLAY_INDEX)
    [(_, block)] = list(unframe(sidecar.read_bytes(), REPLAY_INDEX))
    negative = np.array([532, -5], dtype="<i8").tobytes()
    sidecar.write_bytes(frame(REPLAY_INDEX.encode(msgspec.structs.replace(block, obs_low=negative, obs_high=negative))))
    with pytest.warns(IndexMismatchWarning, match="damaged block"):
        [series] = replay(JsonlStore(store.path)).series
    assert series.latest.low == 745


def test_copy_refuses_a_stored_figure_no_writer_could_admit_naming_the_log_it_lies_in(tmp_path):
    """A copy does not spread it: nothing of its batch lands, and the error names the source, where it lies."""
    source = tmp_path / "source.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in _forged(BROKEN["negative"])))
    target = JsonlStore(tmp_path / "target.jsonl")
    target.keep(REPLAY_INDEX)
    with pytest.raises(StoredEntryError, match=f"^{re.escape(str(source))}: position 3 "):
        target.copy_from(JsonlStore(source))
    assert target.head().entries == 0


BEYOND_THE_FIGURE = {
    "an unknown field": (b'"kind":"cumulative"', b'"kind":"cumulative","extra":1'),
    "a missing field": (b'"measure":"killed",', b""),
    "a count beyond 64 bits": (FIGURE, b'"figure":{"low":745,"high":' + b"1" * 31 + b',"qualifier":"range"}'),
    "an unknown type": (b'"type":"Observation"', b'"type":"Observed"'),
}


@pytest.mark.parametrize(("old", "new"), BEYOND_THE_FIGURE.values(), ids=BEYOND_THE_FIGURE.keys())
def test_copy_refuses_any_entry_verify_refuses_before_writing_anything(tmp_path, old, new):
    """Whatever makes an entry unreadable, `timeline copy` says so in one line naming the source and the
    position, and writes none of it (it wrote the whole target, or failed on a traceback, leaving an empty one)."""
    lines = list(LINES)
    assert old in lines[3]
    if old != FIGURE:  # the figure itself is replaced by _forged; any other part here
        lines[3] = lines[3].replace(old, new, 1)
    source = tmp_path / "source.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in _forged(new if old == FIGURE else FIGURE, lines)))
    result = invoke(["copy", str(source), str(tmp_path / "target.jsonl")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"timeline: error: {source}: position 3 is not a readable entry (")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "target.jsonl").exists()
