"""Replay: from a log to per-day series, as-of a report date and known-at a log time.

``replay(store, as_of, known_at)`` is the one entry point. It reads the
replay index (``index``, a projection the store keeps beside the log), keeps the entries recorded
at or before known-at (a prefix of the log), applies corrections and
retractions within that prefix, keeps observations reported on or before
as-of, and folds each series with ``rule.fold``. Whole columns move at a
time (numpy); only the fold itself walks observations one by one.

The work is in four rooms: ``index`` (the columns, kept beside the log),
``series`` (what a replay gives back),
``scratch`` (a replay from nothing) and ``warm`` (the last full replay of
each log, brought up to date). This module is the door.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from events_log.admission import Names, unknown_name
from events_log.cycles import no_cycle_collection
from events_log.errors import InputError
from events_log.store import Store

from .series import DayPoint, Flag, Replay, Segment, Series
from .warm import replay_or_reuse

__all__ = ["DayPoint", "Flag", "Replay", "Segment", "Series", "refuse_undescribed", "replay"]


def replay(
    store: Store,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
    *,
    incident: str | None = None,
    monitor: str | None = None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> Replay:
    """Rebuild every series from the log.

    ``known_at`` keeps only entries recorded at or before it (corrections and
    retractions included); ``as_of`` keeps only observations reported on or
    before it and extends each series to that date. ``incident`` and
    ``monitor`` restrict the series returned; ``progress`` wraps the loop over
    series (the command line shows a bar with it).

    The last full replay of each log is kept in memory. Asked again, replay
    reads only what was appended since, and folds on only the series it
    touches; an as-of or filtered replay of a log replayed in full is cut
    from that replay, since a day never depends on later reports.
    """
    with no_cycle_collection():
        result = replay_or_reuse(store, as_of, known_at, incident, monitor, progress)
    refuse_undescribed(result._names(), incident=incident, monitor=monitor)
    return result


def refuse_undescribed(names: Names, **chosen: str | None) -> None:
    """Raise ``InputError`` for a filter naming an incident or monitor the log has not described.

    A typo in a filter would otherwise answer with nothing, as if nothing
    had been reported.
    """
    for kind, slug in chosen.items():
        if slug is not None and (kind, slug) not in names:
            raise InputError(unknown_name(kind, slug, names.of(kind)), f"--{kind}")


