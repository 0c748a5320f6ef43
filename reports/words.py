"""Figures in words as pages show them: ``describe_figure`` and ``rule.wording`` for qualifiers as text.

A large report words two figures per observation (its table's and its
chart's: 1.4 million for 730,000 observations). Making a ``Qualifier`` of
each text and a set of each sum's qualifiers cost more than the words
themselves, and a cache of words missed more often than it saved: running
totals seldom repeat. The tests hold these to the originals for every
qualifier and shape of figure.
"""

from __future__ import annotations

from collections.abc import Collection

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


def figures_words(lows: np.ndarray, highs: np.ndarray, qualifiers: np.ndarray) -> list[str]:
    """``figure_words`` of whole columns, as the replay's index holds them (``highs`` OPEN where
    open-ended, ``qualifiers`` as positions in ``QUALIFIERS``).

    Each wording is one ``str.format`` mapped over all the figures worded
    so, a loop in C: a page's table words 14,600 figures.
    """
    words = np.empty(len(lows), dtype=object)
    closed = highs != OPEN
    named = {name: closed & (qualifiers == code) for code, name in enumerate(QUALIFIERS)}
    shapes = (
        (~closed, "at least {:,}", (lows,)),
        (named["at_most"], "at most {:,}", (highs,)),
        (named["about"], "about {:,}", (lows,)),
        (named["range"], "{:,}-{:,}", (lows, highs)),
        (closed & ~named["at_most"] & ~named["about"] & ~named["range"], "{:,}", (lows,)),
    )
    for chosen, pattern, columns in shapes:
        rows = np.flatnonzero(chosen)
        words[rows] = list(map(pattern.format, *(column[rows].tolist() for column in columns)))
    return words.tolist()
