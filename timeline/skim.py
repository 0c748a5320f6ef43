"""What the replay index reads of a stored observation, decoded without the rest of its line.

An observation's line carries its source, quote and hashes; the index keeps
only its envelope's position, time and hash, and the event's id, series,
day, kind and figure. msgspec decodes a line into these structs in C,
skipping every other field without building it, about twice as fast as
decoding the whole line into dicts.

The structs ask at least what the exact path (``RawEntry``, then
``IndexBuilder.add``) asks of the fields the index keeps, with the types
that path stores: counts from 0 to ``MAX_COUNT``, a known kind and
qualifier, a calendar date. A line they refuse, or one of an older schema
(which must be upcast first), goes through the exact path, which takes or
refuses it, naming its position. What a struct cannot say (a figure's
bounds agree with its qualifier) the index checks a block at a time
(``index._check_figures``), refusing as the exact path would.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from events_log.envelope import RawEntry
from events_log.events import MAX_COUNT, Kind, Qualifier

# A count as ``events._count`` takes it: msgspec refuses a bool, a float or text for an int by itself.
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class SkimFigure(msgspec.Struct, gc=False):
    low: Count
    high: Count | None  # None: open-ended
    qualifier: Qualifier


class SkimObservation(msgspec.Struct, gc=False):
    id: str
    incident: str
    monitor: str
    measure: str
    category: str
    reported_on: dt.date  # YYYY-MM-DD and a real day, as ``codec.parse_date`` asks
    kind: Kind
    figure: SkimFigure
    location: str | None = None


# An observation's envelope: exactly the fields ``RawEntry`` requires (made from its own, so the two
# cannot drift apart), so that a line it refuses is refused here; only the event is skimmed.
SkimEntry = msgspec.defstruct(
    "SkimEntry",
    [(f.name, SkimObservation if f.name == "event" else f.type) for f in msgspec.structs.fields(RawEntry)],
    gc=False,
)


_decode = msgspec.json.Decoder(SkimEntry).decode


def skim(line: bytes) -> msgspec.Struct | None:
    """The parts of an observation's line the index keeps, or None if the line is not one this can read."""
    try:
        return _decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None
