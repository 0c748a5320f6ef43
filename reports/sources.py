"""The stored record of every observation a page shows, one incident at a time.

A page lists each figure with its quote and source, and none of that is in
the replay's columns: ``Replay.records`` reads it back from the log, one
line per record, decoded straight into a typed record of just those fields
(msgspec, in C); what the replay does hold of each (its series, day, kind
and figure) comes as columns (``Replay.figures``). Only the page being
built holds its records: a report of 730,000 observations once held all of
them at once (1.2 GB).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from timeline.index import Columns
from timeline.replay import Replay


class Source(msgspec.Struct, frozen=True, gc=False):
    title: str
    url: str | None = None
    quote: str | None = None


class Record(msgspec.Struct, frozen=True, gc=False):
    """An observation as stored (current schema), only the fields a page shows that the replay does not
    hold: msgspec skips the others without making objects of them (``Records.figures`` has them)."""

    id: str
    source: Source
    period_start: str | None = None
    period_end: str | None = None
    note: str | None = None


class Records(NamedTuple):
    """An incident's effective observations in log order; why our log corrected some of them
    (observation id -> the reasons, oldest first); and, in the same order, what the replay holds of
    them (``Replay.figures``): their series (numbers into ``keys``), days, kinds and figures."""

    observations: list[Record]
    corrections: dict[str, tuple[str, ...]]
    figures: Columns
    keys: list[tuple]


def records(result: Replay, incident: str) -> Records:
    """The effective observations of ``incident``: as-of and known-at applied, a corrected one as its
    latest correction gives it, retracted ones left out."""
    observations, corrections = [], {}
    for observation_id, record, reasons in result.records(incident, Record):
        observations.append(record)
        if reasons:
            corrections[observation_id] = reasons
    figures, keys = result.figures(incident)
    return Records(observations, corrections, figures, keys)
