"""The warm cache: the last full replay of each log, brought up to date instead of rebuilt.

Asked again, replay reads only what was appended since, and folds on only
the series it touches; an as-of or filtered replay of a log replayed in full
is cut from that replay, since a day never depends on later reports. In a
process that has not replayed the log in full, one incident is cut from the
full replay kept beside the log, where one is kept at its head
(``kept_incidents``), or else folded from its part of the index
(``incident_parts``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import attrs
import numpy as np

from events_log.envelope import time_of_code
from events_log.store import LogHead, Store

from . import incident_parts, kept_incidents
from .index import REPLAY_INDEX, Columns, LogIndex
from .rule import fold, resumable
from .scratch import (
    CORRECTED,
    apply_corrections,
    described_in,
    fold_rows,
    grouped,
    live_in,
    replay_from_scratch,
    sort_key,
)
from .series import Behind, Effective, Replay, Series


def replay_or_reuse(
    store: Store,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    progress: Callable[[Iterable, int], Iterable] | None,
) -> Replay:
    # Appends through this store keep the index up to date from now on (the store's hook).
    store.keep(REPLAY_INDEX)
    warm = _WARM.get(store.location) if known_at is None else None
    if warm is not None:
        index = store.projection(REPLAY_INDEX, since=warm._index)
        if index is not warm._index:
            warm = _appended(store, warm, index) if index.extends(warm._index) else None
    if warm is None and known_at is None and as_of is None and incident is None and monitor is None:
        warm = replay_from_scratch(store, store.projection(REPLAY_INDEX), None, None, None, None, progress)
    if warm is not None:
        _WARM[store.location] = warm
        while len(_WARM) > _WARM_LOGS:
            del _WARM[next(iter(_WARM))]
        return _narrowed(warm, as_of, incident, monitor)
    if incident is not None and known_at is None:
        kept = kept_incidents.replay(store, as_of, incident, monitor)
        if kept is None:
            kept = incident_parts.replay(store, as_of, incident, monitor)
        if kept is not None:
            return kept
    return replay_from_scratch(store, store.projection(REPLAY_INDEX), as_of, known_at, incident, monitor, progress)


_WARM: dict[str, Replay] = {}


_WARM_LOGS = 4


def _appended(store: Store, warm: Replay, index: LogIndex) -> Replay:
    """A full replay brought up to date with entries appended after it, folding on only what they touch."""
    state = warm._effective
    rows_before = len(state.retracted)
    stored = index.observation_columns()
    if not len(index.correction_entry):  # never corrected: the index's own columns, as a replay from scratch takes them
        columns = stored
    else:
        # The rows of the append go after the warm replay's, where there is room; the rows it corrects anew
        # are rewritten in a copy if any of them is older than the append, as a caller may hold this replay.
        rewrites = bool((index.correction_row[state.corrections :] < rows_before).any())
        columns = Columns(*(CORRECTED.appended(mine, c[rows_before:], copy=rewrites)
                            for mine, c in zip(state.columns, stored, strict=True)))  # fmt: skip
    new_corrections = len(index.correction_entry) > state.corrections
    # Corrections are few: their map is copied only when new ones arrive (the warm replay keeps its own).
    corrected_by = {r: list(p) for r, p in state.corrected_by.items()} if new_corrections else state.corrected_by
    retracted = np.concatenate([state.retracted, np.zeros(len(columns.series) - rows_before, bool)])
    effective = Effective(
        columns=columns, retracted=retracted, live=state.live, ids=index.obs_ids, corrected_by=corrected_by,
        corrections=state.corrections, retractions=state.retractions,
    )  # fmt: skip
    touched_rows = [
        *index.correction_row[state.corrections :].tolist(),
        *index.retraction_row[state.retractions :].tolist(),
    ]
    touched = {int(state.columns.series[r]) for r in touched_rows if r < rows_before}
    apply_corrections(effective, index, index.entries)
    touched |= {int(effective.columns.series[r]) for r in touched_rows}
    effective.live = ~effective.retracted
    new_rows = np.arange(rows_before, len(columns.series))
    by_key = {s.key: s for s in warm.series}
    updated: dict[tuple, Series] = {}
    resumed = set()
    for number, reports in grouped(index.series, effective, new_rows):
        key = index.series[number]
        before = by_key.get(key)
        if number in touched or before is None or not resumable(before.folded, reports.days[0]):
            touched.add(number)
            continue
        updated[key] = Series(*key, folded=fold(reports, None, after=before.folded))
        resumed.add(number)
    refold = touched - resumed
    if refold:
        rows = np.flatnonzero(effective.live & np.isin(effective.columns.series, sorted(refold)))
        for series in fold_rows(index.series, effective, rows, None):
            updated[series.key] = series
        for number in refold:
            by_key.pop(index.series[number], None)
    merged = {**by_key, **updated}
    series = sorted(merged.values(), key=lambda s: sort_key(s.key))
    incidents, monitors = described_in(index.described, index.entries)
    return Replay(
        as_of=None,
        known_at=None,
        log=LogHead(index.entries, index.last_hash) if index.entries else LogHead.of(None),
        series=tuple(series),
        incidents=incidents,
        monitors=monitors,
        last_recorded_at=time_of_code(int(index.times[-1])) if index.entries else None,
        store=store,
        behind=Behind(index, effective),
    )


def _narrowed(full: Replay, as_of: dt.date | None, incident: str | None, monitor: str | None) -> Replay:
    """A full replay cut to an as-of date and filtered: equal to replaying with those parameters."""
    if as_of is None and incident is None and monitor is None:
        return full
    series = [s for s in full.series if (incident is None or s.incident == incident)
              and (monitor is None or s.monitor == monitor)]  # fmt: skip
    if as_of is not None:
        series = [s.until(as_of) for s in series if s.first <= as_of]
    state = full._effective
    effective = attrs.evolve(state, live=live_in(state, full._index.series, as_of, incident, monitor), rows=None)
    return attrs.evolve(full, as_of=as_of, series=tuple(series), behind=Behind(full._index, effective))
