"""Log entries: the envelope around an event, and its hash chain.

A stored entry is one line of JSON::

    {"position":3,"recorded_at":"2025-04-01T09:00:00.000000Z","type":"Observation",
     "schema":2,"batch_end":4,"prev_hash":"...","event":{...},"hash":"..."}

``hash`` is the SHA-256 of the exact stored bytes of the line without its
``,"hash":"..."`` suffix (the "body"), so verification never depends on
re-serialising anything: editing, deleting, inserting or reordering any
byte of a past line breaks either that line's hash or the next line's
``prev_hash``. ``batch_end`` is the position of the last entry written in
the same append; a batch whose last entry is missing at the end of a log
was never acknowledged and is treated as a torn write.

Every store keeps these same bytes, so a log copied between stores keeps
its hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import attrs
import msgspec
import orjson

from .codec import SCHEMA, event_from_stored, unstructure
from .errors import BrokenChainError, InputError
from .events import Event

GENESIS = "0" * 64
_SUFFIX = re.compile(rb',"hash":"([0-9a-f]{64})"\}')
_SUFFIX_LEN = len(b',"hash":"') + 64 + len(b'"}')
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def format_time(moment: dt.datetime) -> str:
    """UTC, microseconds, 'Z': a fixed width, so text order is time order."""
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)


def time_code(moment: dt.datetime) -> int:
    """Microseconds since 1970: how the replay index keeps a time, and compares known-at with it."""
    # Not through text: strftime writes years before 1000 without their leading zeros.
    return (moment.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


def time_of_code(code: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=code)


def show_time(moment: dt.datetime) -> str:
    """A time as people read and type it back (``--known-at``): ISO 8601, UTC as 'Z'."""
    return moment.isoformat().replace("+00:00", "Z")


MAX_POSITION = 2**63 - 1  # the projections keep positions as int64: a log never reaches it


class RawEntry(msgspec.Struct, frozen=True):
    """An entry as decoded on the read path: the event is still plain data."""

    position: int
    recorded_at: str
    type: str
    schema: int
    batch_end: int
    prev_hash: str
    event: dict[str, Any]
    hash: str


_decode_raw = msgspec.json.Decoder(RawEntry).decode


def entry_reading(name: str, event: type) -> type[msgspec.Struct]:
    """A struct of an entry whose event is read as ``event`` (a reader of part of a line: ``known``, ``skim``).

    The envelope asks for what ``RawEntry`` asks (made from its fields, so
    the two cannot drift apart), and a position a log can reach: the
    projections keep it in an int64 column, and refuse any other.
    """
    types = {"event": event, "position": Annotated[int, msgspec.Meta(ge=0, le=MAX_POSITION)]}
    fields = [(field.name, types.get(field.name, field.type)) for field in msgspec.structs.fields(RawEntry)]
    return msgspec.defstruct(name, fields, gc=False)


class StoredSource(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    title: str
    url: str | None = None
    quote: str | None = None


class StoredObservation(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The fields of a stored observation that a reader of part of its line does not keep (``known``,
    ``timeline.skim``: each adds those it keeps, typed as it keeps them, with ``kw_only=True``).

    They are decoded, not skipped: a skipped field goes unchecked, and its
    text must be decoded as ``decode_line`` decodes the whole line, so that a
    line only that reads (text that is not UTF-8, a number out of range) is
    never taken. No other field is allowed: a line holding one is read whole.
    """

    source: StoredSource
    location: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    note: str | None = None


