"""Import and first replay against the peers a researcher would reach for, each in a fresh process.

    python -m bench.peers            # 200,000 and 1,000,000 observations
    python -m bench.peers --quick    # 200,000 only
    python -m bench.peers --postgres postgresql://...   # a server of yours (else one is started here)

From one CSV in `timeline import`'s format (cumulative totals only, from
``bench.generate``, kept in --work), it measures wall time and peak memory
(max RSS) of:

(a) issue 17's peer: a plain polars script (``bench.baselines polars-csv``)
    that reads the CSV and writes the daily series, against
    ``timeline replay --format csv`` run right after ``timeline import``
    into a JSON Lines and into a SQLite log; both outputs must hold the
    same rows and the same sum of figures;
(b) issue 14's import peer: the ``sqlite3`` shell's ``.import`` of the same
    CSV into a plain table (the C floor of loading a CSV), against
    ``timeline import --describe-new`` (a new dataset: its incidents and
    monitors described in the same batch) into an empty JSON Lines, SQLite
    and PostgreSQL log; and two floors (``bench.floors``): the least Python
    a CSV import could be, with none of the checks, and SQLite's own part of
    an import into the SQLite store (its rows into the store's table);
(c) issue 14's SQL target: replay from the replay index each store keeps
    (``--days reports``, so that the full replay kept as CSV is not used),
    SQLite and PostgreSQL against JSON Lines.

Ratios are ours / peer (issue 14's targets: import at most 3x the sqlite3
shell for JSON Lines and SQLite; issue 17's: replay at most 0.5x polars).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from .__main__ import PY, run
from .generate import in_child

TIMELINE = [PY, "-m", "timeline"]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server (Debian's binaries, as the tests start one), stopped afterwards."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found)] if found else sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        raise SystemExit("no PostgreSQL server binaries (pg_ctl, initdb): give --postgres URL or --skip-postgres")
    binaries = candidates[-1].resolve().parent

    def as_server_user(command: list[str]) -> list[str]:
        # initdb and postgres refuse to run as root.
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    folder = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                   "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                   str(folder / "log"), "-w", "start"]), check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def fresh_schema(server: str) -> str:
    """The URL of a new, empty schema of ``server``: each import starts from an empty log."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}"


def rows_and_sum(path: Path) -> tuple[list[str], int]:
    """The lines of a series CSV in sorted order (header first), and the sum of its ``low`` column."""
    with open(path, encoding="utf-8") as f:
        header = f.readline()
        lines = sorted(f)
    low = header.rstrip("\n").split(",").index("low")
    # The key cells before ``low`` never hold commas in the generated data.
    return [header, *lines], sum(int(line.split(",")[low]) for line in lines)


