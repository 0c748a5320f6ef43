"""Start-up of the `timeline` command against `python -c pass`, each in a fresh process.

    python -m bench.startup              # 20 runs of each command
    python -m bench.startup --repeat 50

Issue 17's target: start-up of any `timeline` command at most 0.08 s, the
command importing only what it needs. It runs the installed console script
(as a user does), the runs of all commands interleaved so that the load of a
shared machine falls on each alike, and prints the median wall time of each,
its ratio to `python -c pass` (the interpreter's own start-up, measured in the
same run) and whether it is within 0.08 s.

Help and version measure the start-up itself. `replay` and `verify` of the
bundled dataset show a real command's whole run: what it needs (numpy, the
store, the replay) loads then, and that cost is listed separately.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 0.08


def commands() -> dict[str, list[str]]:
    """The commands to time: the interpreter alone, then `timeline` as installed beside it."""
    script = Path(sys.executable).parent / "timeline"
    if not script.exists():
        raise SystemExit(f"no `timeline` script beside {sys.executable}: pip install -e . first")
    timeline = [str(script)]
    from timeline_cli import cli  # the command names; this process's own start-up is not measured

    startup = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "timeline --help": [*timeline, "--help"],
        "timeline --version": [*timeline, "--version"],
    }
    for name in sorted(cli.commands):
        startup[f"timeline {name} --help"] = [*timeline, name, "--help"]
    return {
        **startup,
        "timeline replay --format csv (bundled)": [*timeline, "replay", "--format", "csv"],
        "timeline verify (bundled)": [*timeline, "verify"],
    }


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs of each command (median)")
    args = parser.parse_args()
    chosen = commands()
    for command in chosen.values():  # warm the file cache and the bytecode caches
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(args.repeat):
        for name, command in chosen.items():
            times[name].append(wall(command))
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    python = medians["python -c pass"]
    print(f"\n{'command':<44} {'median s':>9} {'/ python -c pass':>17} {'<= 0.08 s':>10}")
    for name, median in medians.items():
        within = "" if name == "python -c pass" else "yes" if median <= TARGET else "NO"
        print(f"{name:<44} {median:>9.3f} {median / python:>17.2f} {within:>10}")
    worst = max((m, n) for n, m in medians.items() if n.endswith(("--help", "--version")))
    print(f"\nslowest start-up: {worst[1]}, {worst[0]:.3f} s, {worst[0] / python:.2f}x python -c pass "
          f"(issue 17: <= {TARGET} s)")  # fmt: skip


if __name__ == "__main__":
    main()
