"""Rules an event must meet against the rest of the log before it is appended.

Stores call ``admit`` while they hold their write lock, with a view of what
the log already holds, so that two writers can never both admit the same id
or correct an observation the other has just retracted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .errors import InputError
from .events import Correction, Event, Observation, Retraction

LIVE = "live"
RETRACTED = "retracted"


class KnownIds(Protocol):
    """What admission needs to know of a log: the status of an observation id."""

    def status(self, observation_id: str) -> str | None:
        """``"live"``, ``"retracted"``, or None for an id the log has never seen."""


class IdIndex:
    """Observation ids and their status, folded from a log's entries."""

    def __init__(self) -> None:
        self._status: dict[str, str] = {}

    def status(self, observation_id: str) -> str | None:
        return self._status.get(observation_id)

    def add(self, type_name: str, observation_id: str | None) -> None:
        if observation_id is None:
            return
        if type_name == "Observation":
            self._status[observation_id] = LIVE
        elif type_name == "Retraction":
            self._status[observation_id] = RETRACTED

    def __len__(self) -> int:
        return len(self._status)


def subject_id(type_name: str, event: dict) -> str | None:
    """The observation an event is about, read from stored event data."""
    if type_name == "Observation":
        return event.get("id")
    if type_name in ("Correction", "Retraction"):
        return event.get("observation_id")
    return None


def subject_of(event: Event) -> str | None:
    """The observation id an event is about, for the ones that are about one."""
    if isinstance(event, Observation):
        return event.id
    if isinstance(event, Correction | Retraction):
        return event.observation_id
    return None


def admit(batch: Sequence[Event], known: KnownIds, labels: Iterable[str] | None = None) -> None:
    """Raise ``InputError`` naming the first event of ``batch`` that the log cannot take.

    ``labels`` name each event for the message (``rows.csv:7``); by default
    the event's place in the batch.
    """
    pending: dict[str, str] = {}
    names = list(labels) if labels is not None else [f"event {i + 1}" for i in range(len(batch))]

    def status(observation_id: str) -> str | None:
        return pending.get(observation_id) or known.status(observation_id)

    for event, label in zip(batch, names, strict=True):
        if isinstance(event, Observation):
            if status(event.id) is not None:
                raise InputError(f"observation id {event.id!r} is already in the log", f"{label}: id")
            pending[event.id] = LIVE
        elif isinstance(event, Correction | Retraction):
            target = event.observation_id
            current = status(target)
            if current is None:
                raise InputError(f"no observation {target!r} in the log", f"{label}: observation_id")
            if current == RETRACTED:
                raise InputError(f"observation {target!r} was retracted", f"{label}: observation_id")
            if isinstance(event, Retraction):
                pending[target] = RETRACTED
