"""Two processes sharing one long job: this one, and a fork doing the rest of it meanwhile.

A first replay of a million-line log spends most of its time reading lines
(decoding JSON, then a Python step per line) on one core, while the machine
has more; so do the fold of a whole replay's series, the reading of a long
CSV and the making of an import's lines. Each part of such a job needs
nothing of the others, so a forked copy of this process can do the second
part while this one does the first.
The fork sends back only what it made (through a temporary file that has
no name), and takes no lock, writes no other file and prints nothing.
Whatever goes wrong in it (an error, a kill, no memory for a fork, a full
disk) is no error here: this process then does that part itself, so the
result never depends on the fork.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")


def in_two(first: Callable[[], Iterator[T]], rest: Callable[[], Iterator[T]], room: int = 0) -> Iterator[T]:
    """What ``first()`` yields, then what ``rest()`` yields, ``rest`` running in a forked process meanwhile.

    ``first`` may return True: it read on through what ``rest`` reads (a
    CSV row that ran across where the parts meet), so that is not wanted.
    What the fork has sent is taken as soon as ``first`` is done, while it
    makes the rest, so the two can share the work unevenly: this process,
    which takes everything in, does the smaller part. Only a process with a
    single thread forks: a fork copies none of the others, and could find a
    lock one of them held taken for ever. ``room``: the bytes the
    temporary folder must have free for the fork to be made (what it sends
    waits there, and must not take the room the job itself needs).
    """
    parent, forked = os.getpid(), _fork(room)
    if forked is None:
        if not (yield from first()):
            yield from rest()
        return
    pid, read, write, spill, mask = forked
    if pid == 0:
        _send(rest, read, write, spill, parent, mask)
    taken, sent = 0, None
    try:
        os.close(write)
        with spill, open(read, "rb") as pipe:
            sent = _Sent(pipe, spill)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # from here, an interrupt ends the fork too
            if (yield from first()):
                return
            for item in sent:
                yield item
                taken += 1
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if sent is None or not sent.whole:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: the system reaped it
            os.waitpid(pid, 0)
    if not sent.whole:  # the fork died: do here what it did not send
        yield from itertools.islice(rest(), taken, None)


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


def whole_lines(fd: int, offset: int, end: int, size: int) -> tuple[list[bytes], int]:
    """The whole lines (without their line feeds) that one read of a file from ``offset``, where a line starts,
    holds before ``end``, and where the line the read ends in starts: the next read starts there.

    The part of a line a read ends in is read again by the next, never
    joined to it (joining copied every read: reading an 800 MB log took 0.8
    to 1.2 s of CPU instead of 0.5). A read of ``size`` bytes that holds no
    whole line is made longer; the lines are none where no line ends before
    ``end`` (the file's last line has no line feed, or the file is shorter).
    """
    while True:
        wanted = min(size, end - offset)
        chunk = os.pread(fd, wanted, offset)
        lines = chunk.split(b"\n")
        cut = lines.pop()  # the start of the line the read ended in (empty where it ended with one)
        if lines or len(chunk) < wanted or wanted == end - offset:
            return lines, offset + len(chunk) - len(cut)
        size *= 2


def _fork(room: int) -> tuple[int, int, int, BinaryIO, set[signal.Signals]] | None:
    """A fork, a pipe from it and a file for what it makes (its pid, the read end, the write end, the file,
    and the signal mask to restore), or None where none can be made (a system without ``fork``, too little
    memory, temporary space or less than ``room`` bytes free beside the file, or a process with other threads).

    Both processes return with every signal held back: one handled before
    each is ready for it (a Ctrl-C) would run this process's code in the
    fork, or leave the fork waited for by nobody.
    """
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    try:
        spill = tempfile.TemporaryFile(prefix="timeline-fork-")  # noqa: SIM115 - closed by in_two
    except OSError:
        return None
    if room:
        free = os.fstatvfs(spill.fileno())
        if free.f_bavail * free.f_frsize < room:
            spill.close()
            return None
    try:
        read, write = os.pipe()
    except OSError:
        spill.close()
        return None
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        return os.fork(), read, write, spill, mask
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read)
        os.close(write)
        spill.close()
        return None


def _send(
    rest: Callable[[], Iterator[T]], read: int, write: int, spill: BinaryIO, parent: int, mask: set[signal.Signals]
) -> None:
    """In the fork: do the rest, into ``spill``, and leave without running any of this process's exit code.

    Each item is pickled into the file as it is made, and freed: what waits
    for this process to take it is on disk, not in either process's memory.
    After each, how many bytes of whole items the file holds goes down the
    pipe, if the pipe has room (a later count says it too); once every item
    is written, the last count is marked as the end. A fork that died on
    the way sends no end, and this process does what it did not send. It
    stops as soon as the process it works for is gone (killed, say): it
    holds that process's files, and with them its lock on the log.
    """
    status = 1
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read)
        os.set_blocking(write, False)
        pickler = pickle.Pickler(spill, protocol=pickle.HIGHEST_PROTOCOL)
        for item in rest():
            if os.getppid() != parent:
                return
            pickler.dump(item)
            pickler.clear_memo()
            spill.flush()
            with contextlib.suppress(BlockingIOError):  # a message is shorter than PIPE_BUF: all or none of it
                os.write(write, _MORE + spill.tell().to_bytes(8, "little"))
        spill.flush()
        os.set_blocking(write, True)
        os.write(write, _END + spill.tell().to_bytes(8, "little"))
        status = 0
    finally:
        os._exit(status)


_MORE, _END = b"+", b"."


class _Sent:
    """The items a fork sends, as it sends them; ``whole`` once it said it sent every one.

    Iteration stops early if the fork died first: it says no more, or
    names bytes it never wrote.
    """

    def __init__(self, pipe: BinaryIO, spill: BinaryIO) -> None:
        self.pipe, self.fd, self.whole = pipe, spill.fileno(), False

    def __iter__(self) -> Iterator[Any]:
        written = _Written(self.fd)
        file = io.BufferedReader(written, _READ)
        while len(message := self.pipe.read(9)) == 9:
            written.limit = int.from_bytes(message[1:], "little")
            if os.fstat(self.fd).st_size < written.limit:
                return
            while file.tell() < written.limit:
                yield pickle.load(file)
            if message[:1] == _END:
                self.whole = True
                return


_READ = 1 << 20


class _Written(io.RawIOBase):
    """The fork's file, read up to ``limit`` (what it said it wrote) at an offset of its own: the file's own
    offset is shared with the fork, which is still writing at it."""

    def __init__(self, fd: int) -> None:
        self.fd, self.at, self.limit = fd, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # for the buffer's ``tell``
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.at = {os.SEEK_SET: 0, os.SEEK_CUR: self.at}[whence] + offset
        return self.at

    def tell(self) -> int:
        return self.at

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self.fd, min(len(buffer), self.limit - self.at), self.at)
        buffer[: len(data)] = data
        self.at += len(data)
        return len(data)
