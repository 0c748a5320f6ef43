"""The HTML report in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from events_log.events import Figure, IncidentDescribed, Kind, MonitorDescribed, Observation, Qualifier, Source
from events_log.jsonl import JsonlStore

from .conftest import StepClock
from .helpers import invoke

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
    result = invoke(["report", "--out", str(out), *args], env={"TIMELINE_LOG": None})
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
    """Screen coordinates of a line point, from the chart's own axes (the chart scrolled into view)."""
    page.locator(f"#{chart}").scroll_into_view_if_needed()
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


def _dot_position(page, chart: str, trace: int, point: int = 0) -> tuple[float, float]:
    """Screen coordinates of a dot of a dot chart (headline or places), from the chart's own axes."""
    page.locator(f"#{chart}").scroll_into_view_if_needed()
    return page.evaluate(
        """([chart, n, i]) => {
            const gd = document.getElementById(chart);
            const t = gd._fullData[n];
            const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')];
            const ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
            const box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i])];
        }""",
        [chart, trace, point],
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


def test_a_view_chosen_later_has_its_hover_with_quote(bundled, page):
    """A view's hover labels are written when it is first drawn: UNFPA's displaced figure shows its quote."""
    open_page(page, bundled / "incident-coastal-2025.html")
    page.select_option("#view-select", label="displaced · civilians")
    x, y = _point_position(page, "UNFPA", "2025-03-14")
    page.mouse.move(x, y)
    page.locator(".hoverlayer text").first.wait_for()
    text = " ".join(page.locator(".hoverlayer text").all_text_contents())
    assert "UNFPA" in text and "about 51,000" in text and "51,000 civilians had been displaced" in text
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
    x, y = _dot_position(page, "places", 0)
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


WIDTHS = ({"width": 1400, "height": 900}, {"width": 390, "height": 844})
EVIL_PLACE = '<a href="https://evil.example/">click</a><span style="font-size:80px">BIG</span>'


@pytest.fixture(params=WIDTHS, ids=["desktop", "phone"])
def sized(browser, request):
    """A page at a desktop's and at a phone's size."""
    context = browser.new_context(viewport=request.param)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    yield page
    context.close()


def _slide_to(page, date: str) -> None:
    page.evaluate(
        "([d]) => { const dates = JSON.parse(document.getElementById('page-data').textContent).reportDates;"
        " const s = document.getElementById('asof-slider'); s.value = dates.indexOf(d);"
        " s.dispatchEvent(new Event('input')); }",
        [date],
    )


def _headline_labels(page) -> list[str]:
    return page.locator("#headline g.yaxislayer-above text, #headline .annotation-text").all_text_contents()


def test_screenshots_of_the_main_pages_at_both_widths(bundled, sized):
    """The index and three incident pages render without errors at 1400x900 and 390x844 (screenshots kept)."""
    SHOTS.mkdir(exist_ok=True)
    width = sized.viewport_size["width"]
    for name in ("index", "incident-coastal-2025", "incident-aqrab-2012", "incident-houla-2012"):
        open_page(sized, bundled / f"{name}.html")
        sized.screenshot(path=SHOTS / f"{name}-{width}.png")
        sized.screenshot(path=SHOTS / f"{name}-{width}-full.png", full_page=True)
        assert sized.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    assert sized.problems == []


def test_headline_panel_puts_every_monitor_side_by_side_and_follows_the_slider(bundled, page):
    """Above the chart, each monitor's latest figure of every measure with qualifier and date, as of the slider."""
    open_page(page, bundled / "incident-coastal-2025.html")
    assert page.locator("#headline").bounding_box()["y"] < page.locator("#chart").bounding_box()["y"]
    labels = " | ".join(_headline_labels(page))
    for expected in ("1,659 · 25 Dec 2025", "1,479 · 30 Jun 2025", "1,084 · 17 Mar 2025", "at least 1,700"):
        assert expected in labels
    axes = page.locator("#headline g.infolayer text").all_text_contents()
    assert {"killed", "displaced"} <= set(axes)
    _slide_to(page, "2025-03-08")
    labels = " | ".join(_headline_labels(page))
    assert "745 · 8 Mar 2025" in labels and "1,659" not in labels
    assert page.locator("#headline-date").inner_text() == "2025-03-08"


def test_aqrab_headline_shows_every_series_with_range_and_floor(bundled, page):
    """Aqrab's headline shows SOHR's 125, the 125-300 range as a whisker and "at least 10" as an arrow."""
    open_page(page, bundled / "incident-aqrab-2012.html")
    labels = " | ".join(_headline_labels(page))
    assert "125 · 11 Dec 2012" in labels and "125-300 · 14 Dec 2012" in labels and "at least 10" in labels
    roles = page.evaluate("document.getElementById('headline').data.map(t => t.meta.role)")
    assert {"dot", "range", "floor"} <= set(roles)
    assert page.locator("#headline .errorbar path").count() >= 1


def test_latest_figure_of_every_series_is_in_the_first_view(bundled, page):
    """On every incident page and view, each line's last point lies inside the initial time axis."""
    for path in sorted(bundled.glob("incident-*.html")):
        open_page(page, path)
        views = page.locator("#view-select option").count() or 1
        for v in range(views):
            if views > 1:
                page.select_option("#view-select", index=v)
            page.wait_for_function("document.getElementById('chart')._fullLayout.yaxis._length > 0")
            page.wait_for_timeout(600)
            outside = page.evaluate(
                """() => {
                    const gd = document.getElementById('chart');
                    const xa = gd._fullLayout.xaxis;
                    const [x0, x1] = xa.range.map(d => Date.parse(d));
                    return gd.data.filter(t => t.meta.role === 'line' && t.x.length).filter(t => {
                        const x = Date.parse(t.x[t.x.length - 1]);
                        return x < x0 || x > x1;
                    }).map(t => [t.name, t.x[t.x.length - 1], xa.range]);
                }"""
            )
            assert outside == [], (path.name, v)


def test_short_spans_are_ticked_in_days_not_clock_times(bundled, sized):
    """Aqrab's two-day chart and Houla's one-point chart show dates on their ticks, never hours."""
    for name in ("incident-aqrab-2012", "incident-houla-2012"):
        open_page(sized, bundled / f"{name}.html")
        ticks = sized.locator("#chart .xtick text").all_text_contents()
        assert ticks and not any(":" in t for t in ticks), (name, ticks)
        assert any("Dec" in t or "May" in t for t in ticks)


def test_a_single_day_range_shows_a_whisker(bundled, page):
    """Zara'a's one-day "8-30" is drawn with an error bar up to 30, not as a plain dot at 8."""
    open_page(page, bundled / "incident-zaraa-2016.html")
    found = False
    for v in range(page.locator("#view-select option").count() or 1):
        if v:
            page.select_option("#view-select", index=v)
        whiskers = page.evaluate(
            "document.getElementById('chart').data.filter(t => t.error_y)"
            ".map(t => t.x.map((x, i) => [x, t.y[i], t.y[i] + t.error_y.array[i]]))"
        )
        if any(low == 8 and high == 30 for trace in whiskers for _, low, high in trace):
            found = True
            assert page.locator("#chart .errorbar path").count() >= 1
            break
    assert found


def test_a_flag_keeps_the_figures_hover_and_a_click_explains_it(bundled, page):
    """Hovering SOHR's flagged 11 March total shows the figure and the flag; a click opens sources and flag."""
    open_page(page, bundled / "incident-coastal-2025.html")
    page.evaluate(
        "() => Plotly.relayout('chart', {'xaxis.range': ['2025-03-06', '2025-03-14'], 'yaxis.range': [0, 1800]})"
    )
    x, y = _point_position(page, "SOHR", "2025-03-11")
    page.mouse.move(x, y)
    page.locator(".hoverlayer text").first.wait_for()
    hover = " ".join(page.locator(".hoverlayer text").all_text_contents())
    assert "1,225" in hover and "mismatch" in hover and "SOHR" in hover
    page.mouse.click(x, y)
    panel = page.locator("#panel")
    panel.wait_for(state="visible")
    assert "Flag: mismatch" in panel.inner_text()
    assert "1,323" in panel.inner_text()
    assert panel.locator("blockquote").count() >= 1


def _overlaps(boxes: list[dict]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a["x"] < b["x"] + b["width"] - 0.5 and b["x"] < a["x"] + a["width"] - 0.5
        and a["y"] < b["y"] + b["height"] - 0.5 and b["y"] < a["y"] + a["height"] - 0.5
    ]  # fmt: skip


def test_places_view_holds_at_both_widths_and_through_a_resize(bundled, sized):
    """Place labels never overlap, the legend is whole and on screen, and a resize keeps the chart's height."""
    open_page(sized, bundled / "incident-coastal-2025.html")
    sized.locator("#places").scroll_into_view_if_needed()
    labels = sized.locator("#places .ytick text")
    assert labels.count() >= 20
    boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
    assert _overlaps(boxes) == []
    chart = sized.locator("#places").bounding_box()
    width = sized.viewport_size["width"]
    assert all(b["x"] >= chart["x"] - 1 and b["x"] + b["width"] <= chart["x"] + chart["width"] + 1 for b in boxes)
    legend = [e.bounding_box() for e in sized.locator("#places-legend li").all()]
    assert legend and all(b["x"] >= 0 and b["x"] + b["width"] <= width + 1 for b in legend)
    following = sized.locator(".flags").bounding_box()
    assert chart["y"] + chart["height"] <= following["y"]
    height = chart["height"]
    sized.set_viewport_size({"width": width + 150, "height": 700})
    sized.wait_for_timeout(400)
    sized.set_viewport_size({"width": width, "height": 844})
    sized.wait_for_timeout(400)
    assert abs(sized.locator("#places").bounding_box()["height"] - height) < 2


def test_phone_layout_keeps_title_table_and_sparklines_readable(bundled, browser):
    """At 390 px no toolbar covers a title, each figure and quote of the table is on screen."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    open_page(page, bundled / "incident-coastal-2025.html")
    page.locator("#chart").hover()
    assert page.locator("#chart .modebar-btn").count() == 0
    cells = page.locator("#observations td.figure").all()[:10] + page.locator("#observations td.quote").all()[:10]
    for cell in cells:
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 391
    context.close()


def test_sparklines_give_each_report_its_own_step(bundled, page):
    """An index sparkline of a March-to-December series spreads its reports evenly along the line."""
    open_page(page, bundled / "index.html")
    spark = page.locator("#coastal-2025 tr", has_text="1,659").locator("svg.spark path").get_attribute("d")
    xs = sorted({float(part.split(",")[0].lstrip("ML")) for part in spark.split()})
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert len(xs) >= 8 and max(gaps) <= 2 * min(gaps) + 0.2


def _log_with(tmp_path: Path, *monitors: str) -> Path:
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    events = [IncidentDescribed(slug="x", title="X", place="P", start_date=dt.date(2025, 1, 1), summary="s")]
    for n, monitor in enumerate(monitors):
        events += [
            MonitorDescribed(slug=monitor, full_name=monitor, description="d"),
            Observation(
                id=f"o-{monitor}", incident="x", monitor=monitor, reported_on=dt.date(2025, 1, 2 + n),
                measure="killed", category="civilians", kind=Kind.CUMULATIVE,
                figure=Figure(5 + n, 5 + n, Qualifier.EXACT), source=Source(title="t", quote="q"),
            ),
        ]  # fmt: skip
    store.append(events)
    return log


def test_sohr_keeps_its_colour_when_a_monitor_is_added(tmp_path, page):
    """SOHR's colour in the chart is the same before and after another monitor enters the log."""

    def sohr_colour(*monitors: str) -> str:
        folder = tmp_path / "-".join(monitors)
        folder.mkdir()
        out = folder / "report"
        result = invoke(["report", "--log", str(_log_with(folder, *monitors)), "--out", str(out)])
        assert result.exit_code == 0, result.output
        open_page(page, out / "incident-x.html")
        return page.evaluate("document.getElementById('chart').data.find(t => t.name === 'SOHR').line.color")

    assert sohr_colour("SOHR", "SNHR") == sohr_colour("AAA", "SOHR", "SNHR")


def test_retracted_figures_are_listed_not_drawn_and_old_pages_go(tmp_path, page):
    """A retraction shows in "Retracted" with its reason; a page of a vanished incident goes, other files stay."""
    log = _log_with(tmp_path, "SOHR", "SNHR")
    store = JsonlStore(log, clock=StepClock(dt.datetime(2025, 4, 2, tzinfo=dt.UTC)))
    store.append([IncidentDescribed(slug="y", title="Y", place="P", start_date=dt.date(2025, 1, 1), summary="s"),
                  Observation(id="gone", incident="y", monitor="SOHR", reported_on=dt.date(2025, 1, 3),
                              measure="killed", category="civilians", kind=Kind.CUMULATIVE,
                              figure=Figure(3, 3, Qualifier.EXACT), source=Source(title="t", quote="q"))])  # fmt: skip
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert invoke(["report", "--log", str(log), "--out", str(out)]).exit_code == 0
    assert (out / "incident-y.html").exists()
    for observation, reason in (("o-SNHR", "entered under the wrong monitor"), ("gone", "not about this incident")):
        result = invoke(["retract", "--log", str(log), observation, "--reason", reason])
        assert result.exit_code == 0, result.output
    assert invoke(["report", "--log", str(log), "--out", str(out)]).exit_code == 0
    assert not (out / "incident-y.html").exists() and not (out / "y-series.csv").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert "incident-x.html" in (out / "report-manifest.json").read_text()
    open_page(page, out / "incident-x.html")
    retracted = page.locator("section.retracted").inner_text()
    assert "6" in retracted and "SNHR" in retracted and "entered under the wrong monitor" in retracted
    names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
    assert "SNHR" not in names and "SOHR" in names


def test_old_incidents_are_not_stretched_to_the_as_of_date(tmp_path_factory, page):
    """Under --as-of 2025-03-10 the Aqrab chart ends near December 2012 and the header names the as-of date."""
    out = report(tmp_path_factory, "--as-of", "2025-03-10")
    open_page(page, out / "incident-aqrab-2012.html")
    assert "as of 2025-03-10" in page.locator("header.site").inner_text()
    end = page.evaluate("document.getElementById('chart')._fullLayout.xaxis.range[1]")
    assert end < "2013-01-01"
    last = page.evaluate(
        "Math.max(...document.getElementById('chart').data.filter(t => t.meta.role !== 'key' && t.x.length)"
        ".map(t => Date.parse(t.x[t.x.length - 1])))"
    )
    assert dt.datetime.fromtimestamp(last / 1000, dt.UTC).date() < dt.date(2013, 1, 1)


@pytest.fixture(scope="module")
def evil_place(tmp_path_factory) -> Path:
    """A report whose every text field Plotly shows is markup."""
    folder = tmp_path_factory.mktemp("evil-place")
    log = folder / "log.jsonl"
    store = JsonlStore(log, clock=StepClock())
    store.append(
        [
            IncidentDescribed(slug="x", title=EVIL_PLACE, place=EVIL_PLACE, start_date=dt.date(2025, 1, 1),
                              summary=EVIL_PLACE),
            MonitorDescribed(slug="m", full_name=EVIL_PLACE, description=EVIL_PLACE),
            *(Observation(
                id=f"p{n}", incident="x", monitor="m", reported_on=dt.date(2025, 1, 2 + n), measure="killed",
                category="civilians", kind=Kind.CUMULATIVE, figure=Figure(5 + n, 9 + n, Qualifier.RANGE),
                source=Source(title=EVIL_PLACE, url="https://example.org/", quote=EVIL_PLACE),
                location=location, note=EVIL_PLACE,
            ) for n, location in enumerate((EVIL_PLACE, None))),
        ]
    )  # fmt: skip
    return report(tmp_path_factory, "--log", str(log))


def test_hostile_location_renders_as_text_everywhere_plotly_draws(evil_place, page):
    """The location <a ...>click</a><span ...>BIG</span> shows as characters: no link, no 80px text."""
    open_page(page, evil_place / "incident-x.html")
    page.locator("#places").scroll_into_view_if_needed()
    for chart in ("headline", "chart", "places"):
        assert page.locator(f"#{chart} svg a").count() == 0, chart
        sizes = page.evaluate(
            "([c]) => [...document.querySelectorAll('#' + c + ' svg text, #' + c + ' svg tspan')]"
            ".map(t => getComputedStyle(t).fontSize)",
            [chart],
        )
        assert "80px" not in sizes, chart
    ticks = " ".join(page.locator("#places .ytick text").all_text_contents())
    assert '<a href="https://evil.example/">' in ticks
    x, y = _dot_position(page, "places", 0)
    page.mouse.move(x, y)
    page.locator(".hoverlayer text").first.wait_for()
    hover = " ".join(page.locator(".hoverlayer text").all_text_contents())
    assert "<span style=" in hover
    assert page.locator(".hoverlayer a").count() == 0
    assert page.evaluate("getComputedStyle(document.querySelector('#places-legend li')).fontSize") != "80px"
    assert page.problems == []


def test_zooming_to_the_busy_weeks_marks_what_lies_beyond(bundled, page):
    """The busy-weeks zoom of coastal-2025 names, at its edge, each latest figure outside it."""
    open_page(page, bundled / "incident-coastal-2025.html")
    page.click("#busy-toggle")
    end = page.evaluate("document.getElementById('chart')._fullLayout.xaxis.range[1]")
    assert end < "2025-04-01"
    edge = " ".join(page.locator("#chart .annotation-text").all_text_contents())
    assert "SOHR 1,659 on 25 Dec 2025 ▶" in edge
    page.click("#busy-toggle")
    assert page.locator("#chart .annotation-text").count() == 0


CROWD_MONITORS = ("SOHR", "SNHR", "Airwars")
CROWD_DAYS = 120


def _crowd_figure(monitor: int, day: int) -> int:
    """Far apart per monitor, so each line can be hovered on its own."""
    return 10 * day + 400 * monitor


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Path:
    """A report of one incident with 360 figures: three monitors' daily totals over 120 days."""
    folder = tmp_path_factory.mktemp("crowded")
    log = folder / "log.jsonl"
    start = dt.date(2024, 12, 1)
    events = [IncidentDescribed(slug="many", title="Many", place="P", start_date=start, summary="s")]
    for m, monitor in enumerate(CROWD_MONITORS):
        events.append(MonitorDescribed(slug=monitor, full_name=monitor, description="d"))
        events += [
            Observation(
                id=f"{monitor}-{day:03d}", incident="many", monitor=monitor, reported_on=start + dt.timedelta(days=day),
                measure="killed", category="civilians", kind=Kind.CUMULATIVE,
                figure=Figure(_crowd_figure(m, day), _crowd_figure(m, day), Qualifier.EXACT),
                source=Source(title=f"{monitor} report {day}", url=f"https://example.org/{monitor}/{day}",
                              quote=f"{monitor} counted {_crowd_figure(m, day)} by day {day}"),
            )
            for day in range(CROWD_DAYS)
        ]  # fmt: skip
    JsonlStore(log, clock=StepClock()).append(events)
    return report(tmp_path_factory, "--log", str(log))


def _table_ids(page) -> list[str]:
    return page.locator("#observations tbody tr").evaluate_all("rows => rows.map(r => r.id.slice(4))")


def test_table_of_many_figures_pages_through_every_row_once(crowded, page):
    """A page of 360 figures shows 100 rows at a time; stepping through the pages lists each figure once."""
    open_page(page, crowded / "incident-many.html")
    assert page.locator("#observations tbody tr").count() == 100
    assert page.locator("#observations-shown").inner_text() == "figures 1–100 of 360"
    assert page.locator("#observations-pager button[data-go=previous]").is_disabled()
    seen = _table_ids(page)
    for _ in range(3):
        page.click("#observations-pager button[data-go=next]")
        seen += _table_ids(page)
    assert page.locator("#observations-shown").inner_text() == "figures 301–360 of 360"
    assert page.locator("#observations-pager button[data-go=next]").is_disabled()
    assert sorted(seen) == sorted(f"{m}-{d:03d}" for m in CROWD_MONITORS for d in range(CROWD_DAYS))
    page.click("#observations-pager button[data-go=first]")
    assert _table_ids(page) == seen[:100]
    assert page.problems == []


def test_sorting_orders_every_row_not_only_the_page_shown(crowded, page):
    """Sorting by figure puts the largest of all 360 first, descending, and the smallest on the last page."""
    open_page(page, crowded / "incident-many.html")
    header = page.locator("#observations th", has_text="Figure")
    header.click()
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    lows = page.locator("#observations tbody td.figure").evaluate_all("cells => cells.map(c => +c.dataset.sort)")
    everything = sorted((_crowd_figure(m, d) for m in range(len(CROWD_MONITORS)) for d in range(CROWD_DAYS)),
                        reverse=True)  # fmt: skip
    assert lows == everything[:100]
    page.click("#observations-pager button[data-go=last]")
    lows = page.locator("#observations tbody td.figure").evaluate_all("cells => cells.map(c => +c.dataset.sort)")
    assert lows == everything[300:]
    page.locator("#observations th", has_text="Monitor").click()
    monitors = page.locator("#observations tbody tr td:nth-child(2)").all_inner_texts()
    assert monitors == ["Airwars"] * 100


def test_a_point_whose_row_is_on_a_later_page_opens_its_source_and_that_page(crowded, page):
    """Clicking a late point shows its quote from the page's data, and "see it in the table" turns to its row."""
    open_page(page, crowded / "incident-many.html")
    date = (dt.date(2024, 12, 1) + dt.timedelta(days=110)).isoformat()
    x, y = _point_position(page, "SNHR", date)
    page.mouse.move(x, y)
    page.locator(".hoverlayer text").first.wait_for()
    assert "SNHR counted 1500 by day 110" in " ".join(page.locator(".hoverlayer text").all_text_contents())
    page.mouse.click(x, y)
    panel = page.locator("#panel")
    panel.wait_for(state="visible")
    assert "SNHR counted 1500 by day 110" in panel.locator("blockquote").inner_text()
    assert page.locator("#obs-SNHR-110").count() == 0
    panel.locator("a", has_text="see it in the table").click()
    assert page.locator("#obs-SNHR-110 td.quote").inner_text() == "“SNHR counted 1500 by day 110”"


def test_csv_download_of_a_page_with_many_figures(crowded, page):
    """The CSV link of a paged table still downloads every series day of the incident, not one page of it."""
    open_page(page, crowded / "incident-many.html")
    with page.expect_download() as download:
        page.click("a.download")
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == 1 + len(CROWD_MONITORS) * CROWD_DAYS
    assert sum(int(line.split(",")[6]) for line in lines[1:]) == sum(
        _crowd_figure(m, d) for m in range(len(CROWD_MONITORS)) for d in range(CROWD_DAYS)
    )
