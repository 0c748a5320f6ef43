"""Replaying the log into per-day series, and the Python API (the `timeline` command line is `timeline_cli`).

From Python: ``open_log(path_or_url)`` or ``open_bundled()`` gives a ``Log``;
``Log.replay(...)`` gives ``Tolls`` (series, DataFrames, figures).
"""

import importlib

from events_log.errors import InputError, TimelineError

# The rest load on first use (PEP 562): importing a light submodule such as
# timeline.bundled, as the command line does at start-up, must not load numpy
# and the replay.
_LAZY = {
    **dict.fromkeys(
        ("Correction", "Figure", "IncidentDescribed", "Kind", "Link", "MonitorDescribed", "Observation", "Qualifier",
         "Retraction", "Source"),
        "events_log.events",
    ),
    **dict.fromkeys(("Log", "Tolls", "open_bundled", "open_log"), "timeline.api"),
    "MissingExtraError": "timeline.frames",
    **dict.fromkeys(("DayPoint", "Flag", "Replay", "Series"), "timeline.replay"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Correction",
    "DayPoint",
    "Figure",
    "Flag",
    "IncidentDescribed",
    "InputError",
    "Kind",
    "Link",
    "Log",
    "MissingExtraError",
    "MonitorDescribed",
    "Observation",
    "Qualifier",
    "Replay",
    "Retraction",
    "Series",
    "Source",
    "TimelineError",
    "Tolls",
    "open_bundled",
    "open_log",
]
