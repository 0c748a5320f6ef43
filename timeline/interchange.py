"""Exchange with the field's formats: Frictionless Data Packages and HXL-tagged CSV.

A data package carries a replay whole: the series as ``timeline replay
--format csv`` writes them, the effective observations with their sources
(in the columns ``timeline import`` reads), the incidents and monitors,
and a ``datapackage.json`` saying which log (entries, head) and which
as-of and known-at they come from. Its observation and description files
are written verbatim, so that importing the package gives back the same
series; only the HXL file, made for spreadsheets and HDX, guards its cells
against formula injection.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import attrs
import orjson

from events_log.codec import parse_date
from events_log.errors import InputError, shown
from events_log.events import Event, IncidentDescribed, Link, MonitorDescribed, Observation
from events_log.importers import COLUMNS, read_csv, row_from_observation
from events_log.store import Store
from events_log.stores import redact_url

from .output import CSV_COLUMNS, csv_chunks, safe_cell
from .replay import Replay

PACKAGE = "datapackage.json"
FILES = {
    "series": "series.csv",
    "observations": "observations.csv",
    "incidents": "incidents.csv",
    "monitors": "monitors.csv",
}
INCIDENT_COLUMNS = ("slug", "title", "place", "start_date", "summary", "links")
MONITOR_COLUMNS = ("slug", "full_name", "description", "url")

_TEXT = {"type": "string"}
_NAME = {"type": "string", "constraints": {"required": True}}
_COUNT = {"type": "integer", "constraints": {"minimum": 0}}
_DATE = {"type": "date"}

_SERIES_FIELDS = {
    "incident": _NAME,
    "monitor": _NAME,
    "measure": _NAME,
    "category": _NAME,
    "location": _TEXT,
    "date": {"type": "date", "constraints": {"required": True}},
    "low": {"type": "integer", "constraints": {"required": True, "minimum": 0}},
    "high": {**_COUNT, "description": "Empty for an open-ended figure (at least the low)."},
    "basis": {"type": "string", "constraints": {"required": True, "enum": ["reported", "derived", "carried"]}},
    "observations": {"type": "string", "description": "Ids of the observations the day rests on, space-separated."},
}
_OBSERVATION_FIELDS = {
    "id": _NAME,
    "incident": _NAME,
    "monitor": _NAME,
    "reported_on": {"type": "date", "constraints": {"required": True}},
    "period_start": _DATE,
    "period_end": _DATE,
    "measure": _NAME,
    "category": _NAME,
    "location": _TEXT,
    "kind": {"type": "string", "constraints": {"required": True, "enum": ["cumulative", "increment"]}},
    "low": {"type": "integer", "constraints": {"required": True, "minimum": 0}},
    "high": _COUNT,
    "qualifier": {
        "type": "string",
        "constraints": {"required": True, "enum": ["exact", "about", "at_least", "at_most", "range"]},
    },
    "source_url": {"type": "string", "format": "uri"},
    "source_title": _NAME,
    "quote": _TEXT,
    "note": _TEXT,
}
_INCIDENT_FIELDS = {
    "slug": _NAME,
    "title": _NAME,
    "place": _TEXT,
    "start_date": _DATE,
    "summary": _TEXT,
    "links": {"type": "array", "description": "JSON list of {title, url} documents about the incident."},
}
_MONITOR_FIELDS = {"slug": _NAME, "full_name": _NAME, "description": _TEXT, "url": {"type": "string", "format": "uri"}}


def _schema(fields: dict[str, dict], primary: list[str], foreign: Iterable[tuple[str, str]] = ()) -> dict:
    return {
        "fields": [{"name": name, **spec} for name, spec in fields.items()],
        "missingValues": [""],
        "primaryKey": primary,
        "foreignKeys": [
            {"fields": field, "reference": {"resource": resource, "fields": "slug"}} for field, resource in foreign
        ],
    }


def _resource(name: str, description: str, schema: dict) -> dict:
    return {
        "name": name,
        "path": FILES[name],
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "description": description,
        "schema": schema,
    }


def write_datapackage(
    result: Replay,
    out: Path,
    *,
    location: str,
    licence: str | None = None,
    incident: str | None = None,
    monitor: str | None = None,
) -> Path:
    """Write the package into folder ``out`` and return its ``datapackage.json``.

    ``location`` names the log in the metadata (passwords removed here too).
    ``incident`` and ``monitor`` are the filters the replay was made with:
    the package then describes only the incident or monitor it is about.
    """
    out.mkdir(parents=True, exist_ok=True)
    observations = list(result.observations())
    incidents = [d for slug, d in sorted(result.incidents.items()) if incident in (None, slug)]
    monitors = [d for slug, d in sorted(result.monitors.items()) if monitor in (None, slug)]
    # The files are written whole before the descriptor that names them: a package that is
    # cut off midway has no datapackage.json and reads as no package at all.
    _write_text(out / FILES["series"], "".join(csv_chunks(result.series)))
    _write_rows(out / FILES["observations"], COLUMNS, (row_from_observation(o) for o in observations))
    _write_rows(out / FILES["incidents"], INCIDENT_COLUMNS, (_incident_row(d) for d in incidents))
    _write_rows(out / FILES["monitors"], MONITOR_COLUMNS, (_monitor_row(d) for d in monitors))
    names = [("incident", "incidents"), ("monitor", "monitors")]
    descriptor = {
        "profile": "tabular-data-package",
        "name": "toll-timeline",
        "title": "Casualty figures as published, replayed into per-day tolls per monitor",
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        **({"licenses": [{"name": licence, "title": licence}]} if licence else {}),
        "toll_timeline": {
            "log": {"location": redact_url(location), "entries": result.log.entries, "head": result.log.head},
            "as_of": result.as_of.isoformat() if result.as_of else None,
            "known_at": result.known_at.isoformat().replace("+00:00", "Z") if result.known_at else None,
        },
        "resources": [
            _resource(
                "series",
                "Each monitor's running toll, one row per series and day (timeline replay --format csv).",
                _schema(_SERIES_FIELDS, list(CSV_COLUMNS[:6]), names),
            ),
            _resource(
                "observations",
                "Every figure as published, with its source, after our corrections; retracted ones left out. "
                "`timeline import` reads this file (or the whole package) back.",
                _schema(_OBSERVATION_FIELDS, ["id"], names),
            ),
            _resource("incidents", "What each incident is.", _schema(_INCIDENT_FIELDS, ["slug"])),
            _resource("monitors", "Who each monitor is.", _schema(_MONITOR_FIELDS, ["slug"])),
        ],
    }
    descriptor_path = out / PACKAGE
    _write_text(descriptor_path, orjson.dumps(descriptor, option=orjson.OPT_INDENT_2).decode() + "\n")
    return descriptor_path


def _incident_row(d: IncidentDescribed) -> dict[str, str]:
    links = [{"title": link.title, **({"url": link.url} if link.url else {})} for link in d.links]
    return {
        "slug": d.slug,
        "title": d.title,
        "place": d.place or "",
        "start_date": d.start_date.isoformat() if d.start_date else "",
        "summary": d.summary or "",
        "links": orjson.dumps(links).decode() if links else "",
    }


def _monitor_row(d: MonitorDescribed) -> dict[str, str]:
    return {"slug": d.slug, "full_name": d.full_name, "description": d.description or "", "url": d.url or ""}


def _write_rows(path: Path, columns: Iterable[str], rows: Iterable[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(path, buffer.getvalue())


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file and rename: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


# -- reading a package back --------------------------------------------------------------


def read_datapackage(path: Path, store: Store) -> list[tuple[str, Event]]:
    """The events that load a package into ``store``: the descriptions it lacks, then the observations.

    ``path`` is the package's folder or its ``datapackage.json``. Only the
    package's own files are read, by the names this module writes.
    """
    folder = path.parent if path.name == PACKAGE else path
    descriptor_path = folder / PACKAGE
    try:
        descriptor = orjson.loads(descriptor_path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"no {PACKAGE} in this folder; is it a data package?", str(folder)) from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", str(descriptor_path)) from None
    resources = descriptor.get("resources") if isinstance(descriptor, dict) else None
    listed = resources if isinstance(resources, list) else []
    paths = {r.get("name"): r.get("path") for r in listed if isinstance(r, dict)}
    for name in ("observations", "incidents", "monitors"):
        if paths.get(name) != FILES[name]:
            raise InputError(
                f"expected a resource {name!r} at {FILES[name]} (a package written by `timeline export`)",
                str(descriptor_path),
            )
    known = store.names()
    events: list[tuple[str, Event]] = []
    for label, event in _descriptions(folder / FILES["incidents"], "incident"):
        if ("incident", event.slug) not in known:
            events.append((label, event))
    for label, event in _descriptions(folder / FILES["monitors"], "monitor"):
        if ("monitor", event.slug) not in known:
            events.append((label, event))
    observations = folder / FILES["observations"]
    try:
        events += _verbatim(observations, read_csv(observations))
    except InputError as exc:
        if exc.message != "no rows below the header":  # a package of descriptions alone is fine
            raise
    if not events:
        raise InputError("nothing to import: no observations, and every incident and monitor is described", str(folder))
    return events


def _verbatim(path: Path, labelled: list[tuple[str, Observation]]) -> list[tuple[str, Event]]:
    """The observations with their texts as written: ``read_csv`` trims every cell, right for names,
    dates and numbers, but a quote or a note is the publisher's and ours to keep whole."""
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
    rows = [row for row in reader if any(cell.strip() for cell in row.values() if isinstance(cell, str))]
    kept: list[tuple[str, Event]] = []
    for (label, o), row in zip(labelled, rows, strict=True):
        try:
            source = attrs.evolve(o.source, title=row["source_title"], quote=row["quote"] or None)
            observation = attrs.evolve(o, source=source, location=row["location"] or None, note=row["note"] or None)
            kept.append((label, observation))
        except InputError as exc:
            raise exc.located(label) from None
    return kept


