"""Rules an event must meet against the rest of the log before it is appended.

Stores call ``admit`` while they hold their write lock, with a view of what
the log already holds, so that two writers can never both admit the same id
or correct an observation the other has just retracted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Protocol

from .errors import InputError
from .events import Correction, Event, IncidentDescribed, MonitorDescribed, Observation, Retraction

LIVE = "live"
RETRACTED = "retracted"
# The kind of name each description event describes.
DESCRIBES = {"IncidentDescribed": "incident", "MonitorDescribed": "monitor"}


class Names:
    """The incident and monitor slugs a log has described."""

    def __init__(self) -> None:
        self.by_kind: dict[str, set[str]] = {"incident": set(), "monitor": set()}

    def add(self, type_name: str, slug: str) -> None:
        self.by_kind[DESCRIBES[type_name]].add(slug)

    def __contains__(self, kind_and_slug: tuple[str, str]) -> bool:
        kind, slug = kind_and_slug
        return slug in self.by_kind[kind]

    def of(self, kind: str) -> set[str]:
        return self.by_kind[kind]


class KnownIds(Protocol):
    """What admission needs to know of a log: the status of an observation id, and the described names."""

    names: Names

    def status(self, observation_id: str) -> str | None:
        """``"live"``, ``"retracted"``, or None for an id the log has never seen."""


def suggestions(slug: str, described: Iterable[str]) -> list[str]:
    """The described names nearest to ``slug``: one that differs only in case first, then close spellings."""
    described = sorted(described)
    folded = [name for name in described if name.casefold() == slug.casefold() and name != slug]
    close = difflib.get_close_matches(slug, described, n=3, cutoff=0.6)
    # difflib compares case-sensitively: "sohr" is far from "SOHR" unless folded too.
    by_fold = {name.casefold(): name for name in described}
    close += [by_fold[m] for m in difflib.get_close_matches(slug.casefold(), list(by_fold), n=3, cutoff=0.6)]
    return list(dict.fromkeys(folded + close))[:3]


def unknown_name(kind: str, slug: str, described: Iterable[str]) -> str:
    """How a name the log has not described is refused: with the nearest described names."""
    near = suggestions(slug, described)
    if near:
        return f"{kind} {slug!r} is not described in the log; did you mean {' or '.join(near)}?"
    return f"{kind} {slug!r} is not described in the log (describe it first: timeline describe {kind} {slug} ...)"


def names_in(event: Event) -> list[tuple[str, str]]:
    """The (kind, slug) names an event uses: an observation's, or a correction's replacement's."""
    observation = event.replacement if isinstance(event, Correction) else event
    if isinstance(observation, Observation):
        return [("incident", observation.incident), ("monitor", observation.monitor)]
    return []


def undescribed(batch: Sequence[Event], names: Names, labels: Sequence[str]) -> dict[tuple[str, str], list[str]]:
    """Every name ``batch`` uses before it is described (in the log, or earlier in the batch), with where."""
    pending = {"incident": set(), "monitor": set()}
    unknown: dict[tuple[str, str], list[str]] = {}
    for event, label in zip(batch, labels, strict=True):
        if isinstance(event, IncidentDescribed | MonitorDescribed):
            pending[DESCRIBES[type(event).__name__]].add(event.slug)
        for kind, slug in names_in(event):
            if (kind, slug) not in names and slug not in pending[kind]:
                unknown.setdefault((kind, slug), []).append(label)
    return unknown


def new_descriptions(batch: Sequence[Event], names: Names) -> list[Event]:
    """Descriptions, with the slug as the title or name, of the names ``batch`` uses undescribed.

    A name that differs only in case from a described one (or from another
    new one) is left out, and so refused: it is a typo, not a new monitor.
    """
    made: list[Event] = []
    taken = {kind: {name.casefold() for name in names.of(kind)} for kind in ("incident", "monitor")}
    for kind, slug in undescribed(batch, names, [""] * len(batch)):
        if slug.casefold() in taken[kind]:
            continue
        taken[kind].add(slug.casefold())
        if kind == "incident":
            made.append(IncidentDescribed(slug=slug, title=slug))
        else:
            made.append(MonitorDescribed(slug=slug, full_name=slug))
    return made


def _refuse_unknown(unknown: dict[tuple[str, str], list[str]], names: Names) -> None:
    """One line naming every undescribed name of a batch, where it is used, and what was meant."""
    if len(unknown) == 1:
        [((kind, slug), where)] = unknown.items()
        raise InputError(unknown_name(kind, slug, names.of(kind)), where[0])
    # Labels of one file ("rows.csv:7") name the file once, then lines.
    files = {label.rpartition(":")[0] for where in unknown.values() for label in where}
    [file] = files if len(files) == 1 else [""]
    parts = []
    for (kind, slug), where in unknown.items():
        near = suggestions(slug, names.of(kind))
        first = f"line {where[0].rpartition(':')[2]}" if file else where[0]
        at = first + (f" and {len(where) - 1} more" if len(where) > 1 else "")
        parts.append(f"{kind} {slug!r} ({at}{'; did you mean ' + ' or '.join(near) + '?' if near else ''})")
    raise InputError(
        f"{len(unknown)} names are not described in the log: {', '.join(parts)}; "
        "describe them first (timeline describe), or let the import describe them (--describe-new)",
        file or None,
    )


class IdIndex:
    """Observation ids and their status, folded from a log's entries."""

    def __init__(self) -> None:
        self._status: dict[str, str] = {}
        self.names = Names()

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
    unknown = undescribed(batch, known.names, names)
    if unknown:
        # Suggestions come from the log and from the batch's own descriptions.
        nearby = Names()
        for event in batch:
            if isinstance(event, IncidentDescribed | MonitorDescribed):
                nearby.add(type(event).__name__, event.slug)
        for kind in nearby.by_kind:
            nearby.of(kind).update(known.names.of(kind))
        _refuse_unknown(unknown, nearby)

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
