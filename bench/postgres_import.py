"""Benchmark of a COPY-based import into PostgreSQL, against the same import by another checkout.

    python -m bench.postgres_import POSTGRES_URL [--baseline DIR] [--observations 20000] [--rounds 5]

Times `timeline copy log.jsonl POSTGRES_URL` of a synthetic log into a fresh
schema, in a fresh process, with this checkout and (with --baseline, e.g.
an unpacked `git archive main`) with the other one, alternating, and prints
the medians and their ratio: the price of the database's own checks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from .__main__ import PY
from .generate import generate

HERE = Path(__file__).resolve().parent.parent


def _import_once(tree: Path, log: Path, server: str) -> tuple[float, int]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    target = f"{server}{separator}options=-csearch_path%3D{schema}"
    try:
        started = time.perf_counter()
        # Each checkout's own code: its folder is the working directory and the import path.
        subprocess.run([PY, "-m", "timeline", "copy", str(log), target], cwd=tree, check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(tree)})  # fmt: skip
        wall = time.perf_counter() - started
        with psycopg.connect(server, autocommit=True) as connection:
            entries = connection.execute(f"SELECT count(*) FROM {schema}.timeline_entries").fetchone()[0]
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
    return wall, entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("server", help="a PostgreSQL URL whose role may create schemas")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "toll-timeline-bench")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / f"import-{args.observations}.jsonl"
    if not log.exists():
        print(f"generating {log.name} ...", file=sys.stderr)
        generate(log, args.observations)
    trees = {"this checkout": HERE, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            wall, entries = _import_once(tree, log, args.server)
            times[name].append(wall)
    for name, walls in times.items():
        shown = ", ".join(f"{wall:.2f}" for wall in walls)
        print(f"{name}: copy of {entries:,} entries, median {statistics.median(walls):.2f} s ({shown})")
    if args.baseline:
        ratio = statistics.median(times["this checkout"]) / statistics.median(times["baseline"])
        print(f"this checkout / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
