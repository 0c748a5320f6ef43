"""The replay rule of DESIGN.md, written as plainly as possible, to hold replay against.

Straight from "Figures are intervals" and "Replay rule for one series": it
reads the events themselves, works in Python ints and tuples, and looks at
every observation again for every day. No fast path, and nothing taken from
``timeline.rule``, so that a mistake there can not hide in both.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction

from events_log.events import Correction, Kind, Observation, Retraction

Interval = tuple[int, int | None]  # (low, high); high None is open


def adding(o: Observation) -> Interval:
    """The figure's interval when adding."""
    f = o.figure
    if f.qualifier in ("exact", "about"):
        return (f.low, f.low)
    if f.qualifier == "at_least":
        return (f.low, None)
    if f.qualifier == "at_most":
        return (0, f.high)
    return (f.low, f.high)


def checking(o: Observation) -> Interval:
    """The figure's interval when checking: "about N" is [0.9 N, 1.1 N], rounded outwards."""
    if o.figure.qualifier == "about":
        n = o.figure.low
        return (math.floor(Fraction(9, 10) * n), math.ceil(Fraction(11, 10) * n))
    return adding(o)


def total(intervals: list[Interval]) -> Interval:
    """Lows add to lows, highs to highs; an open high stays open."""
    low = sum(i[0] for i in intervals)
    high = None if any(i[1] is None for i in intervals) else sum(i[1] for i in intervals)
    return (low, high)


def disjoint(a: Interval, b: Interval) -> bool:
    return (a[1] is not None and a[1] < b[0]) or (b[1] is not None and b[1] < a[0])


def effective(batches: list[list]) -> list[tuple[int, Observation]]:
    """The observations the whole log leaves standing, with the log position of each."""
    standing: dict[str, tuple[int, Observation]] = {}
    position = 0
    for batch in batches:
        for event in batch:
            if isinstance(event, Observation):
                standing[event.id] = (position, event)
            elif isinstance(event, Correction):
                standing[event.observation_id] = (standing[event.observation_id][0], event.replacement)
            elif isinstance(event, Retraction):
                del standing[event.observation_id]
            position += 1
    return list(standing.values())


def _parts(ordered: list[Observation], day: dt.date) -> tuple[Observation | None, list[Observation]]:
    """Rules 1 and 2: the base of ``day`` and the increments added to it."""
    upto = [o for o in ordered if o.reported_on <= day]
    cumulatives = [o for o in upto if o.kind is Kind.CUMULATIVE]
    base = cumulatives[-1] if cumulatives else None
    increments = [o for o in upto if o.kind is Kind.INCREMENT and (base is None or o.reported_on > base.reported_on)]
    return base, increments


def _figure(base: Observation | None, increments: list[Observation], interval) -> Interval:
    """Rule 3: with no base, the increments are a floor (high open)."""
    summed = total([interval(o) for o in increments] + ([interval(base)] if base is not None else []))
    return summed if base is not None else (summed[0], None)


def replay_reference(batches: list[list], as_of: dt.date | None = None) -> dict[tuple, tuple[list, list]]:
    """Series key -> (every day as (date, low, high, basis, ids), every flag as (date, kind, flagged id))."""
    groups: dict[tuple, list[tuple[dt.date, int, Observation]]] = {}
    for position, o in effective(batches):
        if as_of is None or o.reported_on <= as_of:
            groups.setdefault(o.series_key, []).append((o.reported_on, position, o))
    result = {}
    for key, items in groups.items():
        ordered = [o for _, _, o in sorted(items, key=lambda item: item[:2])]
        first, last = ordered[0].reported_on, as_of or ordered[-1].reported_on
        days = []
        day = first
        while day <= last:
            base, increments = _parts(ordered, day)
            low, high = _figure(base, increments, adding)
            todays = [o for o in ordered if o.reported_on == day]
            if not todays:
                basis = "carried"
            elif any(o.kind is Kind.CUMULATIVE for o in todays):
                basis = "reported"
            else:
                basis = "derived"
            ids = ((base.id,) if base is not None else ()) + tuple(o.id for o in increments)
            days.append((day, low, high, basis, ids))
            day += dt.timedelta(days=1)
        result[key] = (days, _flags(ordered, first))
    return result


def _flags(ordered: list[Observation], first: dt.date) -> list[tuple[dt.date, str, str]]:
    """Rule 5, for each cumulative in order: revised_down, then mismatch."""
    flags = []
    cumulatives = [o for o in ordered if o.kind is Kind.CUMULATIVE]
    for n, c in enumerate(cumulatives):
        previous = cumulatives[n - 1] if n else None
        if previous is not None and previous.reported_on == c.reported_on:
            before = checking(previous)
        elif c.reported_on > first:
            before = _figure(*_parts(ordered, c.reported_on - dt.timedelta(days=1)), checking)
        else:
            before = None
        new = checking(c)
        if before is not None and new[1] is not None and new[1] < before[0]:
            flags.append((c.reported_on, "revised_down", c.id))
        if previous is not None:
            between = [
                o for o in ordered
                if o.kind is Kind.INCREMENT and previous.reported_on < o.reported_on <= c.reported_on
            ]  # fmt: skip
            if between and disjoint(new, total([checking(previous)] + [checking(o) for o in between])):
                flags.append((c.reported_on, "mismatch", c.id))
    return flags


def replayed(result) -> dict[tuple, tuple[list, list]]:
    """A replay in the reference's terms: the flagged observation is the first word of a flag's detail."""
    return {
        s.key: (
            [(p.date, p.low, p.high, p.basis, p.observations) for p in s.days],
            [(f.date, f.kind, f.detail.split(" ", 1)[0]) for f in s.flags],
        )
        for s in result.series
    }