def decode_line(line: bytes) -> RawEntry:
    """Decode one stored line; its hash is not checked here (see ``check_line``)."""
    try:
        return _decode_raw(line)
    except msgspec.ValidationError as exc:
        raise InputError(f"not a log entry: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's own limit, past some tens of thousands of nested arrays or objects
        raise InputError("not valid JSON: nested too deeply to read") from None


@attrs.frozen
class Entry:
    """A stored entry with its event structured."""

    position: int
    recorded_at: dt.datetime
    schema: int
    batch_end: int
    prev_hash: str
    hash: str
    event: Event

    @property
    def type(self) -> str:
        return type(self.event).__name__

    @classmethod
    def from_raw(cls, raw: RawEntry) -> Entry:
        return cls(
            position=raw.position,
            recorded_at=parse_time(raw.recorded_at),
            schema=raw.schema,
            batch_end=raw.batch_end,
            prev_hash=raw.prev_hash,
            hash=raw.hash,
            event=event_from_stored(raw.type, raw.schema, raw.event),
        )


def encode_entry(event: Event, *, position: int, recorded_at: str, batch_end: int, prev_hash: str) -> tuple[bytes, str]:
    """The stored line (without newline) of an event and its hash."""
    return entry_line(
        type(event).__name__, orjson.dumps(unstructure(event)),
        position=position, recorded_at=recorded_at, batch_end=batch_end, prev_hash=prev_hash,
    )  # fmt: skip


def entry_line(
    type_name: str, stored: bytes, *, position: int, recorded_at: str, batch_end: int, prev_hash: str
) -> tuple[bytes, str]:
    """The stored line of an event already in its stored form (``stored``, its JSON), and its hash: the one
    line of ``chained_lines``."""
    [line] = chained_lines(
        [(type_name, stored)], position=position, recorded_at=recorded_at, batch_end=batch_end, prev_hash=prev_hash
    )
    return line, line[-66:-2].decode()  # the line ends in ``"<64 hex digits>"}``


def chained_lines(
    events: Iterable[tuple[str, bytes]], *, position: int, recorded_at: str, batch_end: int, prev_hash: str
) -> Iterator[bytes]:
    """The stored lines of consecutive events of one batch (type name and stored JSON each), from ``position``
    on, chained after ``prev_hash``.

    The envelope's other fields are numbers, a time, a type name and a hash:
    nothing that JSON escapes, so each line is written out directly, byte
    for byte what ``orjson`` makes of the whole envelope. What the lines of
    a batch share is made once per type: an import makes a line per event,
    and making each envelope anew was a third of the time the fork that
    makes them takes.
    """
    shared: dict[str, bytes] = {}
    prev = prev_hash.encode()
    for at, (type_name, stored) in enumerate(events, position):
        middle = shared.get(type_name)
        if middle is None:
            middle = shared[type_name] = (
                f',"recorded_at":"{recorded_at}","type":"{type_name}","schema":{SCHEMA[type_name]},'
                f'"batch_end":{batch_end},"prev_hash":"'
            ).encode()
        body = b'{"position":%d%b%b","event":%b' % (at, middle, prev, stored)
        digest = hashlib.sha256(body)
        digest.update(b"}")
        prev = digest.hexdigest().encode()
        yield body + b',"hash":"' + prev + b'"}'


def check_line(line: bytes, position: int, prev_hash: str) -> RawEntry:
    """Decode a stored line and prove it is the entry that belongs at ``position``.

    Raises ``BrokenChainError`` naming the position if the bytes were edited,
    or if the line is not the one that follows ``prev_hash``.
    """
    match = _SUFFIX.fullmatch(line, len(line) - _SUFFIX_LEN) if len(line) > _SUFFIX_LEN else None
    if match is None:
        raise BrokenChainError(f"position {position}: the line does not end in its hash", position)
    body = line[:-_SUFFIX_LEN] + b"}"
    stored = match.group(1).decode()
    if hashlib.sha256(body).hexdigest() != stored:
        raise BrokenChainError(f"position {position}: the line's content does not match its hash", position)
    try:
        raw = decode_line(line)
    except InputError as exc:
        raise BrokenChainError(f"position {position}: {exc}", position) from None
    if raw.position != position:
        raise BrokenChainError(
            f"position {position}: the entry says it is position {raw.position} (deleted, inserted or reordered)",
            position,
        )
    if raw.prev_hash != prev_hash:
        raise BrokenChainError(
            f"position {position}: prev_hash does not match the hash of the entry before it", position
        )
    if raw.hash != stored:
        raise BrokenChainError(f"position {position}: the line holds two hashes", position)
    return raw
