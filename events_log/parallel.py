"""Two processes sharing one long job: this one, and a fork doing the rest of it meanwhile.

A first replay of a million-line log spends most of its time reading lines
(decoding JSON, then a Python step per line) on one core, while the machine
has more; so do the fold of a whole replay's series and the reading of a
long CSV. Each part of such a job needs nothing of the others, so a forked
copy of this process can do the second part while this one does the first.
The fork sends back only what it made (through a temporary file that has
no name), and takes no lock, writes no other file and prints nothing.
Whatever goes wrong in it (an error, a kill, no memory for a fork, a full
disk) is no error here: this process then does that part itself, so the
result never depends on the fork.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import tempfile
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
    pid, read, write, spill = forked
    if pid == 0:
        _send(rest, read, write, spill, parent)
    os.close(write)
    length: int | None = None
    with spill, open(read, "rb") as pipe:
        try:
            if (yield from first()):
                return
            length = _sent(pipe, spill)
        finally:
            if length is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: the system reaped it
                os.waitpid(pid, 0)
        if length is None:  # the fork died: do its part here
            yield from rest()
            return
        spill.seek(0)
        while spill.tell() < length:
            yield pickle.load(spill)


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


def _fork() -> tuple[int, int, int, BinaryIO] | None:
    """A fork, a pipe from it and a file for what it makes (its pid, the read end, the write end, the file),
    or None where none can be made (a system without ``fork``, too little memory or temporary space, or a
    process with other threads)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    try:
        spill = tempfile.TemporaryFile(prefix="timeline-fork-")  # noqa: SIM115 - closed by in_two
    except OSError:
        return None
    try:
        read, write = os.pipe()
    except OSError:
        spill.close()
        return None
    try:
        return os.fork(), read, write, spill
    except OSError:
        os.close(read)
        os.close(write)
        spill.close()
        return None


def _send(rest: Callable[[], Iterator[T]], read: int, write: int, spill: BinaryIO, parent: int) -> None:
    """In the fork: do the rest, into ``spill``, and leave without running any of this process's exit code.

    Each item is pickled into the file as it is made, and freed: what waits
    for this process to be done with its own part is on disk, not in either
    process's memory. Once every one is written, their length goes down the
    pipe: a fork that died on the way sends none, and this process does its
    part itself. It stops as soon as the process it works for is gone
    (killed, say): it holds that process's files, and with them its lock on
    the log.
    """
    status = 1
    try:
        os.close(read)
        pickler = pickle.Pickler(spill, protocol=pickle.HIGHEST_PROTOCOL)
        for item in rest():
            if os.getppid() != parent:
                return
            pickler.dump(item)
            pickler.clear_memo()
        spill.flush()
        with open(write, "wb") as pipe:
            pipe.write(spill.tell().to_bytes(8, "little"))
        status = 0
    finally:
        os._exit(status)


def _sent(pipe: BinaryIO, spill: BinaryIO) -> int | None:
    """How many bytes of pickles the fork wrote, or None if it died first (it said nothing, or less)."""
    head = pipe.read(8)
    if len(head) < 8:
        return None
    length = int.from_bytes(head, "little")
    return length if os.fstat(spill.fileno()).st_size >= length else None
