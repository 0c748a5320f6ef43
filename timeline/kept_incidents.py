"""A full replay kept beside the log incident by incident: one incident, as-of any date, without the index.

Asked about one incident in a fresh process (``timeline replay --incident X
--as-of D``), replay would read and check the whole replay index, tens of
megabytes at a million observations, to fold a fiftieth of it. The answer
is the full replay's series of that incident, cut at D: a day never depends
on later reports (the warm cache rests on the same). So the full replay is
kept beside the log with each incident's series apart and a directory at
the end, and such a question reads the directory and one incident.

It is kept by the writers of the full replay's CSV (``stored``), under the
same rules: keyed by the head it was made at, used only while the log still
ends there, made again by the next whole replay or import after an append,
and compared by ``timeline verify``. What the series alone do not say (an
observation's record, its corrections) a replay read from it takes from the
replay index, cut at that head, when first asked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import struct
import sys
import tempfile
import zlib
from array import array
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec

from events_log.envelope import time_of_code
from events_log.errors import StoreError
from events_log.store import LogHead, Store

from .index import Described, names_of
from .rule import Base, Folded, Pending, RawFlag
from .scratch import behind_at, described_in
from .series import Behind, Replay, Series

NAME = "replay.incidents"
# What the series are kept as: 2 keeps a segment's ids as one string (``Folded.rests_on``); 1, which an older
# version kept without saying, a tuple of them. Kept bytes of another format are not used: a whole replay
# keeps them anew.
FORMAT = 2


class _Series(msgspec.Struct, array_like=True, gc=False):
    """A series as kept: its key and its fold, arrays as their bytes (little-endian int64)."""

    key: tuple[str, str, str, str, str | None]
    last: int
    starts: bytes
    lows: bytes
    highs: bytes
    basis_codes: str
    rests_on: str
    flags: tuple[RawFlag, ...]
    base: Base | None
    pending: Pending


class _Directory(msgspec.Struct, array_like=True):
    """What the kept bytes end with: where each incident's series are, and what a replay says besides."""

    # slug -> where its series are, from the start of the body: (offset, length, how many, CRC-32 of those
    # bytes), one msgpack value each
    incidents: dict[str, tuple[int, int, int, int]]
    described: list[tuple[int, str, dict[str, Any]]]  # the index's descriptions, in log order
    last_recorded: int | None  # the time code of the log's last entry
    format: int = 1


_encode = msgspec.msgpack.Encoder().encode
_decode_series = msgspec.msgpack.Decoder(list[_Series]).decode
_decode_directory = msgspec.msgpack.Decoder(_Directory).decode
SEAL = struct.Struct("<QI")  # what follows kept bytes: their length and CRC-32 (here, the directory's)


class Writer:
    """The bytes to keep for a full replay, written to a temporary file as its series go by.

    The series come in a replay's order, where an incident's are together
    (``scratch.sort_key``); each is written as it comes, and none is held,
    so an import can write them from the same fold as its CSV. They are only
    a copy of what the index gives: where the temporary file cannot be made
    or written (a full TMPDIR), none are kept, and the replay goes on.
    """

    def __init__(self) -> None:
        self._places: dict[str, tuple[int, int, int, int]] = {}
        self._out: BinaryIO | None = None
        with contextlib.suppress(OSError):
            self._out = tempfile.TemporaryFile(prefix="timeline-incidents-")  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._given_up()

    def _given_up(self) -> None:
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.close()
            self._out = None

    def add(self, incident: str, body: bytes) -> None:
        """Write the series of ``incident`` kept as ``body`` (``encoded``): the next after those written before."""
        if incident in self._places and incident != next(reversed(self._places)):
            raise ValueError(f"the series of incident {incident!r} do not come together")
        if self._out is None:
            return
        offset, length, count, crc = self._places.get(incident, (self._out.tell(), 0, 0, 0))
        self._places[incident] = (offset, length + len(body), count + 1, zlib.crc32(body, crc))
        try:
            self._out.write(body)
        except OSError:
            self._given_up()

    def finished(self, described: list[Described], last_time: int | None) -> Iterator[bytes] | None:
        """Every byte to keep, the directory last (with what a replay says besides its series: the log's
        descriptions, as its index keeps them, and its last entry's time code); None if the temporary file failed."""
        if self._out is None:
            return None
        out = self._out
        directory = _encode(_Directory(self._places, described, last_time, FORMAT))
        try:
            out.write(directory + SEAL.pack(len(directory), zlib.crc32(directory)))
            out.seek(0)  # writes out what is buffered: a full disk says so here
        except OSError:
            self._given_up()
            return None
        return iter(lambda: out.read(1 << 20), b"")

    def keep(self, store: Store, head: LogHead, described: list[Described], last_time: int | None) -> None:
        """Keep what was written beside the log, as the replay at ``head`` (nothing if the temporary file failed)."""
        made = self.finished(described, last_time)
        if made is not None:
            store.keep_result(NAME, head, made)


