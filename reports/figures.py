"""Plotly figures of replayed series: one chart per measure and category of an incident.

Every trace carries ``meta.role`` so that the page's script can replay the
chart as-of an earlier report date by cutting each trace at that date: a
day's figure never depends on later reports, so the cut chart is exactly
the chart of ``replay(as_of=that date)``.

Text that came from sources is HTML-escaped before Plotly sees it; Plotly
turns the entities back into the characters, so a quote such as
``<img src=x onerror=...>`` shows as those characters and runs nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs
import numpy as np

from timeline.index import OPEN
from timeline.replay import Replay, Series
from timeline.rule import BASES, CARRIED, DERIVED, REPORTED

from .words import Worded, sums_words

# Okabe-Ito (without its yellow, too pale on white), then Paul Tol's muted hues: all readable with
# the common colour-vision deficiencies. A monitor's colour is picked by a hash of its slug alone.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#882255",
    "#117733",
    "#332288",
    "#44AA99",
    "#999933",
)
FLAG_COLOUR = "#C00000"
DAY_MS = 86_400_000
DENSE = 300


# Dot charts also give each monitor a shape from its slug: two monitors that share a colour (twelve
# colours for dozens of monitors) then still differ where they sit side by side.
SHAPES = ("circle", "square", "diamond", "star")


def _digest(slug: str) -> bytes:
    return hashlib.sha256(slug.encode("utf-8")).digest()


def monitor_colour(slug: str) -> str:
    """A monitor's colour, from its slug alone: it never moves when other monitors come or go."""
    return PALETTE[int.from_bytes(_digest(slug)[:8], "big") % len(PALETTE)]


def monitor_shape(slug: str) -> str:
    """A monitor's marker shape in dot charts, from its slug alone (other bits of the same hash)."""
    return SHAPES[_digest(slug)[8] % len(SHAPES)]


def monitor_colours(monitors: Iterable[str]) -> dict[str, str]:
    """Each monitor's colour, for the whole report, so a monitor looks the same on every page."""
    return {m: monitor_colour(m) for m in sorted(set(monitors))}  # sorted: the same bytes every build


@attrs.frozen
class View:
    """One measure and category of an incident: its chart and its location chart."""

    measure: str
    category: str
    series: tuple[Series, ...]
    locations: tuple[Series, ...]

    @property
    def id(self) -> str:
        return f"{self.measure}--{self.category}"

    @property
    def label(self) -> str:
        return f"{self.measure.replace('_', ' ')} · {self.category.replace('_', ' ')}"


_REPORTED_CODE = next(code for code, basis in BASES.items() if basis == REPORTED)


def views_of(series: Sequence[Series]) -> list[View]:
    """Group an incident's series into views, the most reported measure and category first."""
    groups: dict[tuple[str, str], list[Series]] = {}
    for s in series:
        groups.setdefault((s.measure, s.category), []).append(s)
    views = [
        View(
            measure,
            category,
            tuple(s for s in members if s.location is None),
            tuple(s for s in members if s.location is not None),
        )
        for (measure, category), members in groups.items()
    ]

    def weight(view: View) -> tuple:
        reports = sum(s.folded.basis_codes.count(_REPORTED_CODE) for s in (*view.series, *view.locations))
        return (view.measure != "killed", -len(view.series), -reports, view.measure, view.category)

    return sorted(views, key=weight)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _name(series: Series, with_location: bool) -> str:
    return f"{series.monitor} · {series.location}" if with_location else series.monitor


class Points(NamedTuple):
    """A series where a step line needs it: each segment's first day, and its last day when carried past.

    ``words`` is each figure as people say it (the publishers' qualifiers
    kept), worded once per page for the chart, its hovers and the headline;
    ``flags`` each flag as (day, kind in words, detail), worded once per page
    for the chart and the page's list of flags.
    """

    x: list[str]
    lows: list[int]
    highs: list[int | None]
    basis: list[str]
    ids: list[tuple[str, ...]]
    words: list[str]
    flags: list[tuple[str, str, str]]


@functools.lru_cache(maxsize=1 << 14)
def iso_day(ordinal: int) -> str:
    """A day's ISO text: a report's thousands of series share their few hundred days."""
    return dt.date.fromordinal(ordinal).isoformat()


