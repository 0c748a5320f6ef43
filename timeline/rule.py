"""The replay rule for one series, exactly as DESIGN.md states it.

This module is the only place that decides what a series says on a day.
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

A series changes only on days with reports, so the result is kept as
segments: one per report day, each carried unchanged until the next. The
fold runs once per observation of every series, on plain lists rather than
event objects, because at millions of observations object creation would
be most of the cost.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

from events_log.events import describe_figure
from events_log.index import OPEN  # an open-ended high, in ``Folded.highs`` as in the index

REPORTED = "reported"
DERIVED = "derived"
CARRIED = "carried"
REVISED_DOWN = "revised_down"
MISMATCH = "mismatch"


class Reports(NamedTuple):
    """One series' effective observations, sorted by (day, log position), as parallel lists.

    ``day`` is a date ordinal; ``high`` is None for an open-ended figure.
    """

    days: list[int]
    ids: list[str]
    cumulative: list[bool]
    lows: list[int]
    highs: list[int | None]


class RawFlag(NamedTuple):
    """A flag as the fold finds it: the numbers behind it, worded only when read.

    Wording every flag up front would cost more than the fold itself on
    logs with many of them; most replays (CSV) never show them.
    """

    day: int
    kind: str
    facts: tuple

    @property
    def detail(self) -> str:
        if self.kind == REVISED_DOWN:
            id_, low, high, before_low, before_high = self.facts
            return (
                f"{id_} reports {describe_figure(low, high)}, below {describe_figure(before_low, before_high)} "
                "the day before"
            )
        id_, low, high, base_id, terms, expected_low, expected_high = self.facts
        words = " + ".join(describe_figure(term_low, term_high) for term_low, term_high in terms)
        return (
            f"{id_} reports {describe_figure(low, high)}, but {base_id} plus the increments since ({words}) "
            f"make {describe_figure(expected_low, expected_high)}"
        )


class Base(NamedTuple):
    """The latest cumulative of a series: the figure the next days build on."""

    id: str
    day: int
    low: int
    high: int | None


class Pending(NamedTuple):
    """Increments reported after the base's day, with their sums (high None once one is open)."""

    ids: tuple[str, ...] = ()
    terms: tuple[tuple[int, int | None], ...] = ()
    low: int = 0
    high: int | None = 0


_CODES = {"r": REPORTED, "d": DERIVED}


class Folded(NamedTuple):
    """One series as segments: segment i starts on ``starts[i]`` and holds until the next one.

    The first day of a segment is ``reported`` or ``derived`` (``basis_of``);
    the days after it, up to the next segment or ``last``, are ``carried``.
    ``base`` and ``pending`` are where the fold stood after the last report,
    so that reports of later days can be folded on without starting over.

    Numbers are kept in C arrays and the bases in a string: a process holding
    millions of replayed days then gives Python's cycle collector almost
    nothing to walk through.
    """

    last: int
    starts: array
    lows: array
    highs: array  # OPEN where open-ended
    basis_codes: str  # "r" reported or "d" derived, one per segment
    observations: tuple[tuple[str, ...], ...]
    flags: tuple[RawFlag, ...]
    base: Base | None = None
    pending: Pending = Pending()

    @property
    def first(self) -> int:
        return self.starts[0]

    def high(self, i: int) -> int | None:
        high = self.highs[i]
        return None if high == OPEN else high

    def basis_of(self, i: int) -> str:
        return _CODES[self.basis_codes[i]]