def replay(store: Store, as_of: dt.date | None, incident: str, monitor: str | None) -> Replay | None:
    """The replay of one incident as-of a date from the kept bytes, or None where none are kept at the log's head.

    Bytes that cannot be read, or do not match their CRC-32 (a torn or
    damaged copy), are passed over as if none were kept: they are only ever
    a copy of what the index gives (``verify`` reports them).
    """
    head = store.head()
    kept = store.result(NAME, head)
    if kept is None:
        return None
    with kept:
        try:
            body = kept.tell()  # after the store's header
            directory = _directory(kept)
            if directory.format != FORMAT:
                return None
            stored = _series_of(kept, body, directory, incident)
        except (msgspec.DecodeError, struct.error, ValueError, OSError, StoreError):
            return None
    incidents, monitors = described_in(directory.described, head.entries)
    series = [_series(s) for s in stored if monitor is None or s.key[1] == monitor]
    if as_of is not None:
        series = [s.until(as_of) for s in series if s.first <= as_of]
    last = directory.last_recorded
    return Replay(
        as_of=as_of, known_at=None, log=head, series=tuple(series), incidents=incidents, monitors=monitors,
        last_recorded_at=None if last is None else time_of_code(last), store=store,
        behind=Behind(make=lambda: behind_at(store, head, as_of, incident, monitor),
                      names=names_of(directory.described)),
    )  # fmt: skip


def kept_by_another_version(kept: BinaryIO) -> bool:
    """Whether kept bytes (read from where they stand, and left there) hold a directory of another format."""
    start = kept.tell()
    try:
        return _directory(kept).format != FORMAT
    except (msgspec.DecodeError, struct.error, ValueError, OSError):
        return False  # damaged, not older: ``verify`` says they do not match
    finally:
        kept.seek(start)


def _directory(kept: BinaryIO) -> _Directory:
    """The directory at the end of kept bytes, checked against its seal."""
    kept.seek(-SEAL.size, os.SEEK_END)
    length, crc = SEAL.unpack(kept.read(SEAL.size))
    kept.seek(-SEAL.size - length, os.SEEK_END)
    return _decode_directory(_checked(kept.read(length), crc))


def _series_of(kept: BinaryIO, body: int, directory: _Directory, incident: str) -> list[_Series]:
    place = directory.incidents.get(incident)
    if place is None:  # nothing reported of it (yet)
        return []
    offset, length, count, crc = place
    kept.seek(body + offset)
    data = _checked(kept.read(length), crc)
    # The series were written one after another: read back as one msgpack array (array 32's header) of them.
    return _decode_series(b"\xdd" + count.to_bytes(4, "big") + data)


def _checked(data: bytes, crc: int) -> bytes:
    if zlib.crc32(data) != crc:
        raise ValueError("kept bytes that do not match their CRC-32")
    return data


def encoded(series: Series) -> bytes:
    """A series as kept: what ``Writer.add`` takes (made by whichever process folded it)."""
    return _encode(_kept(series))


def _kept(series: Series) -> _Series:
    f = series.folded
    return _Series(
        series.key, f.last, _bytes(f.starts), _bytes(f.lows), _bytes(f.highs), f.basis_codes, f.rests_on,
        f.flags, f.base, f.pending,
    )  # fmt: skip


def _series(kept: _Series) -> Series:
    folded = Folded(
        kept.last, _array(kept.starts), _array(kept.lows), _array(kept.highs), kept.basis_codes, kept.rests_on,
        kept.flags, kept.base, kept.pending,
    )  # fmt: skip
    return Series(*kept.key, folded=folded)


def _bytes(values: array) -> bytes:
    if sys.byteorder == "little":
        return values.tobytes()
    swapped = array("q", values)
    swapped.byteswap()
    return swapped.tobytes()


def _array(data: bytes) -> array:
    values = array("q")
    values.frombytes(data)
    if sys.byteorder != "little":
        values.byteswap()
    return values
