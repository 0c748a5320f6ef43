"""Figures in words as pages show them: ``describe_figure`` and ``rule.wording`` for qualifiers as text.

A large report words two figures per observation (its table's and its
chart's: 1.4 million for 730,000 observations). Making a ``Qualifier`` of
each text and a set of each sum's qualifiers cost more than the words
themselves, and a cache of words missed more often than it saved: running
totals seldom repeat. The tests hold these to the originals for every
qualifier and shape of figure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import NamedTuple

import numpy as np

from timeline.index import OPEN, QUALIFIERS


def figure_words(low: int, high: int | None, qualifier: str) -> str:
    """One published figure in its publisher's words: "at least 803", "at most 300", "about 1,700"."""
    if high is None:
        return f"at least {low:,}"
    if qualifier == "at_most":
        return f"at most {high:,}"
    if qualifier == "about":
        return f"about {low:,}"
    if qualifier == "range":
        return f"{low:,}-{high:,}"
    return f"{low:,}"


def sum_words(low: int, high: int | None, qualifiers: Collection[str]) -> str:
    """The interval ``[low, high]`` summed from figures worded with ``qualifiers``, as ``rule.wording`` says it."""
    if high is None:
        return f"at least {low:,}"
    if low == 0 and "at_most" in qualifiers:
        return f"at most {high:,}"
    if low == high:
        return f"about {low:,}" if "about" in qualifiers else f"{low:,}"
    return f"{low:,}-{high:,}"


class Worded(NamedTuple):
    """The ids of the figures their publishers worded "about", and "at most": all that the words of a
    sum need to know of the figures summed (``sum_words``)."""

    about: frozenset[str]
    at_most: frozenset[str]

    @classmethod
    def of(cls, ids: Iterable[str], qualifier: Callable[[str], str]) -> Worded:
        ids = set(ids)
        return cls(*(frozenset(i for i in ids if qualifier(i) == name) for name in ("about", "at_most")))

    def among(self, ids: Collection[str]) -> list[str]:
        """Which of the two wordings the figures of ``ids`` use."""
        return [name for name, chosen in zip(("about", "at_most"), self, strict=True) if not chosen.isdisjoint(ids)]


def figures_words(lows: np.ndarray, highs: np.ndarray, qualifiers: np.ndarray) -> list[str]:
    """``figure_words`` of whole columns, as the replay's index holds them (``highs`` OPEN where
    open-ended, ``qualifiers`` as positions in ``QUALIFIERS``).

    Each wording is one ``str.format`` mapped over all the figures worded
    so, a loop in C: a page's table words 14,600 figures.
    """
    closed = highs != OPEN
    named = {name: closed & (qualifiers == code) for code, name in enumerate(QUALIFIERS)}
    return _worded(len(lows), (
        (~closed, "at least {:,}", (lows,)),
        (named["at_most"], "at most {:,}", (highs,)),
        (named["about"], "about {:,}", (lows,)),
        (named["range"], "{:,}-{:,}", (lows, highs)),
        (closed & ~named["at_most"] & ~named["about"] & ~named["range"], "{:,}", (lows,)),
    ))  # fmt: skip


def sums_words(lows: np.ndarray, highs: np.ndarray, summed: Sequence[Collection[str]], worded: Worded) -> list[str]:
    """``sum_words`` of whole columns: each interval (``highs`` OPEN where open-ended) summed from the
    figures whose ids ``summed`` holds, as a chart's change points are (one wording, one loop in C)."""
    about, at_most = (~np.fromiter(map(ids.isdisjoint, summed), dtype=bool, count=len(summed)) for ids in worded)
    closed = highs != OPEN
    most = closed & (lows == 0) & at_most
    same = closed & ~most & (lows == highs)
    return _worded(len(lows), (
        (~closed, "at least {:,}", (lows,)),
        (most, "at most {:,}", (highs,)),
        (same & about, "about {:,}", (lows,)),
        (same & ~about, "{:,}", (lows,)),
        (closed & ~most & ~same, "{:,}-{:,}", (lows, highs)),
    ))  # fmt: skip


def _worded(count: int, shapes: Iterable[tuple[np.ndarray, str, tuple[np.ndarray, ...]]]) -> list[str]:
    """``count`` words, each row in the pattern of the one shape that chose it (the shapes never overlap)."""
    words = np.empty(count, dtype=object)
    for chosen, pattern, columns in shapes:
        rows = np.flatnonzero(chosen)
        words[rows] = list(map(pattern.format, *(column[rows].tolist() for column in columns)))
    return words.tolist()