def points_of(result: Replay, series: Series, worded: Worded | None = None) -> Points:
    """The change points of a series; ``worded`` (the page's, for all its figures), when given, spares a
    lookup per figure.

    Read straight from the folded runs (``Series.folded``): a date object
    and a tuple per run, as ``segments()`` makes them, cost more than the
    rest of a page's chart. Words are not remembered: running totals seldom
    repeat, and a cache of them missed more often than it saved.
    """
    folded = series.folded
    ids = folded.observations_by_segment()
    if worded is None:
        worded = Worded.of((i for observations in ids for i in observations), lambda i: result.qualifier(i).value)
    x = list(map(iso_day, folded.starts))
    lows = folded.lows.tolist()
    highs = [None if high == OPEN else high for high in folded.highs.tolist()]
    basis = list(map(BASES.__getitem__, folded.basis_codes))
    words = sums_words(np.frombuffer(folded.lows, dtype=np.int64), np.frombuffer(folded.highs, dtype=np.int64), ids,
                       worded)  # fmt: skip
    if folded.last > folded.starts[-1]:
        x.append(iso_day(folded.last))
        lows.append(lows[-1])
        highs.append(highs[-1])
        basis.append(CARRIED)
        ids.append(ids[-1])
        words.append(words[-1])
    flags = [(iso_day(f.day), f.kind.replace("_", " "), f.detail) for f in folded.flags]
    return Points(x, lows, highs, basis, ids, words, flags)


def _series_traces(
    result: Replay, series: Series, colour: str, *, with_location: bool, dash: str = "solid",
    points: Points | None = None,
) -> list[dict]:  # fmt: skip
    traces = _traces_of(points or points_of(result, series), series, colour, with_location=with_location, dash=dash)
    for trace in traces:
        trace["meta"] = {**trace["meta"], "place": series.location}
    return traces


