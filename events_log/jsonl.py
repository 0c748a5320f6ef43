"""The JSON Lines file store: the embedded default, readable and diff-able.

Writers take an exclusive ``flock`` on the log file, check its tail, write
the whole batch, ``fsync`` and unlock; readers take a shared lock only long
enough to find where the acknowledged entries end, then stream without it.
``flock`` locks die with their process, so a crashed writer never leaves
the log locked.

A crash mid-write leaves a torn tail: bytes after the last newline, and any
complete lines of a batch whose last line never arrived. Readers ignore the
torn tail (with a warning from the command line); appends refuse until
``repair`` moves those bytes to a quarantine file beside the log. No
complete, acknowledged entry is ever dropped or rewritten.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

from .admission import IdIndex, subject_id
from .envelope import RawEntry, decode_line
from .errors import InputError, LogError, StoreError, TornLogError
from .store import Clock, Encoder, LogHead, Store, TornTail, utc_now

_BLOCK = 1 << 18


@attrs.frozen
class _Tail:
    """Where acknowledged entries end in the file, and the last of them."""

    end: int
    size: int
    last: RawEntry | None
    unfinished: int  # complete lines of an unfinished batch after ``end``

    @property
    def torn(self) -> TornTail | None:
        if self.end == self.size:
            return None
        return TornTail(offset=self.end, size=self.size - self.end, entries=self.unfinished)


@attrs.frozen
class Repaired:
    """What ``repair`` moved aside."""

    quarantine: Path
    torn: TornTail


class JsonlStore(Store):
    def __init__(
        self, path: str | os.PathLike, *, read_only: bool = False, clock: Clock = utc_now, lock_timeout: float = 300
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.location = str(path)
        self.read_only = read_only
        self.clock = clock

    # -- reading ---------------------------------------------------------

    def lines(self, start: int = 0) -> Iterator[bytes]:
        with self._open(write=False) as fd:
            if fd is None:
                return
            with self._locked(fd, fcntl.LOCK_SH):
                tail = _read_tail(fd, self.location)
            yield from _stream_lines(fd, tail.end, start, self.location)

    def head(self) -> LogHead:
        return LogHead.of(self._tail(strict=True).last)

    def torn(self) -> TornTail | None:
        return self._tail(strict=False).torn

    def _tail(self, *, strict: bool) -> _Tail:
        with self._open(write=False) as fd:
            if fd is None:
                return _Tail(0, 0, None, 0)
            with self._locked(fd, fcntl.LOCK_SH):
                return _read_tail(fd, self.location, strict=strict)

    # -- writing ---------------------------------------------------------

    def _append_lines(self, subjects: Collection[str], encode: Encoder) -> None:
        with self._open(write=True) as fd, self._locked(fd, fcntl.LOCK_EX):
            tail = self._whole_tail(fd)
            known = IdIndex()
            for line in _stream_lines(fd, tail.end, 0, self.location):
                raw = _decode(line, self.location, None)
                known.add(raw.type, subject_id(raw.type, raw.event))
            data = b"".join(line + b"\n" for line in encode(tail.last, self.now(), known))
            _write_all(fd, data, tail.end, self.location)

    def _append_stored(self, lines: Sequence[bytes], after: LogHead) -> None:
        with self._open(write=True) as fd, self._locked(fd, fcntl.LOCK_EX):
            tail = self._whole_tail(fd)
            if LogHead.of(tail.last) != after:
                raise LogError(f"{self.location} changed while being written; run the command again")
            _write_all(fd, b"".join(line + b"\n" for line in lines), tail.end, self.location)

    def _whole_tail(self, fd: int) -> _Tail:
        """The tail of a log a writer may extend: readable, and not torn."""
        tail = _read_tail(fd, self.location, strict=True)
        if tail.torn is not None:
            raise TornLogError(
                f"{self.location} ends in an incomplete write ({tail.torn.size} bytes at byte "
                f"{tail.torn.offset}); run `timeline repair --log {self.location}` first"
            )
        return tail

    def repair(self) -> Repaired | None:
        """Move a torn tail into ``<log>.quarantine-<n>`` and cut it from the log; None if whole."""
        with self._open(write=True) as fd, self._locked(fd, fcntl.LOCK_EX):
            tail = _read_tail(fd, self.location, strict=True)
            torn = tail.torn
            if torn is None:
                return None
            os.lseek(fd, torn.offset, os.SEEK_SET)
            data = _read_exactly(fd, torn.size)
            quarantine = _free_name(self.path)
            # Keep the bytes durable beside the log before they leave it.
            with open(quarantine, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            _fsync_dir(self.path.parent)
            os.ftruncate(fd, torn.offset)
            os.fsync(fd)
            return Repaired(quarantine, torn)

    # -- the file --------------------------------------------------------

    def _locked(self, fd: int, mode: int):
        return _locked(fd, mode, self.location, self.lock_timeout)

    @contextmanager
    def _open(self, *, write: bool) -> Iterator[int | None]:
        """The log's file descriptor; None when reading a log that does not exist yet."""
        if self.path.is_dir():
            raise StoreError(f"{self.location} is a directory, not a log file")
        created = write and not self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT if write else os.O_RDONLY, 0o644)
        except FileNotFoundError:
            if write:
                raise StoreError(f"cannot create {self.location}: its folder does not exist") from None
            yield None
            return
        except PermissionError:
            what = "write to" if write else "read"
            raise StoreError(f"cannot {what} {self.location}: permission denied") from None
        except OSError as exc:
            raise StoreError(f"cannot open {self.location}: {exc.strerror}") from None
        try:
            if created:
                _fsync_dir(self.path.parent)
            yield fd
        finally:
            os.close(fd)


