"""The one converter between events and plain JSON-ready data.

Structuring is strict on purpose: a count given as ``"12"`` or ``12.5``, a
date given as ``20250308``, or a field nobody declared is an error that
names the field (``$.figure.low``), never a silent coercion. Every event is
stored with a schema version per type; older versions are upcast on read,
one step at a time, so a log written today keeps loading after the types
change and is never rewritten.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from collections.abc import Callable
from typing import Any

import attrs
import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from .errors import InputError, shown
from .events import EVENT_TYPES, Correction, Event, Observation, check_composed, check_new, composed, stated

converter = make_converter(forbid_extra_keys=True)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: Any) -> dt.date:
    """A calendar date written YYYY-MM-DD, and nothing looser."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"expected a date written YYYY-MM-DD, got {shown(value)}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def _strict_int(value: Any, _type: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {shown(value)}")
    return value


def _strict_str(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {shown(value)}")
    return value


converter.register_structure_hook(dt.date, lambda value, _type: parse_date(value))
converter.register_unstructure_hook(dt.date, dt.date.isoformat)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(str, _strict_str)

# Current schema version of each event type, as written in every envelope.
SCHEMA: dict[str, int] = {name: 1 for name in EVENT_TYPES} | {"Observation": 2, "Correction": 2, "Retraction": 2}


def _observation_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept the figure and the source flat, as the CSV columns are."""
    data = dict(data)
    data["figure"] = {k: data.pop(k, None) for k in ("low", "high", "qualifier")}
    data["source"] = {
        "title": data.pop("source_title", None),
        "url": data.pop("source_url", None),
        "quote": data.pop("quote", None),
    }
    return data


def _fix_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 fixes did not say which version of the record they were made from."""
    return {**data, "expected_version": None}


# (type, version) -> function lifting that version's data to version + 1.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("Observation", 1): _observation_v1_to_v2,
    ("Correction", 1): _fix_v1_to_v2,
    ("Retraction", 1): _fix_v1_to_v2,
}


def upcast(type_name: str, schema: int, data: dict[str, Any]) -> dict[str, Any]:
    """Lift stored event data to the current schema of its type."""
    current = SCHEMA.get(type_name)
    if current is None:
        raise InputError(f"unknown event type {shown(type_name)}", "type")
    if not isinstance(schema, int) or schema < 1 or schema > current:
        raise InputError(f"schema version {shown(schema)} of {type_name} is not one this version reads", "schema")
    while schema < current:
        data = UPCASTERS[(type_name, schema)](data)
        schema += 1
    return data


def _field_errors(exc: BaseException, path: str = "$", expected: Any = None) -> list[str]:
    """Flatten cattrs' exception group into ``path: message`` lines."""
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without_notes = exc.group_exceptions()
        lines = []
        for sub, note in with_notes:
            step = f"[{note.index}]" if isinstance(note, cattrs.IterableValidationNote) else f".{note.name}"
            lines += _field_errors(sub, path + step, getattr(note, "type", None))
        for sub in without_notes:
            lines += _field_errors(sub, path)
        return lines
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [f"{path}: unknown field(s): {', '.join(shown(f, 30) for f in sorted(exc.extra_fields))}"]
    if isinstance(exc, InputError):
        return [f"{path}.{exc.where}: {exc.message}" if exc.where else f"{path}: {exc.message}"]
    if isinstance(exc, KeyError):
        return [f"{path}: required field missing"]
    if isinstance(exc, TypeError | AttributeError):
        name = getattr(expected, "__name__", None)
        return [f"{path}: expected {'a ' + name if name else 'another type'}"]
    return [f"{path}: {exc}"]


def _enum_hook(value: Any, type_: type[enum.Enum]) -> enum.Enum:
    try:
        return type_(value)
    except ValueError:
        allowed = ", ".join(member.value for member in type_)
        raise ValueError(f"{shown(value)} is not one of: {allowed}") from None


# StrEnum precedes str in our enums' MRO, so this wins over the strict str hook.
converter.register_structure_hook(enum.StrEnum, _enum_hook)


def structure(data: Any, cls: type) -> Any:
    """Build an event (or a part of one) from JSON data, or raise one ``InputError``."""
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, InputError, ValueError, TypeError) as exc:
        raise InputError("; ".join(_field_errors(exc))) from None


def unstructure(event: Event) -> dict[str, Any]:
    """The JSON-ready data of an event, without its type."""
    return converter.unstructure(event)


def event_from_stored(type_name: str, schema: int, data: Any) -> Event:
    """An event from an envelope's type, schema version and data."""
    if not isinstance(data, dict):
        raise InputError("event data is not a JSON object", "event")
    return structure(upcast(type_name, schema, data), EVENT_TYPES[type_name])


CONTENT_ID = re.compile(r"obs-[0-9a-f]{12}")  # what ``content_id`` makes (a person may type one too)


def content_id(observation: Observation) -> str:
    """An id derived from what an observation says.

    Importing the same figure twice yields the same id, which admission then
    refuses as a duplicate instead of silently counting it twice.
    """
    content = unstructure(observation)
    del content["id"]
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"obs-{digest[:12]}"


def event_from_input(data: Any) -> Event:
    """An event as a person writes it: ``{"type": "Observation", ...}``, id optional."""
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}")
    data = dict(data)
    type_name = data.pop("type", None)
    if type_name not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        raise InputError(f"unknown or missing event type {shown(type_name)} (one of: {known})", "type")
    cls = EVENT_TYPES[type_name]
    if cls is Observation:
        data = _composed_place(data)
    elif cls is Correction and isinstance(data.get("replacement"), dict):
        data["replacement"] = _composed_place(data["replacement"])
    if cls is Observation and not data.get("id"):
        data["id"] = "pending"
        return with_content_id(check_new_event(structure(data, cls)))
    return check_new_event(structure(data, cls))


def _composed_place(observation: dict[str, Any]) -> dict[str, Any]:
    """An observation's data with its place composed (``events.composed``); the data given is left as it was."""
    place = observation.get("location")
    return {**observation, "location": composed(place)} if isinstance(place, str) else observation


def check_new_event(event: Event) -> Event:
    """An event a person gives now, under the rules only new input follows (``events.check_new``)."""
    observation = stated(event)
    if observation is not None:
        within = "replacement: " if observation is not event else ""
        check_composed(observation.location, within)
        try:
            check_new(observation.figure)
        except InputError as exc:
            raise exc.located(within + "figure") from None
    return event


def with_content_id(observation: Observation) -> Observation:
    return attrs.evolve(observation, id=content_id(observation))


def event_to_input(event: Event) -> dict[str, Any]:
    """The inverse of ``event_from_input``: the event's data tagged with its type."""
    return {"type": type(event).__name__, **unstructure(event)}
