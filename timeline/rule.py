"""The replay rule for one series, exactly as DESIGN.md states it.

This module is the only place that decides what a series says on a day.

Every figure is an interval, and replay and every check work on it:

- exact ``N`` is ``[N, N]``;
- ``about N`` is ``[N, N]`` when adding and ``[0.9 N, 1.1 N]`` (rounded
  outwards) when checking;
- ``at least N`` is ``[N, open)``;
- ``at most N`` is ``[0, N]`` (the floor is unknown);
- a range ``L-H`` is ``[L, H]``.

Sums add lows to lows and highs to highs; an open high stays open. Words
shown to people keep the publisher's wording: "at most 300", never "0-300".

A series' effective observations are ordered by (reported_on, log
position). For each day from the first report to the as-of date (without
one, to the series' last reported day):

1. the base is the latest cumulative reported on or before that day (same
   day: the later log position wins);
2. every increment reported after the base's day and on or before this day
   is added; an increment reported on the same day as a cumulative is taken
   to be already inside it;
3. before the first cumulative there is no base: the running figure is the
   sum of the increments so far, a floor of the toll (nobody said what came
   before), so its high is open. A series that really starts from nothing
   says so with a cumulative 0 on its first day;
4. the day is ``reported`` (an observation of that day, a cumulative among
   them), ``derived`` (base plus increments, or increments alone) or
   ``carried`` (nothing new; the last figure carried forward), and names
   the observations it rests on;
5. flags, never silent fixes, and only what the figures prove:

   - ``revised_down``: a cumulative whose interval lies wholly below the
     running figure just before it (its high is below that figure's low):
     the day before, or an earlier cumulative of the same day. A range that
     narrows, or "at most 300" after "at least 10", proves nothing;
   - ``mismatch``: there is a previous cumulative, increments were reported
     after its day up to and including the new cumulative's day, and the new
     cumulative's interval does not meet the interval of the previous one
     plus those increments. With no increments in between, or no previous
     cumulative, there is nothing to check: totals may simply grow.

   A check compares checking intervals: every figure in it, on either side,
   counts with the tolerance of its wording.

A series changes only on days with reports, so the result is kept as
segments: one per report day, each carried unchanged until the next. The
fold runs once per observation of every series, on plain lists rather than
event objects, because at millions of observations object creation would
be most of the cost. A checking interval only ever widens an adding one, so
the fold compares the adding intervals it keeps anyway, and works out the
checking ones only where those already fail to meet (a flag is rare).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from events_log.events import Qualifier, describe_figure

from .index import OPEN, QUALIFIER_CODE, QUALIFIERS  # OPEN: an open-ended high, as in the index

REPORTED = "reported"
DERIVED = "derived"
CARRIED = "carried"
REVISED_DOWN = "revised_down"
MISMATCH = "mismatch"

ABOUT = QUALIFIER_CODE[Qualifier.ABOUT]
AT_LEAST = QUALIFIER_CODE[Qualifier.AT_LEAST]
AT_MOST = QUALIFIER_CODE[Qualifier.AT_MOST]


class Reports(NamedTuple):
    """One series' effective observations, sorted by (day, log position), as parallel lists.

    ``day`` is a date ordinal; ``low``, ``high`` and ``qualifier`` are the
    figure as published (``high`` None when open-ended, ``qualifier`` the
    index's code), not yet read as an interval.
    """

    days: list[int]
    ids: list[str]
    cumulative: list[bool]
    lows: list[int]
    highs: list[int | None]
    qualifiers: list[int]


class Term(NamedTuple):
    """A figure as an interval for adding, with the qualifier it was published with (a code).

    The fold itself keeps plain (low, high, qualifier) tuples in this order;
    named ones are made only for the flags.
    """

    low: int
    high: int | None
    qualifier: int


def qualifier_of_sum(low: int, high: int | None, qualifiers: Iterable[str]) -> Qualifier:
    """How to word the interval ``[low, high]`` summed from figures worded with ``qualifiers``.

    One figure keeps its own qualifier. A sum is "at least" once open,
    "at most" while its floor is the unknown one of an "at most", "about"
    while it is one number with an "about" in it, and otherwise a number or
    a range.
    """
    if high is None:
        return Qualifier.AT_LEAST
    qualifiers = set(qualifiers)
    if low == 0 and Qualifier.AT_MOST in qualifiers:
        return Qualifier.AT_MOST
    if low == high:
        return Qualifier.ABOUT if Qualifier.ABOUT in qualifiers else Qualifier.EXACT
    return Qualifier.RANGE


def wording(low: int, high: int | None, qualifiers: Iterable[str]) -> str:
    """A figure, or a sum of figures, as people say it: "at most 300", "about 1,700", "at least 1,323"."""
    return describe_figure(low, high, qualifier_of_sum(low, high, qualifiers))


def _worded(term: Term) -> str:
    return describe_figure(term.low, term.high, QUALIFIERS[term.qualifier])


def _sum(terms: list[tuple]) -> Term:
    """The adding interval of a sum, with the qualifier it is worded with (a code).

    ``terms`` are ``Term``s or the fold's plain tuples in the same order: one
    pass each, as the fold flags one cumulative of many on some logs.
    """
    low, high, codes = 0, 0, set()
    for term_low, term_high, code in terms:
        low += term_low
        high = None if high is None or term_high is None else high + term_high
        codes.add(code)
    qualifier = qualifier_of_sum(low, high, (QUALIFIERS[code] for code in codes))
    return Term(low, high, QUALIFIER_CODE[qualifier])


def _checked(terms: list[tuple]) -> tuple[int, int | None]:
    """The checking interval of a sum (of ``Term``s or plain tuples): "about N" counts as [0.9 N, 1.1 N], floor and
    ceiling."""
    low, high = 0, 0
    for term_low, term_high, code in terms:
        if code == ABOUT:
            low += term_low * 9 // 10
            high = None if high is None else high - (-term_high * 11 // 10)
        else:
            low += term_low
            high = None if high is None or term_high is None else high + term_high
    return low, high


def _disjoint(a: tuple[int, int | None], b: tuple[int, int | None]) -> bool:
    return (a[1] is not None and a[1] < b[0]) or (b[1] is not None and b[1] < a[0])


class RawFlag(NamedTuple):
    """A flag as the fold finds it: the figures behind it, worded only when read.

    Wording every flag up front would cost more than the fold itself on
    logs with many of them; most replays (CSV) never show them. Each figure
    keeps its qualifier, so that the words are the publisher's.
    """

    day: int
    kind: str
    # One flat tuple of ids and figures (three values each: low, high, qualifier code), never a tuple
    # of tuples: a large replay holds hundreds of thousands, which the cycle collector would otherwise
    # walk every time it looks at the replay's objects (flat, they are untracked on its first look).
    facts: tuple

    @property
    def detail(self) -> str:
        if self.kind == REVISED_DOWN:
            id_, earlier_id, *numbers = self.facts
            figure, before = _terms(numbers)
            when = "the day before" if earlier_id is None else f"reported earlier the same day by {earlier_id}"
            return f"{id_} reports {_worded(figure)}, wholly below {_worded(before)} {when}"
        id_, base_id, *numbers = self.facts
        figure, expected, *terms = _terms(numbers)
        words = " + ".join(_worded(term) for term in terms)
        return (
            f"{id_} reports {_worded(figure)}, but {base_id} plus the increments since ({words}) "
            f"make {_worded(expected)}"
        )


def _terms(numbers: list) -> list[Term]:
    return [Term(*numbers[k : k + 3]) for k in range(0, len(numbers), 3)]


class Base(NamedTuple):
    """The latest cumulative of a series: the figure the next days build on."""

    id: str
    day: int
    low: int
    high: int | None
    qualifier: int


class Pending(NamedTuple):
    """Increments reported after the base's day, with their sums (high None once one is open)."""

    ids: tuple[str, ...] = ()
    terms: tuple[tuple[int, int | None, int], ...] = ()  # each increment as a plain Term
    low: int = 0
    high: int | None = 0


BASES = {"r": REPORTED, "d": DERIVED}  # the basis of a run's first day, by its code in ``basis_codes``


class Folded(NamedTuple):
    """One series as segments: segment i starts on ``starts[i]`` and holds until the next one.

    The first day of a segment is ``reported`` or ``derived`` (``basis_of``);
    the days after it, up to the next segment or ``last``, are ``carried``.
    ``base`` and ``pending`` are where the fold stood after the last report,
    so that reports of later days can be folded on without starting over.

    Numbers are kept in C arrays, the bases and the ids in strings: a
    process holding millions of replayed days then gives Python's cycle
    collector almost nothing to walk through, and a fork hands a series over
    as a few strings (``scratch``). A tuple of ids per segment was a
    container the collector walked, in every series an append extends.
    """

    last: int
    starts: array
    lows: array
    highs: array  # OPEN where open-ended
    basis_codes: str  # "r" reported or "d" derived, one per segment
    rests_on: str  # the ids each segment rests on, space-separated, a line per segment
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
        return BASES[self.basis_codes[i]]

    def observations(self, i: int) -> tuple[str, ...]:
        """The ids segment ``i`` rests on: its line of ``rests_on``, split from whichever end is nearer."""
        count = len(self.starts)
        if i < 0:
            i += count
        if i < count // 2:
            line = self.rests_on.split("\n", i + 1)[i]
        else:
            line = self.rests_on.rsplit("\n", count - i)[-(count - i)]
        return ids_of(line)

    def observations_by_segment(self) -> list[tuple[str, ...]]:
        return [ids_of(line) for line in self.rests_on.split("\n")]

    def runs(self) -> Iterator[tuple[int, int, int, int, str, str]]:
        """Each segment as (first day, last day, low, high, basis code, ids), days as ordinals, ids as kept
        (space-separated).

        ``Series.segments`` dresses these as dates and tuples; the CSV writer,
        which walks every segment of every series, takes them as they are.
        """
        ends = itertools.chain((start - 1 for start in itertools.islice(self.starts, 1, None)), (self.last,))
        lines = self.rests_on.split("\n")
        return zip(self.starts, ends, self.lows, self.highs, self.basis_codes, lines, strict=True)

    def first_segments(self, keep: int, last: int) -> Folded:
        """The first ``keep`` segments, the last carried to day ``last``; flags after it gone."""
        lines = self.rests_on.split("\n", keep)
        rests_on = self.rests_on[: len(self.rests_on) - len(lines[-1]) - 1] if len(lines) > keep else self.rests_on
        flags = tuple(flag for flag in self.flags if flag.day <= last)
        return Folded(last, self.starts[:keep], self.lows[:keep], self.highs[:keep], self.basis_codes[:keep],
                      rests_on, flags)  # fmt: skip


def ids_of(line: str) -> tuple[str, ...]:
    """A segment's ids from its line of ``Folded.rests_on`` (ids never hold a space: ``events``)."""
    return tuple(line.split(" ")) if line else ()


# Before the first cumulative nothing is known of what came before the increments: [0, open).
_NOTHING_KNOWN = (None, -1, 0, None, AT_LEAST)


def fold(reports: Reports, last_day: int | None = None, after: Folded | None = None) -> Folded:
    """Apply the rule to one series; ``last_day`` is the as-of date, else its last report.

    With ``after``, the series continues a fold that ended before the first
    of these reports' days (``resumable`` says whether it may). The state
    lives in local variables: this loop runs once per observation.
    """
    days, ids, cumulative, lows_in, highs_in, qualifiers = reports
    if AT_MOST in qualifiers:  # "at most N" is [0, N], whatever low was stored
        lows_in = [0 if q == AT_MOST else low for low, q in zip(lows_in, qualifiers, strict=True)]
    # The new segments only: with ``after``, they are put after its own at the end (which it keeps: it may
    # still be in use), and the loop sees the segment before them through ``last_low`` alone.
    starts, lows, highs = array("q"), array("q"), array("q")
    codes: list[str] = []
    rests_on, flags = [], []
    base, pending = (None, Pending()) if after is None else (after.base, after.pending)
    last_low = after.lows[-1] if after is not None else None  # the running figure's low on the last day folded
    base_id, base_day, base_low, base_high, base_q = base if base is not None else _NOTHING_KNOWN
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
            if last_low is not None and high is not None and high < last_low:
                # Nothing pending: the day before is the base alone.
                before = [(base_low, base_high, base_q)]
                flag = _revised_down(day, ids[i], (low, high, qualifiers[i]), before, None)
                if flag is not None:
                    flags.append(flag)
            base_id, base_day, base_low, base_high, base_q = ids[i], day, low, high, qualifiers[i]
            starts.append(day)
            lows.append(low)
            last_low = low
            highs.append(OPEN if high is None else high)
            codes.append("r")
            rests_on.append(base_id)
            i = end
            continue
        reported = [j for j in range(i, end) if cumulative[j]] if several else ([i] if cumulative[i] else [])
        today = [j for j in range(i, end) if not cumulative[j]] if several or not reported else []
        if not reported:
            for k in today:
                pending_ids.append(ids[k])
                pending_terms.append((lows_in[k], highs_in[k], qualifiers[k]))
                pending_low += lows_in[k]
                pending_high = None if pending_high is None or highs_in[k] is None else pending_high + highs_in[k]
            starts.append(day)
            last_low = base_low + pending_low
            lows.append(last_low)
            high = None if base_high is None or pending_high is None else base_high + pending_high
            highs.append(OPEN if high is None else high)
            codes.append("d")
            rests_on.append(" ".join(pending_ids) if base_id is None else " ".join([base_id, *pending_ids]))
            i = end
            continue
        # The running figure just before the first cumulative of the day is the day before's;
        # the expected one, base plus every increment since, is there to check it against.
        before_low = last_low
        check = base_id is not None and (pending_terms or today)
        if check:
            expected_low, expected_high = base_low + pending_low, None if base_high is None else pending_high
            for k in today:
                expected_low += lows_in[k]
                expected_high = None if expected_high is None or highs_in[k] is None else expected_high + highs_in[k]
            expected_high = None if expected_high is None else base_high + expected_high
        earlier = None  # the cumulative of this day before the one at hand: its id and figure
        for j in reported:
            low, high = lows_in[j], highs_in[j]
            if before_low is not None and high is not None and high < before_low:
                if earlier is None:
                    flag = _revised_down(day, ids[j], (low, high, qualifiers[j]),
                                         [(base_low, base_high, base_q), *pending_terms], None)  # fmt: skip
                else:
                    flag = _revised_down(day, ids[j], (low, high, qualifiers[j]), [earlier[1]], earlier[0])
                if flag is not None:
                    flags.append(flag)
            # Adding intervals that meet lie within checking intervals that meet: most days stop here.
            if check and (
                (expected_high is not None and low > expected_high) or (high is not None and high < expected_low)
            ):
                between = [(lows_in[k], highs_in[k], qualifiers[k]) for k in today]
                terms = [(base_low, base_high, base_q), *pending_terms, *between]
                flag = _mismatch(day, ids[j], (low, high, qualifiers[j]), base_id, terms)
                if flag is not None:
                    flags.append(flag)
            check = False  # a later cumulative of the same day has nothing in between
            before_low, earlier = low, (ids[j], (low, high, qualifiers[j]))
            base_id, base_day, base_low, base_high, base_q = ids[j], day, low, high, qualifiers[j]
        if pending_terms:
            pending_ids, pending_terms, pending_low, pending_high = [], [], 0, 0
        starts.append(day)
        lows.append(base_low)
        last_low = base_low
        highs.append(OPEN if base_high is None else base_high)
        codes.append("r")
        rests_on.append(base_id)
        i = end
    if after is not None:
        starts, lows, highs = after.starts + starts, after.lows + lows, after.highs + highs
        codes, rests_on, flags = [after.basis_codes, *codes], [after.rests_on, *rests_on], [*after.flags, *flags]
    last = max(days[-1] if days else starts[-1], last_day or 0, after.last if after else 0)
    return Folded(
        last,
        starts,
        lows,
        highs,
        "".join(codes),
        "\n".join(rests_on),
        tuple(flags),
        Base(base_id, base_day, base_low, base_high, base_q) if base_id is not None else None,
        Pending(tuple(pending_ids), tuple(pending_terms), pending_low, pending_high),
    )


def resumable(folded: Folded, first_new_day: int) -> bool:
    """Whether reports starting on ``first_new_day`` can be folded on after ``folded``."""
    return first_new_day > folded.starts[-1]


def _revised_down(day: int, id_: str, figure: tuple, before: list[tuple], earlier_id: str | None) -> RawFlag | None:
    """The flag for a cumulative wholly below the running figure just before it (the sum of ``before``).

    The adding intervals are already apart; this checks the checking ones.
    ``earlier_id`` names the earlier cumulative of the same day when ``before`` is that one.
    """
    if not _checked([figure])[1] < _checked(before)[0]:
        return None
    return RawFlag(day, REVISED_DOWN, (id_, earlier_id, *figure, *_sum(before)))


def _mismatch(day: int, id_: str, figure: tuple, base_id: str, terms: list[tuple]) -> RawFlag | None:
    """The flag for a cumulative that does not meet the previous one plus the increments since (``terms``).

    The adding intervals are already apart; this checks the checking ones.
    """
    if not _disjoint(_checked([figure]), _checked(terms)):
        return None
    return RawFlag(day, MISMATCH, (id_, base_id, *figure, *_sum(terms), *itertools.chain.from_iterable(terms)))
