"""Replay: the rule of DESIGN.md, as-of, known-at and determinism."""

from __future__ import annotations

import datetime as dt
import io

from hypothesis import given
from hypothesis import strategies as st

from events_log.events import Correction, Figure, Kind, Observation, Qualifier, Retraction, Source
from events_log.jsonl import JsonlStore
from timeline import replay
from timeline.output import replay_document, write_json

from .conftest import StepClock
from .strategies import START, small_logs


def obs(id, day, low, kind="cumulative", high="same", qualifier=None, monitor="SOHR", location=None):
    """An observation of coastal-2025 reported on March ``day``, 2025."""
    if high == "same":
        high = low
    qualifier = qualifier or ("at_least" if high is None else "exact" if high == low else "range")
    return Observation(
        id=id,
        incident="coastal-2025",
        monitor=monitor,
        reported_on=dt.date(2025, 3, day),
        measure="killed",
        category="civilians",
        location=location,
        kind=Kind(kind),
        figure=Figure(low, high, Qualifier(qualifier)),
        source=Source(title="2025 massacres of Syrian Alawites", quote="..."),
    )


def log_of(tmp_path, *batches, clock=None):
    store = JsonlStore(tmp_path / "log.jsonl", clock=clock or StepClock())
    for batch in batches:
        store.append(batch, allow_duplicate=True)
    return store


def days(series):
    return [(p.date.day, p.low, p.high, p.basis, p.observations) for p in series.days]


# -- the rule, on the examples DESIGN.md gives -----------------------------------


def test_sohr_march_2025_is_flagged_as_mismatch(tmp_path):
    """745 + 303 + 143 + 132 = 1,323, yet SOHR published 1,225: the day says 1,225, flagged."""
    store = log_of(
        tmp_path,
        [
            obs("midday", 8, 532),
            obs("evening", 8, 745),
            obs("d9", 9, 303, "increment"),
            obs("d10", 10, 143, "increment"),
            obs("d11", 11, 132, "increment"),
            obs("total", 11, 1225),
        ],
    )
    [series] = replay(store).series
    assert days(series) == [
        (8, 745, 745, "reported", ("evening",)),
        (9, 1048, 1048, "derived", ("evening", "d9")),
        (10, 1191, 1191, "derived", ("evening", "d9", "d10")),
        (11, 1225, 1225, "reported", ("total",)),
    ]
    [flag] = series.flags
    assert (flag.date, flag.kind) == (dt.date(2025, 3, 11), "mismatch")
    assert "1,225" in flag.detail and "1,323" in flag.detail


def test_increment_on_the_day_of_a_cumulative_is_inside_it(tmp_path):
    """An increment reported the same day as a cumulative adds nothing to that day."""
    store = log_of(tmp_path, [obs("c", 8, 100), obs("i", 8, 20, "increment"), obs("j", 9, 5, "increment")])
    [series] = replay(store).series
    assert days(series) == [(8, 100, 100, "reported", ("c",)), (9, 105, 105, "derived", ("c", "j"))]
    assert series.flags == ()


def test_totals_may_grow_without_increments(tmp_path):
    """With no increments in between there is nothing to check: a bigger total is not a mismatch."""
    store = log_of(tmp_path, [obs("a", 8, 100), obs("b", 10, 180)])
    [series] = replay(store).series
    assert [p.basis for p in series.days] == ["reported", "carried", "reported"]
    assert series.flags == ()


def test_revised_down_is_flagged_not_fixed(tmp_path):
    """A cumulative below the day before's figure stands, flagged revised_down."""
    store = log_of(tmp_path, [obs("a", 8, 100), obs("b", 9, 90)])
    [series] = replay(store).series
    assert series.latest.low == 90
    assert [(f.date.day, f.kind) for f in series.flags] == [(9, "revised_down")]


def test_open_ended_high_stays_open_and_ranges_add(tmp_path):
    """Low adds to low, high to high; one open-ended figure keeps the sum open."""
    store = log_of(
        tmp_path,
        [obs("r", 8, 125, high=300), obs("i", 9, 10, "increment", high=20), obs("f", 10, 5, "increment", high=None)],
    )
    [series] = replay(store).series
    assert [(p.low, p.high) for p in series.days] == [(125, 300), (135, 320), (140, None)]


