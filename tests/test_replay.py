"""Replay: the rule of DESIGN.md, as-of, known-at and determinism."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log.errors import InputError
from events_log.events import Correction, Retraction
from events_log.jsonl import JsonlStore
from timeline import output, scratch
from timeline.output import render_table, replay_document, write_json
from timeline.replay import replay

from .conftest import StepClock
from .helpers import days, descriptions_of, log_of, obs
from .reference import checking, disjoint, replay_reference, replayed, total
from .strategies import START, described, interval_figures, interval_logs, small_logs

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
    assert replay(store, known_at=before).log.entries == 3  # two descriptions, then the observation


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


# -- figures are intervals: the cases of issue 10 -----------------------------------


def described_log(tmp_path, *batches):
    """A log that describes coastal-2025, SOHR and SNHR before its observations name them."""
    return log_of(tmp_path, described(), *batches)


def flags_of(series):
    return [(f.date.day, f.kind, f.detail) for f in series.flags]


def test_sohr_8_march_532_fits_4_plus_at_least_162(tmp_path):
    """4, then at least 162 more: at least 166, and 532 is that: no mismatch (nor 745 after 532)."""
    store = described_log(tmp_path, [obs("d6", 6, 4), obs("seventh", 8, 162, "increment", high=None),
                                     obs("midday", 8, 532), obs("evening", 8, 745)])  # fmt: skip
    [series] = replay(store).series
    assert series.flags == ()
    assert days(series)[-1] == (8, 745, 745, "reported", ("evening",))


def test_sohr_11_march_at_least_1323_is_not_1225(tmp_path):
    """745 + 303 + at least 143 + 132 is at least 1,323; 1,225 does not meet it: mismatch, worded as published."""
    store = described_log(tmp_path, [obs("evening", 8, 745), obs("d9", 9, 303, "increment"),
                                     obs("d10", 10, 143, "increment", high=None), obs("d11", 11, 132, "increment"),
                                     obs("total", 11, 1225)])  # fmt: skip
    [series] = replay(store).series
    assert days(series)[2] == (10, 1191, None, "derived", ("evening", "d9", "d10"))
    assert flags_of(series) == [(11, "mismatch", "total reports 1,225, but evening plus the increments since "
                                                 "(745 + 303 + at least 143 + 132) make at least 1,323")]  # fmt: skip


def test_a_range_that_narrows_is_not_revised_down(tmp_path):
    """100-200, then 120-150: the second lies inside the first, which proves no revision."""
    store = described_log(tmp_path, [obs("a", 8, 100, high=200), obs("b", 9, 120, high=150)])
    [series] = replay(store).series
    assert series.flags == ()
    assert series.latest.low == 120 and series.latest.high == 150


def test_at_most_300_after_at_least_10_proves_nothing_and_keeps_its_words(tmp_path):
    """"at least 10" then "at most 300" is not revised_down, and the day reads "at most 300", never "0-300"."""
    store = described_log(tmp_path, [obs("a", 8, 10, high=None), obs("b", 9, 0, high=300, qualifier="at_most")])
    result = replay(store)
    [series] = result.series
    assert series.flags == ()
    assert (series.latest.low, series.latest.high) == (0, 300)
    table = render_table(result)
    assert "at most 300" in table and "0-300" not in table


def test_at_most_below_at_least_is_revised_down_in_the_publishers_words(tmp_path):
    """"at most 5" after "at least 10" lies wholly below it: flagged, each figure with its own qualifier."""
    store = described_log(tmp_path, [obs("a", 8, 10, high=None), obs("b", 9, 0, high=5, qualifier="at_most")])
    [series] = replay(store).series
    assert flags_of(series) == [(9, "revised_down", "b reports at most 5, wholly below at least 10 the day before")]


def test_two_cumulatives_on_one_day_100_then_50_are_flagged(tmp_path):
    """By log position 100 then 50 on one day: the day says 50, flagged against the earlier 100."""
    store = described_log(tmp_path, [obs("a", 8, 100), obs("b", 8, 50)])
    [series] = replay(store).series
    assert days(series) == [(8, 50, 50, "reported", ("b",))]
    assert flags_of(series) == [(8, "revised_down", "b reports 50, wholly below 100 reported earlier the same day by a")]  # noqa: E501


def test_increments_before_any_cumulative_are_a_floor(tmp_path):
    """SOHR's Latakia counts before its first total: "at least 220" everywhere, and 683 next is no jump."""
    store = described_log(tmp_path, [obs("l9", 9, 194, "increment", location="Latakia"),
                                     obs("l10", 10, 26, "increment", location="Latakia"),
                                     obs("l12", 12, 683, location="Latakia")])  # fmt: skip
    result = replay(store, as_of=dt.date(2025, 3, 11))
    [series] = result.series
    assert days(series) == [(9, 194, None, "derived", ("l9",)), (10, 220, None, "derived", ("l9", "l10")),
                            (11, 220, None, "carried", ("l9", "l10"))]  # fmt: skip
    assert "2025-03-10  at least 220  derived" in render_table(result)
    assert replay_document(result)["series"][0]["latest"]["high"] is None
    [later] = replay(store).series
    assert later.flags == () and later.latest.low == 683


