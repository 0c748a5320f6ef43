"""Replay results as JSON, CSV and a table for people.

JSON and CSV are for machines and must be byte-for-byte reproducible from
the same log and parameters; the table is for reading in a terminal.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import numpy as np
import orjson

from events_log.envelope import show_time
from events_log.events import (
    Correction,
    Event,
    IncidentDescribed,
    Observation,
    Retraction,
)
from events_log.importers import row_from_observation
from events_log.parallel import in_two
from events_log.spool import SpooledRows

from .replay import DayPoint, Replay, Series
from .rule import BASES, CARRIED, OPEN, wording

CSV_COLUMNS = ("incident", "monitor", "measure", "category", "location", "date", "low", "high", "basis", "observations")
CSV_HEADER = ",".join(CSV_COLUMNS) + "\n"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Keep a spreadsheet from running text that begins like a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _point(point: DayPoint) -> dict[str, Any]:
    return {
        "date": point.date.isoformat(),
        "low": point.low,
        "high": point.high,
        "basis": point.basis,
        "observations": list(point.observations),
    }


def _series(series: Series, reports_only: bool = False) -> dict[str, Any]:
    return {
        "incident": series.incident,
        "monitor": series.monitor,
        "measure": series.measure,
        "category": series.category,
        "location": series.location,
        "latest": _point(series.latest),
        "days": [_point(p) for p in series.days if not (reports_only and p.basis == CARRIED)],
        "flags": [{"date": f.date.isoformat(), "kind": f.kind, "detail": f.detail} for f in series.flags],
    }


def replay_document(result: Replay, reports_only: bool = False) -> dict[str, Any]:
    """The replay as one JSON-ready object (the ``--format json`` document).

    ``reports_only`` leaves out the carried days (``--days reports``): a
    compact export that still holds every figure and its basis.
    """
    return {
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "known_at": show_time(result.known_at) if result.known_at else None,
        "log": {"entries": result.log.entries, "head": result.log.head},
        "series": [_series(s, reports_only) for s in result.series],
    }


def write_json(result: Replay, out: IO[bytes], reports_only: bool = False) -> None:
    out.write(orjson.dumps(replay_document(result, reports_only), option=orjson.OPT_INDENT_2))
    out.write(b"\n")


def csv_chunks(
    series_list: Iterable[Series], reports_only: bool = False, *, in_two_processes: bool = False
) -> Iterator[str]:
    """The CSV text, header first, one row per series and day, a series at a time.

    Built from each series' segments rather than day by day: within a
    segment only the date changes, so a run of carried days is one string
    join. The key cells are escaped by the csv module; the other cells
    (dates, numbers, basis, ids) never need quoting. ``in_two_processes``:
    the text of a long list's later series is made by a fork meanwhile
    (``parallel.in_two``), for a command that writes a whole replay.
    """
    yield CSV_HEADER
    if in_two_processes and isinstance(series_list, Sequence):
        days = np.cumsum([series.folded.last - series.folded.first + 1 for series in series_list])
        if len(days) and days[-1] >= IN_TWO_CSV_ROWS:
            cut = int(np.searchsorted(days, _FIRST_SHARE * days[-1]))
            mine, rest = series_list[:cut], series_list[cut:]
            yield from in_two(lambda: _csv_rows(mine, reports_only), lambda: _csv_rows(rest, reports_only))
            return
    yield from _csv_rows(series_list, reports_only)


# A CSV of at least this many rows is made by two processes when the caller allows it; this process
# makes less than half, as it also writes all of it out.
IN_TWO_CSV_ROWS = 200_000
_FIRST_SHARE = 0.45


def _csv_rows(series_list: Iterable[Series], reports_only: bool) -> Iterator[str]:
    """The rows of ``csv_chunks``, a series' at a time."""
    return map(SeriesCsv(reports_only), series_list)


