"""The events of the log: frozen values that validate themselves.

An event is checked once, when it is built, so that everything downstream
(stores, replay, reports) can trust its shape: counts are non-negative
integers, a figure's bounds agree with its qualifier, dates are calendar
dates in order. Checks that need the rest of the log (unique ids, a
correction naming an observation that exists) live in ``admission``.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata

import attrs
from attrs import validators as v

from .errors import InputError, shown

MAX_TEXT = 500
MAX_TITLE = 1_000
MAX_QUOTE = 20_000
# The largest count a figure may hold: far above any toll, and small enough
# that replay's 64-bit sums of millions of them can never overflow.
MAX_COUNT = 10**12

MAX_ID_LENGTH = 100
OBSERVATION_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_ID_LENGTH - 1}}}")
_AN_ID = "id (letters, digits, . _ : -)"
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TERM = re.compile(r"[a-z][a-z0-9_]{0,63}")
_URL = re.compile(r"https?://[^\s<>\"'\x00-\x1f\x7f]+", re.IGNORECASE)
# Control characters other than tab and newline never belong in published
# text; they are how hostile input hides itself in terminals and pages.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Kind(enum.StrEnum):
    """Whether a figure is a running total or only what one report adds."""

    CUMULATIVE = "cumulative"
    INCREMENT = "increment"


class Qualifier(enum.StrEnum):
    """How the monitor worded the figure; it fixes which bounds are known."""

    EXACT = "exact"
    ABOUT = "about"
    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    RANGE = "range"


def id_problem(value: object) -> str | None:
    """What ``Observation`` would say of this id, or None if it takes it: for ids read back from a log."""
    if isinstance(value, str) and OBSERVATION_ID.fullmatch(value):
        return None
    return f"not a valid {_AN_ID}: {shown(value)}"


def _matches(pattern: re.Pattern[str], what: str):
    # attrs' matches_re would raise a bare ValueError (and a TypeError for None), without the field's name.
    def check(instance, attribute, value):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InputError(f"not a valid {what}: {shown(value)}", attribute.name)

    return check


def _text(limit: int, *, required: bool = True):
    def check(instance, attribute, value):
        if value is None:
            if required:
                raise InputError("is required", attribute.name)
            return
        if not isinstance(value, str):
            raise InputError(f"must be text, not {type(value).__name__}", attribute.name)
        if required and not value.strip():
            raise InputError("must not be empty", attribute.name)
        if len(value) > limit:
            raise InputError(f"is {len(value):,} characters long; the limit is {limit:,}", attribute.name)
        if _CONTROL.search(value):
            raise InputError("contains control characters", attribute.name)

    return check


def _count(instance, attribute, value):
    # bool is an int subclass; True is not a casualty count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"must be a whole number, not {shown(value)}", attribute.name)
    if value < 0:
        raise InputError(f"must not be negative, got {value}", attribute.name)
    if value > MAX_COUNT:
        raise InputError(f"{value} is above {MAX_COUNT:,}, more than any casualty count", attribute.name)


def _version(instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"must be a log position (a whole number from 0), not {shown(value)}", attribute.name)


def _instance(kind: type):
    # The events take typed values, as Figure refuses "5" for a count: a plain string is the CSV's
    # spelling, which the importer reads. attrs' instance_of raises a TypeError that names no field.
    expected = _expected(kind)

    def check(instance, attribute, value):
        if not isinstance(value, kind):
            raise InputError(f"must be {expected}, not {shown(value)}", attribute.name)

    return check


def _expected(kind: type) -> str:
    if issubclass(kind, enum.Enum):
        return "one of " + ", ".join(f"{kind.__name__}.{m.name}" for m in kind)
    return f"a {kind.__name__}"


def _listed(value):
    """A list of links as the tuple the event keeps; anything else is left for the validator to name."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _links(instance, attribute, value):
    if not isinstance(value, tuple) or not all(isinstance(link, Link) for link in value):
        raise InputError(f"must be a list of Link values, not {shown(value)}", attribute.name)


def _date(instance, attribute, value):
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise InputError(f"must be a date (YYYY-MM-DD), not {shown(value)}", attribute.name)


SeriesKey = tuple[str, str, str, str, str | None]


def series_key(incident: str, monitor: str, measure: str, category: str, location: str | None) -> SeriesKey:
    """The series an observation belongs to: one monitor's count of one measure and category, at one place.

    Observations and their stored data (``series_key_of``) both get it here, so the two never disagree.
    """
    return (incident, monitor, measure, category, location)


def series_key_of(data: dict) -> SeriesKey:
    """The series of an observation given as stored data (current schema)."""
    return series_key(data["incident"], data["monitor"], data["measure"], data["category"], data.get("location"))


