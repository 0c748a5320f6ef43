"""Reading events from the files people bring: CSV rows and JSON Lines.

Every bad file, row or field becomes one ``InputError`` naming the file,
the line and the field. Files are read line by line, never whole, and
every event is read and checked before anything is appended, so an import
lands entirely or not at all.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import datetime as dt
import enum
import functools
import io
import itertools
import os
import re
import stat
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import orjson

from .codec import event_from_input, parse_date, with_content_id
from .columns import COLUMNS
from .cycles import no_cycle_collection
from .errors import InputError, shown
from .events import MAX_COUNT, Event, Figure, Kind, Observation, Qualifier, Source, composed
from .parallel import in_two, line_start_after, whole_lines
from .rows import RowEncoder
from .spool import SpooledRows

# A CSV file at least this long is read by two processes (``_stored_in_two``), a window of bytes at a time:
# this one reads the first share of each, and takes in what a fork read of the rest (the fork holds its rows,
# in the form a spool keeps them, pickled, until this one is ready for them: a window bounds the memory that takes).
IN_TWO_BYTES = 16 << 20
IN_TWO_WINDOW = 64 << 20
_FIRST_SHARE = 0.5
_CHUNK = 1 << 20

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

    A file of nothing but white space is refused as empty, as when the file
    was read whole.
    """
    with _open(path) as f:
        lines: Iterable[bytes] = f
        if progress is not None:
            # A pipe (``/dev/stdin``, ``<(...)``) is read once: counting its lines first would consume them.
            regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
            lines = progress(f, _line_count(path) if regular else None)
        blank = True
        for number, text in _decoded(path, lines):
            blank = blank and not text.strip()
            yield number, text
    if blank:
        raise InputError("the file is empty", str(path))


