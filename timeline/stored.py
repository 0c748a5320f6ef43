"""A full replay, as CSV, kept beside the log: the answer to the question asked most, ready.

``timeline replay --format csv`` with no date, filter or ``--days`` option
asks for every series of the whole log. Its answer depends only on the log,
so it is kept beside it (``<log>.replay.csv``, or a row of a SQL store's
projections table), keyed by the head it was made from, under the rules of
the replay index: it is used only while the log still ends at that head;
after any append it is made again by the next such replay (from the replay
index, as any replay is) and kept anew; ``timeline verify`` makes it again
and compares, and sets one that differs aside as evidence.

``timeline import`` of a dataset (a batch at least as large as the log
before it) makes it right after the import, so the first replay of a freshly
loaded dataset is a copy of bytes; a day's rows into a large log do not pay
a replay of the whole log for it.

The same full replay is kept beside it incident by incident
(``kept_incidents``), by the same writers and under the same rules: a
question about one incident as-of any date reads that instead of the index.

The CSV is sealed: its length and CRC-32 follow it, and a kept CSV whose
seal does not hold (damaged, edited, or kept by a version that did not seal
it) is passed over with a warning, and the replay made anew.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from events_log.cycles import no_cycle_collection
from events_log.errors import IndexMismatchWarning, StoreError
from events_log.store import LogHead, Store

from . import kept_incidents
from .output import CSV_HEADER, SeriesCsv
from .replay import Series
from .scratch import full_series

NAME = "replay.csv"


def kept_csv(store: Store) -> BinaryIO | None:
    """The kept CSV of the full replay, if it was made at the log's current head and its seal holds."""
    return _unsealed(store.result(NAME, store.head()))


def kept_whole(store: Store) -> BinaryIO | None:
    """The kept CSV, if the replay kept by incident is at the log's head too: else a whole replay
    makes both again (one was set aside, lost to a crash between the two, or kept by another version)."""
    head = store.head()
    by_incident = store.result(kept_incidents.NAME, head)
    if by_incident is None:
        return None
    with by_incident:
        if kept_incidents.kept_by_another_version(by_incident):
            return None
    return _unsealed(store.result(NAME, head))