@attrs.frozen
class Figure:
    """A published number with its wording: 803, "at least 803", "125-300".

    ``high`` is None only for an open-ended floor ("at least"). For "at
    most N" the floor is unknown and ``low`` is 0 (``check_new``); a log
    written before may hold another, which replay reads as 0 too.
    """

    low: int = attrs.field(validator=_count)
    high: int | None = attrs.field(validator=v.optional(_count))
    qualifier: Qualifier = attrs.field(validator=_instance(Qualifier))

    def __attrs_post_init__(self) -> None:
        problem = figure_problem(self.low, self.high, self.qualifier)
        if problem is not None:
            raise InputError(problem, "high")

    @classmethod
    def of(cls, low: int | None, high: int | None, qualifier: Qualifier | str) -> Figure:
        """Build a figure from what a person types: bounds a qualifier implies may be left out."""
        q = Qualifier(qualifier)
        if q is Qualifier.AT_MOST and low is None:
            low = 0
        if q in (Qualifier.EXACT, Qualifier.ABOUT) and high is None:
            high = low
        if low is None:
            raise InputError("is required", "low")
        return check_new(cls(low, high, q))

    def __str__(self) -> str:
        return describe_figure(self.low, self.high, self.qualifier)


def check_new(figure: Figure) -> Figure:
    """A figure a person gives now: "at most N" with a floor is refused, though a log may hold one from before.

    The floor of "at most N" is unknown, and replay reads it as 0 whatever
    low says (DESIGN: figures are intervals); a low kept beside it would be
    shown by exports and set two equal figures apart. A known floor and
    ceiling are a range.
    """
    if figure.qualifier is Qualifier.AT_MOST and figure.low != 0:
        raise InputError(
            f"an 'at_most' figure has no floor (it reads 0 to {figure.high}): give low as 0 (or leave it empty "
            f"in a CSV cell or an option), or give {figure.low}-{figure.high} as a 'range'",
            "low",
        )
    return figure


def composed(place: str | None) -> str | None:
    """A place as new input gives it, in Unicode's composed form (NFC).

    A location is part of a series' key, and "Jablé" typed on one machine
    and decomposed ("e" and a combining accent) on another are the same text
    that would start two series. Only new input is composed: a log keeps the
    bytes it was given, and replay reads them as stored.
    """
    return None if place is None else unicodedata.normalize("NFC", place)


def check_composed(place: str | None, within: str = "") -> None:
    """Refuse a place that is not composed (an event built in Python, which no reader of text composed)."""
    if place is not None and not unicodedata.is_normalized("NFC", place):
        raise InputError(
            f"{shown(place)} is not in Unicode's composed form (NFC), so it would start a series of its own "
            "beside the same place written composed; compose it (unicodedata.normalize('NFC', ...))",
            within + "location",
        )


def figure_problem(low: int, high: int | None, qualifier: Qualifier) -> str | None:
    """What is wrong with these bounds for this qualifier, or None if nothing is.

    The one statement of how a figure's bounds agree with its wording:
    ``Figure`` raises it, and the replay index, which reads stored figures
    without building one, says it of a figure its block check refuses
    (``timeline.index``). "at most" keeps any low a log holds (new input
    gives none: ``check_new``).
    """
    if qualifier is Qualifier.AT_LEAST:
        return None if high is None else "an 'at_least' figure has no upper bound; leave high empty"
    if high is None:
        return f"a '{qualifier}' figure needs an upper bound"
    if high < low:
        return f"high ({high}) is below low ({low})"
    if qualifier in (Qualifier.EXACT, Qualifier.ABOUT) and high != low:
        return f"an '{qualifier}' figure has high equal to low; use 'range' for {low}-{high}"
    if qualifier is Qualifier.RANGE and high == low:
        return f"a 'range' needs high above low; use 'exact' for {low}"
    return None


def describe_figure(low: int, high: int | None, qualifier: Qualifier | str) -> str:
    """People's wording of a figure, in its publisher's words: "at least 803", "at most 300", "about 1,700".

    The qualifier is required: without it "at most 300" would read "0-300", a
    floor the publisher never gave.
    """
    q = Qualifier(qualifier)
    if high is None:
        return f"at least {low:,}"
    if q is Qualifier.AT_MOST:
        return f"at most {high:,}"
    if q is Qualifier.ABOUT:
        return f"about {low:,}"
    if q is Qualifier.RANGE:
        return f"{low:,}-{high:,}"
    return f"{low:,}"


@attrs.frozen
class Source:
    """Where a figure was published, with the words that carry it."""

    title: str = attrs.field(validator=_text(MAX_TITLE))
    url: str | None = attrs.field(default=None, validator=v.optional(_matches(_URL, "http(s) URL")))
    quote: str | None = attrs.field(default=None, validator=_text(MAX_QUOTE, required=False))


