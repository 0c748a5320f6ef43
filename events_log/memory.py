"""Memory freed by one phase of a large job, handed back to the system before the next.

An import reads its file, admits and writes its batch, then replays the
log. Each phase frees what it held, but glibc's allocator keeps freed
memory for reuse, and having seen large blocks freed it raises the size
from which it maps a block on its own (up to 32 MB), so that the arrays of
the next phase come from a heap full of holes. The next phase then starts
on top of everything the earlier ones held, and its peak adds to theirs.
Handing the free memory back and fixing that size again lets the replay an
import keeps allocate as a fresh process would. Elsewhere than glibc, this
does nothing.
"""

from __future__ import annotations

import ctypes
import functools

_M_MMAP_THRESHOLD = -3  # mallopt's parameter, from glibc's malloc.h
_MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value


def give_back_freed() -> None:
    """Hand the allocator's free memory back to the system, and map large blocks on their own from now on."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        # The process's own symbols, the C library's among them: ``ctypes.util.find_library`` would run
        # ``ldconfig -p`` in a subprocess, from a process of hundreds of megabytes.
        libc = ctypes.CDLL(None)
        libc.malloc_trim, libc.mallopt  # noqa: B018 - glibc's alone
    except (OSError, AttributeError):  # no C library to load, or not glibc
        return None
    return libc
