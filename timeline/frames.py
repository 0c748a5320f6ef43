"""Replayed series as Arrow, pandas and polars tables: one row per series and day.

Arrow is the shared form. pandas and polars are built over its buffers
(``pd.ArrowDtype`` columns, ``pl.from_arrow``), so a notebook holding the
same days in all three pays for them once. The columns are those of
``timeline replay --format csv``, typed: dates as dates, ``low`` and
``high`` as nullable integers (an open-ended ``high`` is null), and
``observations`` as a list of ids rather than one space-joined text.
Texts are kept as they are: the CSV's guard against spreadsheet formulas
(a ``'`` before a leading ``=``) is for spreadsheets, not DataFrames.

The three libraries are the optional extra ``toll-timeline[dataframes]``.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from events_log.errors import TimelineError

from .output import CSV_COLUMNS
from .replay import Series
from .rule import CARRIED, OPEN

_EPOCH = dt.date(1970, 1, 1).toordinal()
_BASIS = {"r": "reported", "d": "derived"}


class MissingExtraError(TimelineError):
    """A DataFrame was asked for, and the library that makes it is not installed."""


def _library(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{package} is not installed; install the DataFrame extra: pip install 'toll-timeline[dataframes]'"
        ) from None


def to_arrow(series_list: Iterable[Series], reports_only: bool = False) -> Any:
    """A ``pyarrow.Table`` of every day of every series (``reports_only``: only report days).

    Each series' segments become Arrow arrays once; the days are taken from
    them by index, so runs of carried days cost no Python objects.
    """
    pa = _library("pyarrow", "pyarrow")
    keys: list[tuple] = []
    key_of_day, segment_of_day, dates, reported = [], [], [], []
    lows, highs, codes, ids = [], [], [], []
    segments = 0
    for number, s in enumerate(series_list):
        keys.append(s.key)
        f = s.folded
        starts = np.asarray(f.starts, dtype=np.int64)
        if reports_only:
            ordinals = starts.astype(np.int64)
            segment = np.arange(len(starts))
        else:
            ordinals = np.arange(f.first, f.last + 1, dtype=np.int64)
            segment = np.searchsorted(starts, ordinals, side="right") - 1
        key_of_day.append(np.full(len(ordinals), number, dtype=np.int32))
        segment_of_day.append(segment + segments)
        dates.append(ordinals - _EPOCH)
        reported.append(starts[segment] == ordinals)
        lows.append(np.asarray(f.lows, dtype=np.int64))
        highs.append(np.asarray(f.highs, dtype=np.int64))
        codes.append(f.basis_codes)
        ids.extend(f.observations_by_segment())
        segments += len(starts)
    if not keys:
        return _empty(pa)
    day_key = np.concatenate(key_of_day)
    day_segment = np.concatenate(segment_of_day)
    all_highs = np.concatenate(highs)
    basis = np.array([_BASIS[c] for c in "".join(codes)], dtype=object)
    basis_of_day = np.where(np.concatenate(reported), basis[day_segment], CARRIED)
    columns = {
        name: pa.array([k[i] for k in keys], type=pa.string()).take(day_key) for i, name in enumerate(CSV_COLUMNS[:5])
    }
    columns["date"] = pa.array(np.concatenate(dates).astype(np.int32), type=pa.date32())
    columns["low"] = pa.array(np.concatenate(lows)[day_segment], type=pa.int64())
    columns["high"] = pa.array(all_highs[day_segment], type=pa.int64(), mask=all_highs[day_segment] == OPEN)
    columns["basis"] = pa.array(basis_of_day, type=pa.string()).dictionary_encode()
    columns["observations"] = pa.array([list(i) for i in ids], type=pa.list_(pa.string())).take(day_segment)
    return pa.table(columns)


def _empty(pa: Any) -> Any:
    types = dict.fromkeys(CSV_COLUMNS[:5], pa.string())
    types |= {
        "date": pa.date32(),
        "low": pa.int64(),
        "high": pa.int64(),
        "basis": pa.dictionary(pa.int32(), pa.string()),
        "observations": pa.list_(pa.string()),
    }
    return pa.table({name: pa.array([], type=kind) for name, kind in types.items()})


def to_pandas(table: Any) -> Any:
    """The table as pandas columns of ``pd.ArrowDtype``: nullable, and over the Arrow buffers."""
    pd = _library("pandas", "pandas")
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def to_polars(table: Any) -> Any:
    """The table as a polars DataFrame; polars reads Arrow buffers in place."""
    pl = _library("polars", "polars")
    return pl.from_arrow(table)
