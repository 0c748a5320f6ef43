"""One incident as-of a date from the replay index read in part: that incident's rows, and the log's fixes.

Asked about one incident in a fresh process, where no full replay is kept
at the log's head (``kept_incidents``: an append came after it), replay
would read, check and decode the whole index to fold a fiftieth of it. The
index keeps each block's observation rows apart by incident
(``index.BlockHead``), so this reads of each block its head (its new
series, fixes and descriptions: small) and the rows of that incident, and
folds those. A row that a correction moved into the incident from another
one is taken from the correction, which carries the whole observation.

It answers for the log's head only (no known-at), from a store that reads
blocks in part (the JSON Lines sidecar), while the index reaches the head;
otherwise the caller reads the index whole, which brings it up to date.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from events_log.envelope import time_of_code
from events_log.projection import Ids
from events_log.store import LogHead, Store

from .index import ARRAYS, REPLAY_INDEX, BlockHead, Columns, JoinedIds, Rows, block_column, names_of, read_incident
from .scratch import Fixes, apply_corrections, behind_at, described_in, fold_rows, live_in, live_rows
from .series import Behind, Effective, Replay, SeriesKey, chosen_series


def replay(store: Store, as_of: dt.date | None, incident: str, monitor: str | None) -> Replay | None:
    """The replay of one incident as-of a date, read in part; None where the store cannot read the index so."""
    parts = store.partial_blocks(REPLAY_INDEX, functools.partial(read_incident, incident=incident))
    if parts is None:
        return None
    heads = [head for head, _ in parts]
    keys = [key for head in heads for key in head.new_series]
    described = [description for head in heads for description in head.described]
    last = heads[-1]
    log = LogHead(last.first + last.count, last.last_hash)
    effective = _effective(heads, [rows for _, rows in parts], keys, incident)
    if effective is None:
        return None
    effective.live = live_in(effective, keys, as_of, incident, monitor)
    last_day = as_of.toordinal() if as_of is not None else None
    incidents, monitors = described_in(described, log.entries)
    return Replay(
        as_of=as_of, known_at=None, log=log, series=tuple(fold_rows(keys, effective, live_rows(effective), last_day)),
        incidents=incidents, monitors=monitors,
        last_recorded_at=None if last.last_time is None else time_of_code(last.last_time), store=store,
        behind=Behind(make=lambda: behind_at(store, log, as_of, incident, monitor), names=names_of(described)),
    )  # fmt: skip


def _effective(
    heads: list[BlockHead], parts: list[Rows | None], keys: list[SeriesKey], incident: str
) -> Effective | None:
    """The rows that are, or were at some point, of ``incident``, in log order, with every fix of the log applied;
    None if the incident's parts hold a row of another (``verify`` finds such an index: its reader passes it by).

    Which rows those are: the incident's own, and those a correction moved
    into it. Whether they are still of it is the corrections' to say.
    """
    starts = np.cumsum([0, *(head.rows for head in heads)])  # each block's first row in the log
    own = np.concatenate([np.frombuffer(part.rows, "<i4").astype(np.int64) + start
                          for part, start in zip(parts, starts.tolist(), strict=False) if part is not None]
                         or [np.zeros(0, np.int64)])  # fmt: skip
    own_columns = Columns(*(_own_column(parts, name) for name in Columns._fields))
    mine = chosen_series(keys, incident, None)
    if not np.isin(own_columns.series, mine).all():
        return None
    fixes = _fixes(heads)
    moved = np.isin(fixes.correction_values.series, mine)
    moved &= ~np.isin(fixes.correction_row, own)
    # A row moved in: its first correction into the incident stands for the row as stored (a later one replaces it).
    moved_rows, first = np.unique(fixes.correction_row[moved], return_index=True)
    taken = np.flatnonzero(moved)[first]
    rows = np.concatenate([own, moved_rows])
    order = np.argsort(rows, kind="stable")
    columns = Columns(*(np.concatenate([stored, values[taken]])[order]
                        for stored, values in zip(own_columns, fixes.correction_values, strict=True)))  # fmt: skip
    ids = "\n".join([*(part.ids for part in parts if part is not None), *_correction_ids(heads, taken)])
    if len(taken):  # the rows moved in go among the incident's own, in log order: their ids too
        ids = JoinedIds(ids.encode()).taken(order).decode()
    rows = rows[order]
    effective = Effective(
        columns=columns, retracted=np.zeros(len(rows), dtype=bool), live=np.ones(len(rows), dtype=bool),
        ids=Ids([ids], [len(rows)]), corrected_by={}, corrections=0, retractions=0,
    )  # fmt: skip
    apply_corrections(effective, _fixes_of(fixes, rows), heads[-1].first + heads[-1].count)
    return effective


def _correction_ids(heads: list[BlockHead], corrections: np.ndarray) -> list[str]:
    """The ids of the observations these corrections (their places among the log's) replace."""
    if not len(corrections):
        return []
    ids = "\n".join(head.correction_ids for head in heads if head.correction_ids).split("\n")
    return [ids[k] for k in corrections.tolist()]


def _own_column(parts: list[Rows | None], name: str) -> np.ndarray:
    """A column of the incident's own rows, in log order, with the dtype the index stores it in."""
    dtype = ARRAYS[f"obs_{name}"]
    stored = [block_column(part, f"obs_{name}") for part in parts if part is not None]
    return np.concatenate(stored).astype(dtype) if stored else np.zeros(0, dtype)


def _fixes(heads: list[BlockHead]) -> Fixes:
    """Every correction and retraction of the log, from the blocks' heads."""

    def joined(name: str) -> np.ndarray:
        return np.concatenate([block_column(head, name) for head in heads]).astype(ARRAYS[name])

    values = Columns(*(joined(f"correction_{name}") for name in Columns._fields))
    return Fixes(joined("correction_entry"), joined("correction_row"), values, joined("retraction_entry"),
                 joined("retraction_row"))  # fmt: skip


def _fixes_of(fixes: Fixes, rows: np.ndarray) -> Fixes:
    """The fixes of ``rows`` (row numbers of the log, ascending), which they then name by their place among them."""
    corrected = np.isin(fixes.correction_row, rows)
    retracted = np.isin(fixes.retraction_row, rows)
    return Fixes(
        fixes.correction_entry[corrected], np.searchsorted(rows, fixes.correction_row[corrected]),
        Columns(*(values[corrected] for values in fixes.correction_values)), fixes.retraction_entry[retracted],
        np.searchsorted(rows, fixes.retraction_row[retracted]),
    )  # fmt: skip