def _descriptions(path: Path, kind: str) -> list[tuple[str, Event]]:
    columns = INCIDENT_COLUMNS if kind == "incident" else MONITOR_COLUMNS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", str(path)) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != columns:
        raise InputError(f"expected the columns {','.join(columns)}", f"{path}:1")
    found = []
    for row in reader:
        label = f"{path}:{reader.line_num}"
        if None in row or None in row.values():
            raise InputError(f"the row does not have the {len(columns)} cells of the header", label)
        try:
            found.append((label, _incident(row) if kind == "incident" else _monitor(row)))
        except InputError as exc:
            raise exc.located(label) from None
        except ValueError as exc:
            raise InputError(str(exc), label) from None
    return found


def _incident(row: dict[str, str]) -> IncidentDescribed:
    links = orjson.loads(row["links"]) if row["links"] else []
    if not isinstance(links, list) or not all(isinstance(link, dict) for link in links):
        raise InputError(f"expected a JSON list of {{title, url}}, got {shown(row['links'])}", "links")
    return IncidentDescribed(
        slug=row["slug"],
        title=row["title"],
        place=row["place"] or None,
        start_date=parse_date(row["start_date"]) if row["start_date"] else None,
        summary=row["summary"] or None,
        links=tuple(Link(title=link.get("title"), url=link.get("url")) for link in links),
    )


