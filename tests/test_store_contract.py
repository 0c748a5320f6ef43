"""One contract, three stores: JSON Lines, SQLite and PostgreSQL (a real server)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from events_log.admission import names_in
from events_log.envelope import decode_line
from events_log.errors import BrokenChainError, InputError, LogChangedError, LogError
from events_log.events import Correction, IncidentDescribed, MonitorDescribed, Retraction, Source
from events_log.stores import open_store
from timeline.replay import replay

from .conftest import STORE_KINDS, StepClock
from .helpers import obs
from .reference import replay_reference, replayed
from .strategies import SMALL_WORLD, descriptions_of, small_observations, texts


def opened(target, clock=None):
    store = open_store(target)
    if clock is not None:
        store.clock = clock
    return store


# coastal-2025, SOHR and SNHR: the names ``obs`` uses, described first in every new log.
WORLD = descriptions_of([obs("x", 8, 1), obs("y", 8, 1, monitor="SNHR")])
D = len(WORLD)


def described(target, clock=None):
    """A new log of ``target`` that already describes the names ``obs`` uses."""
    store = opened(target, clock)
    store.append(WORLD)
    return store


def test_append_read_head_verify(log_target):
    """Batches get gapless positions, one chain, and read back as they were written."""
    store = opened(log_target, StepClock())
    assert store.head().entries == 0 and list(store.entries()) == []
    store.append(WORLD)
    store.append([obs("a", 8, 532), obs("b", 8, 745)])
    store.append([obs("c", 9, 303, "increment")])
    entries = list(store.entries())[D:]
    assert [(e.position - D, e.batch_end - D, e.event.id) for e in entries] == [(0, 1, "a"), (1, 1, "b"), (2, 2, "c")]
    assert [e.event for e in entries] == [obs("a", 8, 532), obs("b", 8, 745), obs("c", 9, 303, "increment")]
    checked = store.verify()
    assert checked.head == store.head() and checked.head.entries == D + 3 and checked.torn is None
    assert list(store.lines(start=2)) == list(store.lines())[2:]


def test_progress_sees_every_line_of_the_batch_as_it_is_written(log_target):
    """An append's progress is told the batch's length and handed each line it writes, in order."""
    store = described(log_target, StepClock())
    seen: list[tuple[int, bytes]] = []

    def progress(lines, length):
        for line in lines:
            seen.append((length, line))
            yield line

    entries = store.append([obs("a", 8, 1), obs("b", 9, 2)], progress=progress)
    assert [length for length, _ in seen] == [2, 2]
    assert [line for _, line in seen] == list(store.lines(entries[0].position))


def test_a_refused_batch_leaves_the_log_unchanged(log_target):
    """Admission refuses duplicate ids and dangling references; nothing of the batch lands."""
    store = described(log_target, StepClock())
    store.append([obs("a", 8, 1)])
    before = list(store.lines())
    with pytest.raises(InputError, match="'a' is already in the log"):
        store.append([obs("b", 9, 2), obs("a", 9, 3)])
    with pytest.raises(InputError, match="no observation 'zz'"):
        store.append([Retraction(observation_id="zz", reason="x")])
    store.append([Retraction(observation_id="a", reason="wrong")])
    with pytest.raises(InputError, match="'a' was retracted"):
        store.append([Correction(observation_id="a", replacement=obs("a", 8, 2), reason="x")])
    assert list(store.lines())[: D + 1] == before and store.head().entries == D + 2


@pytest.mark.parametrize("destination", STORE_KINDS)
def test_copy_keeps_length_and_head_in_every_store(log_target, fresh_logs, destination):
    """`copy` moves the exact lines: verify reports the same length and head hash on both sides."""
    source = described(log_target, StepClock())
    source.append([obs("a", 8, 532), obs("b", 8, 745)])
    source.append([Correction(observation_id="a", replacement=obs("a", 8, 533), reason="typo")])
    target = opened(fresh_logs(destination))
    copied = target.copy_from(source)
    assert copied == source.verify().head == target.verify().head
    assert list(target.lines()) == list(source.lines())
    assert target.copy_from(source) == copied  # running it again adds nothing
    source.append([obs("c", 9, 1, "increment")])
    assert target.copy_from(source) == source.head()  # and picks up where it stopped


def test_copy_refuses_a_log_that_is_not_a_prefix(log_target, fresh_logs):
    """Copying into a log with other entries is refused, not merged."""
    source = described(log_target, StepClock())
    source.append([obs("a", 8, 1), obs("b", 9, 2)])
    other = described(fresh_logs("jsonl"), StepClock())
    other.append([obs("x", 8, 1)])
    with pytest.raises(LogError, match="not a copy of the start"):
        other.copy_from(source)


@pytest.mark.parametrize("batch", [2, 9_000])
def test_sqlite_refuses_to_change_history(fresh_logs, batch):
    """UPDATE, DELETE and out-of-chain INSERTs are rejected by SQLite's own triggers, also after a batch
    long enough for its writer to insert most of it without the chain's trigger."""
    target = fresh_logs("sqlite")
    described(target, StepClock()).append([obs(f"o{i}", 1 + i % 28, i) for i in range(batch)])
    database = sqlite3.connect(target.removeprefix("sqlite:///"))
    for statement in (
        "UPDATE timeline_entries SET line = x'00' WHERE position = 0",
        "DELETE FROM timeline_entries WHERE position = 1",
        "DELETE FROM timeline_entries",
        "INSERT INTO timeline_entries VALUES (9, 't', 'Observation', 'z', 'h', 'p', x'00')",
    ):
        with pytest.raises(sqlite3.DatabaseError, match=r"append-only|extend the chain"):
            database.execute(statement)
    assert opened(target).verify().head.entries == D + batch


