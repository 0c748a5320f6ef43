"""Replay from scratch: the index's columns, cut at known-at, corrected, filtered and folded series by series.

Whole columns move at a time (numpy); only ``rule.fold`` walks observations
one by one. ``warm`` reuses these steps to fold on only what an append touched.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from events_log.codec import structure
from events_log.envelope import decode_line, time_code, time_of_code
from events_log.events import IncidentDescribed, MonitorDescribed
from events_log.parallel import in_two
from events_log.store import LogHead, Store

from .growing import Room
from .index import OPEN, REPLAY_COLUMNS, REPLAY_INDEX, Columns, Described, LogIndex
from .rule import Reports, fold
from .series import Behind, Effective, Replay, Series, SeriesKey, chosen_series, log_replaced

T = TypeVar("T")


def replay_from_scratch(
    store: Store,
    index: LogIndex,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    progress: Callable[[Iterable, int], Iterable] | None,
) -> Replay:
    effective, cut = effective_rows(index, as_of, known_at, incident, monitor)
    last_day = as_of.toordinal() if as_of is not None else None
    series = list(fold_rows(index.series, effective, live_rows(effective), last_day, progress, share=_HELD_SHARE))
    incidents, monitors = described_in(index.described, cut)
    return Replay(
        as_of=as_of,
        known_at=known_at,
        log=head_at(store, index, cut),
        series=tuple(series),
        incidents=incidents,
        monitors=monitors,
        last_recorded_at=time_of_code(int(index.times[cut - 1])) if cut else None,
        store=store,
        behind=Behind(index, effective),
    )


def full_series(
    store: Store, made: Callable[[Series], T], progress: Callable[[Iterable, int], Iterable] | None = None
) -> tuple[LogHead, list[Described], int | None, Iterator[T]]:
    """The head of the log, the descriptions in it (as the index keeps them), the time code of its last entry,
    and what ``made`` makes of each series of its full replay, folded one at a time as they are asked for.

    For writing a whole replay out without holding it (an import keeps its
    CSV beside the log): the series come in a replay's order, and only the
    one being written is in memory. ``made`` runs in the process that
    folded the series: the fork sends back only what is written. The index
    is not returned: its columns are let go once the last series is folded,
    before what was written is stored (a database's client may hold all of
    it at once).
    """
    index = store.projection(REPLAY_COLUMNS)
    effective, cut = effective_rows(index, None, None, None, None)
    written = fold_rows(index.series, effective, live_rows(effective), None, progress, share=_WRITTEN_SHARE,
                        made=made)  # fmt: skip
    return head_at(store, index, cut), index.described, index.last_time, written


# The corrected columns of replays: a warm replay writes the rows of the next append after them (``warm``).
CORRECTED = Room()


def effective_rows(
    index: LogIndex,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    *,
    entries: int | None = None,
) -> tuple[Effective, int]:
    """The observation rows as corrected at known-at (``live``: those replayed), and how many entries that cuts.

    ``entries`` cuts the log there instead (a replay read at a head the log has since grown past).
    """
    cut = index.entries if entries is None else entries
    if known_at is not None:
        cut = int(np.searchsorted(index.times, time_code(known_at), side="right"))
    rows_in = len(index.obs_ids) if cut == index.entries else int(np.searchsorted(index.obs_entry, cut))
    # Corrections are written into the columns, so only then are they copied from the index's: a log
    # without any (an imported dataset) keeps one copy of its largest arrays, not two.
    corrected = len(index.correction_entry) > 0 and int(index.correction_entry[0]) < cut
    columns = Columns(*(CORRECTED.copied(column[:rows_in]) if corrected else column[:rows_in] for column in
                        index.observation_columns()))  # fmt: skip
    effective = Effective(
        columns=columns, retracted=np.zeros(rows_in, dtype=bool), live=np.ones(rows_in, dtype=bool),
        ids=index.obs_ids, corrected_by={}, corrections=0, retractions=0,
    )  # fmt: skip
    apply_corrections(effective, index, cut)
    effective.live = live_in(effective, index.series, as_of, incident, monitor)
    return effective, cut


def live_in(
    effective: Effective, keys: Sequence[SeriesKey], as_of: dt.date | None, incident: str | None, monitor: str | None
) -> np.ndarray:
    """Which rows count for a replay as-of a date, of an incident and a monitor: not retracted, reported on or before
    as-of, in a series chosen (``keys``: the series' keys, by number)."""
    columns = effective.columns
    live = ~effective.retracted
    if as_of is not None:
        live &= columns.day <= as_of.toordinal()
    if incident is not None or monitor is not None:
        live &= np.isin(columns.series, chosen_series(keys, incident, monitor))
    return live


def live_rows(effective: Effective) -> np.ndarray:
    """The rows replayed, as 32-bit numbers where they fit: a whole log's are the largest array a fold makes."""
    rows = np.flatnonzero(effective.live)
    return rows.astype(np.int32) if len(effective.live) < 2**31 else rows


class Fixes(NamedTuple):
    """The corrections and retractions of some rows, in log order, as an index holds all of its rows'."""

    correction_entry: np.ndarray
    correction_row: np.ndarray
    correction_values: Columns
    retraction_entry: np.ndarray
    retraction_row: np.ndarray


def apply_corrections(effective: Effective, index: LogIndex | Fixes, cut: int) -> None:
    """Apply the corrections and retractions of entries before ``cut`` not applied yet, in log order.

    ``index``: the index whose rows ``effective`` holds, or the fixes of the rows it holds (``Fixes``).
    """
    done, corrections = effective.corrections, int(np.searchsorted(index.correction_entry, cut))
    rows = index.correction_row[done:corrections]
    if len(rows):
        # A row corrected twice keeps its last correction: the last occurrence of each row, whole columns at once.
        last = len(rows) - 1 - np.unique(rows[::-1], return_index=True)[1]
        for column, values in zip(effective.columns, index.correction_values, strict=True):
            column[rows[last]] = values[done:corrections][last]
    for row, position in zip(rows.tolist(), index.correction_entry[done:corrections].tolist(), strict=True):
        effective.corrected_by.setdefault(row, []).append(position)
    retractions = int(np.searchsorted(index.retraction_entry, cut))
    effective.retracted[index.retraction_row[effective.retractions : retractions]] = True
    effective.corrections, effective.retractions = corrections, retractions


def grouped(
    keys: Sequence[SeriesKey], effective: Effective, rows: np.ndarray, rank: np.ndarray | None = None
) -> Iterator[tuple[int, Reports]]:
    """The given rows as each series' reports, sorted by (day, log position), series in a replay's order.

    Series are taken a stretch at a time (about a million rows), and their
    columns become lists a few tens of thousands of rows at a time, so that a
    whole log's series can be folded and written one after another without
    sorting, or listing, every row at once. ``keys``: the series' keys, by
    number; ``rank``: each series number's place in a replay's order
    (``_ranked``), where the caller made it already.
    """
    series, day = effective.columns.series, effective.columns.day
    if rank is None:
        rank = _ranked(keys, series[rows])
    ranks = rank[series[rows]]
    ends = np.cumsum(np.bincount(ranks))  # rows up to and including each rank
    first = 0  # the first rank of the next stretch
    while first < len(ends):
        done = int(ends[first - 1]) if first else 0
        last = max(int(np.searchsorted(ends, done + _ROWS_SORTED, side="right")), first + 1)
        chosen = rows[(ranks >= first) & (ranks < last)]
        # Rows are in log order, so sorting by (series, day) keeps log position as the last key.
        yield from _pieces(effective, chosen[np.lexsort((day[chosen], rank[series[chosen]]))])
        first = last


def _ranked(keys: Sequence[SeriesKey], series_of_rows: np.ndarray) -> np.ndarray:
    """Each series number's place in a replay's order (``sort_key``) among the series these rows name."""
    numbers = np.flatnonzero(np.bincount(series_of_rows, minlength=len(keys)))
    rank = np.zeros(len(keys), dtype=series_of_rows.dtype)
    rank[sorted(numbers.tolist(), key=lambda n: sort_key(keys[n]))] = np.arange(len(numbers))
    return rank


def _pieces(effective: Effective, order: np.ndarray) -> Iterator[tuple[int, Reports]]:
    """Rows sorted by series and day, as each series' reports, made into lists a piece at a time."""
    series, day, cumulative, low, high, qualifier = effective.columns
    sorted_series = series[order]
    bounds = [0, *(np.flatnonzero(np.diff(sorted_series)) + 1).tolist(), len(order)] if len(order) else [0]
    start = 0  # the first group (an index into bounds) of the next piece
    while start < len(bounds) - 1:
        # Whole groups, as many as fit in a piece, and at least one.
        end = max(bisect.bisect_right(bounds, bounds[start] + _ROWS_AT_ONCE, lo=start + 1) - 1, start + 1)
        offset = bounds[start]
        part = order[offset : bounds[end]]
        ids = effective.ids.take(part)
        highs = [None if h == OPEN else h for h in high[part].tolist()]
        days, lows, cumulatives = day[part].tolist(), low[part].tolist(), cumulative[part].astype(bool).tolist()
        qualifiers = qualifier[part].tolist()
        for k in range(start, end):
            a, b = bounds[k] - offset, bounds[k + 1] - offset
            yield int(sorted_series[bounds[k]]), Reports(days[a:b], ids[a:b], cumulatives[a:b], lows[a:b], highs[a:b],
                                                         qualifiers[a:b])  # fmt: skip
        start = end


def fold_rows(
    keys: Sequence[SeriesKey],
    effective: Effective,
    rows: np.ndarray,
    last_day: int | None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
    *,
    share: float | None = None,
    made: Callable[[Series], Any] | None = None,
) -> Iterator[Any]:
    """The series of ``rows``, folded one at a time in a replay's order (``sort_key``), or what ``made`` makes
    of each (``keys``: the series' keys, by number).

    ``share``: a fork folds the later series meanwhile and sends them back
    (``parallel.in_two``), and this process folds about this share of the
    rows; they wait in a temporary file, so a caller writing one series at
    a time still holds only that one.
    """
    rank, count, mine = _planned(keys, effective.columns.series[rows], share if len(rows) >= IN_TWO_ROWS else None)

    def folded(part: np.ndarray) -> Iterator[Any]:
        for number, reports in grouped(keys, effective, part, rank):
            series = Series(*keys[number], folded=fold(reports, last_day))
            yield series if made is None else made(series)

    series: Iterable[Any] = (
        folded(rows) if mine is None else in_two(lambda: folded(rows[mine]), lambda: folded(rows[~mine]))
    )
    if progress is not None:
        series = progress(series, count)
    yield from series


def _planned(
    keys: Sequence[SeriesKey], series_of_rows: np.ndarray, share: float | None
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Each series number's place in a replay's order, how many series the rows name, and which rows this
    process folds where a fork shares the fold (``share`` of them, whole series).

    Apart from ``fold_rows``, so that its arrays of a number a row (40 MB
    at 5,000,000 rows) are let go before the fork copies this process, and
    are not held while the series are folded.
    """
    rank = _ranked(keys, series_of_rows)
    count = int(rank.max()) + 1 if len(series_of_rows) else 0  # the series the rows name are ranked 0 to count - 1
    if share is None:
        return rank, count, None
    ranks = rank[series_of_rows]
    ends = np.cumsum(np.bincount(ranks))
    return rank, count, ranks <= int(np.searchsorted(ends, share * len(series_of_rows)))


def head_at(store: Store, index: LogIndex, cut: int) -> LogHead:
    """Length and head hash of the log prefix replayed."""
    if cut == 0:
        return LogHead.of(None)
    if cut == index.entries:
        return LogHead(cut, index.last_hash)
    return LogHead.of(decode_line(store.line_at(cut - 1, int(index.offsets[cut - 1]))))


def behind_at(
    store: Store, head: LogHead, as_of: dt.date | None, incident: str, monitor: str | None
) -> tuple[LogIndex, Effective]:
    """The index and effective rows of a replay of one incident read without them, at the head it was read at.

    For what its series alone do not say (an observation's record, its
    corrections), asked for after the replay was read: the log may have
    grown since, but not changed below that head.
    """
    index = store.projection(REPLAY_INDEX)
    if index.entries < head.entries or head_at(store, index, head.entries) != head:
        raise log_replaced(store, head)
    return index, effective_rows(index, as_of, None, incident, monitor, entries=head.entries)[0]


def described_in(described: Iterable[tuple[int, str, dict]], cut: int) -> tuple[dict, dict]:
    """Incidents and monitors as last described in the first ``cut`` entries (``described``: as the index keeps it)."""
    incidents: dict[str, IncidentDescribed] = {}
    monitors: dict[str, MonitorDescribed] = {}
    for position, type_name, data in described:
        if position >= cut:
            break
        if type_name == "IncidentDescribed":
            incidents[data["slug"]] = structure(data, IncidentDescribed)
        else:
            monitors[data["slug"]] = structure(data, MonitorDescribed)
    return incidents, monitors


# A fold of at least this many rows is shared with a fork: below it, forking and pickling cost more than
# they save. This process's share of it: a little more than half where the series are held (a replay:
# the fork must also pickle what it folds); half where each is written out as it comes (the replay kept
# beside the log, verify), as the fork makes the bytes written of its own (``full_series``: the 200,000-row
# import's kept replay, median of 8 alternate runs, 0.47 s at 0.5 against 0.52 s when the fork sent series).
IN_TWO_ROWS = 100_000
_HELD_SHARE = 0.52
_WRITTEN_SHARE = 0.5
# Rows made into lists at a time when series are folded: a whole log's never are at once.
_ROWS_AT_ONCE = 65_536
# Rows sorted at a time: whole series, in a replay's order.
_ROWS_SORTED = 16 * _ROWS_AT_ONCE


def sort_key(key: SeriesKey) -> tuple:
    incident, monitor, measure, category, location = key
    # Monitors alphabetically whatever their case; the whole-incident series first, then by location.
    return (incident, monitor.casefold(), monitor, measure, category, location is not None, location or "")