class SeriesCsv:
    """The CSV rows of one series at a time (``csv_chunks``'s), the text of each day made once for all series."""

    def __init__(self, reports_only: bool = False) -> None:
        self.reports_only = reports_only
        self._dates = _DateTexts()
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="")

    def __call__(self, series: Series) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(
            (series.incident, series.monitor, series.measure, series.category, safe_cell(series.location or ""))
        )
        prefix = self._buffer.getvalue() + ","
        folded = series.folded
        first = folded.first
        texts = self._dates.between(first, folded.last)
        lines = []
        for start, end, low, high, code, ids in folded.runs():  # ordinals, not dates: every run of a log
            listedhigh = "" if high == OPEN else high
            at = start - first
            until = end - first
            lines.append(f"{prefix}{texts[at]},{low},{listedhigh},{BASES[code]},{ids}\n")
            if until > at and not self.reports_only:
                carried = f",{low},{listedhigh},{CARRIED},{ids}\n"
                lines.append(prefix + (carried + prefix).join(texts[at + 1 : until + 1]) + carried)
        return "".join(lines)


class _DateTexts:
    """ISO texts of date ordinals, made once per day however many series cover it."""

    def __init__(self) -> None:
        self.first = 0
        self.texts: list[str] = []

    def between(self, first: int, last: int) -> list[str]:
        if not self.texts or first < self.first or last >= self.first + len(self.texts):
            low = min(first, self.first) if self.texts else first
            high = max(last, self.first + len(self.texts) - 1) if self.texts else last
            self.first = low
            self.texts = [dt.date.fromordinal(o).isoformat() for o in range(low, high + 1)]
        return self.texts[first - self.first : last - self.first + 1]


def write_csv(result: Replay, out: IO[str], reports_only: bool = False) -> None:
    for chunk in csv_chunks(result.series, reports_only, in_two_processes=True):
        out.write(chunk)


def point_wording(result: Replay, point: DayPoint) -> str:
    """A day's figure as people say it, keeping the monitors' own qualifiers (``rule.wording``)."""
    return wording(point.low, point.high, (result.qualifier(i) for i in point.observations))


def render_table(result: Replay) -> str:
    """Every series day by day, aligned; runs of carried days on one line; flags under their day."""
    out = io.StringIO()
    out.write(_table_header(result))
    for series in result.series:
        where = f" · {series.location}" if series.location else ""
        out.write(f"\n{series.incident} · {series.monitor} · {series.measure} · {series.category}{where}\n")
        flags: dict[dt.date, list] = {}
        for flag in series.flags:
            flags.setdefault(flag.date, []).append(flag)
        rows = [
            (_days(run), point_wording(result, run[0]), _basis(run), " ".join(run[0].observations), run[0].date)
            for run in _runs(series)
        ]
        widths = [max(len(row[c]) for row in rows) for c in range(3)]
        for days, figure, basis, ids, first in rows:
            out.write(f"  {days:<{widths[0]}}  {figure:>{widths[1]}}  {basis:<{widths[2]}}  {ids}\n")
            for flag in flags.get(first, ()):
                out.write(f"  {'':<{widths[0]}}  ! {flag.kind}: {flag.detail}\n")
    if not result.series:
        out.write("\n(no series: nothing reported in this log")
        out.write(f" on or before {result.as_of})\n" if result.as_of else ")\n")
    return out.getvalue()


def _runs(series: Series) -> Iterator[list[DayPoint]]:
    """Each report day alone, then the days carried after it as one run."""
    for start, end, low, high, basis, observations in series.segments():
        yield [DayPoint(start, low, high, basis, observations)]
        if end > start:
            after = start + dt.timedelta(days=1)
            yield [DayPoint(after, low, high, CARRIED, observations), DayPoint(end, low, high, CARRIED, observations)]


def _days(run: list[DayPoint]) -> str:
    first = run[0].date.isoformat()
    return first if len(run) == 1 or run[0].date == run[-1].date else f"{first} to {run[-1].date.isoformat()}"


def _basis(run: list[DayPoint]) -> str:
    if len(run) == 1:
        return run[0].basis
    days = (run[-1].date - run[0].date).days + 1
    return "carried" if days == 1 else f"carried ({days} days)"


def _table_header(result: Replay) -> str:
    as_of = result.as_of.isoformat() if result.as_of else "every report"
    known = show_time(result.known_at) if result.known_at else "the whole log"
    return f"as-of {as_of} · known-at {known} · log {result.log.entries} entries, head {result.log.head[:12]}\n"


