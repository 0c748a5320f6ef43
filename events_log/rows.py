"""CSV rows straight to the JSON an entry stores, for the rows that are plainly valid.

Building each row as attrs objects (an ``Observation``, its ``Figure`` and
``Source``, each validator called, then a converter to plain data) was most
of an import's time. ``RowEncoder`` runs the same rules on the cells as text
and writes the stored JSON from them directly, a few thousand rows at a
time: most rules are checked once per column (the distinct names and days
of a column, one regular expression over a column's ids or links), and what
is left is one loop that builds each row's JSON and figure key.

It only ever accepts. A block that fails a column check is taken row by
row, and a row the encoder is not sure of (a bad cell, anything unusual) is
built the exact way (``importers.observation_from_row``), so every refusal
keeps its one-line message naming the file, the line and the field, and
the first bad row is still the one refused. Property tests hold the block,
the row and the exact way to the same stored bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence

import orjson

from .admission import figure_digest, figure_fields, figure_key
from .codec import SCHEMA, event_from_stored, unstructure
from .columns import COLUMNS
from .events import (
    _CONTROL,
    _SLUG,
    _TERM,
    _URL,
    MAX_COUNT,
    MAX_QUOTE,
    MAX_TEXT,
    MAX_TITLE,
    OBSERVATION_ID,
    Kind,
    Observation,
    Qualifier,
)

_KINDS = frozenset(member.value for member in Kind)
_QUALIFIERS = frozenset(member.value for member in Qualifier)
_MAX_DIGITS = 13  # as ``importers.MAX_DIGITS``: more digits are refused there, with their own message
# Values of the columns that repeat down a file, checked once each; a file of endless new ones stops adding.
_REMEMBERED = 1 << 16
# A cell never holds a NUL (``importers`` refuses the line), so NUL joins a column's cells for one check in C.
_IDS = re.compile(f"(?:{OBSERVATION_ID.pattern})(?:\x00(?:{OBSERVATION_ID.pattern}))*")
_URLS = re.compile(f"(?:{_URL.pattern})?(?:\x00(?:{_URL.pattern})?)*", _URL.flags)
# The bytes ``events._CONTROL`` and ``_URL`` refuse in ASCII text (a NUL joins a column's links: no cell holds one).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
_NOT_IN_LINKS = bytes([*range(0x01, 0x21), 0x7F]) + b"<>\"'"

# Stored JSON, id, incident, monitor, figure key, day, and the fields the figure key is made of (``figure_digest``).
Encoded = tuple[bytes, str, str, str, bytes, int, tuple]
Exact = Callable[[str, list[str]], Observation]  # a row built the exact way, or its refusal


class StoredRows:
    """Consecutive observations of a file in their stored form, with what the spool and the tally ask, by column."""

    __slots__ = ("days", "fields", "ids", "incidents", "keys", "labels", "monitors", "stored")

    def __init__(self, labels: list[str], encoded: Sequence[Encoded]) -> None:
        self.labels = labels
        columns = list(zip(*encoded, strict=True)) or [()] * 7
        self.stored, self.ids, self.incidents, self.monitors, keys, self.days, self.fields = columns
        self.keys = b"".join(keys)  # ``admission.figure_key`` of each, as 16 bytes
        # self.days: the latest day each names, as an ordinal (an observation's period lies within the
        # day it was reported on: that is the day reported)
        # self.fields: what each figure key is made of (``figure_fields``): series, day, kind and figure

    def __len__(self) -> int:
        return len(self.labels)

    def event(self, row: int) -> Observation:
        """The observation itself, built the exact way from its stored data (for the few shown to people)."""
        return event_from_stored("Observation", SCHEMA["Observation"], orjson.loads(self.stored[row]))


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
    """A date's ordinal, or False for anything ``codec.parse_date`` would not read."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii():
        return False
    if not (text[:4].isdigit() and text[5:7].isdigit() and text[8:].isdigit()):
        return False
    try:
        return dt.date.fromisoformat(text).toordinal()
    except ValueError:
        return False


