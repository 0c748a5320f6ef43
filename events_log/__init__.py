"""The append-only log of observations: events, their codec, stores and importers."""

import importlib

from .errors import (
    BrokenChainError,
    InputError,
    LogError,
    ReadOnlyLogError,
    StoreError,
    TimelineError,
    TornLogError,
)

# The rest load on first use (PEP 562), so that the command line can name the
# errors, or show --help, without loading attrs, numpy and the stores.
_LAZY = {
    **dict.fromkeys(
        ("Correction", "Event", "Figure", "IncidentDescribed", "Kind", "Link", "MonitorDescribed", "Observation",
         "Qualifier", "Retraction", "Source"),
        "events",
    ),
    "JsonlStore": "jsonl",
    "LogHead": "store",
    "Store": "store",
    "open_store": "stores",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
