"""Replaying the log into per-day series, and the `timeline` command line."""

from .replay import DayPoint, Flag, Replay, Series, replay

__all__ = ["DayPoint", "Flag", "Replay", "Series", "replay"]