def _traces_of(days: Points, series: Series, colour: str, *, with_location: bool, dash: str) -> list[dict]:
    """The step line, its band, its marks and its flags.

    Hover labels are written by the page from ``customdata`` (figure, basis,
    the observations it rests on, and a flag's kind and detail) and the
    page's table of observations: each quote is in the page once.
    """
    name = _name(series, with_location)
    group = name
    x, lows, words = days.x, days.lows, days.words
    traces: list[dict] = []
    # Dense series (months of daily reports) get small marks, so the lines stay readable.
    mark = 8 if len(x) <= 60 else 5 if len(x) <= DENSE else 3
    ranged = [h is not None and h != lo for lo, h in zip(lows, days.highs, strict=True)]
    if any(ranged):
        # The band between low and high: an invisible upper edge, then the lower edge filled up to it. It
        # has height only from a range's day to the next change, so it carries only those days: between
        # them both edges hold one figure, and a band of no height draws nothing wherever its edges run.
        kept = [i for i, r in enumerate(ranged) if r or (i and ranged[i - 1])]
        common = dict(x=[x[i] for i in kept], mode="lines", line_shape="hv", legendgroup=group, showlegend=False,
                      hoverinfo="skip")  # fmt: skip
        highs = [lows[i] if days.highs[i] is None else days.highs[i] for i in kept]
        traces.append(_scatter(y=highs, line=dict(width=0), meta={"role": "band-high"}, **common))
        traces.append(
            _scatter(
                y=[lows[i] for i in kept],
                line=dict(width=0),
                fill="tonexty",
                fillcolor=_alpha(colour, 0.18),
                meta={"role": "band-low"},
                **common,
            )
        )
    flags = days.flags
    at = {day: i for i, day in enumerate(x)}
    # A flagged day's tooltip is the figure's own, the flag explained below it, on the line and on the cross.
    flagged = {day: (kind, detail) for day, kind, detail in flags}
    customdata = list(map(list, zip(words, days.basis, days.ids, strict=True)))
    for day, flag in flagged.items():
        customdata[at[day]] += flag
    traces.append(
        _scatter(
            x=x,
            y=lows,
            name=_escape(name),
            legendgroup=group,
            mode="lines",
            line=dict(color=colour, width=2, shape="hv", dash=dash),
            hoverinfo="text",
            customdata=customdata,
            meta={"role": "line", "series": name},
        )
    )
    # A dot per report only while there is room for them: past DENSE days they merge into a smear over the
    # step line that Chromium spends most of a page's drawing on (the hover still gives each day's basis).
    for basis, symbol, label in ((REPORTED, "circle", "reported"), (DERIVED, "circle-open", "derived")):
        if len(x) > DENSE:
            break
        chosen = [i for i, b in enumerate(days.basis) if b == basis and days.highs[i] is not None]
        if chosen:
            # A range is a whisker from its low up to its high, so one day's "8-30" never looks like an exact 8.
            whiskers = [days.highs[i] - lows[i] for i in chosen]
            traces.append(
                _scatter(
                    x=[x[i] for i in chosen],
                    y=[lows[i] for i in chosen],
                    mode="markers",
                    marker=dict(color=colour, symbol=symbol, size=mark, line=dict(color=colour, width=2)),
                    error_y=dict(type="data", symmetric=False, array=whiskers, arrayminus=[0] * len(chosen),
                                 color=colour, thickness=2, width=mark) if any(whiskers) else None,
                    legendgroup=group,
                    showlegend=False,
                    hoverinfo="skip",
                    name=_escape(f"{name} ({label})"),
                    customdata=[days.ids[i] for i in chosen],
                    meta={"role": basis},
                )
            )
    # Open-ended floors ("at least") get an upward triangle instead of a dot: the toll may be higher.
    floors = [i for i, b in enumerate(days.basis) if days.highs[i] is None and b != CARRIED]
    if floors:
        traces.append(
            _scatter(
                x=[x[i] for i in floors],
                y=[lows[i] for i in floors],
                mode="markers",
                marker=dict(
                    color=colour,
                    size=mark + 2,
                    line=dict(color=colour, width=2),
                    symbol=["triangle-up" if days.basis[i] == REPORTED else "triangle-up-open" for i in floors],
                ),
                legendgroup=group,
                showlegend=False,
                hoverinfo="skip",
                name=_escape(f"{name} (at least: open-ended)"),
                customdata=[days.ids[i] for i in floors],
                meta={"role": "floor"},
            )
        )
    if flags:
        on = [at[day] for day, _, _ in flags]
        traces.append(
            _scatter(
                x=[x[i] for i in on],
                y=[lows[i] for i in on],
                mode="markers",
                # Many flags (a monitor whose totals rarely add up) must not bury the line itself.
                marker=dict(
                    symbol="x-thin-open",
                    size=2 * mark if len(flags) <= 40 else mark + 2,
                    color=FLAG_COLOUR,
                    opacity=1 if len(flags) <= 40 else 0.5,
                    line=dict(width=3 if len(flags) <= 40 else 1.5, color=FLAG_COLOUR),
                ),
                legendgroup=group,
                showlegend=False,
                name=_escape(f"{name} (flag)"),
                hoverinfo="text",
                customdata=[
                    [words[i], days.basis[i], days.ids[i], kind, detail]
                    for (_, kind, detail), i in zip(flags, on, strict=True)
                ],
                meta={"role": "flag", "series": name},
            )
        )
    return traces


def _legend_key() -> list[dict]:
    """Legend entries that say what the marks mean."""
    entries = (
        ("reported", dict(symbol="circle", color="#555")),
        ("derived (base + increments)", dict(symbol="circle-open", color="#555", line=dict(width=2, color="#555"))),
        ("at least: open-ended floor", dict(symbol="triangle-up", color="#555")),
        ("flag: revised down or mismatch", dict(symbol="x-thin-open", color=FLAG_COLOUR, line=dict(width=3))),
    )
    return [
        _scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker=dict(size=9, **marker),
            name=label,
            legendgroup="key",
            legendgrouptitle_text="Marks" if i == 0 else None,
            meta={"role": "key"},
        )
        for i, (label, marker) in enumerate(entries)
    ]


