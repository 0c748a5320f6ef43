"""A pause of Python's cycle collector for work that builds millions of small objects.

Events, entries and replay's values hold no reference cycles (reference
counting frees them), but every burst of allocations sets off collections
that walk every object the process holds: a tenth or more of the time of
reading a large file, admitting its batch or replaying a log. The collector
is back on, as it was, when the work is done.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
