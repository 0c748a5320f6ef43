"""Replaying the log into per-day series, and the Python API (the `timeline` command line is `timeline_cli`).

From Python: ``open_log(path_or_url)`` or ``open_bundled()`` gives a ``Log``;
``Log.replay(...)`` gives ``Tolls`` (series, DataFrames, figures).
"""

from events_log.errors import InputError, TimelineError
from events_log.events import (
    Correction,
    Figure,
    IncidentDescribed,
    Kind,
    Link,
    MonitorDescribed,
    Observation,
    Qualifier,
    Retraction,
    Source,
)

from .api import Log, Tolls, open_bundled, open_log
from .frames import MissingExtraError
from .replay import DayPoint, Flag, Replay, Series

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