def _spread(series: Sequence[Series]) -> list[dict]:
    """Per day, the band from the lowest to the highest current figure, naming the monitor at each edge.

    The band can only change where a series does, so it is computed on those
    days, all series at once as columns, and drawn as steps.
    """
    runs = [s.folded for s in series]
    days = np.unique(np.concatenate([*(np.frombuffer(r.starts, dtype=np.int64) for r in runs), [r.last for r in runs]]))
    lows = np.full((len(series), len(days)), np.iinfo(np.int64).max)
    highs = np.full((len(series), len(days)), np.iinfo(np.int64).min)
    for row, r in enumerate(runs):
        segment = np.searchsorted(np.frombuffer(r.starts, dtype=np.int64), days, side="right") - 1
        present = segment >= 0
        low = np.frombuffer(r.lows, dtype=np.int64)
        high = np.frombuffer(r.highs, dtype=np.int64)
        lows[row, present] = low[segment[present]]
        highs[row, present] = np.where(high == OPEN, low, high)[segment[present]]
    counted = (lows != np.iinfo(np.int64).max).sum(axis=0) >= 2
    if not counted.any():
        return []
    low_at, high_at = lows.argmin(axis=0), highs.argmax(axis=0)
    x, text = [], []
    for column in np.flatnonzero(counted).tolist():
        day = dt.date.fromordinal(int(days[column]))
        low_series, high_series = series[low_at[column]], series[high_at[column]]
        x.append(day.isoformat())
        text.append(
            f"<b>spread</b> · {day:%d %b %Y}<br>lowest: {_escape(low_series.monitor)} {lows[low_at[column], column]:,}"
            f"<br>highest: {_escape(high_series.monitor)} {highs[high_at[column], column]:,}"
        )
    common = dict(x=x, mode="lines", line_shape="hv", legendgroup="spread", visible=False)
    return [
        _scatter(y=highs.max(axis=0)[counted].tolist(), line=dict(width=0), showlegend=False, hoverinfo="skip",
                 meta={"role": "spread-high"}, **common),
        _scatter(
            y=lows.min(axis=0)[counted].tolist(), line=dict(width=0), fill="tonexty",
            fillcolor="rgba(90,90,90,0.16)", hovertext=text, hoverinfo="text", name="spread across monitors",
            showlegend=True, meta={"role": "spread-low"}, **common,
        ),
    ]  # fmt: skip


def _scatter(**properties: Any) -> dict:
    """A scatter trace as Plotly.js reads it; ``line_shape=...`` is written ``line: {shape: ...}``.

    Traces are plain data, not plotly.graph_objects: validating hundreds of
    thousands of points in Python cost more than the rest of the report.
    The tests validate the figures against Plotly's schema instead.
    """
    trace: dict[str, Any] = {"type": "scatter"}
    for name, value in properties.items():
        if value is None:
            continue
        outer, _, inner = name.partition("_")
        if inner and outer in ("line", "marker", "legendgrouptitle"):
            trace.setdefault(outer, {})[inner] = value
        else:
            trace[name] = value
    return trace


def _layout(title: str) -> dict:
    return dict(
        title=dict(text=_escape(title), x=0, xanchor="left", font=dict(size=15)),
        hovermode="closest",
        hoverlabel=dict(align="left", bgcolor="white", font=dict(size=12)),
        margin=dict(l=60, r=20, t=50, b=40),
        legend=dict(orientation="h", y=-0.15, groupclick="togglegroup", traceorder="grouped"),
        xaxis=dict(type="date", showgrid=True, gridcolor="#eee"),
        yaxis=dict(type="linear", rangemode="tozero", tickformat=",d", showgrid=True, gridcolor="#eee"),
        font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13),
        height=460,
    )


def day_axis(first: dt.date, last: dt.date) -> dict:
    """A date axis over the reports' own span, ticked in days or longer: a figure's date is a day.

    The range runs from a day (or 3% of a long span) before the first report
    to as much after the last, so a single report sits in the middle of three
    labelled days and the latest mark is never cut by the frame.
    """
    pad = dt.timedelta(days=max(1, round((last - first).days * 0.03)))
    # Clamped to the calendar: a series may start on 1 January of the year 1.
    low = first - pad if first - dt.date.min >= pad else dt.date.min
    high = last + pad if dt.date.max - last >= pad else dt.date.max
    axis: dict[str, Any] = {"range": [low.isoformat(), high.isoformat()], "tickformat": "%-d %b %Y"}
    days = (high - low).days
    if days <= 10:
        axis.update(tick0=low.isoformat(), dtick=DAY_MS, tickformat="%-d %b<br>%Y")
    elif days <= 60:
        axis.update(tickformatstops=[dict(dtickrange=[None, 7 * DAY_MS], value="%-d %b"),
                                     dict(dtickrange=[7 * DAY_MS, None], value="%-d %b %Y")],
                    tickformat=None)  # fmt: skip
    axis.update(minallowed=low.isoformat(), maxallowed=high.isoformat())
    return {k: v for k, v in axis.items() if v is not None}