def test_sqlite_tampering_behind_the_triggers_is_named(fresh_logs):
    """Whoever drops the triggers and edits a row is still caught by verify, at that position."""
    target = fresh_logs("sqlite")
    described(target, StepClock()).append([obs("a", 8, 532), obs("b", 8, 745), obs("c", 9, 3)])
    database = sqlite3.connect(target.removeprefix("sqlite:///"))
    database.execute("DROP TRIGGER timeline_entries_no_update")
    database.execute(f"UPDATE timeline_entries SET line = replace(line, '745', '754') WHERE position = {D + 1}")
    database.commit()
    with pytest.raises(BrokenChainError) as caught:
        opened(target).verify()
    assert caught.value.position == D + 1


def _writer(target: str, worker: int, count: int) -> None:
    store = open_store(target)
    for i in range(count):
        # A series per worker: the same figure from two workers would be a repeat.
        store.append([obs(f"w{worker}-{i}", 1 + i % 28, i, location=f"w{worker}")])
    store.close()


def start_writers(target: str, workers: int, count: int) -> list[multiprocessing.Process]:
    """``workers`` processes, each appending ``count`` observations of its own, started (after ``WORLD``)."""
    described(target).close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(target, w, count)) for w in range(workers)]
    for p in processes:
        p.start()
    return processes


def wait_for(processes: list[multiprocessing.Process]) -> None:
    for p in processes:
        p.join(timeout=600)
        assert p.exitcode == 0


@pytest.mark.slow
def test_eight_writers_lose_nothing(log_target):
    """8 processes x 250 appends: gapless positions, one linear chain, every acknowledged entry present."""
    workers, count = 8, 250
    wait_for(start_writers(log_target, workers, count))
    store = opened(log_target)
    assert store.verify().head.entries == D + workers * count
    ids = [e.event.id for e in store.entries(D)]
    assert sorted(ids) == sorted(f"w{w}-{i}" for w in range(workers) for i in range(count))
    for w in range(workers):
        assert [i for i in ids if i.startswith(f"w{w}-")] == [f"w{w}-{i}" for i in range(count)]


@pytest.mark.slow
def test_a_follower_never_skips_an_entry_that_commits_late(log_target):
    """A reader polling for new positions while 4 writers append sees every position, in order, once."""
    workers, count = 4, 100
    total = D + workers * count
    seen: list[int] = []
    failures: list[str] = []

    def follow() -> None:
        follower = opened(log_target)
        try:
            while len(seen) < total:
                for line in follower.lines(start=len(seen)):
                    position = decode_line(line).position
                    if position != len(seen):
                        failures.append(f"expected position {len(seen)}, read {position}")
                        return
                    seen.append(position)
        finally:
            follower.close()

    thread = threading.Thread(target=follow)
    thread.start()
    wait_for(start_writers(log_target, workers, count))
    thread.join(timeout=120)
    assert failures == [] and seen == list(range(total))


def test_reading_streams_the_log(log_target):
    """Reading a log never holds it whole in memory: the peak stays well below the log's size."""
    store = described(log_target, StepClock())
    batch = [obs(f"o{i}", 1 + i % 28, i, location=f"place {i % 50}") for i in range(12_000)]
    store.append(batch)
    total = sum(len(line) for line in store.lines())
    tracemalloc.start()
    count = sum(1 for _ in store.lines())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == D + 12_000 and peak < total / 3, (peak, total)


TYPOS = [("incident", "coastal-2024"), ("monitor", "SHOR"), ("monitor", "sohr")]


