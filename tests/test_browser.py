"""The HTML report in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import sync_playwright

from events_log.events import Figure, IncidentDescribed, Kind, MonitorDescribed, Observation, Qualifier, Source
from events_log.jsonl import JsonlStore
from timeline.cli import cli

from .conftest import StepClock

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TIMELINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("TIMELINE_SCREENSHOTS", Path(__file__).resolve().parents[1] / "screenshots"))
HOSTILE = '<img src=x onerror="window.pwned=1;alert(1)"><script>window.pwned=2</script>'


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page that records console errors, uncaught exceptions, dialogs and every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.problems = []
    page.requests = []
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: page.requests.append(r.url))
    yield page
    context.close()


def report(tmp_path_factory, *args) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(cli, ["report", "--out", str(out), *args], env={"TIMELINE_LOG": None})
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    return report(tmp_path_factory)


def open_page(page, path: Path):
    page.goto(path.as_uri())
    page.wait_for_function("document.getElementById('chart') === null || document.getElementById('chart').data")
    return page


def test_every_page_loads_without_errors_and_offline(bundled, page):
    """The index and every incident page load with no console error and request nothing from the network."""
    pages = sorted(bundled.glob("*.html"))
    assert len(pages) == 8
    for path in pages:
        open_page(page, path)
        assert page.problems == [], path.name
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests


def test_index_lists_incidents_with_latest_figures(bundled, page):
    """The index names each incident, its latest figures with qualifier and date, and links to its page."""
    open_page(page, bundled / "index.html")
    card = page.locator("#coastal-2025")
    text = card.inner_text()
    assert "March 2025 massacres of Alawites on the Syrian coast" in text
    assert "at least 1,700" in text and "2025-03-07" in text
    assert card.locator("svg.spark").count() >= 10
    card.locator("a.open").click()
    page.wait_for_function("document.getElementById('chart') && document.getElementById('chart').data")
    assert page.url.endswith("incident-coastal-2025.html")
    SHOTS.mkdir(exist_ok=True)
    page.goto((bundled / "index.html").as_uri())
    page.screenshot(path=SHOTS / "index.png", full_page=True)


def test_chart_has_the_expected_traces(bundled, page):
    """The coastal chart holds one line per monitor, reported and derived marks, floors, flags and the spread."""
    open_page(page, bundled / "incident-coastal-2025.html")
    traces = page.evaluate(
        "document.getElementById('chart').data.map(t => [t.name, t.meta.role, t.x ? t.x.length : 0])"
    )
    lines = {name for name, role, _ in traces if role == "line"}
    assert lines == {"SOHR", "SNHR", "alawite-council-advisor"}
    roles = {role for _, role, _ in traces}
    assert {"reported", "derived", "floor", "flag", "spread-low", "spread-high", "key"} <= roles
    flags = page.evaluate("document.getElementById('chart').data.filter(t => t.meta.role === 'flag')[0].x")
    assert flags == ["2025-03-11"]  # 8 March: 532 is at least 4 + at least 162
    page.screenshot(path=SHOTS / "incident-coastal-2025.png", full_page=False)


def _point_position(page, trace_name: str, date: str, chart: str = "chart") -> tuple[float, float]:
    """Screen coordinates of a line point, from the chart's own axes."""
    return page.evaluate(
        """([name, date, chart]) => {
            const gd = document.getElementById(chart);
            const trace = gd.data.find(t => t.name.startsWith(name) && t.meta.role === 'line');
            const i = trace.x.indexOf(date);
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
            return [box.left + xa.d2p(date), box.top + ya.d2p(trace.y[i])];
        }""",
        [trace_name, date, chart],
    )