def _decoded(path: Path, lines: Iterable[bytes], before: int = 0) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines of a file after its first ``before``.

    Lines are split at line feeds (UTF-8 never has that byte inside a character,
    so decoding line by line is decoding the whole); a leading BOM is dropped.
    Bad bytes and NULs are refused naming their line.
    """
    for number, data in enumerate(lines, start=before + 1):
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
        yield number, text


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
    header = _header(reader, path)
    if not (yield from _rows_of(reader, path, header)):
        raise InputError("no rows below the header", str(path))


def _header(reader: Any, path: Path) -> list[str]:
    """The header a CSV reader reads first, checked: known columns, each once."""
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
    return header


def _rows_of(
    reader: Any, path: Path, header: list[str], before: int = 0, done: Callable[[], bool] | None = None
) -> Generator[tuple[list[str], str, list[str]], None, int]:
    """(header, label, cells) of the rows a CSV reader reads until ``done()`` says so before a row; how many.

    ``before``: the lines before the reader's first, as ``csv`` counts them.
    Blank rows are skipped and a row of the wrong width is refused, naming its line.
    """
    rows = 0
    line = before + reader.line_num
    name = str(path)
    while done is None or not done():
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"unreadable CSV: {exc}", f"{path}:{start}") from None
        line = before + reader.line_num
        if not any(map(str.strip, cells)):  # a blank row (mapped in C: once per row of millions)
            continue
        if len(cells) != len(header):
            raise InputError(f"{len(cells)} cells where the header has {len(header)}", f"{path}:{start}")
        rows += 1
        yield header, f"{name}:{start}", cells
    return rows


def _located_row(header: Sequence[str], label: str, cells: list[str]) -> Observation:
    try:
        return observation_from_row(dict(zip(header, cells, strict=True)))
    except InputError as exc:
        raise exc.located(label) from None


def iter_csv(path: Path, progress: Progress | None = None) -> Iterator[tuple[str, Observation]]:
    """Observations from a CSV file with the documented header, any column order, one row at a time."""
    for header, label, cells in _csv_rows(path, progress):
        yield label, _located_row(header, label, cells)


def iter_csv_stored(path: Path, progress: Progress | None = None, block: int = 4096) -> Iterator[SpooledRows]:
    """As ``iter_csv``, but in the form a spool keeps them, ``block`` rows at a time (``spool.SpooledRows``), not
    as objects.

    What an import spools: the same rows, checked by the same rules, with the
    same refusals. A long file is read by two processes (``_stored_in_two``).
    """
    try:
        info = os.stat(path)
    except OSError:
        info = None  # opening it says what is wrong
    if info is not None and stat.S_ISREG(info.st_mode) and info.st_size >= IN_TWO_BYTES:
        yield from _stored_in_two(path, progress, block)
    else:
        yield from _stored(_csv_rows(path, progress), block)


def _stored(
    rows: Iterable[tuple[list[str], str, list[str]]], block: int, encoder: RowEncoder | None = None
) -> Generator[SpooledRows, None, int]:
    """Rows in the form a spool keeps them, ``block`` at a time; how many.

    A bad line (unreadable CSV, a row of the wrong width) is refused only
    after the rows read before it are checked, as ``iter_csv`` refuses the
    first bad row.
    """
    count, labels, cells_of = 0, [], []
    try:
        for header, label, cells in rows:
            if encoder is None:  # the header is the file's first line: one for all its rows
                encoder = RowEncoder(header, functools.partial(_located_row, header))
            labels.append(label)
            cells_of.append(cells)
            if len(cells_of) == block:
                yield SpooledRows(encoder.encode_rows(labels, cells_of))
                count, labels, cells_of = count + block, [], []
    except InputError:
        if cells_of:
            encoder.encode_rows(labels, cells_of)
        raise
    if cells_of:
        yield SpooledRows(encoder.encode_rows(labels, cells_of))
    return count + len(cells_of)


class _Place:
    """Where a reading of a file stands: the byte just after the lines it read, and how many lines that is.

    ``pending``: the parts of a line cut at lone carriage returns that the CSV
    reader has not taken yet; while there are any, the reading is not between
    two lines.
    """

    __slots__ = ("lines", "offset", "pending")

    def __init__(self, offset: int, lines: int) -> None:
        self.offset, self.lines, self.pending = offset, lines, 0


class _PartEnd(NamedTuple):
    """Where a part read by ``_stored_in_two`` ended: at the first row to end at or past its stop."""

    offset: int
    lines: int  # the file's lines before ``offset``
    csv_lines: int  # the same, as ``csv`` counts them (a lone carriage return ends one)
    rows: int  # the part's rows (blank ones left out)
    read: int  # the lines it read


def _stored_in_two(path: Path, progress: Progress | None, block: int) -> Iterator[SpooledRows]:
    """``iter_csv_stored`` of a long regular file, each window of it read by two processes (``parallel.in_two``).

    This process reads the first share of a window, a fork the rest, from a
    line that may not start a row (a quoted cell can hold line breaks). So
    this process reads on to the end of the row it is in when it comes to
    where the fork started: a row ending exactly there proves that the fork
    started at a row, and its rows are the file's; a row ending past it ran
    across, and the fork's rows are dropped. The fork counts the lines before
    its part, so that its rows and refusals name the lines one process names.
    """
    if not _starts_with_a_row(path):
        yield from _stored(_csv_rows(path, progress), block)
        return
    with _open(path) as f:
        ticks = None
        if progress is not None:  # the bar counts lines: this process's as it reads them, the fork's once taken
            lines = _line_count(path)
            ticks = iter(progress(range(lines), lines))
        reading = _Reading(f.fileno(), path, block, ticks)
        size = os.fstat(f.fileno()).st_size
        while True:
            window = min(reading.place.offset + IN_TWO_WINDOW, size)
            split = line_start_after(f.fileno(), reading.place.offset + int((window - reading.place.offset)
                                                                             * _FIRST_SHARE), size)  # fmt: skip
            if split >= size:
                yield from reading.here()
                break
            first = functools.partial(reading.here, split)
            rest = functools.partial(reading.forked, split, window)
            # This process moves on only once the parts are done: until then, ``rest`` may be run here again
            # (a fork that died after sending its part's end), from where ``first`` left the reader.
            ended = None
            with contextlib.closing(in_two(first, rest)) as parts:
                for item in parts:
                    if isinstance(item, _PartEnd):
                        ended = item
                    else:
                        yield item
            if ended is not None:
                reading.moved(ended)
        if ticks is not None:
            collections.deque(ticks, maxlen=0)  # the bar ends full
    if not reading.rows:
        raise InputError("no rows below the header", str(path))


def _starts_with_a_row(path: Path) -> bool:
    """Whether the file's first line starts with a whole CSV row that is not blank.

    Else one process reads the file: it refuses that row the same way, a
    file of white space as empty once read to its end, and a first line of
    a megabyte or more (a file of lone carriage returns is one line) is read
    once, not twice.
    """
    with _open(path) as f:
        line = f.readline(_CHUNK)
    if not line.endswith(b"\n"):
        return False
    try:
        [(_, text)] = _decoded(path, [line])
        first = next(csv.reader(io.StringIO(text, newline=""), strict=True), None)
    except (csv.Error, InputError):
        return False
    return any(cell.strip() for cell in first or ())


class _Reading:
    """A CSV file read in parts: by this process's reader, and from where a part read by a fork ended."""

    def __init__(self, fd: int, path: Path, block: int, ticks: Iterator | None) -> None:
        self.fd, self.path, self.block, self.ticks = fd, path, block, ticks
        self.place = _Place(0, 0)
        self.reader, self.before = _reader(fd, path, self.place, ticks), 0
        self.header = _header(self.reader, path)
        self.encoder = RowEncoder(self.header, functools.partial(_located_row, self.header))
        self.rows = 0

    def here(self, split: int | None = None) -> Generator[SpooledRows, None, bool]:
        """The rows this process's reader reads up to the first row to end at or past ``split`` (None: the end);
        whether it read past ``split``: a row ran across, and what a fork read from there is not the file's rows."""
        place = self.place
        done = None if split is None else (lambda: place.offset >= split and not place.pending)
        self.rows += yield from _stored(_rows_of(self.reader, self.path, self.header, self.before, done), self.block,
                                        self.encoder)  # fmt: skip
        return place.offset != split

    def forked(self, split: int, window: int) -> Iterator[SpooledRows | _PartEnd]:
        """The rows from line ``split`` up to the first row to end at or past ``window``, then where they ended.

        Run by the fork, or by this process where the fork failed (its reader
        then stands at ``split``): the lines between its reader and ``split``
        are counted, and a reader of its own reads from there.
        """
        place = self.place
        counted = os.pread(self.fd, split - place.offset, place.offset)
        lines = counted.count(b"\n")
        part = _Place(split, place.lines + lines)
        # Lines as csv counts them: a lone carriage return ends one too (and parts of the line this process's
        # reader is in may be left, after a header that ends at one).
        before = self.before + self.reader.line_num + place.pending + lines
        before += counted.count(b"\r") - counted.count(b"\r\n")
        reader = _reader(self.fd, self.path, part, None)
        done = lambda: part.offset >= window and not part.pending  # noqa: E731
        rows = yield from _stored(_rows_of(reader, self.path, self.header, before, done), self.block, self.encoder)
        yield _PartEnd(part.offset, part.lines, before + reader.line_num, rows, part.lines - place.lines - lines)

    def moved(self, end: _PartEnd) -> None:
        """Carry on from where a part read by a fork ended."""
        self.rows += end.rows
        self.place = _Place(end.offset, end.lines)
        self.reader, self.before = _reader(self.fd, self.path, self.place, self.ticks), end.csv_lines
        if self.ticks is not None:
            collections.deque(itertools.islice(self.ticks, end.read), maxlen=0)


