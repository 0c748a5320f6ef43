"""Benchmarks: replay at the scale of real conflict datasets, against polars and pandas.

    python -m bench                 # N = 1,000,000 observations
    python -m bench --quick         # N = 100,000
    python -m bench --n 20000       # any size

In one run, on synthetic logs from ``bench.generate`` (kept in --work, reused
when present), it measures, each in a fresh process unless said otherwise:

1. cold replay of the whole log to per-day series, as the library call and
   as ``timeline replay --format csv > series.csv`` (from the replay index,
   and again once that whole replay is kept beside the log: a copy); also
   the first replay of a log that has no replay index beside it yet, and
   its floor: decoding every line alone (``bench.floors decode``), which no
   first replay can skip;
2. replay after appending 1,000 more observations to a log this process
   already replayed (incremental);
3. one as-of query (one incident, one date), after a full replay in the same
   process, and alone in a fresh process: read from the full replay kept
   beside the log by incident, and, where none is kept, from that incident's
   part of the index;
4. ``timeline report`` over the whole log;
5. the same daily series by a polars script and a pandas script
   (``bench.baselines``) on the part of the data they can express
   (cumulative totals, no corrections), checked equal to ours;

and prints wall time, peak memory (max RSS) and the ratios ours/polars and
ours/pandas, with the targets: (1) no slower and no bigger than polars,
(2) at most 5% of (1), (3) at most 2% of (1). These machines are shared and
noisy: timings are the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .generate import in_child

ROOT = Path(__file__).resolve().parents[1]


# Children keep their bytecode as any install does (pip compiles it): where PYTHONDONTWRITEBYTECODE
# is set, as on the shared bench machines, every run would otherwise compile the project afresh.
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def run(command: list[str], *, stdout: Path | None = None, env=None) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of a command in a fresh process, and its last line of output.

    ``stdout`` is a file to write the output to (anew each run); without one it is kept and its
    last line returned.
    """
    with tempfile.TemporaryFile("w+") as kept, tempfile.TemporaryFile("w+") as errors, \
            open(stdout or os.devnull, "w") as written:  # fmt: skip
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=written if stdout else kept, stderr=errors, cwd=ROOT,
                                   env={**CHILD_ENV, **(env or {}), "PYTHONPATH": str(ROOT)})  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"failed: {' '.join(command)}\n{errors.read()}")
        kept.seek(0)
        lines = kept.read().strip().splitlines()
    return wall, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def timed(command: list[str], repeat: int, before=None, **kwargs) -> tuple[float, float, list[str]]:
    """Median wall time, largest peak memory, and every run's last line of output (``before`` each run, if given)."""
    results = []
    for _ in range(repeat):
        if before is not None:
            before()
        results.append(run(command, **kwargs))
    return (statistics.median(r[0] for r in results), max(r[1] for r in results), [r[2] for r in results])


PY = sys.executable

LIBRARY_COLD = """
import sys, time
from events_log.stores import open_store
from timeline.replay import replay
store = open_store(sys.argv[1])
started = time.perf_counter()
result = replay(store)
print(time.perf_counter() - started, len(result.series))
"""

INCREMENTAL = """
import sys, time, datetime as dt
from events_log.stores import open_store
from events_log.events import Figure, Kind, Observation, Qualifier, Source
from timeline.replay import replay
store = open_store(sys.argv[1])
first = replay(store)
last = max(s.last for s in first.series)
more = []
for n, series in enumerate(first.series[:1000]):
    more.append(Observation(
        id=f"more-{n}", incident=series.incident, monitor=series.monitor, reported_on=last + dt.timedelta(days=1),
        measure=series.measure, category=series.category, location=series.location, kind=Kind.CUMULATIVE,
        figure=Figure(series.latest.low + 5, series.latest.low + 5, Qualifier.EXACT),
        source=Source(title="bench", url="https://bench.example.org/more", quote="five more")))
store.append(more)
started = time.perf_counter()
again = replay(store)
elapsed = time.perf_counter() - started
assert again.log.entries == first.log.entries + len(more)
print(elapsed, len(more))
"""

