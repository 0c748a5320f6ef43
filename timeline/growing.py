"""Columns that grow at their end without copying the rows they hold.

A log grows only at its end, and what is kept of it in memory grows with it:
the replay index's columns and a warm replay's corrected columns take the
rows of each append. Copying a million rows to add a thousand was most of
the time of a replay after an append (mostly the page faults of a fresh
copy). So a column is made with room after its rows, and the next rows are
written into that room.

Nothing ever writes to rows another array may show. The room after a
column goes to the first array extended from it; an older array (the index
a replay a caller still holds was read at) keeps its own rows, which are
never written again, and a second extension from it copies instead.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np


class Room:
    """The columns one owner grows: it writes only into buffers it made, and only after their rows taken."""

    def __init__(self) -> None:
        self._taken: dict[int, int] = {}  # id of a buffer made here -> how many of its rows an array shows
        self._lock = threading.Lock()

    def appended(self, column: np.ndarray, more: np.ndarray, *, copy: bool = False) -> np.ndarray:
        """``column`` followed by ``more``, written after it where it has room no other array took.

        ``copy``: in a new buffer whatever the room, for an owner about to
        rewrite some of ``column``'s rows.
        """
        rows, total = len(column), len(column) + len(more)
        buffer = column.base
        with self._lock:
            grows = (
                not copy
                and buffer is not None
                and self._taken.get(id(buffer)) == rows
                and column.ctypes.data == buffer.ctypes.data  # its first rows, in order
                and column.strides == buffer.strides
                and len(buffer) >= total
                and np.can_cast(more.dtype, buffer.dtype)
            )
            if grows:
                self._taken[id(buffer)] = total
        if not grows:
            buffer = self._made(total, np.result_type(column, more))
            buffer[:rows] = column
        buffer[rows:total] = more
        return buffer[:total]

    def taken(self, buffer: np.ndarray, rows: int) -> np.ndarray:
        """The first ``rows`` of ``buffer``, made elsewhere with room after them: grown here from now on."""
        with self._lock:
            self._taken[id(buffer)] = rows
        weakref.finalize(buffer, self._forget, id(buffer))
        return buffer[:rows]

    def copied(self, column: np.ndarray) -> np.ndarray:
        """A copy of ``column`` with room after it, for an owner that rewrites some of its rows."""
        return self.appended(column, column[:0], copy=True)

    def _made(self, rows: int, dtype: np.dtype) -> np.ndarray:
        # An eighth more: a thousand rows appended at a time fill a million rows' room after 125 appends.
        buffer = np.empty(rows + rows // 8, dtype)
        self.taken(buffer, rows)
        return buffer

    def _forget(self, buffer_id: int) -> None:
        with self._lock:
            del self._taken[buffer_id]