def _sealed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks of a CSV, then its seal: its length and CRC-32."""
    length, crc = 0, 0
    for chunk in chunks:
        length, crc = length + len(chunk), zlib.crc32(chunk, crc)
        yield chunk
    yield kept_incidents.SEAL.pack(length, crc)


def _unsealed(kept: BinaryIO | None) -> BinaryIO | None:
    """The CSV of a kept result whose seal holds (read once through to check it), from its start; else None.

    A kept CSV is copied out as the answer: bytes that changed since it
    was kept must never be, so one that fails is passed over, with a warning.
    """
    if kept is None:
        return None
    try:
        start = kept.tell()
        length = kept.seek(0, os.SEEK_END) - start - kept_incidents.SEAL.size
        if length >= 0:
            kept.seek(start + length)
            seal = kept_incidents.SEAL.unpack(kept.read(kept_incidents.SEAL.size))
            kept.seek(start)
            crc = 0
            for piece in iter(lambda: kept.read(min(1 << 20, length - kept.tell() + start)), b""):
                crc = zlib.crc32(piece, crc)
            if seal == (length, crc):
                kept.seek(start)
                return io.BufferedReader(_Body(kept, length), 1 << 20)
    except (OSError, StoreError, struct.error):
        pass
    kept.close()
    warnings.warn(
        IndexMismatchWarning(
            "the replay kept as CSV does not hold what was kept (damaged or edited, or kept by an older version); "
            "replaying instead, and keeping it anew"
        ),
        stacklevel=2,
    )
    return None


class _Body(io.RawIOBase):
    """The first ``length`` bytes from where ``kept`` stands: a kept CSV without its seal."""

    def __init__(self, kept: BinaryIO, length: int) -> None:
        self._kept, self._left = kept, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._kept.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._kept.close()
        super().close()


def keep(
    store: Store, progress: Callable[[Iterable, int], Iterable] | None = None, out: BinaryIO | None = None
) -> bool:
    """Make the full replay's CSV and keep it beside the log, and the replay by incident; whether it was kept.

    ``out``: write the CSV there too, as it is made (``timeline replay
    --format csv``). Two processes fold the series and make their bytes
    (``full_series``), and only the one being written is in memory.
    ``progress`` wraps the replay's loop over series, as ``replay``'s does.
    """
    head, described, last_time, written = full_series(store, _written(), progress)
    failed: list[OSError] = []
    with no_cycle_collection(), kept_incidents.Writer() as parts:

        def chunks() -> Iterator[bytes]:
            for chunk in _csv_kept(written, parts):
                if out is not None:
                    try:
                        out.write(chunk)
                    except OSError as error:
                        failed.append(error)  # the output's failure, not the store's: raised again below
                        raise
                yield chunk

        made = chunks()
        # Cut short (nothing kept) if ``out`` fails. A log with no entries yet keeps nothing: its replay is no
        # work, and the file of a refused first write is removed.
        kept = head.entries > 0 and store.keep_result(NAME, head, _sealed(made))
        if failed:
            raise failed[0]
        for _ in made:  # whatever the store did not read (it keeps nothing, or failed) still goes out
            pass
        if kept:  # the store read every series
            parts.keep(store, head, described, last_time)
    return kept


def _written() -> Callable[[Series], tuple[str, bytes, bytes]]:
    """What is written of a series: its incident, its CSV rows and its kept form (``kept_incidents.encoded``).

    Made by the process that folded it (``scratch.full_series``): a fork
    folding half the series sends back these bytes, not the series.
    """
    rows = SeriesCsv()
    return lambda series: (series.incident, rows(series).encode(), kept_incidents.encoded(series))


def _csv_kept(written: Iterable[tuple[str, bytes, bytes]], parts: kept_incidents.Writer) -> Iterator[bytes]:
    """The CSV of the series ``written``, header first, each series kept by incident on the way (in ``parts``)."""
    yield CSV_HEADER.encode()
    for incident, rows, body in written:
        parts.add(incident, body)
        yield rows


def check(store: Store, *, repair: bool) -> list[tuple[str, bool]]:
    """For ``verify``: whether the replays kept at the log's head are what a replay makes now.

    Returns a note for each kept one, and whether it is a finding. One kept
    at another head is not wrong, only stale; it is left for the next
    replay to replace.
    """
    head = store.head()
    kept = {name: store.result(name, head) for name in (NAME, kept_incidents.NAME)}
    if all(file is None for file in kept.values()):
        return []
    notes = []
    by_incident = kept[kept_incidents.NAME]
    if by_incident is not None and kept_incidents.kept_by_another_version(by_incident):  # not wrong, only stale
        notes.append((f"the replay kept by incident was kept by another version, in another format ({_at(head)}); "
                      "it is not used, and the next whole replay keeps it anew", False))  # fmt: skip
        by_incident.close()
        kept[kept_incidents.NAME] = None
    _, described, last_time, written = full_series(store, _written())
    with kept_incidents.Writer() as parts:
        csv = _compared_csv(kept[NAME], _csv_kept(written, parts))
        made = parts.finished(described, last_time)
        if made is None and kept[kept_incidents.NAME] is not None:  # not wrong, only not compared
            notes.append((f"the replay kept by incident was not compared ({_at(head)}): no room for a temporary "
                          "file (TMPDIR)", False))  # fmt: skip
            kept[kept_incidents.NAME].close()
            kept[kept_incidents.NAME] = None
        same = {NAME: csv != "differs", kept_incidents.NAME: _same_bytes(kept[kept_incidents.NAME], made or iter(()))}
    if csv == "unsealed":  # not wrong, only stale: the next whole replay keeps it anew, sealed
        notes.append((f"the replay kept as CSV was kept without its seal by an older version ({_at(head)}); "
                      "it is not used, and the next whole replay keeps it anew", False))  # fmt: skip
        kept[NAME] = None
    for name, what in ((NAME, "the replay kept as CSV"), (kept_incidents.NAME, "the replay kept by incident")):
        if kept[name] is None:
            continue
        if same[name]:
            notes.append((f"{what} matches the log ({_at(head)})", False))
            continue
        aside = store.set_result_aside(name)
        finding = f"{what} does not match a replay of the log ({_at(head)}); the old one is kept as {aside}"
        notes.append((f"{finding}; a new one is made" if repair else
                      f"{finding} (`verify --repair-index` makes a new one)", not repair))  # fmt: skip
    if repair and not all(same.values()):  # one set aside, or missing beside the other: both made anew
        keep(store)
    return notes


def copy(kept: BinaryIO, out: BinaryIO) -> None:
    with kept:
        shutil.copyfileobj(kept, out, 1 << 20)


def _at(head: LogHead) -> str:
    return f"{head.entries} entries, head {head.head[:12]}"


def _compared_csv(kept: BinaryIO | None, chunks: Iterator[bytes]) -> str | None:
    """Whether ``kept`` holds the CSV of ``chunks`` and its seal ("same"), the CSV alone as an older version kept
    it ("unsealed"), or anything else ("differs"); None if nothing is kept. ``chunks`` are all read either way."""
    if kept is None:
        for _ in chunks:
            pass
        return None
    with kept:
        same, previous = True, None
        for chunk in _sealed(chunks):  # the last is the seal
            if previous is not None:
                same = same and kept.read(len(previous)) == previous
            previous = chunk
        rest = kept.read(kept_incidents.SEAL.size + 1)
    if same and rest == previous:
        return "same"
    return "unsealed" if same and rest == b"" else "differs"


def _same_bytes(kept: BinaryIO | None, chunks: Iterator[bytes]) -> bool | None:
    """Whether ``kept`` (None: nothing kept) holds ``chunks``, which are all read either way (and ``kept`` closed)."""
    if kept is None:
        for _ in chunks:
            pass
        return None
    with kept:
        same = True
        for chunk in chunks:
            same = same and kept.read(len(chunk)) == chunk
        return same and kept.read(1) == b""
