"""Benchmark of the HTML report: 50 incidents x 20 monitors x 2 years of daily reports.

    python -m bench.report [--days 730] [--work DIR]

Builds the report of a synthetic log of that shape with `timeline report`
in a fresh process and prints the build time (wall and CPU, the CPU of the
processes that write its pages included), peak memory (of its largest
process, and of all its processes together: a large report writes its pages
in a pool of forked processes, which share the replay), the total size of the
output folder and the size of the largest page; then opens the
largest page, and the largest incident page, in headless Chromium (Debian's,
driven by Playwright, as the browser tests do) and prints how long each takes
to draw: from navigation until its charts and its table are on screen.

Targets (issue 14): build at most 10 s, no page above 3 MB besides plotly.js,
the largest page drawn in under 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .__main__ import CHILD_ENV, PY, ROOT
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
    try:
        measure(log, out, observations, args)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # the pages, 140 MB a run: made anew by every run


def measure(log: Path, out: Path, observations: int, args: argparse.Namespace) -> None:
    """Build the report of ``log`` into ``out``, time it, and time the drawing of its largest pages."""
    # CPU seconds too: on a machine shared with other benchmarks wall time mostly measures the others.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, rss, together = sampled([PY, "-m", "timeline", "report", "--log", str(log), "--out", str(out)])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    files = [p for p in out.iterdir() if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    print(f"log: 50 incidents x 20 monitors x {args.days} days = {observations:,} observations")
    print(f"build time: {wall:.1f} s ({cpu:.1f} s of CPU), peak memory {rss:,.0f} MB "
          f"(its processes together: {together:,.0f} MB, proportional set size sampled every 0.1 s)")  # fmt: skip
    print(f"output: {len(pages)} pages, {sum(p.stat().st_size for p in files) / 1e6:,.1f} MB in all "
          f"(plotly.js {(out / 'plotly.min.js').stat().st_size / 1e6:.1f} MB, CSV downloads included)")  # fmt: skip
    print(f"largest page: {largest.name}, {largest.stat().st_size / 1e6:.1f} MB (target <= 3 MB)")
    biggest_incident = max((p for p in pages if p.name != "index.html"), key=lambda p: p.stat().st_size)
    print(f"largest incident page: {biggest_incident.name}, {biggest_incident.stat().st_size / 1e6:.1f} MB")
    for page, (cold, warm) in draw_times(sorted({largest, biggest_incident}), args.repeat).items():
        print(f"drawn by headless Chromium: {page.name} in {cold:.2f} s in a fresh browser context, {warm:.2f} s "
              f"with plotly.js cached (medians of {args.repeat}; target < 2 s)")  # fmt: skip
    print(f"build time / target: {wall / 10:.2f} (target <= 1)")


def sampled(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the peak RSS (MB) of the largest process, and the peak of all the processes' PSS
    added up (MB): the pool's processes share the pages they were forked with, which RSS would count
    once per process and PSS divides between them."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=ROOT,
                               env={**CHILD_ENV, "PYTHONPATH": str(ROOT)})  # fmt: skip
    started, together = time.perf_counter(), 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        together = max(together, sum(_pss(p) for p in _tree(process.pid)))
        time.sleep(0.1)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, usage.ru_maxrss / 1024, together / 1024


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (Linux)."""
    found = [pid]
    for parent in found:
        with contextlib.suppress(OSError):  # gone since
            found += [int(child) for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    return found


def _pss(pid: int) -> int:
    """A process's proportional set size in KB (0 once it is gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)


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
