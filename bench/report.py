"""Benchmark of the HTML report: 50 incidents x 20 monitors x 2 years of daily reports.

    python -m bench.report [--days 730] [--work DIR]

Builds the report of a synthetic log of that shape with `timeline report`
in a fresh process and prints the build time, peak memory, the total size
of the output folder and the size of the largest page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .__main__ import PY, run
from .generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=730, help="days of daily reports per monitor")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "toll-timeline-bench")
    args = parser.parse_args()
    observations = 50 * 20 * args.days
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / f"daily-{args.days}.jsonl"
    if not log.exists():
        print(f"generating {log.name} ({observations:,} observations) ...", file=sys.stderr)
        generate(log, observations)
    out = Path(tempfile.mkdtemp(prefix="report-", dir=args.work))
    wall, rss, _ = run([PY, "-m", "timeline", "report", "--log", str(log), "--out", str(out)])
    files = [p for p in out.iterdir() if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    print(f"log: 50 incidents x 20 monitors x {args.days} days = {observations:,} observations")
    print(f"build time: {wall:.1f} s, peak memory {rss:,.0f} MB")
    print(f"output: {len(pages)} pages, {sum(p.stat().st_size for p in files) / 1e6:,.1f} MB in all "
          f"(plotly.js {(out / 'plotly.min.js').stat().st_size / 1e6:.1f} MB, CSV downloads included)")  # fmt: skip
    print(f"largest page: {largest.name}, {largest.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