def test_a_floor_below_a_later_total_is_revised_down(tmp_path):
    """Increments of at least 220 in all, then a total of 100: wholly below the floor, so flagged."""
    store = described_log(tmp_path, [obs("l9", 9, 194, "increment"), obs("l10", 10, 26, "increment"),
                                     obs("total", 11, 100)])  # fmt: skip
    [series] = replay(store).series
    assert flags_of(series) == [(11, "revised_down", "total reports 100, wholly below at least 220 the day before")]


def test_a_cumulative_0_on_the_first_day_starts_from_nothing(tmp_path):
    """With a cumulative 0 first, the increments after it make a figure with a high, not a floor."""
    store = described_log(tmp_path, [obs("zero", 8, 0), obs("i9", 9, 20, "increment"), obs("i10", 10, 5, "increment")])
    [series] = replay(store).series
    assert days(series) == [(8, 0, 0, "reported", ("zero",)), (9, 20, 20, "derived", ("zero", "i9")),
                            (10, 25, 25, "derived", ("zero", "i9", "i10"))]  # fmt: skip


def test_about_1700_after_1600_and_50_is_not_flagged(tmp_path):
    """1,600 + 50 = 1,650 lies within about 1,700's tolerance (1,530-1,870): nothing to flag."""
    store = described_log(tmp_path, [obs("a", 8, 1600), obs("i", 9, 50, "increment"),
                                     obs("b", 10, 1700, qualifier="about")])  # fmt: skip
    result = replay(store)
    [series] = result.series
    assert series.flags == ()
    assert "2025-03-10  about 1,700  reported" in render_table(result)


def test_about_1700_after_1400_and_50_is_a_mismatch(tmp_path):
    """1,400 + 50 = 1,450 is below about 1,700 even with its tolerance: mismatch, "about" kept."""
    store = described_log(tmp_path, [obs("a", 8, 1400), obs("i", 9, 50, "increment"),
                                     obs("b", 10, 1700, qualifier="about")])  # fmt: skip
    [series] = replay(store).series
    assert flags_of(series) == [(10, "mismatch", "b reports about 1,700, but a plus the increments since "
                                                 "(1,400 + 50) make 1,450")]  # fmt: skip


def test_about_is_checked_with_its_tolerance_on_either_side(tmp_path):
    """"about N" counts as 0.9 N to 1.1 N in a check, whether it is the new figure or the one before."""
    store = described_log(tmp_path, [obs("a", 8, 1080), obs("b", 9, 1000, qualifier="about"),
                                     obs("c", 10, 1120, qualifier="about"), obs("d", 11, 1010),
                                     obs("e", 12, 900)])  # fmt: skip
    [series] = replay(store).series
    # 900-1,100 meets 1,080; 1,008-1,232 meets 900-1,100; 1,010 meets 1,008-1,232; 900 is below 1,010.
    assert flags_of(series) == [(12, "revised_down", "e reports 900, wholly below 1,010 the day before")]


def test_about_tolerance_is_rounded_outwards(tmp_path):
    """About 15 reaches up to 17 (16.5 rounded up): below 18 it is flagged, below 17 it is not."""
    store = described_log(tmp_path, [obs("x8", 8, 17, location="X"), obs("x9", 9, 15, qualifier="about", location="X"),
                                     obs("y8", 8, 18, location="Y"), obs("y9", 9, 15, qualifier="about", location="Y")])
    x, y = replay(store).series
    assert x.flags == ()
    assert flags_of(y) == [(9, "revised_down", "y9 reports about 15, wholly below 18 the day before")]


# -- properties against the plain reference fold (tests/reference.py) ------------------


