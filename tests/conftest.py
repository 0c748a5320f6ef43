"""Fixtures shared by the test suite."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, settings

# Fewer examples while developing, more in CI (HYPOTHESIS_PROFILE=ci).
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class StepClock:
    """A clock that moves one second per call, so every batch has its own known-at time."""

    def __init__(self, start: dt.datetime = dt.datetime(2025, 4, 1, 9, tzinfo=dt.UTC)) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> StepClock:
    return StepClock()