def test_hover_shows_figure_basis_quote_and_source(bundled, page):
    """Hovering SOHR's 8 March point shows the figure, its basis, the verbatim quote and the source."""
    open_page(page, bundled / "incident-coastal-2025.html")
    x, y = _point_position(page, "SOHR", "2025-03-08")
    page.mouse.move(x, y)
    hover = page.locator(".hoverlayer")
    hover.locator("text").first.wait_for()
    text = " ".join(hover.locator("text").all_text_contents())
    assert "SOHR" in text and "745" in text and "reported" in text
    assert "reached 745 by the end" in text
    assert "2025 massacres of Syrian Alawites" in text
    page.mouse.click(x, y)
    panel = page.locator("#panel")
    panel.wait_for(state="visible")
    link = panel.locator("a").first
    assert link.get_attribute("href") == "https://en.wikipedia.org/wiki/2025_massacres_of_Syrian_Alawites"


def test_as_of_slider_replays_what_was_known(bundled, page):
    """Moving the as-of slider changes the figures shown to those published by that date."""
    open_page(page, bundled / "incident-coastal-2025.html")
    dates = page.evaluate("JSON.parse(document.getElementById('page-data').textContent).reportDates")

    def figures_at(date: str) -> dict[str, str]:
        page.evaluate(
            "([i]) => { const s = document.getElementById('asof-slider'); s.value = i; "
            "s.dispatchEvent(new Event('input')); }",
            [dates.index(date)],
        )
        rows = page.locator("#asof-summary tbody tr").all_inner_texts()
        return {row.split("\t")[0]: row.split("\t")[1] for row in rows}

    assert figures_at("2025-03-08")["SOHR"] == "745"
    assert figures_at("2025-03-10")["SOHR"] == "at least 1,191"
    assert figures_at("2025-03-12")["SOHR"] == "1,383"
    assert page.locator("#asof-label").inner_text() == "2025-03-12"
    last_x = page.evaluate(
        "Math.max(...document.getElementById('chart').data.filter(t => t.meta.role !== 'key' && t.x.length)"
        ".map(t => Date.parse(t.x[t.x.length - 1])))"
    )
    assert dt.datetime.fromtimestamp(last_x / 1000, dt.UTC).date() == dt.date(2025, 3, 12)
    assert "SNHR" in figures_at("2025-03-07") and "SNHR" not in figures_at("2025-03-06")


def test_view_selector_log_toggle_and_play(bundled, page):
    """The measure selector switches charts; log scale toggles; play steps through the report dates."""
    open_page(page, bundled / "incident-coastal-2025.html")
    page.select_option("#view-select", label="displaced · civilians")
    assert page.evaluate("document.getElementById('chart').data.filter(t => t.meta.role === 'line')[0].name") == "UNFPA"
    page.click("#log-toggle")
    assert page.evaluate("document.getElementById('chart').layout.yaxis.type") == "log"
    page.click("#play")
    page.wait_for_function("Number(document.getElementById('asof-slider').value) >= 1", timeout=5000)
    page.click("#play")
    assert page.problems == []


def test_csv_download_holds_the_page_series(bundled, page):
    """The CSV link downloads one row per series and day of this incident."""
    open_page(page, bundled / "incident-aqrab-2012.html")
    with page.expect_download() as download:
        page.click("a.download")
    text = Path(download.value.path()).read_text()
    lines = text.splitlines()
    assert lines[0] == "incident,monitor,measure,category,location,date,low,high,basis,observations"
    assert all(line.startswith("aqrab-2012,") for line in lines[1:])
    assert "aqrab-2012,SOHR,killed_or_wounded,civilians,,2012-12-11,125,125,reported,sohr-2012-12-11-aqrab" in lines


def test_table_sorts_by_column(bundled, page):
    """Clicking a column header sorts the observations table by it, and again in reverse."""
    open_page(page, bundled / "incident-coastal-2025.html")
    figure_header = page.locator("#observations th", has_text="Figure")
    figure_header.click()
    lows = page.locator("#observations tbody tr td:nth-child(6)").evaluate_all(
        "cells => cells.map(c => +c.dataset.sort)"
    )
    assert lows == sorted(lows)
    figure_header.click()
    lows = page.locator("#observations tbody tr td:nth-child(6)").evaluate_all(
        "cells => cells.map(c => +c.dataset.sort)"
    )
    assert lows == sorted(lows, reverse=True)


