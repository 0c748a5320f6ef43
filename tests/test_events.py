"""Events refuse a missing required field when built, whatever the field's type."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events_log.errors import InputError
from events_log.events import (
    Correction,
    Figure,
    IncidentDescribed,
    Link,
    MonitorDescribed,
    Observation,
    Qualifier,
    Retraction,
    Source,
)

from . import strategies as s

# Every kind of value an event is built from, each with a strategy for valid ones.
VALUES = {
    Figure: s.figures(),
    Source: s.sources,
    Link: st.builds(Link, title=s.texts, url=st.none() | s.urls),
    Observation: s.observations(),
    Correction: s.corrections(),
    Retraction: s.retractions,
    IncidentDescribed: s.incident_descriptions,
    MonitorDescribed: s.monitor_descriptions,
}
# A field is required unless its type admits None (Figure.high: an open-ended floor).
REQUIRED = [(kind, field.name) for kind in VALUES for field in attrs.fields(kind) if "None" not in str(field.type)]


@pytest.mark.parametrize(("kind", "field"), REQUIRED, ids=[f"{k.__name__}.{f}" for k, f in REQUIRED])
@given(data=st.data())
def test_required_field_refuses_none(kind: type, field: str, data: st.DataObject) -> None:
    """Building any event or value with None in a required field is refused (attrs' instance_of: TypeError)."""
    value = data.draw(VALUES[kind])
    with pytest.raises((InputError, TypeError)):
        attrs.evolve(value, **{field: None})


def test_every_value_has_required_fields() -> None:
    """The table above covers every kind of value and their required fields (no empty parametrisation)."""
    assert {kind for kind, _ in REQUIRED} == set(VALUES)
    assert (Observation, "incident") in REQUIRED and (Figure, "low") in REQUIRED


def test_open_floor_still_builds() -> None:
    """An 'at least' figure's missing upper bound and a source without a URL stay allowed."""
    assert Figure(5, None, Qualifier.AT_LEAST).high is None
    assert Source("A report").url is None
