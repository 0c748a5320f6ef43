"""The append-only log of observations: events, their codec, stores and importers."""

from .errors import (
    BrokenChainError,
    InputError,
    LogError,
    ReadOnlyLogError,
    StoreError,
    TimelineError,
    TornLogError,
)
from .events import (
    Correction,
    Event,
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
from .jsonl import JsonlStore
from .store import LogHead, Store
from .stores import open_store

__all__ = [
    "BrokenChainError",
    "Correction",
    "Event",
    "Figure",
    "IncidentDescribed",
    "InputError",
    "JsonlStore",
    "Kind",
    "Link",
    "LogError",
    "LogHead",
    "MonitorDescribed",
    "Observation",
    "Qualifier",
    "ReadOnlyLogError",
    "Retraction",
    "Source",
    "Store",
    "StoreError",
    "TimelineError",
    "TornLogError",
    "open_store",
]