def test_phone_width_has_no_sideways_scroll(bundled, browser):
    """At a phone's width the page fits: only tables scroll sideways, inside their own box."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    for name in ("index.html", "incident-coastal-2025.html"):
        page.goto((bundled / name).as_uri())
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    page.screenshot(path=SHOTS / "incident-coastal-2025-phone.png")
    context.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A report of a log whose texts are all attacks."""
    folder = tmp_path_factory.mktemp("hostile")
    log = folder / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append(
        [
            IncidentDescribed(slug="x", title=f"Title {HOSTILE}", place=HOSTILE, start_date=dt.date(2025, 1, 1),
                              summary=f"</script>{HOSTILE}"),
            MonitorDescribed(slug="m", full_name=HOSTILE, description=HOSTILE),
            Observation(
                id="evil", incident="x", monitor="m", reported_on=dt.date(2025, 1, 2), measure="killed",
                category="civilians", kind=Kind.CUMULATIVE, figure=Figure(5, 5, Qualifier.EXACT),
                source=Source(title=f"</title>{HOSTILE}", url="https://example.org/?q=1&r=javascript:alert(1)",
                              quote=f"He said {HOSTILE} and left. שלום مرحبا e\u0301 " + "long " * 2000),
                location=f"=HYPERLINK(\"http://evil\"){HOSTILE}", note=HOSTILE,
            ),
            Observation(
                id="evil-2", incident="x", monitor="m", reported_on=dt.date(2025, 1, 3), measure="killed",
                category="civilians", kind=Kind.CUMULATIVE, figure=Figure(7, 7, Qualifier.EXACT),
                source=Source(title="t", quote=f"</script><script>window.pwned=3</script>{HOSTILE}"),
            ),
        ]
    )  # fmt: skip
    return report(tmp_path_factory, "--log", str(log))


def test_hostile_text_stays_inert_and_readable(hostile, page):
    """Script tags, event handlers and broken-out quotes show as text and run nothing."""
    path = hostile / "incident-x.html"
    open_page(page, path)
    assert page.evaluate("window.pwned") is None
    assert page.problems == []
    assert page.locator("img").count() == 0
    assert page.locator("body script").count() == 2  # the page's own data and code only
    quote = page.locator("#obs-evil td.quote").inner_text()
    assert '<img src=x onerror="window.pwned=1;alert(1)">' in quote and "שלום" in quote
    assert page.locator("h1").inner_text() == f"Title {HOSTILE}"
    # A 10,000-character quote wraps inside its cell: the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    link = page.locator("#obs-evil a")
    assert link.get_attribute("href") == "https://example.org/?q=1&r=javascript:alert(1)"
    page.locator("#places").scroll_into_view_if_needed()
    x, y = _point_position(page, "m · =HYPERLINK", "2025-01-02", chart="places")
    page.mouse.move(x, y)
    page.locator(".hoverlayer text").first.wait_for()
    hover = " ".join(page.locator(".hoverlayer text").all_text_contents())
    assert "<img src=x" in hover
    page.mouse.click(x, y)
    assert "<img src=x" in page.locator("#panel blockquote").first.inner_text()
    assert page.evaluate("window.pwned") is None
    open_page(page, hostile / "index.html")
    assert page.evaluate("window.pwned") is None and page.problems == []
    page.screenshot(path=SHOTS / "hostile.png", full_page=False)


def test_single_file_report_needs_nothing_beside_it(tmp_path_factory, browser):
    """--single-file pages carry plotly.js inline and work copied alone into an empty folder."""
    out = report(tmp_path_factory, "--single-file", "--incident", "aqrab-2012")
    assert not (out / "plotly.min.js").exists()
    alone = tmp_path_factory.mktemp("alone") / "page.html"
    shutil.copy(out / "incident-aqrab-2012.html", alone)
    context = browser.new_context()
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(alone.as_uri())
    page.wait_for_function("document.getElementById('chart').data")
    assert problems == []
    href = page.locator("a.download").get_attribute("href")
    assert href.startswith("data:text/csv")
    context.close()
