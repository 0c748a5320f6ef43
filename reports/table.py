"""The table of an incident page's observations, built a whole column at a time.

The table lists every observation of an incident (14,600 on the largest
page of issue 14's bench). Its dates, monitors, what each counts, places,
kinds and figures are in the replay's own columns (``Replay.figures``): each
distinct value is worded once and taken for every row at once with numpy,
rather than read from each record in a Python loop. Only what the replay
does not hold (ids, sources, periods, notes) comes from the records read
from the log.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from timeline.index import QUALIFIER_CODE

from .figures import iso_day
from .sources import Records
from .words import Worded, figures_words

_KINDS = np.array(["increment", "cumulative"], dtype=object)  # by the ``cumulative`` column


class Table(NamedTuple):
    """The table's columns in its first order (date, monitor ignoring case, id), which of its figures
    were worded "about" or "at most", and the report days in date order."""

    columns: dict[str, list]
    worded: Worded
    days: list[str]


def observation_table(stored: Records) -> Table:
    """The columns the page's script reads. Texts stay raw: the page sets them as text, never as markup.

    Only a figure needs a sort key of its own (``low``); the other columns sort by their text.
    """
    figures, keys = stored.figures, stored.keys
    ids = [record.id for record in stored.observations]
    series_numbers, of_row = np.unique(figures.series, return_inverse=True)
    series_keys = [keys[number] for number in series_numbers.tolist()]
    order = _first_order(ids, figures.day, _monitor_ranks(series_keys)[of_row])
    records = _taken(stored.observations, order)
    ids = _taken(ids, order)
    sources = list(map(operator.attrgetter("source"), records))
    of_row = of_row[order]
    lows, highs, qualifiers = figures.low[order], figures.high[order], figures.qualifier[order]
    report_days, of_day = np.unique(figures.day[order], return_inverse=True)
    days = list(map(iso_day, report_days.tolist()))
    corrections = stored.corrections
    columns = {
        "id": ids,
        "reported_on": _taken(days, of_day),
        "period": list(map(_period, map(_START, records), map(_END, records))),
        "monitor": _per_series(series_keys, of_row, operator.itemgetter(1)),
        "what": _per_series(series_keys, of_row, lambda key: _what(key[2], key[3])),
        "location": _per_series(series_keys, of_row, lambda key: key[4] or ""),
        "kind": _KINDS[figures.cumulative[order]].tolist(),
        "low": lows.tolist(),
        "figure": figures_words(lows, highs, qualifiers),
        "quote": [source.quote or "" for source in sources],
        "note": [record.note or "" for record in records],
        "title": list(map(operator.attrgetter("title"), sources)),
        "url": [source.url or "" for source in sources],
        "corrected": ["; ".join(corrections[i]) if i in corrections else "" for i in ids] if corrections
        else [""] * len(ids),
    }  # fmt: skip
    about, at_most = (frozenset(_taken(ids, np.flatnonzero(qualifiers == QUALIFIER_CODE[name])))
                      for name in ("about", "at_most"))  # fmt: skip
    return Table(columns, Worded(about, at_most), days)


_START, _END = operator.attrgetter("period_start"), operator.attrgetter("period_end")


def _first_order(ids: list[str], days: np.ndarray, monitor_ranks: np.ndarray) -> np.ndarray:
    """The rows by date, monitor (ignoring case) and id: sorted by id first, then by the other two at once
    with numpy's stable sort, which keeps the rows of one date and monitor in id order."""
    by_id = np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)
    return by_id[np.lexsort((monitor_ranks[by_id], days[by_id]))]


def _monitor_ranks(series_keys: list[tuple]) -> np.ndarray:
    """Each series' place in the order of monitors ignoring case (monitors equal but for case share it)."""
    folded = [key[1].casefold() for key in series_keys]
    rank = {name: n for n, name in enumerate(sorted(set(folded)))}
    return np.array([rank[name] for name in folded], dtype=np.int64)


def _per_series(series_keys: list[tuple], of_row: np.ndarray, value: Callable[[tuple], str]) -> list[str]:
    """A column that depends only on the row's series: worded once per series, then taken for every row."""
    return np.array([value(key) for key in series_keys], dtype=object)[of_row].tolist()


def _taken(values: Sequence, order: np.ndarray) -> list:
    found = np.empty(len(values), dtype=object)
    found[:] = values
    return found[order].tolist()


def _period(start: str | None, end: str | None) -> str:
    start, end = start or end, end or start
    return "" if start is None else start if start == end else f"{start} to {end}"


@functools.lru_cache(maxsize=1 << 10)
def _what(measure: str, category: str) -> str:
    return f"{measure.replace('_', ' ')} · {category.replace('_', ' ')}"