AS_OF = """
import sys, time, datetime as dt
from events_log.stores import open_store
from timeline.replay import replay
store = open_store(sys.argv[1])
warm = sys.argv[2] == "warm"
if warm:
    replay(store)
started = time.perf_counter()
result = replay(store, as_of=dt.date(2024, 1, 15), incident="incident-007")
print(time.perf_counter() - started, len(result.series))
"""


KEPT = """
import sys
from events_log.stores import open_store
from timeline import stored
store = open_store(sys.argv[1])
kept = stored.kept_whole(store)
if kept is None:
    stored.keep(store)
else:
    kept.close()
"""


def sorted_lines(path: Path) -> list[str]:
    with open(path) as f:
        header = f.readline()
        return [header, *sorted(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 100,000 instead of 1,000,000")
    parser.add_argument("--n", type=int, help="number of observations")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "toll-timeline-bench")
    parser.add_argument("--skip-pandas", action="store_true", help="pandas needs minutes and many GB at 1M")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    args.work.mkdir(parents=True, exist_ok=True)
    full, cumulative = args.work / f"full-{n}.jsonl", args.work / f"cumulative-{n}.jsonl"
    for path, only in ((full, False), (cumulative, True)):
        if not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            in_child("log", path.with_suffix(".tmp"), n, cumulative_only=only)
            path.with_suffix(".tmp").rename(path)
            for projection in ("index", "known"):
                path.with_suffix(f".tmp.{projection}").rename(path.with_name(f"{path.name}.{projection}"))
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=args.work))
    results: dict[str, tuple[float, float]] = {}
    timeline = [PY, "-m", "timeline"]

    def measure(name: str, command: list[str], before=None, **kwargs) -> list[str]:
        print(f"measuring {name} ...", file=sys.stderr)
        wall, rss, outputs = timed(command, args.repeat, before, **kwargs)
        results[name] = (wall, rss)
        return outputs

    for label, log in (("full log", full), ("cumulative log", cumulative)):
        name = f"(1) library replay, {label}"
        outputs = measure(name, [PY, "-c", LIBRARY_COLD, str(log)])
        # The time of the call itself, inside the process: the median over the runs.
        results[name] = (statistics.median(float(out.split()[0]) for out in outputs), results[name][1])
        csv_out = scratch / f"ours-{label[0]}.csv"
        command = [*timeline, "replay", "--log", str(log), "--format", "csv"]

        def unkept(log: Path = log) -> None:  # the results a whole replay keeps beside the log: replayed anew
            for kept in log.parent.glob(glob.escape(log.name) + ".replay.*"):
                kept.unlink()

        measure(f"(1) timeline replay --format csv, {label}", command, before=unkept, stdout=csv_out)
        # The same command once a whole replay was kept at the log's head (by the runs above): a copy.
        measure(f"(1) timeline replay --format csv, kept result, {label}", command, stdout=csv_out)
    unindexed = scratch / "unindexed.jsonl"
    shutil.copy(full, unindexed)
    os.sync()  # the copy's write-back is not the replay's to wait for
    command = [*timeline, "replay", "--log", str(unindexed), "--format", "csv"]

    def no_sidecars(log: Path = unindexed) -> None:  # each run a first replay: nothing beside the log
        for sidecar in log.parent.glob(glob.escape(log.name) + ".*"):
            sidecar.unlink()

    # Max RSS is this process's: the fork that reads part of the log (events_log/parallel.py) is not counted.
    measure("(1) first replay with no index yet, full log", command, before=no_sidecars, stdout=scratch / "first.csv")
    # What no first replay in Python can skip: decoding every line (bench/floors.py), on one core.
    measure("(1) floor: decoding every line (msgspec), full log", [PY, "-m", "bench.floors", "decode", str(full)])
    appended = scratch / "appended.jsonl"
    shutil.copy(full, appended)
    shutil.copy(full.with_name(full.name + ".index"), appended.with_name(appended.name + ".index"))
    out = run(
        [PY, "-c", INCREMENTAL, str(appended)],
    )[2]
    results["(2) replay after appending 1,000 (same process)"] = (float(out.split()[0]), float("nan"))
    # A fresh process reads the full replay kept beside the log by incident, where one is kept at its head (a
    # whole `timeline replay` or an import keeps it); the unindexed copy, replayed once above, has its index
    # but is stripped of it, to measure the question answered from the index.
    run([PY, "-c", KEPT, str(full)])
    unindexed.with_name(unindexed.name + ".replay.incidents").unlink(missing_ok=True)
    for mode, log, name in (("warm", full, "after a full replay"), ("fresh", full, "fresh process"),
                            ("fresh", unindexed, "fresh, from the index"),):  # fmt: skip
        # The time of the call itself, inside each process: the median over the runs.
        outputs = timed([PY, "-c", AS_OF, str(log), mode], args.repeat)[2]
        results[f"(3) as-of one incident, one date, {name}"] = (
            statistics.median(float(out.split()[0]) for out in outputs), float("nan"))  # fmt: skip
    if not args.skip_report:
        measure("(4) timeline report, full log", [*timeline, "report", "--log", str(full), "--out",
                                                    str(scratch / "report")])  # fmt: skip
        pages = list((scratch / "report").glob("*.html"))
        size = sum(p.stat().st_size for p in (scratch / "report").iterdir())
        largest = max(p.stat().st_size for p in pages)
        print(f"report: {len(pages)} pages, {size / 1e6:.1f} MB in all, largest page {largest / 1e6:.1f} MB")
    for tool in ("polars", "pandas"):
        if tool == "pandas" and args.skip_pandas:
            continue
        out_csv = scratch / f"{tool}.csv"
        command = [PY, "-m", "bench.baselines", tool, str(cumulative), str(out_csv)]
        if tool == "pandas":  # minutes at 1M: once
            print("measuring (5) pandas script, cumulative log ...", file=sys.stderr)
            results[f"(5) {tool} script, cumulative log"] = run(command)[:2]
        else:
            measure(f"(5) {tool} script, cumulative log", command)
        same = sorted_lines(out_csv) == sorted_lines(scratch / "ours-c.csv")
        print(f"{tool}'s series equal ours: {same}")
        if not same:
            raise SystemExit(f"{tool}'s output differs from ours")
    report(n, results, args)
    shutil.rmtree(scratch, ignore_errors=True)


