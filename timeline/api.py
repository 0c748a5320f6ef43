"""The Python surface: open a log, write to it, replay it, chart it, export it.

A notebook or a script should not need to know the stores, the codec or the
replay index. These few names do what the command line does, with the same
rules and the same errors (``InputError`` for bad input, other
``TimelineError`` for a broken log), and hand back plain values.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from events_log.admission import SLACK, unknown_name
from events_log.codec import parse_date
from events_log.envelope import Entry
from events_log.errors import InputError, ReadOnlyLogError, shown
from events_log.events import (
    EVENT_TYPES,
    Correction,
    Event,
    IncidentDescribed,
    Link,
    MonitorDescribed,
    Observation,
    Retraction,
)
from events_log.importers import observation_from_row, row_from_observation
from events_log.store import LogHead, Store
from events_log.stores import open_store, redact_url

from . import frames, output
from .bundled import bundled_log
from .index import REPLAY_INDEX
from .replay import Replay, Series
from .replay import replay as run_replay

if TYPE_CHECKING:
    import pandas
    import plotly.graph_objects
    import polars
    import pyarrow


def open_log(target: str | Path, *, create: bool = False) -> Log:
    """The log at ``target``: a JSON Lines path, ``sqlite:///path.db`` or ``postgresql://...``.

    A log that does not exist yet is refused unless ``create``: a typo in a
    path must not read as an empty log. ``"bundled"`` (or the bundled file's
    own path) opens the bundled dataset, read-only.
    """
    target = str(target)
    bundled = bundled_log()
    if target == "bundled" or ("://" not in target and Path(target).resolve() == bundled.resolve()):
        return Log(open_store(str(bundled), read_only=True))
    store = open_store(target)
    if not create and not store.exists():
        raise InputError(f"no log at {store.location} (pass create=True to start one)")
    store.keep(REPLAY_INDEX)  # every append keeps the replay index beside the log up to date
    return Log(store)


def open_bundled() -> Log:
    """The bundled dataset (four incidents, from 2012 to 2025), read-only."""
    return open_log("bundled")


@attrs.frozen
class Log:
    """One log, for reading and (unless it is the bundled dataset) appending."""

    store: Store = attrs.field(repr=False)

    @property
    def location(self) -> str:
        """Where the log is, as it may be shown: never with a password."""
        return redact_url(self.store.location)

    def __repr__(self) -> str:
        return f"Log({self.location!r})"

    @property
    def head(self) -> LogHead:
        """The number of entries and the hash of the last: together they name this exact log."""
        return self.store.head()

    def entries(self, start: int = 0) -> Iterator[Entry]:
        """Every entry from position ``start``, its event structured (as ``timeline log`` lists them)."""
        return self.store.entries(start)

    # -- writing ---------------------------------------------------------------

    def append(self, *events: Event, describe_new: bool = False, allow_duplicate: bool = False) -> list[Entry]:
        """Append ``events`` as one batch, all or nothing, and return their entries once durable.

        ``describe_new`` describes the incidents and monitors they name that the
        log does not know yet (slug as title); ``allow_duplicate`` takes a figure
        that repeats one in the log. Both are the command line's options.
        """
        batch = [_event(event, number) for number, event in enumerate(events, 1)]
        return self._writable().append(batch, describe_new=describe_new, allow_duplicate=allow_duplicate)

    def describe_incident(
        self,
        slug: str,
        title: str,
        *,
        place: str | None = None,
        start_date: dt.date | str | None = None,
        summary: str | None = None,
        links: tuple[Link, ...] = (),
    ) -> Entry:
        """Describe an incident (or describe it again: the new description replaces the old one whole)."""
        start = _located(lambda: parse_date(start_date) if start_date is not None else None, "start_date")
        event = IncidentDescribed(slug=slug, title=title, place=place, start_date=start, summary=summary, links=links)
        [entry] = self.append(event)
        return entry

    def describe_monitor(
        self, slug: str, full_name: str, *, description: str | None = None, url: str | None = None
    ) -> Entry:
        """Describe a monitor (or describe it again, replacing the old description whole)."""
        [entry] = self.append(MonitorDescribed(slug=slug, full_name=full_name, description=description, url=url))
        return entry

    def correct(
        self, observation_id: str, *, reason: str, expected_version: int | None = None, **changes: Any
    ) -> Entry:
        """Fix our record of an observation: give only the fields that change, named as the CSV columns.

        ``correct("obs-1", reason="typo", low=1383)``. None clears a field.
        As on the command line, a new low of an exact figure moves its high;
        the record is read and the fix appended under one lock, and with
        ``expected_version`` the fix is refused if the record changed since.
        """
        if not changes:
            raise InputError("give at least one field to change, e.g. low=1383")
        if "id" in changes:
            raise InputError("an observation's id cannot be corrected; retract it and append a new one", "id")
        given = {name: _cell(value) for name, value in changes.items()}

        def build(current: Observation, version: int) -> Correction:
            row = row_from_observation(current)
            unknown = sorted(set(given) - set(row))
            if unknown:
                raise InputError(f"no such field(s): {', '.join(unknown)}; the fields are: {', '.join(row)}")
            bound_moves = ("low" in given or "qualifier" in given) and "high" not in given
            if bound_moves and given.get("qualifier", row["qualifier"]) in ("exact", "about", "at_least"):
                row["high"] = ""
            row.update(given)
            replacement = observation_from_row(row)
            if replacement == current:
                raise InputError("these values are what the record already says; nothing to correct")
            return Correction(
                observation_id=observation_id, replacement=replacement, reason=reason, expected_version=version
            )

        return self._writable().fix(observation_id, build, expected_version=expected_version)

    def retract(self, observation_id: str, *, reason: str, expected_version: int | None = None) -> Entry:
        """Withdraw our record of an observation (it stays in the log, marked retracted)."""
        Retraction(observation_id=observation_id, reason=reason)  # bad text is refused before the lock
        return self._writable().fix(
            observation_id,
            lambda current, version: Retraction(observation_id=observation_id, reason=reason, expected_version=version),
            expected_version=expected_version,
        )

    def _writable(self) -> Store:
        if self.store.read_only:
            raise ReadOnlyLogError(f"{self.location} is read-only (the bundled dataset); open a log of your own")
        return self.store

    # -- reading ---------------------------------------------------------------

    def replay(
        self,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | dt.date | str | None = None,
        *,
        incident: str | None = None,
        monitor: str | None = None,
        days: str = "every",
    ) -> Tolls:
        """Each monitor's per-day running toll, as ``timeline replay`` with the same options.

        ``as_of``: only figures reported on or before that date. ``known_at``:
        only what the log held then (a date means its end, UTC; a naive
        timestamp is UTC). ``incident``/``monitor``: only those series.
        ``days="reports"``: the tables and texts made from it leave out the
        carried days, as ``--days reports``; ``--format`` is ``Tolls.to_text``.
        """
        reports_only = _reports_only(days)  # refused before the replay, as the command line refuses it
        try:
            day, moment = as_of_date(as_of), known_at_time(known_at)
            result = run_replay(self.store, as_of=day, known_at=moment, incident=incident, monitor=monitor)
        except InputError as exc:
            # Replay names its filters as the command line's options; here they are arguments.
            if exc.where in ("--incident", "--monitor"):
                raise InputError(exc.message, exc.where.removeprefix("--")) from None
            raise
        return Tolls(result, reports_only)

    def figure(
        self,
        incident: str,
        as_of: dt.date | str | None = None,
        known_at: dt.datetime | dt.date | str | None = None,
        *,
        measure: str | None = None,
        category: str | None = None,
    ) -> plotly.graph_objects.Figure:
        """The report page's chart of ``incident`` (see ``Tolls.figure``)."""
        return self.replay(as_of, known_at).figure(incident, measure=measure, category=category)


