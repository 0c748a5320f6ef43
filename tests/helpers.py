"""What many test files build their logs from: one observation in a line, a described log of batches.

Kept apart from any one test file, so that importing a helper never collects another file's tests.
"""

from __future__ import annotations

import datetime as dt

from events_log.events import Figure, Kind, Observation, Qualifier, Source
from events_log.jsonl import JsonlStore

from .conftest import StepClock
from .strategies import descriptions_of


def obs(id, day, low, kind="cumulative", high="same", qualifier=None, monitor="SOHR", location=None):
    """An observation of coastal-2025 reported on March ``day``, 2025."""
    if high == "same":
        high = low
    qualifier = qualifier or ("at_least" if high is None else "exact" if high == low else "range")
    return Observation(
        id=id,
        incident="coastal-2025",
        monitor=monitor,
        reported_on=dt.date(2025, 3, day),
        measure="killed",
        category="civilians",
        location=location,
        kind=Kind(kind),
        figure=Figure(low, high, Qualifier(qualifier)),
        source=Source(title="2025 massacres of Syrian Alawites", quote="..."),
    )


def log_of(tmp_path, *batches, clock=None):
    """A log of the batches, after one batch describing the names they use."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=clock or StepClock())
    described = descriptions_of(*batches)
    for batch in [described, *batches] if described else batches:
        store.append(batch, allow_duplicate=True)
    return store


def days(series):
    return [(p.date.day, p.low, p.high, p.basis, p.observations) for p in series.days]