def report(n: int, results: dict[str, tuple[float, float]], args) -> None:
    polars = results.get("(5) polars script, cumulative log")
    pandas = results.get("(5) pandas script, cumulative log")
    print(f"\nN = {n:,} observations (plus corrections and retractions in the full log)\n")
    print(f"{'measurement':<64} {'wall s':>9} {'max RSS MB':>11} {'/polars':>9} {'/pandas':>9}")
    for name, (wall, rss) in results.items():
        ratios = []
        for base in (polars, pandas):
            ratios.append(f"{wall / base[0]:.2f}" if base and "cumulative" in name else "")
        rss_text = "" if rss != rss else f"{rss:,.0f}"
        print(f"{name:<64} {wall:>9.3f} {rss_text:>11} {ratios[0]:>9} {ratios[1]:>9}")
    cold = results["(1) library replay, full log"][0]
    cli = results["(1) timeline replay --format csv, cumulative log"]
    print("\ntargets:")
    if polars:
        print(f"  (1) replay --format csv vs polars on the same data: time {cli[0] / polars[0]:.2f}x, "
              f"memory {cli[1] / polars[1]:.2f}x (target <= 1 for both)")  # fmt: skip
        first = results["(1) first replay with no index yet, full log"][0]
        floor = results["(1) floor: decoding every line (msgspec), full log"][0]
        indexed = results["(1) timeline replay --format csv, full log"][0]
        floor_ratio = (floor + indexed) / polars[0]
        print(f"  (1) first replay without index vs polars: {first / polars[0]:.2f}x (target <= 1); its floor on "
              f"one core (decode every line, then replay from an index): {floor_ratio:.2f}x")  # fmt: skip
    incremental = results["(2) replay after appending 1,000 (same process)"][0]
    print(f"  (2) incremental / cold library replay: {incremental / cold:.1%} (target <= 5%)")
    for name in ("(3) as-of one incident, one date, after a full replay",
                 "(3) as-of one incident, one date, fresh process",
                 "(3) as-of one incident, one date, fresh, from the index"):  # fmt: skip
        print(f"  {name[:3]} {name[4:]} / cold library replay: {results[name][0] / cold:.1%} (target <= 2%)")
    if args.json:
        args.json.write_text(json.dumps({"n": n, "results": results}, indent=2))


if __name__ == "__main__":
    main()