@attrs.frozen
class Tolls:
    """A replay's result: the series, what log and times they come from, and their other shapes."""

    result: Replay = attrs.field(repr=False)
    reports_only: bool = False  # the replay's ``days="reports"``: what its tables and texts leave out by default

    def __repr__(self) -> str:
        r = self.result
        return (
            f"Tolls({len(r.series)} series, as_of={r.as_of}, known_at={r.known_at}, "
            f"log of {r.log.entries} entries, head {r.log.head[:12]})"
        )

    @property
    def series(self) -> tuple[Series, ...]:
        return self.result.series

    @property
    def as_of(self) -> dt.date | None:
        return self.result.as_of

    @property
    def known_at(self) -> dt.datetime | None:
        return self.result.known_at

    @property
    def log(self) -> LogHead:
        return self.result.log

    @property
    def incidents(self) -> Mapping[str, IncidentDescribed]:
        return self.result.incidents

    @property
    def monitors(self) -> Mapping[str, MonitorDescribed]:
        return self.result.monitors

    def observations(self, incident: str | None = None) -> list[Observation]:
        """The effective observations (corrections applied, retractions left out) in log order."""
        return list(self.result.observations(incident))

    def to_arrow(self, days: str | None = None) -> pyarrow.Table:
        """One row per series and day, the columns of ``timeline replay --format csv``, typed.

        ``days="reports"`` leaves out the carried days, as ``--days reports``
        (default: the ``days`` the replay was asked for).
        """
        return frames.to_arrow(self.result.series, reports_only=self._reports_only(days))

    def to_pandas(self, days: str | None = None) -> pandas.DataFrame:
        """The Arrow table as a pandas DataFrame backed by the same Arrow buffers (no copy)."""
        return frames.to_pandas(self.to_arrow(days))

    def to_polars(self, days: str | None = None) -> polars.DataFrame:
        """The Arrow table as a polars DataFrame over the same buffers (no copy)."""
        return frames.to_polars(self.to_arrow(days))

    def to_text(self, format: str = "table", days: str | None = None) -> str:
        """What ``timeline replay --format FORMAT`` prints: ``table``, ``csv`` or ``json``.

        Made by the command line's own writers, so the two never differ;
        ``days`` as for ``to_arrow`` (the table always shows runs of days).
        """
        reports_only = self._reports_only(days)
        if format == "table":
            return output.render_table(self.result)
        if format == "csv":
            return "".join(output.csv_chunks(self.result.series, reports_only))
        if format == "json":
            document = io.BytesIO()
            output.write_json(self.result, document, reports_only)
            return document.getvalue().decode()
        raise InputError(f"expected 'table', 'csv' or 'json', got {shown(format)}", "format")

    def _reports_only(self, days: str | None) -> bool:
        return self.reports_only if days is None else _reports_only(days)

    def figure(
        self, incident: str, *, measure: str | None = None, category: str | None = None
    ) -> plotly.graph_objects.Figure:
        """The chart the report page draws for ``incident``: a Plotly figure to show or restyle.

        Without ``measure`` and ``category``, the page's first chart (the most
        reported measure and category, killed first).
        """
        import plotly.graph_objects as go

        from reports.build import _trimmed
        from reports.figures import monitor_colours, view_figure, views_of

        if incident not in self.result.incidents:
            raise InputError(unknown_name("incident", incident, self.result.incidents), "incident")
        chosen = [s for s in self.result.series if s.incident == incident]
        if not chosen:
            raise InputError(f"no observations of incident {shown(incident)} in this replay", "incident")
        # Carried no further past the last report than the page carries them.
        span = {
            "first": min(s.first for s in chosen).isoformat(),
            "last": max(s.last_report.date for s in chosen).isoformat(),
        }
        views = views_of(_trimmed(chosen, span))
        wanted = [v for v in views if measure in (None, v.measure) and category in (None, v.category)]
        if not wanted:
            offered = ", ".join(f"{v.measure}/{v.category}" for v in views)
            raise InputError(
                f"incident {shown(incident)} has no series of {measure or 'any measure'}/{category or 'any category'}"
                f"; it has {offered}",
                "category" if any(v.measure == measure for v in views) else "measure",
            )
        colours = monitor_colours(s.monitor for s in self.result.series)
        return go.Figure(view_figure(self.result, wanted[0], colours))


