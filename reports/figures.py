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

import bisect
import datetime as dt
import html
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np

from timeline.output import point_wording
from timeline.replay import DayPoint, Replay, Series
from timeline.rule import CARRIED, DERIVED, OPEN, REPORTED

# Colour-blind-friendly first (Okabe-Ito, Tol), then more distinct hues.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#882255",
    "#117733",
    "#332288",
    "#AA4499",
    "#44AA99",
    "#999933",
    "#661100",
    "#6699CC",
    "#888888",
    "#B15928",
    "#1F78B4",
    "#33A02C",
    "#E31A1C",
    "#FF7F00",
    "#6A3D9A",
    "#A6761D",
    "#1B9E77",
    "#7570B3",
)
FLAG_COLOUR = "#C00000"
HOVER_QUOTE = 280


def monitor_colours(monitors: Iterable[str]) -> dict[str, str]:
    """One colour per monitor for the whole report, so a monitor looks the same on every page."""
    ordered = sorted(set(monitors), key=lambda m: (m.casefold(), m))
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(ordered)}


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
        reports = sum(s.folded.basis_codes.count("r") for s in (*view.series, *view.locations))
        return (view.measure != "killed", -len(view.series), -reports, view.measure, view.category)

    return sorted(views, key=weight)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def wrapped(text: str, width: int = 64, limit: int = HOVER_QUOTE) -> str:
    """Escaped text in lines of about ``width`` characters joined by <br> (hover labels do not wrap)."""
    short = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    lines, line = [], ""
    for word in short.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "<br>".join(_escape(line) for line in lines)


def _hover(result: Replay, point: DayPoint, name: str) -> str:
    """Monitor, date, figure with its wording, basis, and the quote and source it rests on."""
    head = f"<b>{_escape(name)}</b> · {point.date:%d %b %Y}<br>{_escape(point_wording(result, point))} ({point.basis})"
    if point.basis == CARRIED:
        return f"{head}<br>nothing new reported; carried from the last report"
    # The base comes first, then increments in the order reported: the last is the newest.
    source = result.observation_data(point.observations[-1])["source"]
    lines = [head]
    if source["quote"]:
        lines.append(f"“{wrapped(source['quote'])}”")
    lines.append(_escape(source["title"]) + (f"<br>{_escape(source['url'])}" if source["url"] else ""))
    if len(point.observations) > 1:
        lines.append(f"rests on {len(point.observations)} observations; click for all")
    return "<br>".join(lines)


def _name(series: Series, with_location: bool) -> str:
    return f"{series.monitor} · {series.location}" if with_location else series.monitor


def _series_traces(
    result: Replay, series: Series, colour: str, *, with_location: bool, dash: str = "solid"
) -> list[dict]:
    traces = _traces_of(result, series, colour, with_location=with_location, dash=dash)
    for trace in traces:
        trace["meta"] = {**trace["meta"], "place": series.location}
    return traces


def _traces_of(result: Replay, series: Series, colour: str, *, with_location: bool, dash: str) -> list[dict]:
    name = _name(series, with_location)
    group = name
    days = change_points(series)
    x = [p.date.isoformat() for p in days]
    lows = [p.low for p in days]
    ids = [list(p.observations) for p in days]
    words = [point_wording(result, p) for p in days]
    traces: list[dict] = []
    # Dense series (months of daily reports) get small marks, so the lines stay readable.
    mark = 8 if len(days) <= 60 else 5 if len(days) <= 300 else 3
    ranged = [p.high is not None and p.high != p.low for p in days]
    if any(ranged):
        # The band between low and high: an invisible upper edge, then the lower edge filled up to it.
        highs = [p.high if p.high is not None else p.low for p in days]
        common = dict(x=x, mode="lines", line_shape="hv", legendgroup=group, showlegend=False, hoverinfo="skip")
        traces.append(_scatter(y=highs, line=dict(width=0), meta={"role": "band-high"}, **common))
        traces.append(
            _scatter(
                y=lows,
                line=dict(width=0),
                fill="tonexty",
                fillcolor=_alpha(colour, 0.18),
                meta={"role": "band-low"},
                **common,
            )
        )
    traces.append(
        _scatter(
            x=x,
            y=lows,
            name=name,
            legendgroup=group,
            mode="lines",
            line=dict(color=colour, width=2, shape="hv", dash=dash),
            hovertext=[_hover(result, p, name) for p in days],
            hoverinfo="text",
            customdata=[[w, p.basis, i] for w, p, i in zip(words, days, ids, strict=True)],
            meta={"role": "line", "series": name},
        )
    )
    for basis, symbol, label in ((REPORTED, "circle", "reported"), (DERIVED, "circle-open", "derived")):
        chosen = [p for p in days if p.basis == basis and p.high is not None]
        if chosen:
            traces.append(
                _scatter(
                    x=[p.date.isoformat() for p in chosen],
                    y=[p.low for p in chosen],
                    mode="markers",
                    marker=dict(color=colour, symbol=symbol, size=mark, line=dict(color=colour, width=2)),
                    legendgroup=group,
                    showlegend=False,
                    hoverinfo="skip",
                    name=f"{name} ({label})",
                    customdata=[list(p.observations) for p in chosen],
                    meta={"role": basis},
                )
            )
    # Open-ended floors ("at least") get an upward triangle instead of a dot: the toll may be higher.
    floors = [p for p in days if p.high is None and p.basis != CARRIED]
    if floors:
        traces.append(
            _scatter(
                x=[p.date.isoformat() for p in floors],
                y=[p.low for p in floors],
                mode="markers",
                marker=dict(
                    color=colour,
                    size=mark + 2,
                    line=dict(color=colour, width=2),
                    symbol=["triangle-up" if p.basis == REPORTED else "triangle-up-open" for p in floors],
                ),
                legendgroup=group,
                showlegend=False,
                hoverinfo="skip",
                name=f"{name} (at least: open-ended)",
                customdata=[list(p.observations) for p in floors],
                meta={"role": "floor"},
            )
        )
    flags = series.flags
    if flags:
        by_day = {p.date: p for p in days}
        traces.append(
            _scatter(
                x=[f.date.isoformat() for f in flags],
                y=[by_day[f.date].low for f in flags],
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
                name=f"{name} (flag)",
                hovertext=[
                    f"<b>{_escape(f.kind.replace('_', ' '))}</b> · {_escape(name)} · {f.date:%d %b %Y}<br>"
                    + wrapped(f.detail, 70, limit=2000)
                    for f in flags
                ],
                hoverinfo="text",
                meta={"role": "flag"},
            )
        )
    return traces