@attrs.frozen
class Observation:
    """One figure as one monitor published it on one day."""

    id: str = attrs.field(validator=_matches(OBSERVATION_ID, _AN_ID))
    incident: str = attrs.field(validator=_matches(_SLUG, "incident slug"))
    monitor: str = attrs.field(validator=_matches(_SLUG, "monitor slug"))
    reported_on: dt.date = attrs.field(validator=_date)
    measure: str = attrs.field(validator=_matches(_TERM, "measure (lower-case, e.g. killed)"))
    category: str = attrs.field(validator=_matches(_TERM, "category (lower-case, e.g. civilians)"))
    kind: Kind = attrs.field(validator=_instance(Kind))
    figure: Figure = attrs.field(validator=_instance(Figure))
    source: Source = attrs.field(validator=_instance(Source))
    period_start: dt.date | None = attrs.field(default=None, validator=v.optional(_date))
    period_end: dt.date | None = attrs.field(default=None, validator=v.optional(_date))
    location: str | None = attrs.field(default=None, validator=_text(MAX_TEXT, required=False))
    note: str | None = attrs.field(default=None, validator=_text(MAX_QUOTE, required=False))

    def __attrs_post_init__(self) -> None:
        start, end = self.period_start, self.period_end
        if start and end and end < start:
            raise InputError(f"period_end {end} is before period_start {start}", "period_end")
        for name, day in (("period_start", start), ("period_end", end)):
            if day and day > self.reported_on:
                raise InputError(f"{name} {day} is after reported_on {self.reported_on}", name)
        if self.location is not None and not self.location.strip():
            raise InputError("must not be blank; leave it out for the whole incident", "location")

    @property
    def series_key(self) -> SeriesKey:
        return series_key(self.incident, self.monitor, self.measure, self.category, self.location)


@attrs.frozen
class Correction:
    """Our record of an observation was entered wrongly; this is what it should say.

    It carries the whole corrected observation, not a patch, so that replay
    needs no merge rules and the correction is readable on its own.
    """

    observation_id: str = attrs.field(validator=_matches(OBSERVATION_ID, "observation id"))
    replacement: Observation = attrs.field(validator=_instance(Observation))
    reason: str = attrs.field(validator=_text(MAX_TEXT))
    # The record's version this fix was made from: the log position of the
    # observation or of its last correction. Admission refuses the fix if the
    # record has changed since, so two people fixing one record never lose a fix.
    expected_version: int | None = attrs.field(default=None, validator=v.optional(_version))

    def __attrs_post_init__(self) -> None:
        if self.replacement.id != self.observation_id:
            raise InputError(
                f"replacement id {self.replacement.id!r} differs from {self.observation_id!r}", "replacement.id"
            )


@attrs.frozen
class Retraction:
    """Our record of an observation should never have been entered."""

    observation_id: str = attrs.field(validator=_matches(OBSERVATION_ID, "observation id"))
    reason: str = attrs.field(validator=_text(MAX_TEXT))
    # As for a correction: the version of the record it was made from.
    expected_version: int | None = attrs.field(default=None, validator=v.optional(_version))


@attrs.frozen
class Link:
    """A document about an incident."""

    title: str = attrs.field(validator=_text(MAX_TITLE))
    url: str | None = attrs.field(default=None, validator=v.optional(_matches(_URL, "http(s) URL")))


@attrs.frozen
class IncidentDescribed:
    """What an incident is; a later description of the same slug replaces it.

    Only the title is required: an incident is described before its first
    figure is entered, often before its place or start are settled.
    """

    slug: str = attrs.field(validator=_matches(_SLUG, "incident slug"))
    title: str = attrs.field(validator=_text(MAX_TITLE))
    place: str | None = attrs.field(default=None, validator=_text(MAX_TEXT, required=False))
    start_date: dt.date | None = attrs.field(default=None, validator=v.optional(_date))
    summary: str | None = attrs.field(default=None, validator=_text(MAX_QUOTE, required=False))
    links: tuple[Link, ...] = attrs.field(default=(), converter=_listed, validator=_links)


@attrs.frozen
class MonitorDescribed:
    """Who a monitor is, in the words of the sources; a later one replaces it."""

    slug: str = attrs.field(validator=_matches(_SLUG, "monitor slug"))
    full_name: str = attrs.field(validator=_text(MAX_TEXT))
    description: str | None = attrs.field(default=None, validator=_text(MAX_QUOTE, required=False))
    url: str | None = attrs.field(default=None, validator=v.optional(_matches(_URL, "http(s) URL")))


Event = Observation | Correction | Retraction | IncidentDescribed | MonitorDescribed
EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (Observation, Correction, Retraction, IncidentDescribed, MonitorDescribed)
}


def stated(event: Event) -> Observation | None:
    """The observation an event states: an observation itself, or a correction's replacement; None for any other."""
    observation = event.replacement if isinstance(event, Correction) else event
    return observation if isinstance(observation, Observation) else None
