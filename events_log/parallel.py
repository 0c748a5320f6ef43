"""Two processes sharing one long job: this one, and a fork doing the rest of it meanwhile.

A first replay of a million-line log spends most of its time reading lines
(decoding JSON, then a Python step per line) on one core, while the machine
has more; so do the fold of a whole replay's series and the reading of a
long CSV. Each part of such a job needs nothing of the others, so a forked
copy of this process can do the second part while this one does the first.
The fork sends back only what it made, and takes no lock, writes no file
and prints nothing. Whatever goes wrong in it (an error, a kill, no memory
for a fork) is no error here: this process then does that part itself, so
the result never depends on the fork.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

T = TypeVar("T")


def in_two(first: Callable[[], Iterator[T]], rest: Callable[[], Iterator[T]]) -> Iterator[T]:
    """What ``first()`` yields, then what ``rest()`` yields, ``rest`` running in a forked process meanwhile.

    ``first`` may return True: it read on through what ``rest`` reads (a
    CSV row that ran across where the parts meet), so that is not wanted.
    Only a process with a single thread forks: a fork copies none of the
    others, and could find a lock one of them held taken for ever.
    """
    parent, forked = os.getpid(), _fork()
    if forked is None:
        if not (yield from first()):
            yield from rest()
        return
    pid, read, write = forked
    if pid == 0:
        _send(rest, read, write, parent)
    os.close(write)
    received: bytes | None = None
    with open(read, "rb") as pipe:
        try:
            if (yield from first()):
                return
            received = _received(pipe)
        finally:
            if received is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: the system reaped it
                os.waitpid(pid, 0)
    if received is None:  # the fork died: do its part here
        yield from rest()
        return
    items = io.BytesIO(received)
    while items.tell() < len(received):
        yield pickle.load(items)


def line_start_after(fd: int, at: int, end: int) -> int:
    """Where the first line starting after byte ``at`` of a file starts (``end`` if none does before it)."""
    while at < end:
        chunk = os.pread(fd, min(_CHUNK, end - at), at)
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            return at + newline + 1
        at += len(chunk)
    return end


_CHUNK = 1 << 18


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
    """In the fork: do the rest, send it down the pipe, and leave without running any of this process's exit code.

    Each item is pickled as it is made, and freed: only their pickles wait,
    for this process to be done with its own part. They go whole, after
    their length, so that a part cut short is told from a whole one. It
    stops as soon as the process it works for is gone (killed, say): it
    holds that process's files, and with them its lock on the log.
    """
    status = 1
    try:
        os.close(read)
        made = io.BytesIO()
        pickler = pickle.Pickler(made, protocol=pickle.HIGHEST_PROTOCOL)
        for item in rest():
            if os.getppid() != parent:
                return
            pickler.dump(item)
            pickler.clear_memo()
        with open(write, "wb") as pipe:
            pipe.write(made.getbuffer().nbytes.to_bytes(8, "little"))
            pipe.write(made.getbuffer())
        status = 0
    finally:
        os._exit(status)


def _received(pipe: BinaryIO) -> bytes | None:
    """The pickles a fork sent, or None if it sent less than it said (it died)."""
    head = pipe.read(8)
    if len(head) < 8:
        return None
    length = int.from_bytes(head, "little")
    data = pipe.read(length)
    return data if len(data) == length else None
