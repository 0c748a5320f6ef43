"""The report's figures are valid Plotly figures (checked against Plotly's own schema)."""

from __future__ import annotations

import plotly.graph_objects as go
from click.testing import CliRunner

from events_log.stores import open_store
from reports.figures import monitor_colour, monitor_colours, view_figure, views_of
from timeline import replay
from timeline.cli import cli
from timeline.dataset import bundled_log


def test_every_figure_of_the_bundled_dataset_passes_plotly_validation():
    """Each view's chart and place chart is accepted by plotly.graph_objects, property by property."""
    result = replay(open_store(str(bundled_log()), read_only=True))
    colours = monitor_colours(s.monitor for s in result.series)
    incidents = {s.incident for s in result.series}
    checked = 0
    for incident in incidents:
        for view in views_of([s for s in result.series if s.incident == incident]):
            go.Figure(view_figure(result, view, colours))  # raises ValueError on any property Plotly does not know
            checked += 1
    assert checked >= 20


def test_a_monitors_colour_depends_on_its_slug_alone():
    """Adding or removing other monitors never changes a monitor's colour."""
    alone = monitor_colours(["SOHR"])["SOHR"]
    crowded = monitor_colours(["AAA", "SOHR", "SNHR", "0-first", *(f"m{i}" for i in range(30))])["SOHR"]
    assert alone == crowded == monitor_colour("SOHR")


def test_report_command_writes_every_page(tmp_path):
    """`timeline report` on the bundled dataset writes the index, one page per incident and plotly.js."""
    result = CliRunner().invoke(cli, ["report", "--out", str(tmp_path)], env={"TIMELINE_LOG": None})
    assert result.exit_code == 0, result.output
    assert "open file://" in result.output
    names = {p.name for p in tmp_path.iterdir()}
    assert {"index.html", "plotly.min.js", "incident-coastal-2025.html", "incident-aqrab-2012.html"} <= names


def test_increments_before_a_total_are_drawn_as_a_floor():
    """SOHR's Latakia counts before its first total get the floor marker, worded "at least", not a plain dot."""
    result = replay(open_store(str(bundled_log()), read_only=True), incident="coastal-2025")
    colours = monitor_colours(s.monitor for s in result.series)
    [view] = [v for v in views_of(result.series) if (v.measure, v.category) == ("killed", "civilians")]
    traces = location_figure(result, view, colours)["data"]
    name = "SOHR · Latakia Governorate"
    [floor] = [t for t in traces if t["meta"]["role"] == "floor" and t["name"].startswith(name)]
    assert floor["x"] == ["2025-03-09", "2025-03-10"] and floor["y"] == [194, 220]
    assert floor["marker"]["symbol"] == ["triangle-up-open", "triangle-up-open"]  # derived, open-ended
    [line] = [t for t in traces if t["meta"]["role"] == "line" and t["name"] == name]
    assert [words for words, *_ in line["customdata"]][:3] == ["at least 194", "at least 220", "683"]
    dots = [t for t in traces if t["meta"]["role"] in ("reported", "derived") and t["name"].startswith(name)]
    assert [x for t in dots for x in t["x"]] == ["2025-03-12"]