def _monitor(row: dict[str, str]) -> MonitorDescribed:
    return MonitorDescribed(
        slug=row["slug"], full_name=row["full_name"], description=row["description"] or None, url=row["url"] or None
    )


# -- HXL -----------------------------------------------------------------------------------------

_HXL_BEFORE = (
    ("id", "Observation", "#meta+id"),
    ("incident", "Incident", "#event+code"),
    ("incident_title", "Incident title", "#event+name"),
    ("monitor", "Monitor", "#org+code"),
    ("monitor_name", "Monitor name", "#org+name"),
    ("reported_on", "Reported on", "#date+reported"),
    ("period_start", "Period start", "#date+start"),
    ("period_end", "Period end", "#date+end"),
    ("location", "Location", "#adm1+name"),
    ("category", "Who is counted", "#affected+type"),
    ("kind", "Kind", "#meta+kind"),
    ("figure", "Figure as published", "#meta+figure"),
    ("qualifier", "Qualifier", "#meta+qualifier"),
)
_HXL_AFTER = (
    ("source_title", "Source", "#meta+source"),
    ("source_url", "Source URL", "#meta+url"),
    ("quote", "Quote", "#meta+quote"),
)


def write_hxl(result: Replay, out: IO[str]) -> None:
    """The effective observations as HXL-tagged CSV, a row each, for HDX and spreadsheets.

    Each measure has its own pair of columns, ``#affected+MEASURE`` (the
    figure's low: the published number, or the floor of a range) and
    ``#affected+MEASURE+max`` (its high; empty when open-ended), so that a
    filter on ``#affected+killed`` finds the death tolls. Every text cell is
    guarded against spreadsheet formulas.
    """
    observations = list(result.observations())
    measures = sorted({o.measure for o in observations}, key=lambda m: (m != "killed", m))
    header = [label for _, label, _ in _HXL_BEFORE]
    tags = [tag for _, _, tag in _HXL_BEFORE]
    for m in measures:
        header += [m.replace("_", " "), f"{m.replace('_', ' ')} (high)"]
        tags += [f"#affected+{m}", f"#affected+{m}+max"]
    header += [label for _, label, _ in _HXL_AFTER]
    tags += [tag for _, _, tag in _HXL_AFTER]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(tags)
    for o in observations:
        row = row_from_observation(o)
        incident, monitor = result.incidents.get(o.incident), result.monitors.get(o.monitor)
        row["incident_title"] = incident.title if incident else ""
        row["monitor_name"] = monitor.full_name if monitor else ""
        row["figure"] = str(o.figure)
        cells = [row[key] for key, _, _ in _HXL_BEFORE]
        for m in measures:
            cells += [row["low"], row["high"]] if o.measure == m else ["", ""]
        cells += [row[key] for key, _, _ in _HXL_AFTER]
        writer.writerow([safe_cell(cell) for cell in cells])


def is_package(path: Path) -> bool:
    """Whether ``timeline import`` was given a data package rather than a file of events."""
    return path.is_dir() or path.name == PACKAGE
