"""A CSV row straight to the JSON an entry stores, for the rows that are plainly valid.

Building each row as attrs objects (an ``Observation``, its ``Figure`` and
``Source``, each validator called, then a converter to plain data) was most
of an import's time. ``RowEncoder`` runs the same rules on the row's cells
as text and writes the stored JSON from them directly. It only ever
accepts: any row it is not sure of (a bad cell, a missing column, anything
unusual) it hands back, and ``importers`` builds that row the exact way, so
every refusal keeps its one-line message naming the file, the line and the
field. A property test holds it to the same stored bytes as the exact way
for every row it accepts, and to never accept a row the exact way refuses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import operator
from collections.abc import Callable, Sequence

import orjson

from .admission import figure_key
from .codec import event_from_stored
from .columns import COLUMNS
from .events import _CONTROL, _ID, _SLUG, _TERM, _URL, MAX_COUNT, MAX_QUOTE, MAX_TEXT, MAX_TITLE, Kind, Qualifier

_KINDS = frozenset(member.value for member in Kind)
_QUALIFIERS = frozenset(member.value for member in Qualifier)
_MAX_DIGITS = 13  # as ``importers.MAX_DIGITS``: more digits are refused there, with their own message
# Values of the columns that repeat down a file, checked once each; a file of endless new ones stops adding.
_REMEMBERED = 1 << 16


class StoredObservation:
    """An observation already in its stored form, with what the spool and the tally ask of it."""

    __slots__ = ("day", "id", "incident", "key", "monitor", "stored")

    def __init__(self, stored: bytes, id: str, incident: str, monitor: str, key: bytes, day: int) -> None:
        self.stored = stored  # the JSON an entry carries
        self.id = id
        self.incident = incident
        self.monitor = monitor
        self.key = key  # ``admission.figure_key``, as its 16 bytes
        self.day = day  # the latest day it names, as an ordinal

    def event(self):
        """The observation itself, built the exact way from its stored data (for the few shown to people)."""
        return event_from_stored("Observation", 2, orjson.loads(self.stored))


def _remembering(check: Callable[[str], object]) -> Callable[[str], object]:
    """``check`` of a value, asked once per distinct value (of the few thousand a column repeats)."""
    known: dict[str, object] = {}

    def checked(value: str) -> object:
        result = known.get(value)
        if result is None:
            result = check(value)
            if len(known) < _REMEMBERED:
                known[value] = result
        return result

    return checked


def _day(text: str) -> int | bool:
    """A date's ordinal, or False for anything ``codec.parse_date`` would not read (or might not)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii():
        return False
    if not (text[:4].isdigit() and text[5:7].isdigit() and text[8:].isdigit()):
        return False
    try:
        return dt.date.fromisoformat(text).toordinal()
    except ValueError:
        return False


class RowEncoder:
    """Encodes the rows of one CSV header: ``encode(cells)`` is the row's ``StoredObservation``, or None.

    None means "build it the exact way" (``importers.observation_from_row``):
    that either refuses the row with its message or, for a row merely unusual,
    builds it.
    """

    def __init__(self, header: Sequence[str]) -> None:
        # A missing column reads as the empty cell put after the row's own.
        self._pick = operator.itemgetter(*(header.index(name) if name in header else len(header) for name in COLUMNS))
        self._padded = len(header) < len(COLUMNS)
        self._slug = _remembering(lambda text: bool(_SLUG.fullmatch(text)))
        self._term = _remembering(lambda text: bool(_TERM.fullmatch(text)))
        self._date = _remembering(_day)

    def encode(self, cells: list[str]) -> StoredObservation | None:
        if self._padded:
            cells = [*cells, ""]
        (id_, incident, monitor, reported, start, end, measure, category, location, kind, low, high, qualifier,
         url, title, quote, note) = [cell.strip() for cell in self._pick(cells)]  # fmt: skip
        figure = _figure(low, high, qualifier)
        if figure is None or kind not in _KINDS:
            return None
        if not (self._slug(incident) and self._slug(monitor) and self._term(measure) and self._term(category)):
            return None
        # A period's missing start reads as the first day there is, its missing end as the day reported.
        day = self._date(reported)
        first = self._date(start) if start else 1
        last = self._date(end) if end else day
        if not (day and first and last and first <= last <= day):
            return None
        if id_ and not _ID.fullmatch(id_):
            return None
        if not title or len(title) > MAX_TITLE or len(quote) > MAX_QUOTE or len(note) > MAX_QUOTE:
            return None
        if len(location) > MAX_TEXT or _CONTROL.search(title + quote + note + location):
            return None
        if url and not _URL.fullmatch(url):
            return None
        data = {
            "incident": incident,
            "monitor": monitor,
            "reported_on": reported,
            "measure": measure,
            "category": category,
            "kind": kind,
            "figure": figure,
            "source": {"title": title, "url": url or None, "quote": quote or None},
            "period_start": start or None,
            "period_end": end or None,
            "location": location or None,
            "note": note or None,
        }
        if not id_:  # as ``codec.content_id``: the SHA-256 of the rest, keys sorted
            id_ = "obs-" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
        data = {"id": id_, **data}
        return StoredObservation(orjson.dumps(data), id_, incident, monitor, bytes.fromhex(figure_key(data)), day)


def _figure(low: str, high: str, qualifier: str) -> dict | None:
    """The stored figure, as ``Figure.of`` and its checks would make it, or None."""
    if qualifier not in _QUALIFIERS:
        return None
    lo, hi = _number(low), _number(high)
    if lo is False or hi is False:
        return None
    if qualifier == "at_most" and lo is None:
        lo = 0
    if qualifier in ("exact", "about") and hi is None:
        hi = lo
    if lo is None:
        return None
    if qualifier == "at_least":
        if hi is not None:
            return None
    elif hi is None or hi < lo or (hi != lo if qualifier in ("exact", "about") else qualifier == "range" and hi == lo):
        return None
    return {"low": lo, "high": hi, "qualifier": qualifier}


def _number(text: str) -> int | bool | None:
    """A count as ``importers._count`` reads it, None for an empty cell, False for anything else."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        return False
    value = int(text)
    return value if value <= MAX_COUNT else False
