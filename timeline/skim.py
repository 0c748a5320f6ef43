"""What the replay index reads of a stored observation, decoded into structs rather than dicts.

An observation's line carries its source, quote and hashes; the index keeps
only its envelope's position, time and hash, and the event's id, series,
day, kind and figure. msgspec decodes a line into these structs in C, about
twice as fast as decoding the whole line into dicts. The fields the index
does not keep are decoded too (typed as a writer stores them, and no field
beyond them), not skipped: a skipped field goes unchecked, and a line the
exact path cannot decode (text that is not UTF-8 in a quote, a number out
of range) must not be taken here.

The structs ask at least what the exact path (``RawEntry``, then
``IndexBuilder.add``) asks of the fields the index keeps, with the types
that path stores: counts from 0 to ``MAX_COUNT``, a known kind and
qualifier, a calendar date. A line they refuse, or one of an older schema
(which must be upcast first), goes through the exact path, which takes or
refuses it, naming its position. What a struct cannot say (a figure's
bounds agree with its qualifier) the index checks a block at a time
(``IndexBuilder._taken``), refusing as the exact path would.

Corrections and retractions are skimmed too, each into a ``Fix``: the
observation it names, and a correction's new values as an observation's
row holds them. Which row a fix names is found only where the whole log is
known (``index.IndexBuilder.add_run``); a fix the structs refuse goes the
exact way, as an observation does.

``skim_lines`` reads a run of lines this way into ``Skimmed`` columns,
knowing nothing of the log around them, so that another process can read
part of a large log while the index takes in the rest
(``index.IndexBuilder.add_run``).
"""

from __future__ import annotations

import array
import bisect
import datetime as dt
from collections.abc import Sequence
from typing import Annotated, NamedTuple

import attrs
import msgspec
import numpy as np

from events_log.codec import SCHEMA
from events_log.envelope import StoredObservation, entry_reading, parse_time, time_code
from events_log.events import MAX_COUNT, Kind, Qualifier, figure_problem, id_problem, series_key
from events_log.projection import line_starts

# The codes the index stores for a figure: new qualifiers go at the end.
QUALIFIERS = tuple(q.value for q in Qualifier)
QUALIFIER_CODE = {name: code for code, name in enumerate(QUALIFIERS)}
OPEN = -1  # an open-ended high in the ``high`` column

