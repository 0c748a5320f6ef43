"""One contract, three stores: JSON Lines, SQLite and PostgreSQL (a real server)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import tracemalloc

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from events_log.admission import names_in
from events_log.envelope import decode_line
from events_log.errors import BrokenChainError, InputError, LogError
from events_log.events import Correction, IncidentDescribed, MonitorDescribed, Retraction
from events_log.stores import open_store
from timeline import replay

from .conftest import STORE_KINDS, StepClock
from .reference import replay_reference, replayed
from .strategies import SMALL_WORLD, descriptions_of, small_observations, texts
from .test_replay import obs


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


def test_sqlite_refuses_to_change_history(fresh_logs):
    """UPDATE, DELETE and out-of-chain INSERTs are rejected by SQLite's own triggers."""
    target = fresh_logs("sqlite")
    described(target, StepClock()).append([obs("a", 8, 1), obs("b", 9, 2)])
    database = sqlite3.connect(target.removeprefix("sqlite:///"))
    for statement in (
        "UPDATE timeline_entries SET line = x'00' WHERE position = 0",
        "DELETE FROM timeline_entries WHERE position = 1",
        "DELETE FROM timeline_entries",
        "INSERT INTO timeline_entries VALUES (9, 't', 'Observation', 'z', 'h', 'p', x'00')",
    ):
        with pytest.raises(sqlite3.DatabaseError, match=r"append-only|extend the chain"):
            database.execute(statement)
    assert opened(target).verify().head.entries == D + 2


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
        store.append([obs(f"w{worker}-{i}", 1 + i % 28, i)])
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


class LogMachine(RuleBasedStateMachine):
    """Describe, append, correct, retract and misbehave at random; the store always agrees with a plain model."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.store = opened(target, StepClock())
        self.batches: list[list] = []
        self.live: list[str] = []
        self.number = 0
        self.described: dict[str, set[str]] = {"incident": set(), "monitor": set()}

    def _undescribed(self, observations) -> set[tuple[str, str]]:
        return {(kind, slug) for o in observations for kind, slug in names_in(o) if slug not in self.described[kind]}

    def _append_or_refuse(self, batch, observations) -> bool:
        """Append ``batch``; it must be refused, naming each name, exactly when it uses an undescribed one."""
        unknown = self._undescribed(observations)
        if not unknown:
            self.store.append(batch)
            self.batches.append(batch)
            return True
        head = self.store.head()
        with pytest.raises(InputError, match="not described in the log") as refused:
            self.store.append(batch)
        assert all(repr(slug) in str(refused.value) for _, slug in unknown)
        assert self.store.head() == head
        return False

    @rule(data=st.data())
    def describe(self, data):
        event = data.draw(st.sampled_from(SMALL_WORLD))
        field = "title" if isinstance(event, IncidentDescribed) else "full_name"
        event = attrs.evolve(event, **{field: data.draw(texts)})
        self.store.append([event])
        self.batches.append([event])
        self.described["incident" if isinstance(event, IncidentDescribed) else "monitor"].add(event.slug)

    @rule(data=st.data(), size=st.integers(1, 4))
    def append_observations(self, data, size):
        batch = []
        for _ in range(size):
            batch.append(data.draw(small_observations(self.number)))
            self.number += 1
        if self._append_or_refuse(batch, batch):
            self.live += [o.id for o in batch]

    @rule(data=st.data())
    def describe_in_the_same_batch(self, data):
        observation = data.draw(small_observations(self.number))
        self.number += 1
        before = [d for d in SMALL_WORLD if (type(d) is IncidentDescribed and d.slug == observation.incident)
                  or (type(d) is MonitorDescribed and d.slug == observation.monitor)]  # fmt: skip
        self.store.append([*before, observation])
        self.batches.append([*before, observation])
        for d in before:
            self.described["incident" if isinstance(d, IncidentDescribed) else "monitor"].add(d.slug)
        self.live.append(observation.id)

    @rule(data=st.data(), typo=st.sampled_from(TYPOS))
    def typo_is_refused(self, data, typo):
        kind, slug = typo
        observation = attrs.evolve(data.draw(small_observations(self.number)), **{kind: slug})
        self._append_or_refuse([observation], [observation])
        with pytest.raises(InputError, match="not described"):
            replay(self.store, **{kind: slug})

    @rule(data=st.data())
    def correct(self, data):
        if not self.live:
            return
        target = data.draw(st.sampled_from(self.live))
        replacement = attrs.evolve(data.draw(small_observations(0)), id=target)
        event = Correction(observation_id=target, replacement=replacement, reason="typo")
        self._append_or_refuse([event], [replacement])

    @rule(data=st.data())
    def retract(self, data):
        if not self.live:
            return
        target = data.draw(st.sampled_from(self.live))
        self.store.append([Retraction(observation_id=target, reason="wrong")])
        self.batches.append([Retraction(observation_id=target, reason="wrong")])
        self.live.remove(target)

    @rule(data=st.data())
    def refused_batch(self, data):
        if not self.live:
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
        assert checked.head.entries == sum(len(b) for b in self.batches)
        assert replayed(replay(self.store)) == replay_reference(self.batches)
        assert {kind: self.store.names().of(kind) for kind in self.described} == self.described

    def teardown(self):
        self.store.close()


def test_stateful_append_read_replay_verify(fresh_logs, log_kind):
    """Random sequences of descriptions, appends, corrections, retractions and refused batches, on each store."""
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
    with pytest.raises(InputError, match=r"event 2: monitor 'SOHR' is not described"):
        store.append([incident, obs("a", 8, 1), monitor])
    assert store.head().entries == 0
    store.append([incident, monitor, obs("a", 8, 1)])
    with pytest.raises(InputError, match="monitor 'SNHR' is not described in the log; did you mean SOHR"):
        store.append([obs("b", 8, 1, monitor="SNHR")])
    entries = store.append([obs("b", 8, 2, monitor="SNHR")], describe_new=True)
    assert [e.type for e in entries] == ["MonitorDescribed", "Observation"]
    assert entries[0].event.full_name == "SNHR" and store.names().of("monitor") == {"SOHR", "SNHR"}
