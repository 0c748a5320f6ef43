"""Build the HTML report of a replay: an index of incidents and one page per incident.

Pages are rendered by Jinja2 with autoescaping, so every text that came
from the log (titles, quotes, places, notes) is escaped in the HTML; the
data the page's script reads is embedded as JSON with ``<``, ``>`` and
``&`` escaped, so no quote can close the script element around it, and
its bulk (charts and the table of observations) as deflated base64, which
holds no markup at all; the script sets every text from it as text.
By default the pages share one local ``plotly.min.js``; a single-file
report inlines it. Nothing needs the network to be viewed.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import multiprocessing
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import attrs
import jinja2
import orjson
from isal import isal_zlib

from events_log.envelope import show_time
from events_log.store import Store
from timeline.output import csv_chunks
from timeline.replay import Replay, Series

from . import sources
from .figures import busy_weeks, latest_items, monitor_colours, points_of, sparkline, view_figure, views_of
from .table import Table, observation_table
from .words import Worded, figure_words, sum_words

PLOTLY_FILE = "plotly.min.js"
# Pages draw only scatter traces: plotly.js's basic bundle (scatter, bar, pie; npm plotly.js-basic-dist-min,
# the plotly.js version the plotly package ships, MIT, see plotly-basic.LICENSE) is a quarter of the full
# bundle's 4.8 MB, and Chromium loads it in a quarter of the time (1.1 s before the first chart).
PLOTLY_ASSET = "plotly-basic.min.js"
MANIFEST = "report-manifest.json"


@attrs.frozen
class Report:
    """Where a report was written and what it holds."""

    folder: Path
    index: Path
    pages: tuple[Path, ...]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _asset(name: str) -> str:
    return (resources.files("reports") / "assets" / name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element whatever strings it holds."""
    text = orjson.dumps(data).decode()
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(raw, escaped)
    return text