def measure_size(n: int, args, scratch: Path, server: str | None, results: dict) -> None:
    source = args.work / f"import-{n}.csv"
    if not source.exists():
        print(f"writing {source.name} ...", file=sys.stderr)
        in_child("csv", source.with_suffix(".tmp"), n)
        source.with_suffix(".tmp").rename(source)

    def timed(name: str, fresh, command, *, printed: bool = False, **kwargs) -> None:
        """Median wall time and largest peak memory; ``printed``: the seconds the command prints, not its wall."""
        print(f"measuring {name} ...", file=sys.stderr)
        runs = []
        for _ in range(args.repeat):
            fresh()
            wall, rss, last = run(command(), **kwargs)
            runs.append((float(last) if printed else wall, rss))
        results[name] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))

    def clear(path: Path):
        def fresh() -> None:
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()

        return fresh

    table = scratch / "plain.db"
    timed(f"{n:,}: sqlite3 shell .import", lambda: table.unlink(missing_ok=True),
          lambda: ["sqlite3", str(table), ".mode csv", f".import {source} observations"])  # fmt: skip
    floor = scratch / "floor.jsonl"
    timed(f"{n:,}: floor: checks-free Python import", lambda: floor.unlink(missing_ok=True),
          lambda: [PY, "-m", "bench.floors", "import", str(source), str(floor)])  # fmt: skip
    # SQLite's own part of an import into the SQLite store: its lines into the store's table (the seconds
    # of the insert and commit alone, as the script prints them).
    database = scratch / "floor.db"
    timed(f"{n:,}: floor: the rows into the SQLite store's table", clear(database),
          lambda: [PY, "-m", "bench.floors", "sqlite", str(floor), str(database)], printed=True)  # fmt: skip
    logs = {"JSON Lines": scratch / "log.jsonl", "SQLite": scratch / "log.db"}
    names = {"JSON Lines": str(logs["JSON Lines"]), "SQLite": f"sqlite:///{logs['SQLite']}"}

    for store, path in logs.items():
        timed(f"{n:,}: timeline import, {store}", clear(path),
              lambda log=names[store]: [*TIMELINE, "import", "--log", log, "--describe-new", str(source)])  # fmt: skip
    if server is not None:
        schemas: list[str] = []
        timed(f"{n:,}: timeline import, PostgreSQL", lambda: schemas.append(fresh_schema(server)),
              lambda: [*TIMELINE, "import", "--log", schemas[-1], "--describe-new", str(source)])  # fmt: skip
    ours = {}
    for store in logs:
        # Right after the import above: the first replay of a fresh log, as a researcher runs it.
        ours[store] = scratch / f"ours-{store.split()[0]}.csv"
        name = f"{n:,}: timeline replay --format csv, {store}"
        print(f"measuring {name} ...", file=sys.stderr)
        results[name] = run([*TIMELINE, "replay", "--log", names[store], "--format", "csv"], stdout=ours[store])[:2]
    # Issue 14: replay from the replay index each store keeps (sidecar file or table), with the kept
    # CSV left aside (--days reports): the SQL stores against JSON Lines, each the median of --repeat runs
    # (one run of a 0.4 s replay moved this ratio between 1.2 and 1.6 within the hour).
    indexed = {**names, **({"PostgreSQL": schemas[-1]} if server is not None else {})}
    for store, log in indexed.items():
        timed(f"{n:,}: index replay (--days reports), {store}", lambda: None,
              lambda log=log: [*TIMELINE, "replay", "--log", log, "--format", "csv", "--days", "reports"],
              stdout=scratch / "reports.csv")  # fmt: skip
    theirs = scratch / "polars.csv"
    timed(f"{n:,}: polars script from the CSV", lambda: None,
          lambda: [PY, "-m", "bench.baselines", "polars-csv", str(source), str(theirs)])  # fmt: skip
    expected = rows_and_sum(theirs)
    for store, path in ours.items():
        got = rows_and_sum(path)
        print(f"{n:,}: {store} replay and polars: same rows {got[0] == expected[0]}, "
              f"same sum {got[1] == expected[1]} ({got[1]:,})")  # fmt: skip
        if got != expected:
            raise SystemExit(f"the replay of the {store} log differs from the polars script's series")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 observations only")
    parser.add_argument("--n", type=int, action="append", help="a number of observations (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per timing (median)")
    parser.add_argument("--postgres", help="a PostgreSQL URL whose role may create schemas (default: start one)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "toll-timeline-bench")
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 shell is missing: apt-get install sqlite3")
    sizes = args.n or ([200_000] if args.quick else [200_000, 1_000_000])
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[float, float]] = {}
    with contextlib.ExitStack() as stack:
        server = None
        if not args.skip_postgres:
            server = args.postgres or stack.enter_context(postgres_server())
        for n in sizes:
            scratch = Path(tempfile.mkdtemp(prefix="peers-", dir=args.work))
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            measure_size(n, args, scratch, server, results)
    report(sizes, results)


def report(sizes: list[int], results: dict[str, tuple[float, float]]) -> None:
    print(f"\n{'measurement':<52} {'wall s':>8} {'max RSS MB':>11} {'/ peer':>7}")
    for n in sizes:
        prefix = f"{n:,}: "
        shell = results[prefix + "sqlite3 shell .import"][0]
        polars = results[prefix + "polars script from the CSV"][0]
        from_jsonl = results[prefix + "index replay (--days reports), JSON Lines"][0]
        for name, (wall, rss) in results.items():
            if not name.startswith(prefix):
                continue
            if name.startswith(prefix + "index replay"):
                peer = None if name.endswith("JSON Lines") else from_jsonl
            elif name.endswith(("shell .import", "from the CSV")):
                peer = None
            else:
                peer = shell if "import" in name or "floor" in name else polars  # floors: against .import
            ratio = f"{wall / peer:.2f}" if peer else ""
            print(f"{name:<52} {wall:>8.2f} {rss:>11,.0f} {ratio:>7}")
    print("\nratios: timeline import / sqlite3 shell .import (issue 14: <= 3 for JSON Lines and SQLite; the floor"
          " is the least Python an import could be, bench/floors.py);"
          " timeline replay / polars script (issue 17: <= 0.5);"
          " index replay of a SQL store / of JSON Lines (issue 14: <= 1.5)")  # fmt: skip


if __name__ == "__main__":
    main()
