"""Rules an event must meet against the rest of the log before it is appended.

Stores call ``admit`` while they hold their write lock, with a view of what
the log already holds, so that two writers can never both admit the same id,
correct an observation the other has just retracted, or fix a record from a
version the other has just replaced.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Protocol

import orjson

from .codec import CONTENT_ID, check_new_event, event_from_stored, unstructure
from .envelope import decode_line
from .errors import InputError, LogChangedError
from .events import (
    Correction,
    Event,
    IncidentDescribed,
    Kind,
    MonitorDescribed,
    Observation,
    Retraction,
    series_key_of,
    stated,
)

LIVE = "live"
RETRACTED = "retracted"
# The kind of name each description event describes.
DESCRIBES = {"IncidentDescribed": "incident", "MonitorDescribed": "monitor"}
# How far after the day it is recorded a figure may say it was reported:
# a monitor a few time zones east of UTC is already on the next day.
SLACK = dt.timedelta(days=1)


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
    """What admission needs to know of a log, read under the write lock: ids, versions, names."""

    names: Names

    def status(self, observation_id: str) -> str | None:
        """``"live"``, ``"retracted"``, or None for an id the log has never seen."""

    def version(self, observation_id: str) -> tuple[int, str] | None:
        """The record's current version: the position of its observation or last correction, and that type."""

    def line(self, position: int) -> bytes:
        """The stored line at ``position``."""

    def similar(self, keys: Iterable[str]) -> Iterable[tuple[str, int]]:
        """(id, version) of effective records whose figure key (``figure_key``) is one of ``keys``.

        It may name more than those (admission compares each one it names),
        but never fewer, and it must not read the whole log to do it.
        """

    def taken(self, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` the log holds an observation of, live or retracted."""


def suggestions(slug: str, described: Iterable[str]) -> list[str]:
    """The described names nearest to ``slug``: one that differs only in case first, then close spellings."""
    described = sorted(described)
    folded = [name for name in described if name.casefold() == slug.casefold() and name != slug]
    close = difflib.get_close_matches(slug, described, n=3, cutoff=0.6)
    # difflib compares case-sensitively: "sohr" is far from "SOHR" unless folded too.
    by_fold = {name.casefold(): name for name in described}
    close += [by_fold[m] for m in difflib.get_close_matches(slug.casefold(), list(by_fold), n=3, cutoff=0.6)]
    return list(dict.fromkeys(folded + close))[:3]


def unknown_name(kind: str, slug: str, described: Iterable[str], batch: Collection[str] = ()) -> str:
    """How a name the log has not described is refused: with the nearest described names.

    A name that differs only in case from one the same import describes
    (``batch``) is not missing from the log, it is a second spelling:
    ``--describe-new`` describes one spelling of a name, never two.
    """
    if slug in batch:
        return f"{kind} {slug!r} is used before this import describes it; put its description first"
    near = suggestions(slug, described)
    if near and near[0].casefold() == slug.casefold() and near[0] in batch:
        return f"{kind} {slug!r} differs only in case from {near[0]}, which this import describes; use one spelling"
    if near:
        return f"{kind} {slug!r} is not described in the log; did you mean {' or '.join(near)}?"
    return f"{kind} {slug!r} is not described in the log (describe it first: timeline describe {kind} {slug} ...)"


def names_in(event: Event) -> list[tuple[str, str]]:
    """The (kind, slug) names an event uses: an observation's, or a correction's replacement's."""
    observation = stated(event)
    if observation is None:
        return []
    return [("incident", observation.incident), ("monitor", observation.monitor)]


class BatchNames:
    """The names a batch describes, and those it uses before describing them: where first, and how often.

    Filled event by event as a batch is read, so that a batch too large to
    hold (``spool``) is checked against the log's names as one in memory is.
    """

    def __init__(self) -> None:
        self.described = Names()
        self.used: dict[tuple[str, str], list] = {}  # (kind, slug) -> [first label, uses]

    def add(self, event: Event, label: str) -> None:
        if isinstance(event, IncidentDescribed | MonitorDescribed):
            self.described.add(type(event).__name__, event.slug)
        for kind, slug in names_in(event):
            self.use(kind, slug, label)

    def use(self, kind: str, slug: str, label: str) -> None:
        if slug in self.described.by_kind[kind]:
            return
        use = self.used.get((kind, slug))
        if use is None:
            self.used[(kind, slug)] = [label, 1]
        else:
            use[1] += 1

    def use_counted(self, counted: Iterable[tuple[int, int, str, str, int, str]]) -> None:
        """``add`` of consecutive observations, given as the names they use (``counted_names``): the same counts,
        first labels and order."""
        for _, _, kind, slug, uses, label in counted:
            if slug in self.described.by_kind[kind]:
                continue
            use = self.used.get((kind, slug))
            if use is None:
                self.used[(kind, slug)] = [label, uses]
            else:
                use[1] += uses

    def unknown(self, names: Names) -> dict[tuple[str, str], list]:
        """The names used before any description, in the log or earlier in the batch, in order of first use."""
        return {name: use for name, use in self.used.items() if name not in names}

    def nearby(self, names: Names) -> Names:
        """What a misspelt name may have meant: the log's names and the batch's own descriptions."""
        near = Names()
        for kind in near.by_kind:
            near.of(kind).update(names.of(kind), self.described.of(kind))
        return near


def counted_names(
    labels: Sequence[str], incidents: Sequence[str], monitors: Sequence[str]
) -> list[tuple[int, int, str, str, int, str]]:
    """The names consecutive observations use, counted by slug, not row by row: (first row, 0 for an incident or 1
    for a monitor, kind, slug, uses, the first row's label), in the order ``BatchNames.add`` meets them."""
    counted = []
    for order, kind, slugs in ((0, "incident", incidents), (1, "monitor", monitors)):
        first = dict(zip(reversed(slugs), range(len(slugs) - 1, -1, -1), strict=True))
        counted += [
            (first[slug], order, kind, slug, uses, labels[first[slug]]) for slug, uses in Counter(slugs).items()
        ]
    return sorted(counted)


def batch_names(batch: Sequence[Event], labels: Sequence[str]) -> BatchNames:
    names = BatchNames()
    for event, label in zip(batch, labels, strict=True):
        names.add(event, label)
    return names


def new_descriptions(used: BatchNames, names: Names) -> list[Event]:
    """Descriptions, with the slug as the title or name, of the names a batch uses undescribed.

    A name that differs only in case from a described one (or from another
    new one) is left out, and so refused: it is a typo, not a new monitor.
    """
    made: list[Event] = []
    taken = {kind: {name.casefold() for name in names.of(kind)} for kind in ("incident", "monitor")}
    for kind, slug in used.unknown(names):
        if slug.casefold() in taken[kind]:
            continue
        taken[kind].add(slug.casefold())
        if kind == "incident":
            made.append(IncidentDescribed(slug=slug, title=slug))
        else:
            made.append(MonitorDescribed(slug=slug, full_name=slug))
    return made


def with_descriptions(names: Names, described: Sequence[Event]) -> Names:
    """``names`` and the names ``described`` describes (a batch's new descriptions, put before it)."""
    more = Names()
    for kind in more.by_kind:
        more.of(kind).update(names.of(kind))
    for event in described:
        more.add(type(event).__name__, event.slug)
    return more


def check_names(used: BatchNames, names: Names, made: Sequence[Event] = ()) -> None:
    """Refuse, in one line, every name a batch uses undescribed: where, how often, and what was meant.

    ``made``: the descriptions ``--describe-new`` put before the batch (``names`` has them).
    """
    unknown = used.unknown(names)
    if not unknown:
        return
    nearby = used.nearby(names)
    if len(unknown) == 1:
        [((kind, slug), (where, _))] = unknown.items()
        batch = {*used.described.of(kind), *(event.slug for event in made if DESCRIBES[type(event).__name__] == kind)}
        raise InputError(unknown_name(kind, slug, nearby.of(kind), batch), where)
    # Labels of one file ("rows.csv:7") name the file once, then lines.
    files = {where.rpartition(":")[0] for where, _ in unknown.values()}
    [file] = files if len(files) == 1 else [""]
    parts = []
    for (kind, slug), (where, uses) in unknown.items():
        near = suggestions(slug, nearby.of(kind))
        first = _in_file(where, file)
        at = first + (f" and {uses - 1} more" if uses > 1 else "")
        parts.append(f"{kind} {slug!r} ({at}{'; did you mean ' + ' or '.join(near) + '?' if near else ''})")
    raise InputError(
        f"{len(unknown)} names are not described in the log: {', '.join(parts)}; "
        "describe them first (timeline describe), or let the import describe them (--describe-new)",
        file or None,
    )


class IdIndex:
    """Observation ids with their status and version, folded from a log's entries in order.

    ``fetch`` (if given) is asked for the entries of ids not folded yet, the
    first time one of them is looked up: a SQL store reads the rows of a
    batch's subjects up front, and of any other id only when admission asks.
    """

    def __init__(self, read=None, similar=None, taken=None, fetch=None) -> None:
        self._status: dict[str, str] = {}
        self.names = Names()
        self._version: dict[str, tuple[int, str]] = {}
        self._read = read
        self._similar = similar
        self._taken = taken
        self._fetch = fetch
        self._fetched: set[str] = set()

    def similar(self, keys: Iterable[str]) -> Iterable[tuple[str, int]]:
        return self._similar(keys)

    def taken(self, ids: Sequence[str]) -> set[str]:
        return self._taken(ids)

    def status(self, observation_id: str) -> str | None:
        self._fold_in(observation_id)
        return self._status.get(observation_id)

    def version(self, observation_id: str) -> tuple[int, str] | None:
        self._fold_in(observation_id)
        return self._version.get(observation_id)

    def line(self, position: int) -> bytes:
        return self._read(position)

    def fetched(self, observation_ids: Iterable[str]) -> None:
        """Mark these ids' entries as folded (by whoever built this index), so they are not fetched again."""
        self._fetched.update(observation_ids)

    def _fold_in(self, observation_id: str) -> None:
        if self._fetch is None or observation_id in self._fetched:
            return
        self._fetched.add(observation_id)
        for type_name, subject, position in self._fetch([observation_id]):
            self.add(type_name, subject, position)

    def add(self, type_name: str, observation_id: str | None, position: int = -1) -> None:
        if observation_id is None:
            return
        if type_name == "Observation":
            self._status[observation_id] = LIVE
        elif type_name == "Retraction":
            self._status[observation_id] = RETRACTED
        if type_name in ("Observation", "Correction"):
            self._version[observation_id] = (position, type_name)

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


def figure_key(data: dict) -> str:
    """What makes two observations repeat each other (but the source), from their stored data.

    Series, day, kind and figure: equal keys are candidates for a repeat,
    which ``repeats`` then decides (an increment needs its source too).
    """
    return figure_digest(figure_fields(data)).hex()


def figure_fields(data: dict) -> tuple:
    """What a figure key is made of, from an observation's stored data: series, day, kind, low, high, qualifier."""
    figure = data["figure"]
    return (*series_key_of(data), data["reported_on"], data["kind"], figure["low"], figure["high"], figure["qualifier"])


def figure_digest(fields: tuple) -> bytes:
    """A figure key's 16 bytes, of its fields: the series, then day, kind, low, high and qualifier as stored."""
    return hashlib.sha256(orjson.dumps(fields)).digest()[:16]


def repeats(new: Observation, old: Observation) -> bool:
    """Whether ``new`` says again what ``old`` already says.

    Two separate reports of one death each on one day are two increments,
    not a repeat: an increment repeats another only with the same source URL
    or the same quote.
    """
    if (new.series_key, new.reported_on, new.kind, new.figure) != (
        old.series_key, old.reported_on, old.kind, old.figure
    ):  # fmt: skip
        return False
    if new.kind is Kind.CUMULATIVE:
        return True
    url, quote = new.source.url, new.source.quote
    return bool(url and url == old.source.url) or bool(quote and quote == old.source.quote)


def check_version(observation_id: str, expected: int, current: tuple[int, str] | None, where: str) -> None:
    """Raise ``LogChangedError`` unless ``expected`` is the record's current version."""
    if current is not None and current[0] != expected:
        position, type_name = current
        # A version before the current correction was replaced by it; any other number was never this record's.
        what = "changed after" if type_name == "Correction" and expected < position else "was never at"
        raise LogChangedError(
            f"observation {observation_id!r} {what} version {expected}: "
            f"its current version is the {type_name} at position {position}; look at it again and redo the fix",
            where,
        )


def latest_day(today: dt.date) -> dt.date:
    """The latest day a figure recorded ``today`` may say it was reported on: ``today`` and its slack (a
    calendar ends, in 9999)."""
    return today + SLACK if today <= dt.date.max - SLACK else dt.date.max


def late_date(event: Event, today: dt.date) -> tuple[str, dt.date] | None:
    """The first date of the observation an event states after the day it is recorded (``today``) and its
    slack, with its field's name; None if there is none. A figure cannot be reported later than the day it is
    recorded."""
    observation = stated(event)
    if observation is None:
        return None
    latest = latest_day(today)
    for name in ("reported_on", "period_start", "period_end"):
        day = getattr(observation, name)
        if day is not None and day > latest:
            return name, day
    return None


def check_dates(event: Event, today: dt.date, where: str) -> None:
    late = late_date(event, today)
    if late is not None:
        name, day = late
        raise InputError(f"{day} is in the future: it is recorded on {today} (UTC)", f"{where}: {name}")


def _in_file(where: str, file: str) -> str:
    """A label ("rows.csv:7") in a message that names its file already: the line alone."""
    named, _, line = where.rpartition(":")
    return f"line {line}" if file and named == file else where


def _given_twice(observation_id: str, first: str, label: str) -> str:
    """Why a batch that gives one observation id twice is refused; ``first`` and ``label`` say where each is."""
    first = _in_file(first, label.rpartition(":")[0])
    if CONTENT_ID.fullmatch(observation_id):  # most likely made from the row's content, not typed
        return f"repeats {first} word for word (a row without an id takes its id, {observation_id}, from its content)"
    return f"observation id {observation_id!r} is given twice (also at {first})"


def check_in_order(
    batch: Iterable[tuple[int, Event, str]], known: KnownIds, *, start: int, today: dt.date | None
) -> Callable[[str], bool]:
    """Raise ``InputError`` at the first event that the log, or the batch before it, cannot take.

    ``batch`` gives each event with its offset in the batch (its position
    less ``start``) and its label. A spooled batch passes only the events
    that can fail or matter to a later one (see ``spool``); the checks are
    the same. Returns whether an observation id is corrected or retracted in
    the batch (such a record can not be repeated by it).
    """
    pending: dict[str, str] = {}
    versions: dict[str, tuple[int, str]] = {}
    given: dict[str, str] = {}  # the label of each observation id the batch itself gives

    def status(observation_id: str) -> str | None:
        return pending.get(observation_id) or known.status(observation_id)

    for offset, event, label in batch:
        if isinstance(event, Observation | Correction):
            try:
                check_new_event(event)  # built in Python (the API), it met none of the input's checks
            except InputError as exc:
                raise exc.located(label) from None
            if today is not None:
                check_dates(event, today, label)
        if isinstance(event, Observation):
            if event.id in given:
                raise InputError(_given_twice(event.id, given[event.id], label), f"{label}: id")
            if status(event.id) is not None:
                raise InputError(f"observation id {event.id!r} is already in the log", f"{label}: id")
            given[event.id] = label
            pending[event.id] = LIVE
            versions[event.id] = (start + offset, "Observation")
        elif isinstance(event, Correction | Retraction):
            target = event.observation_id
            current = status(target)
            if current is None:
                raise InputError(f"no observation {target!r} in the log", f"{label}: observation_id")
            if current == RETRACTED:
                raise InputError(f"observation {target!r} was retracted", f"{label}: observation_id")
            if event.expected_version is not None:
                version = versions.get(target) or known.version(target)
                check_version(target, event.expected_version, version, f"{label}: expected_version")
            if isinstance(event, Retraction):
                pending[target] = RETRACTED
            else:
                versions[target] = (start + offset, "Correction")

    def changed(observation_id: str) -> bool:
        fixed = versions.get(observation_id, (0, ""))[1] == "Correction"
        return fixed or pending.get(observation_id) == RETRACTED

    return changed


def similar_records(known: KnownIds, keys: Iterable[str], changed: Callable[[str], bool]) -> list[Observation]:
    """The effective records of the log with one of these figure keys, but those the batch fixes."""
    records = []
    for id_, version in known.similar(keys):
        if changed(id_):  # corrected or retracted earlier in this batch
            continue
        raw = decode_line(known.line(version))
        stored = event_from_stored(raw.type, raw.schema, raw.event)
        records.append(stored.replacement if isinstance(stored, Correction) else stored)
    return records


def check_repeats(new: Iterable[tuple[Observation, str]], records: Iterable[Observation]) -> None:
    """Raise ``InputError`` at the first new observation that repeats a record or a new one before it.

    ``records`` must hold every effective record with the figure key of a
    new observation (more do no harm); a spooled batch passes only its new
    observations whose figure key is not unique (see ``spool``).
    """
    by_figure: dict[tuple, list[Observation]] = {}
    for record in records:
        by_figure.setdefault((record.series_key, record.reported_on), []).append(record)
    for event, label in new:
        place = (event.series_key, event.reported_on)
        for record in by_figure.get(place, ()):
            if repeats(event, record):
                raise InputError(
                    f"repeats observation {record.id!r} (same series, day and figure"
                    f"{'' if event.kind is Kind.CUMULATIVE else ' and source'}); "
                    "if the monitor really published it twice, pass --allow-duplicate",
                    f"{label}: figure",
                )
        by_figure.setdefault(place, []).append(event)


def admit(
    batch: Sequence[Event],
    known: KnownIds,
    labels: Iterable[str] | None = None,
    *,
    start: int = 0,
    today: dt.date | None = None,
    allow_duplicate: bool = False,
) -> None:
    """Raise ``InputError`` naming the first event of ``batch`` that the log cannot take.

    ``labels`` name each event for the message (``rows.csv:7``); by default
    the event's place in the batch. ``start`` is the position the batch's
    first event will take, ``today`` the UTC day it is recorded on. Names
    are checked first, then each event in order, then repeats: a new
    observation that repeats an effective one is refused unless ``allow_duplicate``.
    """
    names = list(labels) if labels is not None else [f"event {i + 1}" for i in range(len(batch))]
    check_names(batch_names(batch, names), known.names)
    changed = check_in_order(zip(itertools.count(), batch, names), known, start=start, today=today)
    if allow_duplicate:
        return
    new = [(event, label) for event, label in zip(batch, names, strict=True) if isinstance(event, Observation)]
    if new:
        keys = {figure_key(unstructure(event)) for event, _ in new}
        check_repeats(new, similar_records(known, keys, changed))
