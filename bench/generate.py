"""A deterministic generator of synthetic logs at the scale of real conflict datasets.

Observations spread over incidents, monitors and places; monitors publish
running totals and daily increments, exact, ranged and open-ended figures,
with realistic source URLs and quotes; a few of our records are corrected
or retracted. The same seed always gives the same bytes.

``cumulative_only`` leaves out increments, corrections and retractions: the
part of the data a pandas or polars script can express, for comparing with
them.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs

from events_log.events import (
    Correction,
    Figure,
    IncidentDescribed,
    Kind,
    MonitorDescribed,
    Observation,
    Qualifier,
    Retraction,
    Source,
)
from events_log.jsonl import JsonlStore
from timeline.index import REPLAY_INDEX

START = dt.date(2023, 1, 1)
WORDS = ("civilians", "people", "residents", "fighters", "villagers", "families", "men", "women", "children")
OUTLETS = ("monitor", "observatory", "network", "agency", "committee", "council", "radio", "daily")
PLACES = ("north", "south", "east", "west", "centre", "coast", "hills", "valley", "river", "border")


@attrs.frozen
class Shape:
    """How big a synthetic log is."""

    observations: int
    incidents: int = 50
    monitors: int = 20
    days: int = 730
    location_share: float = 0.25


def shape_for(observations: int) -> Shape:
    return Shape(observations=observations)


class _Clock:
    """recorded_at stamps that advance one millisecond per batch from a fixed start."""

    def __init__(self) -> None:
        self.now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


def _monitor_slug(monitor: int) -> str:
    return f"{OUTLETS[monitor % len(OUTLETS)]}-{monitor:02d}"


def _descriptions(shape: Shape) -> list[IncidentDescribed | MonitorDescribed]:
    """Every incident and monitor of the log, described before any observation names them."""
    return [
        *(IncidentDescribed(slug=f"incident-{n:03d}", title=f"Incident {n}", start_date=START)
          for n in range(shape.incidents)),
        *(MonitorDescribed(slug=_monitor_slug(m), full_name=f"The {OUTLETS[m % len(OUTLETS)]} {m}",
                           url=f"https://{_monitor_slug(m)}.example.org/") for m in range(shape.monitors)),
    ]  # fmt: skip


def _observations(shape: Shape, rng: random.Random, cumulative_only: bool) -> Iterator[Observation]:
    """Series by series, day by day: each series reports on most days, cumulatives and increments mixed."""
    per_series = max(1, shape.observations // (shape.incidents * shape.monitors))
    made = 0
    for incident in range(shape.incidents):
        for monitor in range(shape.monitors):
            slug = _monitor_slug(monitor)
            location = None
            if rng.random() < shape.location_share:
                location = f"{PLACES[incident % len(PLACES)]} district {monitor % 7}"
            total = 0
            step = max(1, shape.days // per_series)
            for k in range(per_series):
                if made >= shape.observations:
                    return
                day = START + dt.timedelta(days=min(shape.days - 1, k * step + rng.randrange(step)))
                added = rng.randrange(0, 40)
                cumulative = cumulative_only or rng.random() < 0.7
                total += added
                value = total if cumulative else added
                roll = rng.random()
                if roll < 0.8 or cumulative_only:
                    figure = Figure(value, value, Qualifier.EXACT if roll < 0.6 else Qualifier.ABOUT)
                elif roll < 0.9:
                    figure = Figure(value, value + rng.randrange(1, 50), Qualifier.RANGE)
                else:
                    figure = Figure(value, None, Qualifier.AT_LEAST)
                word = WORDS[rng.randrange(len(WORDS))]
                yield Observation(
                    id=f"i{incident}-m{monitor}-{k}",
                    incident=f"incident-{incident:03d}",
                    monitor=slug,
                    reported_on=day,
                    measure="killed",
                    category="civilians",
                    location=location,
                    kind=Kind.CUMULATIVE if cumulative else Kind.INCREMENT,
                    figure=figure,
                    source=Source(
                        title=f"{slug} daily report {day:%d %B %Y}",
                        url=f"https://{slug}.example.org/reports/{day:%Y/%m/%d}/incident-{incident:03d}-{k}.html",
                        quote=(
                            f"By the end of {day:%d %B}, the {slug.split('-')[0]} documented {value:,} {word} "
                            f"killed{' in total' if cumulative else ' that day'} in incident {incident}"
                            + (f", in {location}" if location else "")
                            + "."
                        ),
                    ),
                )
                made += 1


def generate(path: Path, observations: int, *, seed: int = 20251123, cumulative_only: bool = False) -> JsonlStore:
    """Write a synthetic log of about ``observations`` observations to ``path`` (replacing it)."""
    for old in (path, *path.parent.glob(path.name + ".*")):  # the log and what an earlier one left beside it
        old.unlink(missing_ok=True)
    rng = random.Random(seed)
    store = JsonlStore(path, clock=_Clock())
    store.keep(REPLAY_INDEX)
    shape = shape_for(observations)
    store.append(_descriptions(shape))
    batch: list = []
    recent: list[Observation] = []
    # A series with more reports than days repeats a figure on a day with nothing added; a log
    # would not hold it twice (admission refuses a repeat), so it is left out, as in the CSV below.
    seen: set[tuple] = set()
    for observation in _observations(shape, rng, cumulative_only):
        key = (observation.series_key, observation.reported_on, observation.kind, observation.figure)
        if key in seen:
            continue
        seen.add(key)
        batch.append(observation)
        recent.append(observation)
        if not cumulative_only and len(recent) > 50 and rng.random() < 0.03:
            target = recent.pop(rng.randrange(len(recent)))
            if rng.random() < 0.67:
                fixed = attrs.evolve(target, figure=Figure(target.figure.low + 1, None, Qualifier.AT_LEAST))
                batch.append(Correction(observation_id=target.id, replacement=fixed, reason="digits misread"))
            else:
                batch.append(Retraction(observation_id=target.id, reason="entered under the wrong incident"))
        if len(batch) >= 50_000:
            store.append(batch)
            batch, recent = [], []
    if batch:
        store.append(batch)
    return store


IMPORT_COLUMNS = ("id", "incident", "monitor", "reported_on", "measure", "category", "location", "kind", "low", "high",
                  "qualifier", "source_url", "source_title", "quote")  # fmt: skip


def write_import_csv(path: Path, observations: int, *, seed: int = 20251123) -> None:
    """The cumulative-only observations of ``generate`` as a CSV in `timeline import`'s format.

    A figure repeated on the same day of its series (a day with nothing added,
    when a series has more reports than days) is left out: `timeline import`
    refuses it as a duplicate, and a dataset would not list it twice.
    """
    rng = random.Random(seed)
    seen: set[tuple] = set()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(IMPORT_COLUMNS)
        for o in _observations(shape_for(observations), rng, cumulative_only=True):
            key = (o.incident, o.monitor, o.location, o.reported_on, o.figure)
            if key in seen:
                continue
            seen.add(key)
            writer.writerow((o.id, o.incident, o.monitor, o.reported_on.isoformat(), o.measure, o.category,
                             o.location or "", o.kind.value, o.figure.low, o.figure.high, o.figure.qualifier.value,
                             o.source.url, o.source.title, o.source.quote))  # fmt: skip


def in_child(what: str, path: Path, observations: int, *, cumulative_only: bool = False) -> None:
    """Make a log (``what="log"``) or an import CSV (``"csv"``) in a child process.

    The drivers measure peak RSS of the commands they start, and Linux carries
    a process's high-water mark across ``exec`` into the child it forks: a
    driver that generated a million entries itself would make every child it
    starts look at least as big as it was.
    """
    command = [sys.executable, "-m", "bench.generate", what, str(path), str(observations)]
    root = Path(__file__).resolve().parents[1]
    subprocess.run([*command, *(["--cumulative-only"] if cumulative_only else [])], check=True, cwd=root)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write a synthetic log or import CSV.")
    parser.add_argument("what", choices=["log", "csv"])
    parser.add_argument("path", type=Path)
    parser.add_argument("observations", type=int)
    parser.add_argument("--cumulative-only", action="store_true")
    args = parser.parse_args()
    if args.what == "log":
        generate(args.path, args.observations, cumulative_only=args.cumulative_only)
    else:
        write_import_csv(args.path, args.observations)