@contextlib.contextmanager
def folders(two: bool) -> Iterator[None]:
    """Series folded by this process alone, or shared with a fork (``parallel.in_two``) however few rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scratch, "IN_TWO_ROWS", 0 if two else 1 << 62)
        yield


@given(interval_logs(), st.none() | st.integers(0, 6).map(lambda d: START + dt.timedelta(days=d)), st.booleans())
def test_replay_equals_the_reference_fold(tmp_path_factory, batches, as_of, two):
    """On random logs (every wording, same-day totals, floors, fixes of our records), replay equals the reference,
    whether its series are folded by one process or two."""
    store = log_of(tmp_path_factory.mktemp("log"), *batches)
    with folders(two):
        assert replayed(replay(store, as_of=as_of)) == replay_reference(batches, as_of)


@pytest.mark.parametrize(
    "failure", [None, "raises", "exits", "killed", "no fork", "SIGCHLD ignored", "no temporary file", "disk full"]
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=interval_logs())
def test_series_folded_by_two_processes_are_those_one_folds(tmp_path_factory, failure, batches):
    """A fork folds the later series and sends them back; if it dies (an error, an exit, a kill), this process
    folds them itself, as it does on a system without ``fork``, or where no temporary file for the fork's
    series can be made, or written to (``/dev/full``). A process ignoring SIGCHLD (its forks are reaped for it)
    still replays. Either way the replay, and a replay after an append on top of it, are one process's."""
    one = log_of(tmp_path_factory.mktemp("one"), *batches)
    two = JsonlStore(tmp_path_factory.mktemp("two") / "log.jsonl", clock=StepClock())
    shutil.copy(one.path, two.path)
    parent, fold = os.getpid(), scratch.fold

    def failing(*args, **kwargs):
        if os.getpid() != parent:
            if failure == "raises":
                raise MemoryError
            if failure == "exits":
                os._exit(0)
            if failure == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
        return fold(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scratch, "fold", failing)
        if failure == "no fork":
            patch.delattr(os, "fork")
        if failure == "no temporary file":
            patch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("gone") / "missing"))
        if failure == "disk full":
            patch.setattr(tempfile, "TemporaryFile", lambda **_: open("/dev/full", "r+b"))  # noqa: SIM115
        handler = signal.signal(signal.SIGCHLD, signal.SIG_IGN if failure == "SIGCHLD ignored" else signal.SIG_DFL)
        try:
            with folders(True):
                shared = replay(two)
        finally:
            signal.signal(signal.SIGCHLD, handler)
    alone = replay(one)
    assert shared.series == alone.series
    assert replay_document(shared) == replay_document(alone)
    more = [obs("appended-after-the-fork", 6, 1, "increment")]
    for store in (one, two):
        store.append(descriptions_of(more) + more, allow_duplicate=True)
    assert replay(two).series == replay(one).series


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=interval_logs(), reports_only=st.booleans(), share=st.sampled_from([0.0, 0.45, 1.0]),
       killed=st.booleans())  # fmt: skip
def test_a_csv_made_by_two_processes_is_the_csv_one_makes(tmp_path_factory, batches, reports_only, share, killed):
    """A fork makes the text of the later series (of a replay's CSV however short, cut anywhere); if it is
    killed, this process makes what it did not send."""
    result = replay(log_of(tmp_path_factory.mktemp("log"), *batches))
    alone = "".join(output.csv_chunks(result.series, reports_only))
    parent, rows = os.getpid(), output._csv_rows

    def dying(series_list, reports_only):
        for n, text in enumerate(rows(series_list, reports_only)):
            if killed and os.getpid() != parent and n == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            yield text

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output, "IN_TWO_CSV_ROWS", 0)
        patch.setattr(output, "_FIRST_SHARE", share)
        patch.setattr(output, "_csv_rows", dying)
        shared = "".join(output.csv_chunks(result.series, reports_only, in_two_processes=True))
    assert shared == alone


@given(interval_logs(), st.integers(0, 6).map(lambda d: START + dt.timedelta(days=d)))
def test_warm_replay_after_each_append_equals_the_reference_fold(tmp_path_factory, batches, as_of):
    """Replayed after each append (the fold carried on, or redone where fixes touch it), replay equals the reference."""
    store = log_of(tmp_path_factory.mktemp("log"))
    for n, batch in enumerate(batches, start=1):
        store.append(batch, allow_duplicate=True)
        assert replayed(replay(store)) == replay_reference(batches[:n])
        assert replayed(replay(store, as_of=as_of)) == replay_reference(batches[:n], as_of)