def _titled(traces: list[dict], title: str, series: Sequence[Series]) -> dict:
    figure = {"data": traces, "layout": _layout(title)}
    if series:
        figure["layout"]["xaxis"].update(day_axis(min(s.first for s in series), max(s.last for s in series)))
    return figure


def busy_weeks(series: Sequence[Series]) -> list[str] | None:
    """The weeks where most reports are, when a long silence follows them before a few late ones.

    The chart opens on the whole span; this range is offered as a zoom, with
    a marker at the edge for each series whose latest figure lies beyond it.
    """
    days = [dt.date.fromordinal(d) for d in sorted({d for s in series for d in s.folded.starts})]
    if len(days) < 4:
        return None
    gap, cut = max((b - a, i) for i, (a, b) in enumerate(itertools.pairwise(days)))
    dense = days[cut] - days[0]
    if cut < len(days) / 2 or gap <= 2 * max(dense, dt.timedelta(days=7)):
        return None
    return [(days[0] - dt.timedelta(days=1)).isoformat(), (days[cut] + dt.timedelta(days=3)).isoformat()]


def view_figure(
    result: Replay, view: View, colours: dict[str, str], points: Mapping[tuple, Points] | None = None
) -> dict:
    """The chart of one view: each monitor's incident-wide series, its band, marks, flags and the spread.

    ``points`` holds each series' change points by key, when the page has them already.
    """
    traces: list[dict] = []
    for series in view.series:
        traces += _series_traces(result, series, colours[series.monitor], with_location=False,
                                 points=points[series.key] if points else None)  # fmt: skip
    if len(view.series) >= 2:
        traces += _spread(view.series)
    traces += _legend_key()
    return _titled(traces, f"{view.label}: whole incident", view.series)


def latest_items(
    result: Replay, series: Iterable[Series], colours: dict[str, str], points: Mapping[tuple, Points] | None = None
) -> list[dict]:
    """Each series' report days as the page's dot charts read them, to show the latest as of any date.

    ``x`` are the report days, ``lo``/``hi`` the figure (``hi`` None when
    open-ended), ``w`` its wording with the publisher's qualifier, ``ids`` the
    observations it rests on. Labels stay raw here: the page's script escapes
    them for Plotly and sets them as text elsewhere.
    """
    items = []
    for s in series:
        p = points[s.key] if points else points_of(result, s)
        kept = [i for i, basis in enumerate(p.basis) if basis != CARRIED]
        items.append(
            {
                "monitor": s.monitor,
                "measure": s.measure.replace("_", " "),
                "category": s.category.replace("_", " "),
                "place": s.location,
                "colour": colours[s.monitor],
                "shape": monitor_shape(s.monitor),
                "x": [p.x[i] for i in kept],
                "lo": [p.lows[i] for i in kept],
                "hi": [p.highs[i] for i in kept],
                "w": [p.words[i] for i in kept],
                "ids": [p.ids[i] for i in kept],
            }
        )
    return items


def _alpha(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sparkline(series: Series, width: int = 120, height: int = 28) -> str:
    """An inline SVG step path of a series' low figures, one even step per report.

    Spaced by report rather than by day, a series that runs from March to
    December keeps its busy first weeks readable instead of squeezing them
    into a few pixels; the table beside it gives the dates.
    """
    lows = series.folded.lows.tolist()
    if len(lows) > 2 * width:
        lows = [lows[int(i * len(lows) / width)] for i in range(width)] + [lows[-1]]
    top = max(lows) or 1
    step = width / len(lows)

    def y(value: int) -> str:
        return f"{height - 2 - (value / top) * (height - 4):.1f}"

    path = [f"M0,{y(lows[0])}"]
    for i, value in enumerate(lows):
        if i:
            path.append(f"L{i * step:.1f},{y(value)}")
        path.append(f"L{(i + 1) * step:.1f},{y(value)}")
    return " ".join(path)
