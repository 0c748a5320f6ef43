"""The replay rule for one series, exactly as DESIGN.md states it.

This module is the only place that decides what a series says on a day.
It works on plain tuples rather than event objects because it runs once
per observation and once per day of every series: at millions of
observations, object creation would be most of the cost.

For each day from the first report to the end:

1. the base is the latest cumulative reported on or before that day (zero
   before the first cumulative);
2. every increment reported after the base's day and on or before this day
   is added (an increment of the base's own day is already inside it);
3. low adds to low and high to high; an open-ended high stays open;
4. the day is ``reported`` (a cumulative of that day), ``derived`` (base
   plus increments, something reported that day) or ``carried`` (nothing
   new), and names the observations it rests on;
5. ``revised_down`` and ``mismatch`` are flagged, never fixed.
"""

from __future__ import annotations

from typing import NamedTuple

from events_log.events import describe_figure

REPORTED = "reported"
DERIVED = "derived"
CARRIED = "carried"
REVISED_DOWN = "revised_down"
MISMATCH = "mismatch"


class Obs(NamedTuple):
    """What the rule needs of one effective observation. ``day`` is a date ordinal."""

    day: int
    position: int
    id: str
    cumulative: bool
    low: int
    high: int | None


class RawFlag(NamedTuple):
    day: int
    kind: str
    detail: str


class Folded(NamedTuple):
    """One series, day by day from ``first``: parallel columns, one item a day."""

    first: int
    lows: list[int]
    highs: list[int | None]
    basis: list[str]
    observations: list[tuple[str, ...]]
    flags: list[RawFlag]


def fold(observations: list[Obs], last_day: int | None = None) -> Folded:
    """Apply the rule to one series' observations, sorted by (day, position).

    ``last_day`` is the as-of date; without it the series ends on its last report.
    """
    first = observations[0].day
    end = observations[-1].day if last_day is None else last_day
    lows: list[int] = []
    highs: list[int | None] = []
    basis: list[str] = []
    rests_on: list[tuple[str, ...]] = []
    flags: list[RawFlag] = []

    base: Obs | None = None
    pending: list[Obs] = []  # increments after the base's day
    pending_low, pending_high = 0, 0  # their sums; pending_high None once one is open-ended
    i, n = 0, len(observations)
    for day in range(first, end + 1):
        if i >= n or observations[i].day != day:
            if lows:
                lows.append(lows[-1])
                highs.append(highs[-1])
                basis.append(CARRIED)
                rests_on.append(rests_on[-1])
            continue
        start = i
        while i < n and observations[i].day == day:
            i += 1
        today = observations[start:i]
        cumulatives = [o for o in today if o.cumulative]
        increments = [o for o in today if not o.cumulative]
        if cumulatives:
            between = pending + increments
            for reported in cumulatives:
                if lows:
                    _check_revised_down(reported, lows[-1], highs[-1], day, flags)
                if base is not None and base.day < day and between:
                    _check_mismatch(reported, base, between, day, flags)
                base = reported
            pending, pending_low, pending_high = [], 0, 0
            lows.append(base.low)
            highs.append(base.high)
            basis.append(REPORTED)
            rests_on.append((base.id,))
            continue
        for inc in increments:
            pending.append(inc)
            pending_low += inc.low
            pending_high = None if pending_high is None or inc.high is None else pending_high + inc.high
        base_low, base_high = (0, 0) if base is None else (base.low, base.high)
        lows.append(base_low + pending_low)
        highs.append(None if base_high is None or pending_high is None else base_high + pending_high)
        basis.append(DERIVED)
        rests_on.append(((base.id,) if base else ()) + tuple(o.id for o in pending))
    return Folded(first, lows, highs, basis, rests_on, flags)


def _check_revised_down(reported: Obs, low: int, high: int | None, day: int, flags: list[RawFlag]) -> None:
    below = reported.low < low or (reported.high is not None and high is not None and reported.high < high)
    if below:
        flags.append(
            RawFlag(
                day,
                REVISED_DOWN,
                f"{reported.id} reports {describe_figure(reported.low, reported.high)}, "
                f"below {describe_figure(low, high)} the day before",
            )
        )


def _check_mismatch(reported: Obs, base: Obs, between: list[Obs], day: int, flags: list[RawFlag]) -> None:
    expected_low = base.low + sum(o.low for o in between)
    open_ended = base.high is None or any(o.high is None for o in between)
    expected_high = None if open_ended else base.high + sum(o.high for o in between)
    low_differs = reported.low != expected_low
    high_differs = reported.high is not None and expected_high is not None and reported.high != expected_high
    if low_differs or high_differs:
        terms = " + ".join(describe_figure(o.low, o.high) for o in [base, *between])
        flags.append(
            RawFlag(
                day,
                MISMATCH,
                f"{reported.id} reports {describe_figure(reported.low, reported.high)}, but {base.id} "
                f"plus the increments since ({terms}) make {describe_figure(expected_low, expected_high)}",
            )
        )