def _one_series(tmp_path_factory, observations):
    store = log_of(tmp_path_factory.mktemp("log"), described(), observations)
    [series] = replay(store).series
    return series


@given(interval_figures(), st.lists(interval_figures(), min_size=1, max_size=4), interval_figures(), st.data())
def test_mismatch_if_and_only_if_the_intervals_are_disjoint(tmp_path_factory, previous, increments, new, data):
    """A new total is a mismatch exactly when it misses the previous total plus the increments since."""
    days_of = [data.draw(st.integers(9, 11)) for _ in increments]
    observations = [obs("previous", 8, previous.low, high=previous.high, qualifier=previous.qualifier)]
    observations += [obs(f"i{n}", day, f.low, "increment", high=f.high, qualifier=f.qualifier)
                     for n, (f, day) in enumerate(zip(increments, days_of, strict=True))]  # fmt: skip
    observations.append(obs("new", 11, new.low, high=new.high, qualifier=new.qualifier))
    series = _one_series(tmp_path_factory, observations)
    expected = total([checking(observations[0]), *(checking(o) for o in observations[1:-1])])
    mismatched = any(f.kind == "mismatch" for f in series.flags)
    assert mismatched == disjoint(checking(observations[-1]), expected)


@given(st.lists(interval_figures(), max_size=3), st.booleans(), interval_figures(), interval_figures(), st.booleans())
def test_revised_down_if_and_only_if_the_new_high_is_below_the_previous_low(
    tmp_path_factory, increments, floor, previous, new, same_day
):
    """A total is revised_down exactly when its high is below the low of the figure just before it."""
    if floor:  # increments alone, a floor, just before the new total
        observations = [obs(f"i{n}", 8, f.low, "increment", high=f.high, qualifier=f.qualifier)
                        for n, f in enumerate(increments)]  # fmt: skip
        before = (sum(checking(o)[0] for o in observations), None)
    else:
        observations = [obs("previous", 8, previous.low, high=previous.high, qualifier=previous.qualifier)]
        before = checking(observations[0])
    if not observations:
        return
    new_day = 8 if same_day and not floor else 9
    observations.append(obs("new", new_day, new.low, high=new.high, qualifier=new.qualifier))
    if not floor and same_day and previous == new:
        return  # the same figure twice on one day is refused as a duplicate
    series = _one_series(tmp_path_factory, observations)
    high = checking(observations[-1])[1]
    revised = any(f.kind == "revised_down" for f in series.flags)
    assert revised == (high is not None and high < before[0])


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
        assert full.until(day) == series  # the series cut from the full replay
    for key, full in everything.items():
        if key not in as_of:  # it begins after the day
            with pytest.raises(ValueError, match="begins on"):
                full.until(day)


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


def test_an_unknown_observation_id_is_bad_input(tmp_path):
    """Asking a replay for an id it does not hold is an InputError naming the id, never a KeyError."""
    result = replay(log_of(tmp_path, [obs("a", 8, 5)]))
    for ask in (result.observation, result.observation_data, result.corrected, result.corrections, result.qualifier):
        with pytest.raises(InputError, match="'nope'"):
            ask("nope")
    assert result.observation("a").figure.low == 5


@given(interval_logs(), st.none() | st.integers(0, 6).map(lambda d: START + dt.timedelta(days=d)))
def test_segments_tile_the_days(tmp_path_factory, batches, as_of):
    """Series.segments() are the days run by run: contiguous, each a report day then days carried to its end."""
    store = log_of(tmp_path_factory.mktemp("log"), *batches)
    for series in replay(store, as_of=as_of).series:
        segments = list(series.segments())
        assert segments[0].start == series.first and segments[-1].end == series.last
        expanded = []
        for segment, after in zip(segments, [*segments[1:], None], strict=True):
            assert segment.start <= segment.end and segment.basis != "carried"
            if after is not None:
                assert after.start == segment.end + dt.timedelta(days=1)
            for day in range((segment.end - segment.start).days + 1):
                basis = segment.basis if day == 0 else "carried"
                date = segment.start + dt.timedelta(days=day)
                expanded.append((date, segment.low, segment.high, basis, segment.observations))
        assert expanded == [(p.date, p.low, p.high, p.basis, p.observations) for p in series.days]
        assert [series.on(p.date) for p in series.days] == list(series.days)  # a day looked up alone
        assert series.last_report == series.on(segments[-1].start)
