"""Reading events from the files people bring: CSV rows and JSON Lines.

Every bad file, row or field becomes one ``InputError`` naming the file,
the line and the field. Files are read line by line, never whole, and
every event is read and checked before anything is appended, so an import
lands entirely or not at all.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import enum
import functools
import io
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .codec import event_from_input, parse_date, with_content_id
from .columns import COLUMNS
from .cycles import no_cycle_collection
from .errors import InputError, shown
from .events import MAX_COUNT, Event, Figure, Kind, Observation, Qualifier, Source, composed
from .rows import RowEncoder, StoredRows

_WHOLE_NUMBER = re.compile(r"[0-9]+")
MAX_DIGITS = 13
# Field names of the event classes that differ from the CSV column they come from.
_COLUMN_OF = {"title": "source_title", "url": "source_url"}

# Columns whose values repeat down a file: one shared string each, not one per row (``read_events`` holds every row).
_REPEATED = frozenset({"incident", "monitor", "measure", "category", "location"})
# The same few thousand days recur on every row: parsed once each, shared like the strings.
_parse_day = functools.lru_cache(maxsize=1 << 16)(parse_date)
# The members of the enums a row names, by their text: a dict look-up per cell, not an enum call.
_MEMBERS = {choices: {member.value: member for member in choices} for choices in (Kind, Qualifier)}

Labelled = list[tuple[str, Event]]
Progress = Callable[[Iterable, int | None], Iterable]  # the items, and how many there are (None: unknown)


def _count(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not _WHOLE_NUMBER.fullmatch(text):
        raise InputError(f"{shown(text)} is not a whole number (write digits only, e.g. 1383)", name)
    if len(text) > MAX_DIGITS:
        raise InputError(f"a number of {len(text)} digits is not a casualty count", name)
    value = int(text)
    if value > MAX_COUNT:
        raise InputError(f"{value} is above {MAX_COUNT:,}, more than any casualty count", name)
    return value


def _date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return _parse_day(text)
    except ValueError as exc:  # named for its column (a context manager per cell costs a tenth of a read)
        raise InputError(str(exc), name) from None


def observation_from_row(row: Mapping[str, str | None]) -> Observation:
    """An observation from CSV-named fields (empty or missing = absent).

    An empty ``id`` gets an id derived from the content (``obs-...``).
    """
    cells: dict[str, str] = {}
    for name, value in row.items():  # each cell stripped once; a blank one is absent
        if value is not None and (value := value.strip()):
            cells[name] = sys.intern(value) if name in _REPEATED else value
    cell = cells.get

    def required(name: str) -> str:
        value = cell(name)
        if value is None:
            raise InputError("is required", name)
        return value

    kind = _member(Kind, required("kind"), "kind")
    figure = _figure(cell("low"), cell("high"), required("qualifier"))
    try:
        source = Source(title=required("source_title"), url=cell("source_url"), quote=cell("quote"))
        observation = Observation(
            id=cell("id", "pending"),
            incident=required("incident"),
            monitor=required("monitor"),
            reported_on=_date(required("reported_on"), "reported_on"),
            period_start=_date(cell("period_start"), "period_start"),
            period_end=_date(cell("period_end"), "period_end"),
            measure=required("measure"),
            category=required("category"),
            location=composed(cell("location")),
            kind=kind,
            figure=figure,
            source=source,
            note=cell("note"),
        )
    except InputError as exc:
        raise InputError(exc.message, _COLUMN_OF.get(exc.where, exc.where)) from None
    return observation if "id" in cells else with_content_id(observation)


def _figure(low: str | None, high: str | None, qualifier: str) -> Figure:
    q = _member(Qualifier, qualifier, "qualifier")
    return Figure.of(_count(low, "low"), _count(high, "high"), q)


def _member(choices: type[enum.StrEnum], text: str, name: str):
    member = _MEMBERS[choices].get(text)
    if member is None:
        raise InputError(f"{shown(text)} is not one of: {', '.join(m.value for m in choices)}", name)
    return member


def row_from_observation(observation: Observation) -> dict[str, str]:
    """The CSV cells of an observation: the inverse of ``observation_from_row``.

    "At most N" is written with the floor replay reads, 0, even where a log
    written before holds another: exports say what replay counts, and a
    correction that leaves the figure alone is not refused for a floor nobody typed.
    """
    o = observation
    return {
        "id": o.id,
        "incident": o.incident,
        "monitor": o.monitor,
        "reported_on": o.reported_on.isoformat(),
        "period_start": o.period_start.isoformat() if o.period_start else "",
        "period_end": o.period_end.isoformat() if o.period_end else "",
        "measure": o.measure,
        "category": o.category,
        "location": o.location or "",
        "kind": o.kind.value,
        "low": "0" if o.figure.qualifier is Qualifier.AT_MOST else str(o.figure.low),
        "high": "" if o.figure.high is None else str(o.figure.high),
        "qualifier": o.figure.qualifier.value,
        "source_url": o.source.url or "",
        "source_title": o.source.title,
        "quote": o.source.quote or "",
        "note": o.note or "",
    }


def with_changes(current: Observation, changes: Mapping[str, str], where: str = "options") -> Observation:
    """The record ``current`` with some columns given anew, as a person types them (an empty one clears it).

    A figure whose low or qualifier changes without a new high takes the high
    its qualifier implies: "exact 1,225" corrected to low 1,383 stays exact,
    the old high would contradict it. Values that change nothing are refused.
    """
    if "id" in changes:
        raise InputError("an observation's id cannot be corrected; retract it and append a new one", "--id")
    row = row_from_observation(current)
    bound_moves = ("low" in changes or "qualifier" in changes) and "high" not in changes
    if bound_moves and changes.get("qualifier", row["qualifier"]) in ("exact", "about", "at_least"):
        row["high"] = ""
    row.update(changes)
    try:
        replacement = observation_from_row(row)
    except InputError as exc:
        raise exc.located(where) from None
    if replacement == current:
        raise InputError("these values are what the record already says; nothing to correct")
    return replacement


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", str(path)) from None
    except PermissionError:
        raise InputError("permission denied", str(path)) from None


def _line_count(path: Path) -> int:
    """How many lines the file has, for the progress bar: one pass in small chunks, nothing kept."""
    count, last = 0, b"\n"
    with _open(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _text_lines(path: Path, progress: Progress | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a UTF-8 file, read as it goes: memory stays flat in the file's size.

    Lines are split at line feeds (UTF-8 never has that byte inside a character,
    so decoding line by line is decoding the whole); a leading BOM is dropped.
    Bad bytes and NULs are refused naming their line, and a file of nothing
    but white space as empty, as when the file was read whole.
    """
    with _open(path) as f:
        lines: Iterable[bytes] = f
        if progress is not None:
            # A pipe (``/dev/stdin``, ``<(...)``) is read once: counting its lines first would consume them.
            regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
            lines = progress(f, _line_count(path) if regular else None)
        blank = True
        for number, data in enumerate(lines, start=1):
            if number == 1 and data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8", f"{path}:{number}"
                ) from None
            if "\x00" in text:
                raise InputError("contains a NUL byte; this is not a text file", f"{path}:{number}")
            blank = blank and not text.strip()
            yield number, text
    if blank:
        raise InputError("the file is empty", str(path))