def _reader(fd: int, path: Path, place: _Place, ticks: Iterator | None) -> Any:
    """A CSV reader of the file's lines from ``place`` on, keeping ``place`` where it has read to."""
    return csv.reader(_csv_pieces(_decoded(path, _lines_at(fd, place, ticks), place.lines), place), strict=True)


def _lines_at(fd: int, place: _Place, ticks: Iterator | None) -> Iterator[bytes]:
    """The lines of the file from ``place`` on, as a file object gives them (each with its line feed)."""
    end = os.fstat(fd).st_size
    while place.offset < end:
        lines, _ = whole_lines(fd, place.offset, end, _CHUNK)
        if not lines:  # the file's last line, without a line feed
            if last := os.pread(fd, end - place.offset, place.offset):
                place.offset += len(last)
                place.lines += 1
                yield last
            return
        for line in lines:
            place.offset += len(line) + 1
            place.lines += 1
            if ticks is not None:
                next(ticks, None)
            yield line + b"\n"


def _csv_pieces(numbered: Iterable[tuple[int, str]], place: _Place) -> Iterator[str]:
    """``_csv_lines`` of numbered lines, saying in ``place`` while a line's parts are still to be taken."""
    for _, text in numbered:
        if "\r" in text.removesuffix("\r\n"):
            parts = io.StringIO(text, newline="").readlines()
            for taken, part in enumerate(parts, 1):
                place.pending = len(parts) - taken
                yield part
        else:
            yield text


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
) -> Iterator[tuple[str, Event] | SpooledRows]:
    """Events from a CSV or JSON Lines file, read as they are asked for; the format follows the file's extension.

    ``progress`` wraps the lines read, with their number (the command line shows a bar).
    With ``stored``, a CSV's rows come in blocks in the form a spool keeps
    them (``iter_csv_stored``).
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
