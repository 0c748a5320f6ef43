"""The report's figures are valid Plotly figures (checked against Plotly's own schema)."""

from __future__ import annotations

import plotly.graph_objects as go

from events_log.stores import open_store
from reports.figures import latest_items, monitor_colour, monitor_colours, view_figure, views_of
from timeline.bundled import bundled_log
from timeline.replay import replay

from .helpers import invoke


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
    result = invoke(["report", "--out", str(tmp_path)], env={"TIMELINE_LOG": None})
    assert result.exit_code == 0, result.output
    assert "open file://" in result.output
    names = {p.name for p in tmp_path.iterdir()}
    assert {"index.html", "plotly.min.js", "incident-coastal-2025.html", "incident-aqrab-2012.html"} <= names


def test_increments_before_a_total_are_drawn_as_a_floor():
    """SOHR's Latakia counts before its first total reach the page as floors worded "at least", then the total."""
    result = replay(open_store(str(bundled_log()), read_only=True), incident="coastal-2025")
    colours = monitor_colours(s.monitor for s in result.series)
    latakia = [s for s in result.series if s.monitor == "SOHR" and s.location == "Latakia Governorate"]
    [item] = latest_items(result, latakia, colours)
    assert item["x"] == ["2025-03-09", "2025-03-10", "2025-03-12"]
    assert item["hi"] == [None, None, 683]  # open-ended until the first total
    assert item["w"] == ["at least 194", "at least 220", "683"]


def test_pages_run_the_plotly_js_whose_schema_checks_the_figures():
    """The basic bundle pages load is the plotly.js release the plotly package validates figures against."""
    from importlib import resources

    from plotly.offline import get_plotlyjs_version

    bundle = (resources.files("reports") / "assets" / "plotly-basic.min.js").read_text(encoding="utf-8")
    assert f"plotly.js (basic - minified) v{get_plotlyjs_version()}\n" in bundle[:200]
