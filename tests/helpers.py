"""What many test files build their logs from: one observation in a line, a described log of batches.

Kept apart from any one test file, so that importing a helper never collects another file's tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os

import attrs

from events_log.events import Figure, Kind, Observation, Qualifier, Source
from events_log.jsonl import JsonlStore
from timeline_cli import run

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


@attrs.frozen
class Ran:
    """What `timeline ARGS` did: its exit code, and what it wrote to stdout, stderr and both as they came."""

    exit_code: int
    stdout: str
    stderr: str
    output: str


class _Both(io.RawIOBase):
    """A stream's bytes, kept on their own and in the stream both share, in the order written."""

    def __init__(self, own: io.BytesIO, both: io.BytesIO) -> None:
        self.own, self.both = own, both

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.own.write(data)
        self.both.write(data)
        return len(data)


def invoke(args, env=None) -> Ran:
    """Run `timeline ARGS` in this process, as the console script does, with ENV's variables set (None: unset).

    An error the command line does not turn into its one line propagates, so
    a test sees the traceback instead of an exit code.
    """
    out, err, both = io.BytesIO(), io.BytesIO(), io.BytesIO()
    streams = [io.TextIOWrapper(io.BufferedWriter(_Both(own, both)), encoding="utf-8", write_through=True)
               for own in (out, err)]  # fmt: skip
    saved = {name: os.environ.get(name) for name in env or {}}
    with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]):
        try:
            _set_environment(env or {})
            code = run([str(arg) for arg in args])
        finally:
            for stream in streams:
                stream.flush()
            _set_environment(saved)
    text = [stream.getvalue().decode("utf-8", "replace") for stream in (out, err, both)]
    return Ran(code, *text)


def _set_environment(variables) -> None:
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