def plain_repeat(new, old) -> bool:
    """The model's own reading of a repeat: same series, day, kind and figure; an increment also its source."""
    same = (new.series_key, new.reported_on, new.kind, new.figure) == (
        old.series_key, old.reported_on, old.kind, old.figure
    )  # fmt: skip
    if not same or new.kind == "cumulative":
        return same
    return any(mine is not None and mine == theirs for mine, theirs in
               ((new.source.url, old.source.url), (new.source.quote, old.source.quote)))  # fmt: skip


class LogMachine(RuleBasedStateMachine):
    """Describe, append, repeat, correct, retract (from current and stale versions) and misbehave at random;
    the store always agrees with a plain model."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.store = opened(target, StepClock())
        self.batches: list[list] = []
        self.records: dict[str, object] = {}  # live id -> its current observation
        self.versions: dict[str, list[int]] = {}  # id -> every position it had a version at
        self.number = 0
        self.described: dict[str, set[str]] = {"incident": set(), "monitor": set()}

    def _undescribed(self, observations) -> set[tuple[str, str]]:
        return {(kind, slug) for o in observations for kind, slug in names_in(o) if slug not in self.described[kind]}

    def _refused_for_names(self, batch, observations) -> bool:
        """Whether ``batch`` uses an undescribed name; if so, it must be refused naming each, and nothing lands."""
        unknown = self._undescribed(observations)
        if not unknown:
            return False
        head = self.store.head()
        with pytest.raises(InputError, match="not described in the log") as refused:
            self.store.append(batch)
        assert all(repr(slug) in str(refused.value) for _, slug in unknown)
        assert self.store.head() == head
        return True

    @rule(data=st.data())
    def describe(self, data):
        event = data.draw(st.sampled_from(SMALL_WORLD))
        field = "title" if isinstance(event, IncidentDescribed) else "full_name"
        event = attrs.evolve(event, **{field: data.draw(texts)})
        self.store.append([event])
        self._landed([event])
        self.described["incident" if isinstance(event, IncidentDescribed) else "monitor"].add(event.slug)

    @property
    def entries(self) -> int:
        return sum(len(b) for b in self.batches)

    @property
    def live(self) -> list[str]:
        return sorted(self.records)

    def _landed(self, batch: list) -> None:
        for offset, event in enumerate(batch):
            position = self.entries + offset
            if isinstance(event, IncidentDescribed | MonitorDescribed):
                continue
            if isinstance(event, Retraction):
                del self.records[event.observation_id]
            else:
                record = event.replacement if isinstance(event, Correction) else event
                self.records[record.id] = record
                self.versions.setdefault(record.id, []).append(position)
        self.batches.append(batch)

    @rule(data=st.data(), size=st.integers(1, 4), allow=st.booleans())
    def append_observations(self, data, size, allow):
        batch = []
        for _ in range(size):
            if self.records and data.draw(st.booleans()):
                # Say again what a record says (under a new id): a repeat, unless it is an increment
                # whose source differs.
                again = self.records[data.draw(st.sampled_from(self.live))]
                batch.append(attrs.evolve(again, id=f"o{self.number}"))
            else:
                batch.append(data.draw(small_observations(self.number)))
            self.number += 1
        if self._refused_for_names(batch, batch):
            return
        earlier = list(self.records.values())
        repeated = any(plain_repeat(o, other) for i, o in enumerate(batch) for other in earlier + batch[:i])
        head = self.store.head()
        if repeated and not allow:
            with pytest.raises(InputError, match="repeats observation"):
                self.store.append(batch)
            assert self.store.head() == head
            return
        self.store.append(batch, allow_duplicate=allow)
        self._landed(batch)

    @rule(data=st.data())
    def describe_in_the_same_batch(self, data):
        observation = data.draw(small_observations(self.number))
        self.number += 1
        before = [d for d in SMALL_WORLD if (type(d) is IncidentDescribed and d.slug == observation.incident)
                  or (type(d) is MonitorDescribed and d.slug == observation.monitor)]  # fmt: skip
        self.store.append([*before, observation], allow_duplicate=True)
        for d in before:
            self.described["incident" if isinstance(d, IncidentDescribed) else "monitor"].add(d.slug)
        self._landed([*before, observation])

    @rule(data=st.data(), typo=st.sampled_from(TYPOS))
    def typo_is_refused(self, data, typo):
        kind, slug = typo
        observation = attrs.evolve(data.draw(small_observations(self.number)), **{kind: slug})
        assert self._refused_for_names([observation], [observation])
        with pytest.raises(InputError, match="not described"):
            replay(self.store, **{kind: slug})

    def _version(self, data, target: str) -> tuple[int, bool]:
        """A version to make a fix from: the current one, or (sometimes) one replaced since."""
        versions = self.versions[target]
        if len(versions) > 1 and data.draw(st.booleans()):
            return data.draw(st.sampled_from(versions[:-1])), False
        return versions[-1], True

    @rule(data=st.data())
    def correct(self, data):
        if not self.records:
            return
        target = data.draw(st.sampled_from(self.live))
        replacement = attrs.evolve(data.draw(small_observations(0)), id=target)
        version, current = self._version(data, target)
        event = Correction(observation_id=target, replacement=replacement, reason="typo", expected_version=version)
        if not self._refused_for_names([event], [replacement]):
            self._fix(event, current)

    @rule(data=st.data())
    def retract(self, data):
        if not self.records:
            return
        target = data.draw(st.sampled_from(self.live))
        version, current = self._version(data, target)
        self._fix(Retraction(observation_id=target, reason="wrong", expected_version=version), current)

    def _fix(self, event, current: bool) -> None:
        if current:
            self.store.append([event])
            self._landed([event])
            return
        head = self.store.head()
        with pytest.raises(LogChangedError, match=f"at position {self.versions[event.observation_id][-1]}"):
            self.store.append([event])
        assert self.store.head() == head

    @rule(data=st.data())
    def refused_batch(self, data):
        if not self.records:
            return
        head = self.store.head()
        duplicate = data.draw(small_observations(0))
        with pytest.raises(InputError):
            self.store.append([data.draw(small_observations(10_000 + self.number)),
                               attrs.evolve(duplicate, id=self.live[0])])  # fmt: skip
        assert self.store.head() == head

    @invariant()
    def verify_and_replay_agree_with_the_model(self):
        checked = self.store.verify()
        assert checked.head.entries == self.entries
        assert replayed(replay(self.store)) == replay_reference(self.batches)
        assert {kind: self.store.names().of(kind) for kind in self.described} == self.described

    def teardown(self):
        self.store.close()


def test_stateful_append_read_replay_verify(fresh_logs, log_kind):
    """Random descriptions, appends, repeats, fixes from current and stale versions, and refused batches."""
    run_state_machine_as_test(
        lambda: LogMachine(fresh_logs(log_kind)),
        settings=settings(max_examples=15, stateful_step_count=12, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )  # fmt: skip


def test_a_name_must_be_described_before_the_observation(log_target):
    """A description counts from its place on: earlier in the batch or log, never after the observation."""
    store = opened(log_target, StepClock())
    [incident, monitor, _] = WORLD  # coastal-2025, SOHR (and SNHR)
    with pytest.raises(InputError, match="2 names are not described"):
        store.append([obs("a", 8, 1)])
    with pytest.raises(InputError, match=r"event 2: monitor 'SOHR' is used before this import describes it"):
        store.append([incident, obs("a", 8, 1), monitor])
    assert store.head().entries == 0
    store.append([incident, monitor, obs("a", 8, 1)])
    with pytest.raises(InputError, match="monitor 'SNHR' is not described in the log; did you mean SOHR"):
        store.append([obs("b", 8, 1, monitor="SNHR")])
    entries = store.append([obs("b", 8, 2, monitor="SNHR")], describe_new=True)
    assert [e.type for e in entries] == ["MonitorDescribed", "Observation"]
    assert entries[0].event.full_name == "SNHR" and store.names().of("monitor") == {"SOHR", "SNHR"}


# -- two people fixing one record at once -------------------------------------------------

_DESCRIBED = [
    IncidentDescribed(slug="coastal-2025", title="Coastal massacres", place="Latakia", summary="s",
                      start_date=dt.date(2025, 3, 6)),
    MonitorDescribed(slug="SOHR", full_name="Syrian Observatory for Human Rights", description="d"),
]  # fmt: skip


def _racing_corrections(target: str, fixes: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Start one `timeline correct r7 ...` process per fix at once; wait for all of them."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "timeline", "correct", "r7", "--log", target, "--reason", "typo"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [subprocess.Popen([*command, *fix], cwd=root, **pipes) for fix in fixes]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_racing_fixes_of_one_version_one_wins_the_other_is_refused(log_target):
    """Two `correct` processes made from one version: exactly one lands, the other exits 2 naming it."""
    store = opened(log_target)
    store.append([*_DESCRIBED, obs("r7", 8, 745)])
    version = str(store.head().entries - 1)
    results = _racing_corrections(
        log_target, [["--low", "999", "--expected-version", version],
                     ["--location", "Baniyas", "--expected-version", version]],
    )  # fmt: skip
    assert sorted(r.returncode for r in results) == [0, 2], results
    [won] = [r for r in results if r.returncode == 0]
    [lost] = [r for r in results if r.returncode == 2]
    assert lost.stderr.count("\n") == 1 and "Traceback" not in lost.stderr
    assert f"changed after version {version}" in lost.stderr and "Correction at position 3" in lost.stderr
    fixes = [e.event for e in store.entries() if isinstance(e.event, Correction)]
    assert len(fixes) == 1 and fixes[0].expected_version == int(version)
    record = fixes[0].replacement
    assert (record.figure.low, record.location) == ((999, None) if "--low" in won.args else (745, "Baniyas"))
    store.close()


def test_racing_fixes_without_a_version_build_on_each_other(log_target):
    """Two `correct` processes at once, no version given: both land, each on the other's result; no fix is lost."""
    store = opened(log_target)
    store.append([*_DESCRIBED, obs("r7", 8, 745)])
    results = _racing_corrections(log_target, [["--low", "999"], ["--location", "Baniyas"]])
    assert [r.returncode for r in results] == [0, 0], results
    fixes = [e for e in store.entries() if isinstance(e.event, Correction)]
    assert [f.event.expected_version for f in fixes] == [2, fixes[0].position]
    final = fixes[-1].event.replacement
    assert (final.figure.low, final.figure.high, final.location) == (999, 999, "Baniyas")
    store.close()