def fold(reports: Reports, last_day: int | None = None, after: Folded | None = None) -> Folded:
    """Apply the rule to one series; ``last_day`` is the as-of date, else its last report.

    With ``after``, the series continues a fold that ended before the first
    of these reports' days (``resumable`` says whether it may). The state
    lives in local variables: this loop runs once per observation.
    """
    days, ids, cumulative, lows_in, highs_in = reports
    if after is None:
        starts, lows, highs = array("q"), array("q"), array("q")
        codes: list[str] = []
        rests_on, flags = [], []
        base, pending, last_high = None, Pending(), None
    else:
        # Copies (memory copies for the arrays): the folded series may still be in use.
        starts, lows, highs = array("q", after.starts), array("q", after.lows), array("q", after.highs)
        codes, rests_on, flags = list(after.basis_codes), list(after.observations), list(after.flags)
        base, pending, last_high = after.base, after.pending, after.high(len(highs) - 1)
    base_id, base_day, base_low, base_high = base if base is not None else (None, -1, 0, 0)
    pending_ids, pending_terms = list(pending.ids), list(pending.terms)
    pending_low, pending_high = pending.low, pending.high
    n = len(days)
    i = 0
    while i < n:
        day = days[i]
        end = i + 1
        while end < n and days[end] == day:
            end += 1
        several = end > i + 1
        if not several and cumulative[i] and not pending_terms:
            # The common day: one running total, nothing pending to check it against. It is
            # the general case below written out without its lists, as most days take it.
            low, high = lows_in[i], highs_in[i]
            if lows and (low < lows[-1] or (high is not None and last_high is not None and high < last_high)):
                flags.append(RawFlag(day, REVISED_DOWN, (ids[i], low, high, lows[-1], last_high)))
            base_id, base_day, base_low, base_high = ids[i], day, low, high
            starts.append(day)
            lows.append(low)
            highs.append(OPEN if high is None else high)
            last_high = high
            codes.append("r")
            rests_on.append((base_id,))
            i = end
            continue
        reported = [j for j in range(i, end) if cumulative[j]] if several else ([i] if cumulative[i] else [])
        today = [j for j in range(i, end) if not cumulative[j]] if several or not reported else []
        if not reported:
            for k in today:
                pending_ids.append(ids[k])
                pending_terms.append((lows_in[k], highs_in[k]))
                pending_low += lows_in[k]
                pending_high = None if pending_high is None or highs_in[k] is None else pending_high + highs_in[k]
            starts.append(day)
            lows.append(base_low + pending_low)
            last_high = None if base_high is None or pending_high is None else base_high + pending_high
            highs.append(OPEN if last_high is None else last_high)
            codes.append("d")
            rests_on.append(((base_id,) if base_id is not None else ()) + tuple(pending_ids))
            i = end
            continue
        mismatch = None
        if base_id is not None and base_day < day and (pending_terms or today):
            base = Base(base_id, base_day, base_low, base_high)
            between = [*pending_terms, *((lows_in[k], highs_in[k]) for k in today)]
            mismatch = _mismatch(base, between, reports, reported[0], day)
        for j in reported:
            low, high = lows_in[j], highs_in[j]
            if lows and (low < lows[-1] or (high is not None and last_high is not None and high < last_high)):
                flags.append(RawFlag(day, REVISED_DOWN, (ids[j], low, high, lows[-1], last_high)))
            if mismatch is not None:
                flags.append(mismatch)
                mismatch = None
            base_id, base_day, base_low, base_high = ids[j], day, low, high
        if pending_terms:
            pending_ids, pending_terms, pending_low, pending_high = [], [], 0, 0
        starts.append(day)
        lows.append(base_low)
        highs.append(OPEN if base_high is None else base_high)
        last_high = base_high
        codes.append("r")
        rests_on.append((base_id,))
        i = end
    last = max(days[-1] if days else starts[-1], last_day or 0, after.last if after else 0)
    return Folded(
        last,
        starts,
        lows,
        highs,
        "".join(codes),
        tuple(rests_on),
        tuple(flags),
        Base(base_id, base_day, base_low, base_high) if base_id is not None else None,
        Pending(tuple(pending_ids), tuple(pending_terms), pending_low, pending_high),
    )


def resumable(folded: Folded, first_new_day: int) -> bool:
    """Whether reports starting on ``first_new_day`` can be folded on after ``folded``."""
    return first_new_day > folded.starts[-1]


def _mismatch(base: Base, between: list[tuple[int, int | None]], reports: Reports, j: int, day: int) -> RawFlag | None:
    """The flag for a cumulative that differs from the previous one plus the increments since."""
    expected_low = base.low + sum(term[0] for term in between)
    open_ended = base.high is None or any(term[1] is None for term in between)
    expected_high = None if open_ended else base.high + sum(term[1] for term in between)
    low, high = reports.lows[j], reports.highs[j]
    if low == expected_low and (high is None or expected_high is None or high == expected_high):
        return None
    terms = ((base.low, base.high), *between)
    return RawFlag(day, MISMATCH, (reports.ids[j], low, high, base.id, terms, expected_low, expected_high))
