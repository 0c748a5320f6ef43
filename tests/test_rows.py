"""The fast ways from CSV rows to their stored JSON agree with the exact way: same bytes, or the same refusal."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from events_log.admission import figure_fields, figure_key
from events_log.codec import unstructure
from events_log.errors import InputError
from events_log.importers import COLUMNS, observation_from_row, row_from_observation
from events_log.rows import RowEncoder
from events_log.spool import _latest_day

from .helpers import obs
from .strategies import observations

# Cells that sit at the edge of some rule: blanks, padding, look-alike digits and dates, control
# characters, over-long text, bounds in the wrong order.
EDGES = [
    "", " ", "\t", "0", "007", "12 ", "1e3", "-1", "1.5", "\u0662", "\u00b2", "9" * 13, "9" * 14, "1000000000001",
    "2025-02-30", "2025-3-01", " 2025-03-01", "2025-03-01", "2031-01-01", "1999-01-01", "\uff12025-03-01",
    "exact", "about", "at_least", "at_most", "range", "Exact", "cumulative", "increment",
    "a", "A b", "a\x01", "x" * 65, "x" * 101, "x" * 501, "x" * 1001, "http://a", "http://a b", "ftp://a", "HTTPS://A",
    "killed", "Killed", "obs-1", "-a", "a:b", "http://", "https://a://", "http://a\x7f", "http://a<b", "hTtp://a",
    "http://a\u00a0b", "https://\u00e9", "a\x1f", "\x7f", "a\x0bb", "a\tb\nc",
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


def _exactly(header):
    def build(label, cells):
        try:
            return observation_from_row(dict(zip(header, cells, strict=True)))
        except InputError as exc:
            raise exc.located(label) from None

    return build


def _stored(observation) -> tuple:
    """What the spool keeps of an observation built the exact way."""
    data = unstructure(observation)
    o = observation
    key = bytes.fromhex(figure_key(data))
    return orjson.dumps(data), o.id, o.incident, o.monitor, key, _latest_day(o), figure_fields(data)


@given(rows())
def test_a_row_encoded_fast_is_stored_as_the_exact_way_stores_it(row):
    """Every row the encoder takes, the exact way takes too, with the same stored bytes, id, key, day and fields."""
    header, cells = row
    exact = _exact(header, cells)
    fast = RowEncoder(header, _exactly(header)).encode(list(cells))
    event("refused" if exact is None else "deferred" if fast is None else "encoded")
    if fast is None:
        return
    assert exact is not None
    assert fast == _stored(exact)


@given(st.lists(rows(), min_size=1, max_size=6), st.permutations(COLUMNS), st.integers(0, 5))
def test_a_block_of_rows_is_stored_or_refused_as_the_exact_way_does_row_by_row(many, header, kept):
    """A block gives each row's stored form as the exact way would, or the refusal of its first bad row."""
    header = list(header[kept:])
    # Each row's cells put under this block's header (a column the row left out is empty).
    outcome = _assert_block_as_exact(header, [[dict(zip(h, c, strict=True)).get(name, "") for name in header]
                                              for h, c in many])  # fmt: skip
    event(outcome)


# Three plain rows: a block of them takes the fast way.
_PLAIN = [row_from_observation(obs(f"plain-{n}", 1 + n, 10 * n)) for n in range(3)]


@pytest.mark.parametrize("column", ["source_url", "source_title", "quote", "note", "location"])
@pytest.mark.parametrize("edge", EDGES)
def test_each_edge_of_a_text_column_is_stored_or_refused_as_the_exact_way_does(column, edge):
    """The column checks of a block (links, control characters: fast ways for ASCII text) take a cell only
    where the exact way takes it, whichever row of the block holds it."""
    for row in range(len(_PLAIN)):
        block = [dict(cells) for cells in _PLAIN]
        block[row][column] = edge
        _assert_block_as_exact(list(COLUMNS), [[cells[name] for name in COLUMNS] for cells in block])


def _assert_block_as_exact(header: list[str], block: list[list[str]]) -> str:
    """Assert the block gives what the exact way gives row by row; say whether that was rows or a refusal."""
    labels = [f"rows.csv:{n + 2}" for n in range(len(block))]
    expected = []
    try:
        for label, cells in zip(labels, block, strict=True):
            expected.append(_stored(_exactly(header)(label, cells)))
    except InputError as exc:
        expected = str(exc)
    try:
        stored = RowEncoder(header, _exactly(header)).encode_rows(labels, [list(cells) for cells in block])
    except InputError as exc:
        got = str(exc)
    else:
        keys = [stored.keys[at : at + 16] for at in range(0, len(stored.keys), 16)]
        columns = (stored.stored, stored.ids, stored.incidents, stored.monitors, keys, stored.days, stored.fields)
        got = list(zip(*columns, strict=True))
        assert [stored.event(n) for n in range(len(stored))] == [
            _exactly(header)(label, cells) for label, cells in zip(labels, block, strict=True)
        ]
    assert got == expected
    return "refused" if isinstance(expected, str) else "stored"


@given(st.lists(observations(), min_size=1, max_size=6), st.booleans())
def test_plainly_valid_rows_are_encoded_fast(batch, with_id):
    """The encoder defers only on what is unusual: rows written from observations take the block's way."""
    block = [row_from_observation(o) | ({} if with_id else {"id": ""}) for o in batch]
    encoder = RowEncoder(list(COLUMNS), _exactly(list(COLUMNS)))
    encoded = encoder._block([list(row.values()) for row in block])
    assert encoded is not None
    assert [e[0] for e in encoded] == [orjson.dumps(unstructure(observation_from_row(row))) for row in block]