def _version() -> str:
    try:
        return metadata.version("toll-timeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def _meta(result: Replay, command: str, verify_command: str | None = None) -> dict[str, Any]:
    if result.known_at is not None:
        known_at = show_time(result.known_at)
    elif result.last_recorded_at is not None:
        known_at = f"the whole log (last entry recorded {result.last_recorded_at:%Y-%m-%d %H:%M:%S}Z)"
    else:
        known_at = "the whole log (empty)"
    return {
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "known_at": known_at,
        "entries": result.log.entries,
        "head": result.log.head,
        "version": _version(),
        "command": command,
        "verify_command": verify_command,
    }


def build_report(
    result: Replay,
    out: Path,
    *,
    command: str,
    single_file: bool = False,
    verify_command: str | None = None,
    progress: Callable[[Iterable[dict], int], Iterable[dict]] | None = None,
    reopen: Callable[[], Store] | None = None,
) -> Report:
    """Write ``index.html`` and one page per incident into ``out`` and return where they are.

    ``verify_command`` proves that a log still extends what the pages were built from: every page prints it.
    ``progress`` wraps the loop over incidents (a progress bar on a terminal).
    ``reopen`` opens the replay's log again: given it, a large report writes
    its pages in a pool of processes, each reading through a store of its own
    (a store's connections must never be shared by two processes).
    The report owns only the files it lists in its manifest: files of an
    earlier build that this one does not write again (the page of an incident
    since retracted) are removed, and nothing else in ``out`` is touched.
    """
    # The pages are made of millions of small lists and strings and no cycles: the cycle collector
    # would walk them again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(result, out, command, single_file, verify_command, progress, reopen)
    finally:
        if collecting:
            gc.enable()


def _build(
    result: Replay,
    out: Path,
    command: str,
    single_file: bool,
    verify_command: str | None,
    progress: Callable[[Iterable[dict], int], Iterable[dict]] | None,
    reopen: Callable[[], Store] | None,
) -> Report:
    out.mkdir(parents=True, exist_ok=True)
    written_before = _manifest(out)
    env = _environment()
    base = {
        "meta": _meta(result, command, verify_command),
        "css": _asset("report.css"),
        "plotly_inline": _asset(PLOTLY_ASSET) if single_file else None,
        "plotly_src": None if single_file else PLOTLY_FILE,
        "home": "index.html",
    }
    written = [] if single_file else [PLOTLY_FILE]
    if not single_file:
        (out / PLOTLY_FILE).write_text(_asset(PLOTLY_ASSET), encoding="utf-8")
    by_incident: dict[str, list[Series]] = {}
    for series in result.series:
        by_incident.setdefault(series.incident, []).append(series)
    order = _incident_order(result, by_incident)
    pages = _Pages(env, base, result, by_incident, monitor_colours(s.monitor for s in result.series), out,
                   single_file, reopen)  # fmt: skip
    cards = list(progress(pages.written(order), len(order)) if progress else pages.written(order))
    for slug in order:
        written += [pages.name(slug)] if single_file else [pages.name(slug), f"{slug}-series.csv"]
    index = out / "index.html"
    index.write_text(
        env.get_template("index.html").render(**{**base, "plotly_inline": None, "plotly_src": None}, incidents=cards),
        encoding="utf-8",
    )
    written.append(index.name)
    for name in sorted(written_before - set(written)):
        (out / name).unlink(missing_ok=True)
    (out / MANIFEST).write_bytes(orjson.dumps({"files": written}, option=orjson.OPT_INDENT_2))
    return Report(out, index, tuple(out / pages.name(slug) for slug in order))


# A large report writes its pages in a pool of forked processes, one per core: each page is made from the
# replay, which the processes share as the parent left it, and its records, which each reads through a
# store of its own. Below this many observations, starting the pool costs more than it saves.
IN_PARALLEL_FROM = 50_000
# Each process holds a page of its own (about 130 MB at 15,000 observations a page) besides what it shares:
# memory grows with the processes, and past a few the replay before them takes most of the time anyway.
MOST_PROCESSES = 4


@attrs.frozen
class _Pages:
    """What every incident page of one build is made from."""

    env: jinja2.Environment
    base: dict
    result: Replay
    by_incident: dict[str, list[Series]]
    colours: dict[str, str]
    out: Path
    single_file: bool
    reopen: Callable[[], Store] | None

    @staticmethod
    def name(slug: str) -> str:
        return f"incident-{slug}.html"

    def written(self, order: Sequence[str]) -> Iterator[dict]:
        """Each incident's index card, in ``order``, once its page is written."""
        processes = min(len(order), _cores(), MOST_PROCESSES)
        observations = sum(count for count, _ in self.result.tallies("incident").values())
        forks = "fork" in multiprocessing.get_all_start_methods()  # not on Windows
        if self.reopen is None or not forks or processes < 2 or observations < IN_PARALLEL_FROM:
            yield from map(self.page, order)
            return
        self.env.get_template("incident.html")  # compiled once, before the processes part
        global _forked
        _forked = self
        # A process that dies (killed, out of memory) fails the build (BrokenProcessPool) rather than hanging it.
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"), initializer=_reopen)
        try:
            yield from pool.map(_page_in_pool, order)
        finally:
            pool.shutdown(cancel_futures=True)  # a failed page stops the pages not yet begun
            _forked = None

    def page(self, slug: str) -> dict:
        """Write an incident's page (and its CSV download) and return its index card."""
        series = self.by_incident[slug]
        table = observation_table(sources.records(self.result, slug))
        incident = _incident_info(self.result, slug, series, table)
        (self.out / self.name(slug)).write_text(
            _incident_page(self.env, self.base, self.result, incident, series, table, self.colours, self.out,
                           self.single_file),
            encoding="utf-8",
        )  # fmt: skip
        return _card(self.result, incident, _trimmed(series, incident), table.worded, self.colours,
                     self.name(slug))  # fmt: skip


def _cores() -> int:
    """The cores this process may run on (Linux knows its affinity; elsewhere, the machine's cores)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# The build a pool's processes work for: set before they are forked, so that they inherit it, never pickled.
_forked: _Pages | None = None


def _reopen() -> None:
    """A pool's process starts by opening the log again, for a store of its own."""
    global _forked
    assert _forked is not None and _forked.reopen is not None, "set before the pool forks"
    _forked = attrs.evolve(_forked, result=attrs.evolve(_forked.result, store=_forked.reopen()))


def _page_in_pool(slug: str) -> dict:
    assert _forked is not None, "set before the pool forks"
    return _forked.page(slug)


def _manifest(out: Path) -> set[str]:
    """The plain file names an earlier build of ``out`` wrote (nothing outside ``out``, whatever it says)."""
    try:
        files = orjson.loads((out / MANIFEST).read_bytes())["files"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return set()
    return {name for name in files if isinstance(name, str) and _OURS.fullmatch(name)}


_OURS = re.compile(r"index\.html|plotly\.min\.js|incident-[^/\\]+\.html|[^/\\]+-series\.csv")


def _trimmed(series: Sequence[Series], incident: dict) -> list[Series]:
    """Series carried no further than their incident's own span past their last report.

    Replay carries each series to the as-of date, as the rule says; a chart
    of a 2012 massacre drawn to 2025 would be mostly an invented flat line.
    """
    span = (dt.date.fromisoformat(incident["last"]) - dt.date.fromisoformat(incident["first"])).days
    kept = []
    for s in series:
        end = s.last_report.date.toordinal() + span  # as an ordinal: a date this late may not exist
        kept.append(s if s.last.toordinal() <= end else s.until(dt.date.fromordinal(end)))
    return kept


def _incident_order(result: Replay, by_incident: dict[str, list[Series]]) -> list[str]:
    """Most recent incident first."""

    def start(slug: str) -> dt.date:
        described = result.incidents.get(slug)
        return described.start_date if described and described.start_date else min(s.first for s in by_incident[slug])

    return sorted(by_incident, key=lambda slug: (start(slug), slug), reverse=True)


def _incident_info(result: Replay, slug: str, series: Sequence[Series], table: Table) -> dict:
    """What the index and the page say of an incident."""
    described = result.incidents.get(slug)
    return {
        "slug": slug,
        "title": described.title if described else slug,
        "place": (described.place or "") if described else "",
        "start": described.start_date.isoformat() if described and described.start_date else None,
        "summary": described.summary if described else None,
        "first": table.days[0],
        "last": table.days[-1],
        "observations": len(table.columns["id"]),
        "monitors": sorted({s.monitor for s in series}, key=str.casefold),
    }


def _card(
    result: Replay,
    incident: dict,
    series: Sequence[Series],
    worded: Worded,
    colours: dict[str, str],
    href: str,
) -> dict:
    """The index entry of an incident: per monitor, the latest figure of each incident-wide series.

    ``worded`` says which of the incident's figures were worded "about" or "at most".
    """
    rows = []
    for view in views_of(series):
        for s in view.series:
            last_report, latest = s.last_report, s.latest
            rows.append(
                {
                    "monitor": s.monitor,
                    "full_name": result.monitors[s.monitor].full_name if s.monitor in result.monitors else s.monitor,
                    "colour": colours[s.monitor],
                    "what": view.label,
                    "figure": sum_words(latest.low, latest.high, worded.among(latest.observations)),
                    "date": last_report.date.isoformat(),
                    "spark": sparkline(s),
                }
            )
    rows.sort(key=lambda r: (r["monitor"].casefold(), r["monitor"]))
    local_only = sum(1 for s in series if s.location is not None)
    return {**incident, "href": href, "rows": rows, "local_only": local_only}


def _incident_page(
    env: jinja2.Environment,
    base: dict,
    result: Replay,
    incident: dict,
    series: Sequence[Series],
    table: Table,
    colours: dict[str, str],
    out: Path,
    single_file: bool,
) -> str:
    """An incident's page."""
    csv_text = _csv(series)
    series = _trimmed(series, incident)
    points = {s.key: points_of(result, s, table.worded) for s in series}
    views = views_of(series)
    view_data = []
    for view in views:
        view_data.append(
            {
                "label": view.label,
                "figure": view_figure(result, view, colours, points),
                "busy": busy_weeks(view.series),
                "places": latest_items(result, view.locations, colours, points) if view.locations else None,
            }
        )
    headline = latest_items(result, [s for v in views for s in v.series], colours, points)
    report_dates = list(table.days)
    if result.as_of is not None and (not report_dates or report_dates[-1] < result.as_of.isoformat()):
        report_dates.append(result.as_of.isoformat())
    # Charts, hovers, the sources panel and the table all read each observation from ``observations``.
    packed = {"views": view_data, "headline": headline, "observations": table.columns}
    data = {"reportDates": report_dates, "colours": colours, "packed": pack(packed)}
    csv_name = f"{incident['slug']}-series.csv"
    if single_file:
        csv_href = "data:text/csv;charset=utf-8," + urllib.parse.quote(csv_text)
    else:
        (out / csv_name).write_text(csv_text, encoding="utf-8")
        csv_href = csv_name
    flags = [
        {
            "kind": kind,
            "date": day,
            "series": " · ".join(x for x in (s.monitor, s.measure, s.category, s.location) if x),
            "detail": detail,
        }
        for s in series
        for day, kind, detail in points[s.key].flags
    ]
    return env.get_template("incident.html").render(
        **base,
        incident=incident,
        views=[{"label": v.label} for v in views],
        report_dates=report_dates,
        flags=sorted(flags, key=lambda f: (f["date"], f["series"])),
        observation_count=len(table.columns["id"]),
        monitors=[_monitor(result, slug, colours) for slug in incident["monitors"]],
        retracted=_retracted(result, incident["slug"]),
        csv_href=csv_href,
        csv_name=csv_name,
        data_json=script_json(data),
        js=_asset("report.js"),
    )


def pack(data: Any) -> str:
    """JSON, deflated and in base64: the page inflates it with the browser's own DecompressionStream.

    A page holds every figure of an incident with its quote and source;
    quotes and links repeat their wording from report to report, so the
    deflated text is a tenth of the size. It is deflated by ISA-L (``isal``),
    the same format as zlib's in a quarter of the time (6 ms instead of 24 ms
    for the 6.5 MB of JSON of a page of 14,600 figures, and a little smaller
    than zlib's level 1); its level 1 gains nearly all that deflating can.
    """
    return base64.b64encode(isal_zlib.compress(orjson.dumps(data), 1)).decode("ascii")


def _retracted(result: Replay, slug: str) -> list[dict[str, Any]]:
    """The figures withdrawn from this incident: not drawn, but listed with why and when."""
    return [
        {
            "id": o["id"],
            "reported_on": o["reported_on"],
            "monitor": o["monitor"],
            "figure": _figure(o),
            "what": f"{o['measure'].replace('_', ' ')} · {o['category'].replace('_', ' ')}",
            "location": o["location"],
            "reason": retraction.reason,
            "recorded": recorded[:10],
        }
        for o, retraction, recorded in result.retracted(slug)
    ]


def _monitor(result: Replay, slug: str, colours: dict[str, str]) -> dict[str, Any]:
    described = result.monitors.get(slug)
    return {
        "slug": slug,
        "colour": colours[slug],
        "full_name": described.full_name if described else None,
        "description": described.description if described else None,
        "url": described.url if described else None,
    }


def _figure(o: dict[str, Any]) -> str:
    figure = o["figure"]
    return figure_words(figure["low"], figure["high"], figure["qualifier"])


def _csv(series: Sequence[Series]) -> str:
    return "".join(csv_chunks(series))
