"""Replaying the log into per-day series (the `timeline` command line is `timeline_cli`, above this package)."""

from .replay import DayPoint, Flag, Replay, Series, replay

__all__ = ["DayPoint", "Flag", "Replay", "Series", "replay"]
