"""Columns grown in place (``timeline.growing``) never change the rows another array shows."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from timeline.growing import Room

_VALUES = st.lists(st.integers(-(2**31), 2**31 - 1), max_size=12)


@given(
    _VALUES,
    st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(["extend", "copy", "prefix", "reversed", "shifted"]), _VALUES),
        max_size=30,
    ),
)
def test_every_array_keeps_its_rows_whatever_is_grown_from_it(first, steps):
    """Arrays extended from any earlier one, twice from the same, from a prefix, a reversed or a shifted view of one, or
    copied to rewrite its rows: each holds what it held when made (or was rewritten to), and each extension
    holds its column's rows followed by the new ones."""
    room = Room()
    arrays = [(room.copied(np.array(first, dtype=np.int32)), first)]
    for pick, how, more in steps:
        column, expected = arrays[pick % len(arrays)]
        if how == "prefix":
            column, expected = column[: len(column) // 2], expected[: len(expected) // 2]
        elif how == "reversed":
            column, expected = column[::-1], expected[::-1]
        elif how == "shifted" and column.base is not None and len(column.base) > len(column):
            # As many rows as it shows, one further on in the buffer it shows (reached through ``base``).
            column = column.base[1 : len(column) + 1]
            expected = column.tolist()
        grown = room.appended(column, np.array(more, dtype=np.int64 if pick % 3 == 0 else np.int32), copy=how == "copy")
        assert grown.tolist() == expected + more
        if how == "copy":  # as an owner that corrects earlier rows does
            grown[: len(expected)] = -1
            expected = [-1] * len(expected)
        arrays.append((grown, expected + more))
        assert all(array.tolist() == held for array, held in arrays)


def test_only_the_first_extension_of_an_array_takes_its_room():
    room = Room()
    column = room.copied(np.arange(1000, dtype=np.int64))
    first = room.appended(column, np.array([7]))
    second = room.appended(column, np.array([8]))
    assert np.shares_memory(first, column)  # written after it: no copy
    assert not np.shares_memory(second, column)
    assert (first[-1], second[-1]) == (7, 8)
    assert np.shares_memory(room.appended(first, np.array([9])), column)  # and the room passes on to the first


def test_threads_extending_one_array_each_get_their_own_rows():
    room = Room()
    column = room.copied(np.zeros(10_000, dtype=np.int64))
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(8)

    def extend(n: int) -> None:
        start.wait()
        results[n] = room.appended(column, np.full(100, n + 1, dtype=np.int64))

    threads = [threading.Thread(target=extend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(np.shares_memory(grown, column) for grown in results.values()) == 1
    for n, grown in results.items():
        assert not grown[:10_000].any() and (grown[10_000:] == n + 1).all()