def describe_observation(o: Observation) -> str:
    where = f" in {o.location}" if o.location else ""
    return (
        f"{o.id}: {o.monitor} on {o.incident}, reported {o.reported_on}: {o.figure} "
        f"{o.measure} ({o.category}{where}, {o.kind.value})"
    )


def describe_event(event: Event) -> str:
    """One line saying what an event records, for `log`, `append` and `import`."""
    if isinstance(event, Observation):
        return describe_observation(event)
    if isinstance(event, Correction):
        return f"correction of {event.observation_id}: {event.reason}"
    if isinstance(event, Retraction):
        return f"retraction of {event.observation_id}: {event.reason}"
    if isinstance(event, IncidentDescribed):
        return f"incident {event.slug}: {event.title}"
    return f"monitor {event.slug}: {event.full_name}"


_PLURAL = {
    "Correction": "corrections",
    "Retraction": "retractions",
    "IncidentDescribed": "incident descriptions",
    "MonitorDescribed": "monitor descriptions",
}


class Tally:
    """What a batch holds, counted as its events go by, for a summary that fits a screen.

    Each event on a line when there are few; else counts by type, incident
    and monitor; a dataset of fifty incidents and twenty monitors is a
    thousand pairs: then the counts go by incident alone, the largest first,
    and the rest are one line. Only the first few events are kept.
    """

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self.first: list[Event] = []
        self.count = 0
        self.pairs: dict[str, int] = {}
        self.by_incident: dict[str, int] = {}

    def counting(
        self, labelled: Iterable[tuple[str, Event] | SpooledRows]
    ) -> Iterator[tuple[str, Event] | SpooledRows]:
        for item in labelled:
            if type(item) is SpooledRows:
                self.add_rows(item)
            else:
                self.add(item[1])
            yield item

    def add_rows(self, rows: SpooledRows) -> None:
        """``add`` of each of a block of stored rows (counted by pair, not row by row)."""
        self.first += [rows.event(row) for row in range(min(len(rows), self.limit - len(self.first)))]
        self.count += len(rows)
        for (incident, monitor), n in rows.pairs.items():
            self.by_incident[incident] = self.by_incident.get(incident, 0) + n
            name = f"Observation of {incident} by {monitor}"
            self.pairs[name] = self.pairs.get(name, 0) + n

    def add(self, event: Event) -> None:
        self.count += 1
        if len(self.first) < self.limit:
            self.first.append(event)
        name = type(event).__name__
        if isinstance(event, Observation):
            self.by_incident[event.incident] = self.by_incident.get(event.incident, 0) + 1
            name = f"Observation of {event.incident} by {event.monitor}"
        self.pairs[name] = self.pairs.get(name, 0) + 1

    def lines(self) -> list[str]:
        limit = self.limit
        if self.count <= limit:
            return [describe_event(e) for e in self.first]
        if len(self.pairs) <= limit:
            return [f"{n:>8,}  {name}" for name, n in sorted(self.pairs.items())]
        others = [f"{n:>8,}  {_PLURAL.get(name, name)}" for name, n in sorted(self.pairs.items()) if name in _PLURAL]
        largest = sorted(self.by_incident.items(), key=lambda item: (-item[1], item[0]))
        listed = largest if len(largest) <= limit - len(others) else largest[: max(limit - len(others) - 1, 1)]
        lines = [f"{n:>8,}  Observations of {incident}" for incident, n in listed]
        if rest := largest[len(listed) :]:
            more = f"Observations of {len(rest):,} more incidents (`timeline log` lists each)"
            lines.append(f"{sum(n for _, n in rest):>8,}  {more}")
        return lines + others


def describe_change(before: Observation, after: Observation) -> str:
    """The fields a correction changes, as `field: old -> new`."""
    old, new = row_from_observation(before), row_from_observation(after)
    changed = [f"{k}: {old[k] or '(empty)'} -> {new[k] or '(empty)'}" for k in old if old[k] != new[k]]
    return "; ".join(changed)