def test_a_fix_from_an_old_version_is_refused_and_nothing_lands(log_target):
    """Library level: a correction or retraction naming a replaced version raises LogChangedError."""
    store = opened(log_target, StepClock())
    store.append([*WORLD, obs("a", 8, 532)])  # a at position 3
    store.append([Correction(observation_id="a", replacement=obs("a", 8, 533), reason="typo", expected_version=3)])
    head = store.head()
    for stale in (Correction(observation_id="a", replacement=obs("a", 8, 534), reason="x", expected_version=3),
                  Retraction(observation_id="a", reason="x", expected_version=3)):  # fmt: skip
        with pytest.raises(LogChangedError, match="current version is the Correction at position 4"):
            store.append([stale])
    assert store.head() == head
    store.append([Retraction(observation_id="a", reason="wrong", expected_version=4)])
    assert store.head().entries == 6


# -- repeats ------------------------------------------------------------------------------


def _increment(id, quote, url=None):
    return attrs.evolve(obs(id, 9, 3, "increment"), source=Source(title="t", url=url, quote=quote))


def test_a_repeat_is_refused_naming_the_record_it_repeats(log_target):
    """Same series, day and figure (an increment: and source) as an effective record: refused unless allowed."""
    store = opened(log_target, StepClock())
    store.append([*WORLD, obs("a", 8, 745), _increment("c", "q1")])
    head = store.head()
    with pytest.raises(InputError, match=r"event 1: figure: repeats observation 'a'"):
        store.append([obs("b", 8, 745)])
    with pytest.raises(InputError, match=r"event 2: figure: repeats observation 'c'"):
        store.append([obs("x", 9, 745), _increment("e", "q1", url="https://example.org/other")])
    with pytest.raises(InputError, match=r"event 2: figure: repeats observation 'x'"):
        store.append([obs("x", 9, 745), obs("y", 9, 745)])
    assert store.head() == head
    store.append([_increment("d", "q2"), obs("f", 8, 745, monitor="SNHR"), obs("g", 8, 745, location="Baniyas")])
    store.append([obs("b", 8, 745)], allow_duplicate=True)
    store.append([Retraction(observation_id="b", reason="twice"),
                  Correction(observation_id="a", replacement=obs("a", 8, 746), reason="typo")])  # fmt: skip
    store.append([obs("h", 8, 745)])  # what was said before the fix is no longer said
    with pytest.raises(InputError, match="repeats observation 'a'"):
        store.append([obs("i", 8, 746)])


def test_the_figures_table_catches_up_with_a_log_made_before_it(fresh_logs):
    """A SQLite log without the figures table gets it on its next write, filled from the log: repeats are seen."""
    target = fresh_logs("sqlite")
    opened(target, StepClock()).append([*WORLD, obs("a", 8, 745), obs("b", 9, 803)])
    database = sqlite3.connect(target.removeprefix("sqlite:///"))
    database.execute("DROP TABLE timeline_figures")
    database.commit()
    database.close()
    store = opened(target, StepClock())
    with pytest.raises(InputError, match="repeats observation 'b'"):
        store.append([obs("c", 9, 803)])
    store.append([obs("c", 10, 803)])
    assert store.head().entries == len(WORLD) + 3
