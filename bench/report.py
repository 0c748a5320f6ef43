"""Benchmark of the HTML report: 50 incidents x 20 monitors x 2 years of daily reports.

    python -m bench.report [--days 730] [--work DIR]

Builds the report of a synthetic log of that shape with `timeline report`
in a fresh process and prints the build time (wall and CPU), peak memory, the total size
of the output folder and the size of the largest page; then opens the
largest page, and the largest incident page, in headless Chromium (Debian's,
driven by Playwright, as the browser tests do) and prints how long each takes
to draw: from navigation until its charts and its table are on screen.

Targets (issue 14): build at most 10 s, no page above 3 MB besides plotly.js,
the largest page drawn in under 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .__main__ import PY, run
from .generate import in_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=730, help="days of daily reports per monitor")
    parser.add_argument("--repeat", type=int, default=3, help="page loads per timing (median)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "toll-timeline-bench")
    args = parser.parse_args()
    observations = 50 * 20 * args.days
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / f"daily-{args.days}.jsonl"
    if not log.exists():
        print(f"generating {log.name} ({observations:,} observations) ...", file=sys.stderr)
        in_child("log", log, observations)
    out = Path(tempfile.mkdtemp(prefix="report-", dir=args.work))
    # CPU seconds too: on a machine shared with other benchmarks wall time mostly measures the others.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, rss, _ = run([PY, "-m", "timeline", "report", "--log", str(log), "--out", str(out)])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    files = [p for p in out.iterdir() if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    print(f"log: 50 incidents x 20 monitors x {args.days} days = {observations:,} observations")
    print(f"build time: {wall:.1f} s ({cpu:.1f} s of CPU), peak memory {rss:,.0f} MB")
    print(f"output: {len(pages)} pages, {sum(p.stat().st_size for p in files) / 1e6:,.1f} MB in all "
          f"(plotly.js {(out / 'plotly.min.js').stat().st_size / 1e6:.1f} MB, CSV downloads included)")  # fmt: skip
    print(f"largest page: {largest.name}, {largest.stat().st_size / 1e6:.1f} MB (target <= 3 MB)")
    biggest_incident = max((p for p in pages if p.name != "index.html"), key=lambda p: p.stat().st_size)
    print(f"largest incident page: {biggest_incident.name}, {biggest_incident.stat().st_size / 1e6:.1f} MB")
    for page, (cold, warm) in draw_times(sorted({largest, biggest_incident}), args.repeat).items():
        print(f"drawn by headless Chromium: {page.name} in {cold:.2f} s in a fresh browser context, {warm:.2f} s "
              f"with plotly.js cached (medians of {args.repeat}; target < 2 s)")  # fmt: skip
    print(f"build time / target: {wall / 10:.2f} (target <= 1)")


# Drawn means: the page's charts hold their data (Plotly has drawn them) and its table has its rows.
DRAWN = """() => {
    const chart = document.getElementById('chart');
    if (chart === null) return document.querySelectorAll('table.latest tbody tr').length > 0;
    return chart.data !== undefined && document.getElementById('headline').data !== undefined
        && document.querySelector('#observations tbody tr') !== null;
}"""


def draw_times(pages: list[Path], repeat: int) -> dict[Path, tuple[float, float]]:
    """Median seconds from navigation until each page is drawn: in a fresh browser context (nothing
    cached, plotly.js compiled anew) and in one that loaded the page twice before (as a reader's
    browser would, with plotly.js in its code cache)."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("TIMELINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    times: dict[Path, tuple[float, float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )

        def load(context) -> float:
            tab = context.new_page()
            started = time.perf_counter()
            tab.goto(page_path.as_uri())
            tab.wait_for_function(DRAWN, timeout=120_000, polling=10)
            elapsed = time.perf_counter() - started
            tab.close()
            return elapsed

        for page_path in pages:
            cold = []
            for _ in range(repeat):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                cold.append(load(context))
                context.close()
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            load(context), load(context)
            warm = [load(context) for _ in range(repeat)]
            context.close()
            times[page_path] = (statistics.median(cold), statistics.median(warm))
        browser.close()
    return times


if __name__ == "__main__":
    main()
