"""Two processes reading one long stretch of a log: this one, and a fork reading the rest meanwhile.

A first replay of a million-line log spends most of its time reading lines
(decoding JSON, then a Python step per line) on one core, while the machine
has more. A projection's ``read_lines`` needs nothing of the log around the
lines, so a forked copy of this process can read the second part of the
stretch while this one reads and takes in the first. The fork sends back
only what it read, and takes no lock, writes no file and prints nothing.
Whatever goes wrong in it (an error, a kill, no memory for a fork) is no
error here: this process then reads that part itself, so the result never
depends on the fork.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def in_two(first: Callable[[], Iterator[T]], rest: Callable[[], Iterator[T]]) -> Iterator[T]:
    """What ``first()`` yields, then what ``rest()`` yields, ``rest`` running in a forked process meanwhile.

    Only a process with a single thread forks: a fork copies none of the
    others, and could find a lock one of them held taken for ever.
    """
    parent, forked = os.getpid(), _fork()
    if forked is None:
        yield from first()
        yield from rest()
        return
    pid, read, write = forked
    if pid == 0:
        _send(rest, read, write, parent)
    os.close(write)
    received: list[T] | None = None
    with open(read, "rb") as pipe:
        try:
            yield from first()
            received = pickle.load(pipe)
        except (EOFError, pickle.UnpicklingError):
            pass  # the fork died: read its part here
        finally:
            if received is None:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    yield from received if received is not None else rest()


def _fork() -> tuple[int, int, int] | None:
    """A fork and a pipe from it (its pid, the read end, the write end), or None where none can be made
    (a system without ``fork``, too little memory, or a process with other threads)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    try:
        read, write = os.pipe()
    except OSError:
        return None
    try:
        return os.fork(), read, write
    except OSError:
        os.close(read)
        os.close(write)
        return None


def _send(rest: Callable[[], Iterator[T]], read: int, write: int, parent: int) -> None:
    """In the fork: read the rest, send it down the pipe, and leave without running any of this process's exit code.

    It stops as soon as the process it reads for is gone (killed, say): it
    holds that process's files, and with them its lock on the log.
    """
    status = 1
    try:
        os.close(read)
        items = []
        for item in rest():
            if os.getppid() != parent:
                return
            items.append(item)
        # Pickled whole before any of it is sent: this process waits for the pipe to be read only once
        # its own work is done, so none of that work is left for the time this process waits.
        data = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        del items
        with open(write, "wb") as pipe:
            pipe.write(data)
        status = 0
    finally:
        os._exit(status)