def test_as_of_extends_series_to_the_date(tmp_path):
    """With as-of, a series runs to that date, carrying its last figure."""
    store = log_of(tmp_path, [obs("a", 8, 100), obs("b", 12, 200)])
    [series] = replay(store, as_of=dt.date(2025, 3, 10)).series
    assert days(series) == [
        (8, 100, 100, "reported", ("a",)),
        (9, 100, 100, "carried", ("a",)),
        (10, 100, 100, "carried", ("a",)),
    ]


def test_known_at_sees_the_log_before_a_correction(tmp_path):
    """Known-at before a correction replays the old figure; after it, the corrected one."""
    clock = StepClock()
    store = log_of(tmp_path, [obs("a", 8, 1833)], clock=clock)
    before = clock.now
    fixed = obs("a", 8, 1383)
    store.append([Correction(observation_id="a", replacement=fixed, reason="digits swapped")])
    assert replay(store, known_at=before).series[0].latest.low == 1833
    assert replay(store).series[0].latest.low == 1383
    assert replay(store, known_at=before).log.entries == 1


def test_observations_are_the_effective_records(tmp_path):
    """Replay hands back each observation as corrected, in log order, without the retracted ones."""
    store = log_of(tmp_path, [obs("a", 8, 10), obs("b", 9, 20), obs("c", 10, 30)])
    store.append([Correction(observation_id="a", replacement=obs("a", 8, 11), reason="typo"),
                  Retraction(observation_id="b", reason="duplicate")])  # fmt: skip
    result = replay(store)
    assert [(o.id, o.figure.low) for o in result.observations()] == [("a", 11), ("c", 30)]
    assert [c.reason for c in result.corrections("a")] == ["typo"] and result.corrected("a")
    assert [o.id for o in replay(store, as_of=dt.date(2025, 3, 9)).observations()] == ["a"]


def test_retraction_removes_the_observation(tmp_path):
    """A retracted observation no longer counts, and its series disappears if it was alone."""
    store = log_of(tmp_path, [obs("a", 8, 10), obs("b", 9, 20, monitor="SNHR")])
    store.append([Retraction(observation_id="b", reason="entered under the wrong monitor")])
    assert [s.monitor for s in replay(store).series] == ["SOHR"]


# -- properties against a plain reference fold ------------------------------------


def reference_replay(batches, as_of=None):
    """The rule written as plainly as possible: for each day, look at everything again."""
    effective: dict[str, tuple[int, Observation]] = {}
    position = 0
    for batch in batches:
        for event in batch:
            if isinstance(event, Observation):
                effective[event.id] = (position, event)
            elif isinstance(event, Correction):
                effective[event.observation_id] = (effective[event.observation_id][0], event.replacement)
            else:
                del effective[event.observation_id]
            position += 1
    groups: dict[tuple, list] = {}
    for pos, o in effective.values():
        if as_of is None or o.reported_on <= as_of:
            groups.setdefault(o.series_key, []).append((o.reported_on, pos, o))
    result = {}
    for key, items in groups.items():
        items.sort(key=lambda item: item[:2])
        ordered = [o for _, _, o in items]
        first, last = ordered[0].reported_on, as_of or ordered[-1].reported_on
        points = {}
        day = first
        while day <= last:
            upto = [o for o in ordered if o.reported_on <= day]
            cumulatives = [o for o in upto if o.kind is Kind.CUMULATIVE]
            base = cumulatives[-1] if cumulatives else None
            incs = [o for o in upto if o.kind is Kind.INCREMENT and (base is None or o.reported_on > base.reported_on)]
            parts = ([base] if base else []) + incs
            low = sum(o.figure.low for o in parts)
            high = None if any(o.figure.high is None for o in parts) else sum(o.figure.high for o in parts)
            if not any(o.reported_on == day for o in ordered):
                basis = "carried"
            elif base is not None and base.reported_on == day:
                basis = "reported"
            else:
                basis = "derived"
            points[day] = (day, low, high, basis, tuple(o.id for o in parts))
            day += dt.timedelta(days=1)
        flags = []
        cumulatives = [o for o in ordered if o.kind is Kind.CUMULATIVE]
        for i, c in enumerate(cumulatives):
            before = points.get(c.reported_on - dt.timedelta(days=1))
            if before is not None:
                _, low, high, _, _ = before
                if c.figure.low < low or (c.figure.high is not None and high is not None and c.figure.high < high):
                    flags.append((c.reported_on, "revised_down"))
            previous = cumulatives[i - 1] if i else None
            if previous is not None and previous.reported_on < c.reported_on:
                between = [
                    o
                    for o in ordered
                    if o.kind is Kind.INCREMENT and previous.reported_on < o.reported_on <= c.reported_on
                ]
                if between:
                    parts = [previous, *between]
                    low = sum(o.figure.low for o in parts)
                    high = None if any(o.figure.high is None for o in parts) else sum(o.figure.high for o in parts)
                    if c.figure.low != low or (
                        c.figure.high is not None and high is not None and c.figure.high != high
                    ):
                        flags.append((c.reported_on, "mismatch"))
        result[key] = (list(points.values()), flags)
    return result