def change_points(series: Series) -> list[DayPoint]:
    """The days a series changes (its report days), and its last day: all a step line needs."""
    f = series.folded
    points = [series.on(dt.date.fromordinal(start)) for start in f.starts]
    if f.last > f.starts[-1]:
        points.append(series.on(series.last))
    return points


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
    days = np.array(sorted({o for s in series for o in (*s.folded.starts, s.folded.last)}))
    lows = np.full((len(series), len(days)), np.iinfo(np.int64).max)
    highs = np.full((len(series), len(days)), np.iinfo(np.int64).min)
    for row, s in enumerate(series):
        f = s.folded
        segment = np.searchsorted(f.starts, days, side="right") - 1
        present = segment >= 0
        lows[row, present] = np.asarray(f.lows)[segment[present]]
        high = np.where(np.asarray(f.highs) == OPEN, np.asarray(f.lows), np.asarray(f.highs))
        highs[row, present] = high[segment[present]]
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


def _focus(series: Sequence[Series]) -> list[str] | None:
    """An initial x range on the weeks where the reports are, when a long silence precedes a few late ones.

    Double-clicking the chart shows everything.
    """
    days = sorted({dt.date.fromordinal(start) for s in series for start in s.folded.starts})
    if len(days) < 4:
        return None
    gap, cut = max((b - a, i) for i, (a, b) in enumerate(itertools.pairwise(days)))
    dense = days[cut] - days[0]
    if cut < len(days) / 2 or gap <= 2 * max(dense, dt.timedelta(days=7)):
        return None
    return [(days[0] - dt.timedelta(days=1)).isoformat(), (days[cut] + dt.timedelta(days=3)).isoformat()]


def _titled(traces: list[dict], title: str, series: Sequence[Series]) -> dict:
    figure = {"data": traces, "layout": _layout(title)}
    focus = _focus(series)
    if focus is not None:
        figure["layout"]["xaxis"]["range"] = focus
    return figure


def view_figure(result: Replay, view: View, colours: dict[str, str]) -> dict:
    """The chart of one view: each monitor's incident-wide series, its band, marks, flags and the spread."""
    traces: list[dict] = []
    for series in view.series:
        traces += _series_traces(result, series, colours[series.monitor], with_location=False)
    if len(view.series) >= 2:
        traces += _spread(view.series)
    traces += _legend_key()
    return _titled(traces, f"{view.label}: whole incident", view.series)


_DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")


def location_figure(result: Replay, view: View, colours: dict[str, str]) -> dict | None:
    """The chart of a view's breakdowns by place, one line per monitor and place."""
    if not view.locations:
        return None
    traces: list[dict] = []
    places = sorted({s.location for s in view.locations})
    for series in view.locations:
        dash = _DASHES[places.index(series.location) % len(_DASHES)]
        traces += _series_traces(result, series, colours[series.monitor], with_location=True, dash=dash)
    traces += _legend_key()
    figure = _titled(traces, f"{view.label}: by place", view.locations)
    entries = len(view.locations) + 5
    layout = figure["layout"]
    layout["height"] = max(460, 22 * entries + 110)
    layout["legend"] = {**layout["legend"], "orientation": "v", "x": 1.02, "y": 1, "yanchor": "top"}
    layout["margin"] = {**layout["margin"], "r": 10}
    return figure


def _alpha(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sparkline(series: Series, width: int = 120, height: int = 28) -> str:
    """An inline SVG path of a series' low figures, scaled to its own range."""
    # One point per sampled day, so that time runs evenly along the line.
    f = series.folded
    span = f.last - f.first + 1
    days = range(f.first, f.last + 1) if span <= 2 * width else [f.first + int(i * span / width) for i in range(width)]
    points = [f.lows[bisect.bisect_right(f.starts, day) - 1] for day in days]
    if len(points) > 1 and days[-1] != f.last:
        points.append(f.lows[-1])
    top = max(points) or 1
    n = max(len(points) - 1, 1)
    coords = [f"{i * width / n:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(points)]
    if len(coords) == 1:
        coords.append(f"{width:.1f},{coords[0].split(',')[1]}")
    return "M" + " L".join(coords)
