"""A full replay, as CSV, kept beside the log: the answer to the question asked most, ready.

``timeline replay --format csv`` with no date, filter or ``--days`` option
asks for every series of the whole log. Its answer depends only on the log,
so it is kept beside it (``<log>.replay.csv``, or a row of a SQL store's
projections table), keyed by the head it was made from, under the rules of
the replay index: it is used only while the log still ends at that head;
after any append it is made again by the next such replay (from the replay
index, as any replay is) and kept anew; ``timeline verify`` makes it again
and compares, and sets one that differs aside as evidence.

``timeline import`` makes it right after the import, so the first replay of
a freshly loaded dataset is a copy of bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from events_log.store import LogHead, Store

from .output import csv_chunks
from .replay import Replay
from .scratch import full_series

NAME = "replay.csv"


def kept_csv(store: Store) -> BinaryIO | None:
    """The kept CSV of the full replay, if it was made at the log's current head."""
    return store.result(NAME, store.head())


def write_and_keep(store: Store, result: Replay, out: BinaryIO) -> None:
    """Write the CSV of ``result`` (a full replay) to ``out``, and keep it beside the log on the way."""

    def chunks() -> Iterator[bytes]:
        for chunk in csv_chunks(result.series):
            data = chunk.encode()
            out.write(data)
            yield data

    written = chunks()
    store.keep_result(NAME, result.log, written)
    for _ in written:  # whatever the store did not read (it keeps nothing, or failed) still goes out
        pass


def keep(store: Store, progress: Callable[[Iterable, int], Iterable] | None = None) -> bool:
    """Make the full replay's CSV and keep it beside the log (after an import); whether it was kept.

    ``progress`` wraps the replay's loop over series, as ``replay``'s does.
    """
    head, series = full_series(store, progress)  # one series at a time: never the whole replay in memory
    return store.keep_result(NAME, head, (chunk.encode() for chunk in csv_chunks(series)))


def check(store: Store, *, repair: bool) -> tuple[str | None, bool]:
    """For ``verify``: whether the kept CSV, if any is at the log's head, is what a replay makes now.

    Returns a note and whether it is a finding. A kept CSV of another head is
    not wrong, only stale; it is left for the next replay to replace.
    """
    head = store.head()
    kept = store.result(NAME, head)
    if kept is None:
        return None, False
    with kept:
        same = _same_bytes(kept, (chunk.encode() for chunk in csv_chunks(full_series(store)[1])))
    if same:
        return f"the replay kept as CSV matches the log ({_at(head)})", False
    aside = store.set_result_aside(NAME)
    finding = f"the replay kept as CSV does not match a replay of the log ({_at(head)}); the old one is kept as {aside}"
    if repair:
        keep(store)
        return f"{finding}; a new one was made", False
    return f"{finding} (`verify --repair-index` makes a new one)", True


def copy(kept: BinaryIO, out: BinaryIO) -> None:
    with kept:
        shutil.copyfileobj(kept, out, 1 << 20)


def _at(head: LogHead) -> str:
    return f"{head.entries} entries, head {head.head[:12]}"


def _same_bytes(kept: BinaryIO, chunks: Iterator[bytes]) -> bool:
    for chunk in chunks:
        if kept.read(len(chunk)) != chunk:
            return False
    return kept.read(1) == b""
