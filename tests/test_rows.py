"""The fast way from a CSV row to its stored JSON agrees with the exact way: same bytes, or it defers."""

from __future__ import annotations

import orjson
from hypothesis import event, given
from hypothesis import strategies as st

from events_log.admission import figure_key
from events_log.codec import unstructure
from events_log.errors import InputError
from events_log.importers import COLUMNS, observation_from_row, row_from_observation
from events_log.rows import RowEncoder
from events_log.spool import _latest_day

from .strategies import observations

# Cells that sit at the edge of some rule: blanks, padding, look-alike digits and dates, control
# characters, over-long text, bounds in the wrong order.
EDGES = [
    "", " ", "\t", "0", "007", "12 ", "1e3", "-1", "1.5", "\u0662", "\u00b2", "9" * 13, "9" * 14, "1000000000001",
    "2025-02-30", "2025-3-01", " 2025-03-01", "2025-03-01", "2031-01-01", "1999-01-01", "\uff12025-03-01",
    "exact", "about", "at_least", "at_most", "range", "Exact", "cumulative", "increment",
    "a", "A b", "a\x01", "x" * 65, "x" * 101, "x" * 501, "x" * 1001, "http://a", "http://a b", "ftp://a", "HTTPS://A",
    "killed", "Killed", "obs-1", "-a", "a:b",
]  # fmt: skip


@st.composite
def rows(draw) -> tuple[list[str], list[str]]:
    """(header, cells) of a valid row, some of its cells then changed, and some columns left out."""
    row = row_from_observation(draw(observations()))
    for name in draw(st.lists(st.sampled_from(COLUMNS), max_size=4)):
        row[name] = draw(st.sampled_from(EDGES) | st.text(max_size=12) | st.just(row[name] + " "))
    header = [name for name in COLUMNS if name not in draw(st.sets(st.sampled_from(COLUMNS), max_size=2))]
    header = draw(st.permutations(header))
    return header, [row[name] for name in header]


def _exact(header: list[str], cells: list[str]):
    try:
        return observation_from_row(dict(zip(header, cells, strict=True)))
    except InputError:
        return None


@given(rows())
def test_a_row_encoded_fast_is_stored_as_the_exact_way_stores_it(row):
    """Every row the encoder takes, the exact way takes too, with the same stored bytes, id, key and day."""
    header, cells = row
    exact = _exact(header, cells)
    fast = RowEncoder(header).encode(list(cells))
    event("refused" if exact is None else "deferred" if fast is None else "encoded")
    if fast is None:
        return
    assert exact is not None
    data = unstructure(exact)
    assert fast.stored == orjson.dumps(data)
    assert (fast.id, fast.incident, fast.monitor) == (exact.id, exact.incident, exact.monitor)
    assert fast.key == bytes.fromhex(figure_key(data))
    assert fast.day == _latest_day(exact)
    assert fast.event() == exact


@given(observations(), st.booleans())
def test_a_plainly_valid_row_is_encoded_fast(observation, with_id):
    """The encoder defers only on what is unusual: a row written from an observation is never one."""
    row = row_from_observation(observation)
    if not with_id:
        row["id"] = ""
    fast = RowEncoder(list(COLUMNS)).encode(list(row.values()))
    assert fast is not None
    assert fast.stored == orjson.dumps(unstructure(observation_from_row(row)))