# A count as ``events._count`` takes it: msgspec refuses a bool, a float or text for an int by itself.
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class SkimFigure(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    low: Count
    high: Count | None  # None: open-ended
    qualifier: Qualifier


class SkimObservation(StoredObservation, kw_only=True):
    id: str
    incident: str
    monitor: str
    measure: str
    category: str
    reported_on: dt.date  # YYYY-MM-DD and a real day, as ``codec.parse_date`` asks
    kind: Kind
    figure: SkimFigure


class SkimCorrection(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    observation_id: str
    replacement: SkimObservation
    reason: str
    expected_version: int | None = None


class SkimRetraction(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    observation_id: str
    reason: str
    expected_version: int | None = None


SkimEntry = entry_reading("SkimEntry", SkimObservation)  # the envelope as ``RawEntry`` asks for it
_decode = msgspec.json.Decoder(SkimEntry).decode
# A fix's line, by its type: tried only on a line that is no observation's.
_FIX_DECODERS = {
    fix: (f'"type":"{fix}"'.encode(), msgspec.json.Decoder(entry_reading(f"Skim{fix}Entry", event)).decode)
    for fix, event in (("Correction", SkimCorrection), ("Retraction", SkimRetraction))
}


class Fix(NamedTuple):
    """A correction or retraction as the index takes it: all but the row of the observation it names."""

    position: int
    time: int  # the recorded time's code (``envelope.time_code``)
    hash: str
    type: str  # "Correction" or "Retraction"
    observation_id: str
    key: tuple | None  # a correction's series
    values: tuple | None  # a correction's day, cumulative, low, high and qualifier, as the index keeps them


def skim(line: bytes) -> msgspec.Struct | None:
    """The parts of an observation's line the index keeps, or None if the line is not one this can read."""
    try:
        return _decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # ValidationError is a DecodeError
        return None  # the exact path takes it, or refuses it in its turn: after the lines before it


def _new_time(text: str, times: dict[str, int]) -> int | None:
    """The code of a recorded time not met before, kept in ``times`` (a run's lines share a few), or None if the
    text is no time a writer stamps."""
    try:
        code = times[text] = time_code(parse_time(text))
    except ValueError:
        return None
    return code


def skim_fix(line: bytes, times: dict[str, int]) -> Fix | None:
    """A fix's line as the index takes it, or None if it is not one this can read (``times``: the codes of the
    recorded times met, by their text).

    What ``IndexBuilder.add`` asks of a correction's new observation, the
    structs ask, and the two checks here; anything else goes the exact way,
    which takes it or refuses it naming its position.
    """
    type_name = next((name for name, (marker, _) in _FIX_DECODERS.items() if marker in line), None)
    if type_name is None:
        return None
    try:
        entry = _FIX_DECODERS[type_name][1](line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if entry.type != type_name or entry.schema != SCHEMA[type_name] or len(entry.hash) != 64:
        return None
    stamp = times.get(entry.recorded_at)
    if stamp is None and (stamp := _new_time(entry.recorded_at, times)) is None:
        return None
    event = entry.event
    if type_name == "Retraction":
        return Fix(entry.position, stamp, entry.hash, type_name, event.observation_id, None, None)
    new, figure = event.replacement, event.replacement.figure
    if id_problem(new.id) is not None or figure_problem(figure.low, figure.high, figure.qualifier) is not None:
        return None
    values = (new.reported_on.toordinal(), int(new.kind is _CUMULATIVE), figure.low,
              OPEN if figure.high is None else figure.high, QUALIFIER_CODE[figure.qualifier])  # fmt: skip
    key = series_key(new.incident, new.monitor, new.measure, new.category, new.location)
    return Fix(entry.position, stamp, entry.hash, type_name, event.observation_id, key, values)


_CUMULATIVE = Kind.CUMULATIVE
_OBSERVATION_SCHEMA = SCHEMA["Observation"]
# The columns of ``Skimmed.rows``: where a row's line is in the run, then what the index keeps of it.
LINE, POSITION, TIME, SERIES, DAY, CUMULATIVE, LOW, HIGH, QUALIFIER = range(9)
# The columns of an observation row of the index, in its order (``IndexBuilder``).
INDEXED = [POSITION, SERIES, DAY, CUMULATIVE, LOW, HIGH, QUALIFIER]


@attrs.frozen(eq=False)
class Skimmed:
    """A run of stored lines as the index reads them: observations as rows of numbers, other lines whole.

    Series are numbered here in the order the run first names them
    (``keys[n]`` is series ``n``), not as the log numbers them: the index
    renumbers them as it takes the rows in (``IndexBuilder.add_run``).
    """

    starts: np.ndarray  # int64: where each line starts, then where the last ends; all -1 if lines have no offsets
    rows: np.ndarray  # int64, one row per observation skimmed, columns LINE ... QUALIFIER
    keys: list[tuple]  # the series the rows name, in the order they first name them
    first_rows: list[int]  # the row that first names each of ``keys``
    ids: list[str]  # each row's observation id
    hashes: str  # each row's hash (64 hex digits each), joined
    fixes: dict[int, Fix]  # the fixes skimmed, by their line's number in the run
    others: dict[int, bytes]  # the lines not skimmed, by their number in the run: read the exact way

    def __len__(self) -> int:
        return len(self.starts) - 1

    def part(self, start: int, stop: int) -> Skimmed:
        """Lines ``start`` to ``stop`` of the run, with the same series numbers."""
        first, last = np.searchsorted(self.rows[:, LINE], [start, stop])
        rows = self.rows[first:last].copy()
        rows[:, LINE] -= start
        return Skimmed(
            self.starts[start : stop + 1], rows, self.keys, [r - first for r in self.first_rows],
            self.ids[first:last], self.hashes[64 * first : 64 * last],
            {line - start: fix for line, fix in self.fixes.items() if start <= line < stop},
            {line - start: text for line, text in self.others.items() if start <= line < stop},
        )  # fmt: skip

    def new_keys(self, first: int, last: int) -> range:
        """The numbers of the series rows ``first`` to ``last`` name first (their numbers are consecutive)."""
        return range(bisect.bisect_left(self.first_rows, first), bisect.bisect_left(self.first_rows, last))


def skim_lines(lines: Sequence[bytes], start: int) -> Skimmed:
    """Lines of a log (``start``: where the first begins, or -1) skimmed into columns, in one plain loop.

    Every line that ``skim`` does not read, or that is not an observation
    of the current schema with a hash of the usual length (``Skimmed``
    joins them), is a fix ``skim_fix`` reads or is kept whole for the exact
    path. The loop keeps its lookups in locals: on millions of lines it
    beats column-wise passes.
    """
    starts = line_starts(lines, start)
    rows = array.array("q")
    keys: dict[tuple, int] = {}
    first_rows: list[int] = []
    ids: list[str] = []
    hashes: list[str] = []
    fixes: dict[int, Fix] = {}
    others: dict[int, bytes] = {}
    times: dict[str, int] = {}
    add_row, add_id, add_hash = rows.extend, ids.append, hashes.append
    for n, line in enumerate(lines):
        entry = skim(line)
        if (entry is None or entry.type != "Observation" or entry.schema != _OBSERVATION_SCHEMA
                or len(entry.hash) != 64):  # fmt: skip
            fix = skim_fix(line, times) if entry is None else None
            if fix is None:
                others[n] = line
            else:
                fixes[n] = fix
            continue
        stamp = times.get(entry.recorded_at)
        if stamp is None and (stamp := _new_time(entry.recorded_at, times)) is None:
            others[n] = line  # no time: the exact path refuses the line, naming its position
            continue
        event = entry.event
        key = (event.incident, event.monitor, event.measure, event.category, event.location)
        number = keys.get(key)
        if number is None:
            number = keys[key] = len(keys)
            first_rows.append(len(ids))
        figure = event.figure
        high = figure.high
        add_row((n, entry.position, stamp, number, event.reported_on.toordinal(), event.kind is _CUMULATIVE,
                 figure.low, OPEN if high is None else high, QUALIFIER_CODE[figure.qualifier]))  # fmt: skip
        add_id(event.id)
        add_hash(entry.hash)
    table = np.frombuffer(rows, dtype=np.int64).reshape(-1, 9) if rows else np.empty((0, 9), dtype=np.int64)
    return Skimmed(starts, table, list(keys), first_rows, ids, "".join(hashes), fixes, others)