def _csv_lines(path: Path, progress: Progress | None) -> Iterator[str]:
    """The file's lines as ``csv`` expects them: rows end at a carriage return or a line feed only.

    str.splitlines would also cut a cell at U+2028, U+0085 and the like.
    """
    for _, text in _text_lines(path, progress):
        if "\r" in text.removesuffix("\r\n"):
            yield from io.StringIO(text, newline="").readlines()
        else:
            yield text


def _csv_rows(path: Path, progress: Progress | None) -> Iterator[tuple[list[str], str, list[str]]]:
    """(header, label, cells) of each row of a CSV file with the documented header, any column order.

    The header is checked first; blank rows are skipped and a row of the wrong
    width is refused, naming its line.
    """
    reader = csv.reader(_csv_lines(path, progress), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise InputError(f"unreadable CSV: {exc}", f"{path}:1") from None
    header = [name.strip() for name in header]
    if header and not any(header):
        # A file of nothing but white space is empty (reading on to its end says so), not a bad header.
        _skip_blank(reader, path)
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise InputError(
            f"unknown column(s) {', '.join(map(shown, unknown))}; the columns are: {','.join(COLUMNS)}", f"{path}:1"
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputError(f"column(s) named twice: {', '.join(duplicated)}", f"{path}:1")
    rows = 0
    line = reader.line_num
    name = str(path)
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"unreadable CSV: {exc}", f"{path}:{start}") from None
        line = reader.line_num
        if not any(map(str.strip, cells)):  # a blank row (mapped in C: once per row of millions)
            continue
        if len(cells) != len(header):
            raise InputError(f"{len(cells)} cells where the header has {len(header)}", f"{path}:{start}")
        rows += 1
        yield header, f"{name}:{start}", cells
    if not rows:
        raise InputError("no rows below the header", str(path))


def _located_row(header: Sequence[str], label: str, cells: list[str]) -> Observation:
    try:
        return observation_from_row(dict(zip(header, cells, strict=True)))
    except InputError as exc:
        raise exc.located(label) from None


def iter_csv(path: Path, progress: Progress | None = None) -> Iterator[tuple[str, Observation]]:
    """Observations from a CSV file with the documented header, any column order, one row at a time."""
    for header, label, cells in _csv_rows(path, progress):
        yield label, _located_row(header, label, cells)


def iter_csv_stored(path: Path, progress: Progress | None = None, block: int = 4096) -> Iterator[StoredRows]:
    """As ``iter_csv``, but in their stored form, ``block`` rows at a time (``rows``), not as objects.

    What an import spools: the same rows, checked by the same rules, with the
    same refusals. A bad line (unreadable CSV, a row of the wrong width) is
    refused only after the rows read before it are checked, as ``iter_csv``
    refuses the first bad row.
    """
    encoder, labels, rows = None, [], []
    try:
        for header, label, cells in _csv_rows(path, progress):
            if encoder is None:  # the header is the file's first line: one for all its rows
                encoder = RowEncoder(header, functools.partial(_located_row, header))
            labels.append(label)
            rows.append(cells)
            if len(rows) == block:
                yield encoder.encode_rows(labels, rows)
                labels, rows = [], []
    except InputError:
        if rows:
            encoder.encode_rows(labels, rows)
        raise
    if rows:
        yield encoder.encode_rows(labels, rows)


def _skip_blank(reader: Any, path: Path) -> None:
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                return
    except csv.Error as exc:
        raise InputError(f"unreadable CSV: {exc}", f"{path}:{reader.line_num}") from None


def read_csv(path: Path, progress: Progress | None = None) -> Labelled:
    """Observations from a CSV file with the documented header, any column order."""
    return list(iter_csv(path, progress))


def iter_jsonl(path: Path, progress: Progress | None = None) -> Iterator[tuple[str, Event]]:
    """Events from a JSON Lines file, one ``{"type": ..., ...}`` object a line, read as it goes."""
    # JSON Lines are split on \n only: U+2028 or U+0085 inside a JSON string is text, not a line break.
    for number, line in _text_lines(path, progress):
        if not line.strip():
            continue
        label = f"{path}:{number}"
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc})", label) from None
        try:
            yield label, event_from_input(data)
        except InputError as exc:
            raise exc.located(label) from None


def read_jsonl(path: Path, progress: Progress | None = None) -> Labelled:
    """Events from a JSON Lines file: one ``{"type": ..., ...}`` object a line."""
    return list(iter_jsonl(path, progress))


def iter_events(
    path: str | Path, format: str | None = None, progress: Progress | None = None, *, stored: bool = False
) -> Iterator[tuple[str, Event] | StoredRows]:
    """Events from a CSV or JSON Lines file, read as they are asked for; the format follows the file's extension.

    ``progress`` wraps the lines read, with their number (the command line shows a bar).
    With ``stored``, a CSV's rows come in blocks of their stored form
    (``iter_csv_stored``), as a spool takes them.
    """
    path = Path(path)
    format = format or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower())
    read = {"csv": iter_csv_stored if stored else iter_csv, "jsonl": iter_jsonl}.get(format or "")
    if read is None:
        raise InputError("cannot tell the format from the extension; use --format csv or --format jsonl", str(path))
    return read(path, progress)


def read_events(path: str | Path, format: str | None = None, progress: Progress | None = None) -> Labelled:
    """Events from a CSV or JSON Lines file, all in a list (``iter_events`` reads them as they go)."""
    with no_cycle_collection():
        return list(iter_events(path, format, progress))