def _event(value: Any, number: int) -> Event:
    """``value`` if it is an event; the stores only ever see events, and would fail on anything else unnamed."""
    if isinstance(value, tuple(EVENT_TYPES.values())):
        return value
    hint = "; pass the events as arguments, append(*events)" if isinstance(value, list | tuple) else ""
    raise InputError(f"expected an event ({', '.join(EVENT_TYPES)}), got {shown(value)}{hint}", f"event {number}")


def _reports_only(days: str) -> bool:
    if days not in ("every", "reports"):
        raise InputError(f"expected 'every' or 'reports', got {shown(days)}", "days")
    return days == "reports"


def as_of_date(value: dt.date | str | None) -> dt.date | None:
    """An as-of date: a calendar date not after today (UTC) plus a day of slack."""
    if value is None:
        return None
    day = _located(lambda: parse_date(value), "as_of")
    latest = dt.datetime.now(dt.UTC).date() + SLACK
    if day > latest:
        raise InputError(f"{day} is in the future; nothing can have been reported after {latest}", "as_of")
    return day


def known_at_time(value: dt.datetime | dt.date | str | None) -> dt.datetime | None:
    """A known-at time: a date is the end of that day (UTC); a timestamp without a zone is UTC."""
    if value is None or isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.max, dt.UTC)
    elif isinstance(value, str):
        try:
            return dt.datetime.combine(parse_date(value), dt.time.max, dt.UTC)
        except ValueError:
            pass
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"expected a date or an ISO timestamp, got {shown(value)}", "known_at") from None
    else:
        raise InputError(f"expected a date or a timestamp, got {shown(value)}", "known_at")
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise InputError(f"{shown(str(value))} is before the year 1 in UTC", "known_at") from None


def _cell(value: Any) -> str:
    """A Python value as the CSV cell the importer reads: None clears, dates are ISO."""
    if value is None:
        return ""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        raise InputError(f"expected text, a number or a date, got {value}")
    return str(value)


def _located(build, where: str):
    try:
        return build()
    except InputError as exc:
        raise exc.located(where) from None
    except ValueError as exc:
        raise InputError(str(exc), where) from None