class RowEncoder:
    """Encodes the rows of one CSV header, a block at a time (``encode_rows``), or one (``encode``)."""

    def __init__(self, header: Sequence[str], exact: Exact) -> None:
        self._where = [header.index(name) if name in header else None for name in COLUMNS]
        self._exact = exact
        self._slug = _remembering(lambda text: bool(_SLUG.fullmatch(text)))
        self._term = _remembering(lambda text: bool(_TERM.fullmatch(text)))
        self._date = _remembering(_day)

    def encode_rows(self, labels: list[str], rows: list[list[str]]) -> StoredRows:
        """The rows' stored forms; the first row the exact way refuses raises its ``InputError``."""
        encoded = self._block(rows)
        if encoded is None:
            pairs = zip(labels, rows, strict=True)
            encoded = [self.encode(cells) or _encoded(self._exact(label, cells)) for label, cells in pairs]
        return StoredRows(labels, encoded)

    def _columns(self, rows: list[list[str]]) -> list[Sequence[str]]:
        """The rows' cells, stripped, column by column in the order of ``COLUMNS`` (a missing one empty)."""
        by_header = list(zip(*rows, strict=True))
        empty = [""] * len(rows)
        return [empty if at is None else list(map(str.strip, by_header[at])) for at in self._where]

    def _block(self, rows: list[list[str]]) -> list[Encoded] | None:
        """Every row encoded, if the block passes each rule column by column; else None (take it row by row)."""
        (ids, incidents, monitors, reported, starts, ends, measures, categories, locations, kinds, lows, highs,
         qualifiers, urls, titles, quotes, notes) = columns = self._columns(rows)  # fmt: skip
        if not (set(kinds) <= _KINDS and set(qualifiers) <= _QUALIFIERS):
            return None
        if not (all(map(self._slug, {*incidents, *monitors})) and all(map(self._term, {*measures, *categories}))):
            return None
        days = list(map(self._date, reported))
        if not all(days) or ((any(starts) or any(ends)) and not self._periods(starts, ends, days)):
            return None
        given = [i for i in ids if i]
        if given and not _IDS.fullmatch("\x00".join(given)):
            return None
        if not all(titles) or max(map(len, titles)) > MAX_TITLE or max(map(len, locations)) > MAX_TEXT:
            return None
        if max(map(len, quotes)) > MAX_QUOTE or max(map(len, notes)) > MAX_QUOTE:
            return None
        if not all(map(_no_control, (titles, quotes, notes, locations))) or not _links(urls):
            return None
        digits = "".join(lows) + "".join(highs)
        if (digits and not (digits.isascii() and digits.isdigit())) or max(map(len, lows + highs)) > _MAX_DIGITS:
            return None
        encoded = []
        for cells in zip(*columns, days, strict=True):
            row = _row(*cells)
            if row is None:
                return None
            encoded.append(row)
        return encoded

    def _periods(self, starts: Sequence[str], ends: Sequence[str], days: list) -> bool:
        """Whether every period given is made of dates, in order, and not after its row's day."""
        # A missing start reads as the first day there is, a missing end as the day reported.
        firsts = [self._date(start) if start else 1 for start in starts]
        lasts = [self._date(end) if end else day for end, day in zip(ends, days, strict=True)]
        periods = zip(firsts, lasts, days, strict=True)
        return all(first and last and first <= last <= day for first, last, day in periods)

    def encode(self, cells: list[str]) -> Encoded | None:
        """One row's stored form, or None: build it the exact way, which refuses it or (if merely unusual) takes it."""
        columns = self._columns([cells])
        (id_, incident, monitor, reported, start, end, measure, category, location, kind, low, high, qualifier,
         url, title, quote, note) = (column[0] for column in columns)  # fmt: skip
        if kind not in _KINDS or qualifier not in _QUALIFIERS:
            return None
        if not (self._slug(incident) and self._slug(monitor) and self._term(measure) and self._term(category)):
            return None
        day = self._date(reported)
        if not (day and self._periods([start], [end], [day])):
            return None
        if id_ and not OBSERVATION_ID.fullmatch(id_):
            return None
        if not title or len(title) > MAX_TITLE or len(quote) > MAX_QUOTE or len(note) > MAX_QUOTE:
            return None
        if len(location) > MAX_TEXT or _CONTROL.search(title + quote + note + location):
            return None
        if url and not _URL.fullmatch(url):
            return None
        if not all(text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS for text in (low, high) if text):
            return None
        return _row(*(column[0] for column in columns), day)