def as_comparable(result):
    return {
        s.key: ([(p.date, p.low, p.high, p.basis, p.observations) for p in s.days], [(f.date, f.kind) for f in s.flags])
        for s in result.series
    }


@given(small_logs(), st.none() | st.integers(0, 12).map(lambda d: START + dt.timedelta(days=d)))
def test_replay_equals_the_reference_fold(tmp_path_factory, batches, as_of):
    """On random logs with corrections and retractions, replay equals the plain reference."""
    store = log_of(tmp_path_factory.mktemp("log"), *batches)
    assert as_comparable(replay(store, as_of=as_of)) == reference_replay(batches, as_of)


@given(small_logs(), st.data())
def test_known_at_is_a_prefix_of_the_log(tmp_path_factory, batches, data):
    """Replay known-at T equals the replay of a log that stops at T."""
    folder = tmp_path_factory.mktemp("log")
    clock = StepClock()
    full = JsonlStore(folder / "full.jsonl", clock=clock)
    stamps = []
    for batch in batches:
        full.append(batch, allow_duplicate=True)
        stamps.append(clock.now)
    cut = data.draw(st.integers(0, len(batches) - 1))
    known_at = stamps[cut] + dt.timedelta(milliseconds=data.draw(st.integers(0, 999)))
    clock_again = StepClock()
    prefix = JsonlStore(folder / "prefix.jsonl", clock=clock_again)
    for batch in batches[: cut + 1]:
        prefix.append(batch, allow_duplicate=True)
    a = replay_document(replay(full, known_at=known_at))
    b = replay_document(replay(prefix))
    assert a["series"] == b["series"] and a["log"] == b["log"]


@given(small_logs(), st.integers(0, 9).map(lambda d: START + dt.timedelta(days=d)))
def test_a_day_never_depends_on_later_reports(tmp_path_factory, batches, day):
    """The figure of day D is the same whether or not reports after D are known."""
    store = log_of(tmp_path_factory.mktemp("log"), *batches)
    everything = {s.key: s for s in replay(store).series}
    as_of = {s.key: s for s in replay(store, as_of=day).series}
    for key, series in as_of.items():
        full, point = everything[key], series.on(day)
        if day <= full.last:
            assert full.on(day) == point
        else:  # the full replay stops at the series' last report; as-of carries it on
            latest = full.latest
            assert (point.low, point.high, point.observations) == (latest.low, latest.high, latest.observations)
        assert [f for f in full.flags if f.date <= day] == list(series.flags)


@given(small_logs())
def test_replay_json_is_byte_for_byte_deterministic(tmp_path_factory, batches):
    """The same log and parameters give the same JSON bytes, also from a fresh copy of the file."""
    folder = tmp_path_factory.mktemp("log")
    store = log_of(folder, *batches)
    copy = folder / "copy.jsonl"
    copy.write_bytes((folder / "log.jsonl").read_bytes())
    outputs = []
    for source in (store, store, JsonlStore(copy)):
        buffer = io.BytesIO()
        write_json(replay(source), buffer)
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1] == outputs[2]