@contextmanager
def _locked(fd: int, mode: int, location: str, timeout: float) -> Iterator[None]:
    """Hold ``flock`` ``mode`` on the log, waiting at most ``timeout`` seconds for other writers."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{location} stayed locked by another writer for {timeout:g} s; "
                    "is an import still running? (a crashed writer never holds the lock)"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _write_all(fd: int, data: bytes, offset: int, location: str) -> None:
    """Write ``data`` at ``offset`` and make it durable, or leave the file as it was."""
    try:
        view = memoryview(data)
        written = 0
        while written < len(data):
            written += os.pwrite(fd, view[written:], offset + written)
        # The append is acknowledged only once the bytes are on disk.
        os.fsync(fd)
    except OSError as exc:
        # A batch lands whole or not at all: cut back whatever part was written.
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        except OSError:
            pass
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
        raise StoreError(f"cannot write to {location}: {reason}; nothing was appended") from None


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, _BLOCK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_tail(fd: int, location: str, *, strict: bool = False) -> _Tail:
    """Find the end of the acknowledged entries by reading backwards from the end.

    A last line that cannot be decoded is damage, not a torn write: writers
    (``strict``) refuse to go on; readers stream up to it, so that the chain
    check downstream names its position.
    """
    size = os.fstat(fd).st_size
    lines = _lines_backwards(fd, size)
    first = next(lines, None)
    if first is None:
        return _Tail(0, size, None, 0)
    start, line = first
    end = start + len(line) + 1
    try:
        last = _decode(line, location, start)
    except StoreError:
        if strict:
            raise
        return _Tail(end, size, None, 0)
    if last.position == last.batch_end:
        return _Tail(end, size, last, 0)
    # The last batch never finished: its lines are torn too.
    unfinished = 1
    for start, line in lines:
        raw = _decode(line, location, start)
        if raw.batch_end != last.batch_end:
            return _Tail(start + len(line) + 1, size, raw, unfinished)
        unfinished += 1
    return _Tail(0, size, None, unfinished)


def _decode(line: bytes, location: str, offset: int | None) -> RawEntry:
    try:
        return decode_line(line)
    except InputError as exc:
        where = f" at byte {offset}" if offset is not None else ""
        raise StoreError(f"{location}: an entry{where} is unreadable ({exc}); run `timeline verify`") from None


def _lines_backwards(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """Complete (newline-ended) lines from the end of the file: (offset, bytes without newline)."""
    pos = size
    buffer = b""
    cut: int | None = None  # offset of the end of the complete region
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        buffer = _read_exactly(fd, step) + buffer
        if cut is None:
            newline = buffer.rfind(b"\n")
            if newline < 0:
                continue
            cut = pos + newline
            buffer = buffer[:newline]
        while True:
            newline = buffer.rfind(b"\n")
            if newline < 0:
                break
            yield pos + newline + 1, buffer[newline + 1 :]
            buffer = buffer[:newline]
    if cut is not None:
        yield 0, buffer


def _stream_lines(fd: int, end: int, start: int, location: str) -> Iterator[bytes]:
    """Lines up to byte ``end``, skipping the first ``start`` of them."""
    offset, carry, index = 0, b"", 0
    while offset < end:
        chunk = os.pread(fd, min(_BLOCK, end - offset), offset)
        if not chunk:
            raise StoreError(f"{location} shrank while being read")
        offset += len(chunk)
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        for line in parts:
            if index >= start:
                yield line
            index += 1
    if carry:
        raise StoreError(f"{location}: the acknowledged part does not end in a newline")


def _free_name(path: Path) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.name}.quarantine-{n}")).exists():
        n += 1
    return candidate


def _fsync_dir(folder: Path) -> None:
    """Make a file's creation itself durable, not only its bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