def _no_control(column: Sequence[str]) -> bool:
    """Whether no cell of a column holds a control character ``events._CONTROL`` refuses.

    Text of ASCII alone (most of a file) is checked as bytes, by deleting
    the refused ones and comparing lengths: a third of the time the regular
    expression takes over the same text.
    """
    text = "\n".join(column)
    if text.isascii():
        data = text.encode("ascii")
        return len(data.translate(None, _CONTROL_BYTES)) == len(data)
    return _CONTROL.search(text) is None


def _links(urls: Sequence[str]) -> bool:
    """Whether every link a column gives is one ``events._URL`` takes (an empty cell gives none).

    Links of ASCII alone that each start with "http://" or "https://", go on
    after it and hold none of the bytes a link may not, are taken at once;
    any other column is left to the regular expression, which says the same
    of these in twice the time.
    """
    given = [url for url in urls if url]
    joined = "\x00" + "\x00".join(given) + "\x00"
    if joined.isascii():
        data = joined.encode("ascii")
        if (len(data.translate(None, _NOT_IN_LINKS)) == len(data) and "://\x00" not in joined
                and joined.count("\x00http://") + joined.count("\x00https://") == len(given)):  # fmt: skip
            return True
    return _URLS.fullmatch("\x00".join(urls)) is not None


def _row(
    id_: str, incident: str, monitor: str, reported: str, start: str, end: str, measure: str, category: str,
    location: str, kind: str, low: str, high: str, qualifier: str, url: str, title: str, quote: str, note: str,
    day: int,
) -> Encoded | None:  # fmt: skip
    """A row's stored form from cells that passed every check but the figure's, or None if its figure fails (or
    its place is not composed: the exact way composes it)."""
    lo = int(low) if low else (0 if qualifier == "at_most" else None)  # as ``Figure.of`` reads what is left out
    hi = int(high) if high else (lo if qualifier in ("exact", "about") else None)
    if lo is None or lo > MAX_COUNT or (hi is not None and hi > MAX_COUNT) or (lo and qualifier == "at_most"):
        return None
    if qualifier == "at_least":
        if hi is not None:
            return None
    elif hi is None or hi < lo or (hi != lo if qualifier in ("exact", "about") else qualifier == "range" and hi == lo):
        return None
    if location and not unicodedata.is_normalized("NFC", location):
        return None  # composed the exact way (``events.composed``)
    location = location or None
    data = {
        "incident": incident,
        "monitor": monitor,
        "reported_on": reported,
        "measure": measure,
        "category": category,
        "kind": kind,
        "figure": {"low": lo, "high": hi, "qualifier": qualifier},
        "source": {"title": title, "url": url or None, "quote": quote or None},
        "period_start": start or None,
        "period_end": end or None,
        "location": location,
        "note": note or None,
    }
    if not id_:  # as ``codec.content_id``: the SHA-256 of the rest, keys sorted
        id_ = "obs-" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    # The id comes first: put before the rest's JSON, not copied into a new dict before it.
    stored = b'{"id":' + orjson.dumps(id_) + b"," + orjson.dumps(data)[1:]
    fields = (incident, monitor, measure, category, location, reported, kind, lo, hi, qualifier)
    return stored, id_, incident, monitor, figure_digest(fields), day, fields


def _encoded(observation: Observation) -> Encoded:
    """The stored form of an observation built the exact way (a row the encoder was not sure of)."""
    data, o = unstructure(observation), observation
    # Its period lies within the day it was reported on: that is its latest day.
    day = o.reported_on.toordinal()
    return orjson.dumps(data), o.id, o.incident, o.monitor, bytes.fromhex(figure_key(data)), day, figure_fields(data)
