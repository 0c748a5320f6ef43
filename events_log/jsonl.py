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

import contextlib
import errno
import fcntl
import functools
import glob
import itertools
import os
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from .admission import Names
from .envelope import RawEntry, decode_line
from .errors import IndexMismatchWarning, InputError, LogChangedError, StoreError, TornLogError, UnreadableEntryError
from .known import KNOWN
from .parallel import in_two, line_start_after, whole_lines
from .projection import (
    Block,
    Decode,
    Folding,
    Part,
    Projection,
    Read,
    State,
    Unread,
    bodies,
    extend,
    extend_lines,
    extend_read,
    frame,
    unframe,
)
from .spool import SpooledLines
from .store import (
    ChainCheck,
    Clock,
    Encoder,
    LogHead,
    Progress,
    Repaired,
    Store,
    TornTail,
    Verified,
    check_log_file,
    in_pieces,
    naming_entries,
    run_checks,
    utc_now,
)

_BLOCK = 1 << 18
# A stretch of the log at least this long is read by two processes (``JsonlStore._extended``), a window
# at a time, this one taking the first share of each: under half, as it also takes in what the other read
# (as the other sends it, once its own share is read: ``parallel.in_two``). Of 0.38 to 0.50, the share that
# made the first replay of the bench's two 1M logs (with fixes, and without) quickest, once fixes were skimmed.
IN_TWO_BYTES = 32 << 20
IN_TWO_WINDOW = 1 << 30
_FIRST_SHARE = 0.44
# ``verify`` checks a long log's lines the same way, in smaller windows (a fork that finds a bad line leaves
# this process at most a window to redo). Each process checks lines at the same cost, and this one also
# rebuilds the index of ids and names from every line (``_verify_chain``): the shares that kept both busy for
# as long on the bench's 1M log (CPU 15.6 s here, 14.8 s in the fork).
VERIFY_WINDOW = 128 << 20
_VERIFY_SHARE = 0.42
_WRITE_LINES = 4096
_COUNTED = 1 << 24  # bytes read at a time to count the lines before one that does not decode


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
class _Sidecar:
    """A projection as read from its sidecar: which bytes of the file hold, and which blocks are new."""

    state: State
    kept: int
    new: list[Any]
    size: int
    # Whole blocks of the sidecar that no longer matched the log (it was edited, or rewritten).
    dropped: int = 0
    # Bytes after its whole blocks that could not be read (a torn write, or damage).
    unread: Unread | None = None


class _Rebuilt:
    """A projection rebuilt from the log's first ``entries``, as ``verify`` reads the log for its chain.

    The lines this process checks are folded as they are decoded; those a
    fork checks are read as a reader reads them (``read_lines``, which leaves
    every unusual line to the exact way), before they are checked. A line
    that does not fold leaves the comparison to the exact way (``state`` is
    None), which reads the log once more after the whole chain has been
    checked, and so names what one process names.
    """

    def __init__(self, projection: Projection, entries: int) -> None:
        self.entries = entries
        self._start = projection.load([])
        self._folding: Folding | None = Folding(self._start)
        self._folded = 0

    def add(self, raw: RawEntry, start: int, end: int) -> None:
        if self._folding is not None and self._folded < self.entries:
            try:
                self._folding.add(raw, start, end)
            except Exception:  # any line that does not fold is left to the exact way
                self._folding = None
            self._folded += 1

    def add_runs(self, runs: Iterator[Any], decode: Decode) -> None:
        """Fold runs of lines read by the projection's ``read_lines`` as they come, up to its ``entries``."""
        try:
            for run in runs:
                if self._folding is None or self._folded >= self.entries:
                    return
                if self._folded + len(run) > self.entries:
                    run = run.part(0, self.entries - self._folded)
                self._folding.add_run(run, decode)
                self._folded += len(run)
        except Exception:  # any line that does not fold, or does not decode, is left to the exact way
            self._folding = None

    def state(self) -> State | None:
        """The projection rebuilt, or None if a line did not fold."""
        if self._folding is None:
            return None
        return self._start.extended(self._folding.done(), self._folding.builder)


class _Spill:
    """The new blocks of one projection during an append, framed into an unlinked temporary file.

    An import of millions of rows cuts dozens of blocks before its lines are
    durable; held in memory, they were most of its peak. A spill that cannot
    be written (a full ``TMPDIR``) gives up quietly: the append goes on, and
    the next reader parses what the sidecar lacks.
    """

    def __init__(self, projection: Projection) -> None:
        self._projection = projection
        self._file: BinaryIO | None = None
        self._broken = False

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()

    def take(self, blocks: list[Any]) -> None:
        """Frame ``blocks`` into the file, and empty the list."""
        try:
            if not self._broken:
                if self._file is None:
                    self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
                for block in blocks:
                    self._file.write(frame(self._projection.encode(block)))
        except OSError:
            self._broken = True
        blocks.clear()

    def copy_to(self, out: BinaryIO) -> None:
        """Append the spilled blocks to ``out``, if every one of them was spilled."""
        if self._file is None or self._broken:
            return
        self._file.seek(0)
        shutil.copyfileobj(self._file, out, 1 << 20)


class JsonlStore(Store):
    """A log in one JSON Lines file; each projection it keeps lives beside it, in ``<log>.<name>``."""

    can_tear = True

    def __init__(
        self, path: str | os.PathLike, *, read_only: bool = False, clock: Clock = utc_now, lock_timeout: float = 300
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._reader: int | None = None
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
            for number, (_, line) in enumerate(_stream_lines(fd, 0, tail.end, self.location)):
                if number >= start:
                    yield line

    def exists(self) -> bool:
        return self.path.exists()  # a folder is not a log, but reading says so (exit 1)

    def head(self) -> LogHead:
        return LogHead.of(self._tail(strict=True).last)

    def torn(self) -> TornTail | None:
        return self._tail(strict=False).torn

    def line_at(self, position: int, offset: int = -1) -> bytes:
        if offset < 0:
            return super().line_at(position)
        if self._reader is None:
            # Kept open: pages read thousands of single lines (closed by close()).
            self._reader = os.open(self.path, os.O_RDONLY)
        return _line_from(self._reader, offset, self.location)

    def close(self) -> None:
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None

    def names(self) -> Names:
        return self.projection(KNOWN).names()

    @naming_entries
    def projection(self, projection: Projection, since: State | None = None) -> State:
        """``projection`` from its sidecar file, checked against the log and brought up to date.

        The sidecar is trusted only as far as its last block still ends, in the
        log, with the line whose hash it recorded; past that, the log is parsed
        (and what was parsed is saved, if no writer is busy). With ``since``
        (a state read earlier), only what was appended after it is read, if
        the log still ends where it did and the sidecar is the one it came from.
        """
        with self._open(write=False) as fd:
            if fd is None:
                return projection.load([])
            with self._locked(fd, fcntl.LOCK_SH):
                tail = _read_tail(fd, self.location, strict=True)
                if (
                    since is not None
                    and 0 < since.end_offset <= tail.end
                    and since.origin == self._sidecar_origin(projection)
                    and _line_ends_with(fd, since.end_offset, since.last_hash)
                ):
                    return self._extended(fd, since, projection, tail.end)[0]
                sidecar = self._read_sidecar(fd, tail, projection)
            self._warn_passed_over(projection, sidecar)
            if sidecar.new and not self.read_only:
                self._save_sidecar(fd, projection, sidecar)
        sidecar.state.origin = self._sidecar_origin(projection)
        return sidecar.state

    def partial_blocks(
        self, projection: Projection, read: Callable[[Read], tuple[Block, Part]]
    ) -> list[tuple[Block, Part]] | None:
        """What ``read`` takes of each block of the sidecar, checked against the log as ``projection`` checks them.

        Nothing is parsed or written: where the sidecar does not reach the
        log's head, or does not match it, or cannot be read, this says None
        and the caller reads the projection whole, which rebuilds it.
        """
        with self._open(write=False) as fd:
            if fd is None:
                return None
            with self._locked(fd, fcntl.LOCK_SH):
                tail = _read_tail(fd, self.location, strict=True)
                found: list[tuple[Block, Part]] = []
                position = 0
                try:
                    with _opened(self.sidecar_path(projection)) as f:
                        for body in bodies(f) if f is not None else ():
                            block, part = read(body)
                            if (block.first != position or not 0 < block.end_offset <= tail.end
                                    or not _line_ends_with(fd, block.end_offset, block.last_hash)):  # fmt: skip
                                return None
                            found.append((block, part))
                            position += block.count
                except (OSError, ValueError):
                    return None
        return found if found and position == LogHead.of(tail.last).entries else None

    def sidecar_path(self, projection: Projection) -> Path:
        """Where the blocks of ``projection`` are kept: beside the log, named after it."""
        return self.path.with_name(f"{self.path.name}.{projection.name}")

    def _warn_passed_over(self, projection: Projection, sidecar: _Sidecar) -> None:
        """Say that part of a sidecar was passed over and is rebuilt from the log.

        Blocks that no longer match mean the log, or the sidecar, was changed;
        bytes that are not a whole block, a writer killed mid-write or damage.
        Either way the reader must not seem to have used all of it.
        """
        if sidecar.dropped:
            found = "did not match the log"
        elif sidecar.unread is not None:
            found = str(sidecar.unread)
        else:
            return
        warnings.warn(
            IndexMismatchWarning(
                f"the {projection.title} beside {self.location} {found}; rebuilding it from the log "
                "(`timeline verify` keeps a mismatching one as evidence)"
            ),
            stacklevel=4,  # past _warn_passed_over, the method, and naming_entries
        )

    def _sidecar_origin(self, projection: Projection) -> bytes | None:
        """The header of the sidecar's first block: a state read from it is good while that stands.

        Writers only add blocks after it; a sidecar removed (by ``verify``) or
        rebuilt from scratch has another, or none.
        """
        try:
            with _opened(self.sidecar_path(projection)) as f:
                return None if f is None else f.read(12)
        except OSError:
            return None

    def _tail(self, *, strict: bool) -> _Tail:
        with self._open(write=False) as fd:
            if fd is None:
                return _Tail(0, 0, None, 0)
            with self._locked(fd, fcntl.LOCK_SH):
                return _read_tail(fd, self.location, strict=strict)

    # -- writing ---------------------------------------------------------

    def check_writable(self) -> None:
        check_log_file(self.path, self.location)
        super().check_writable()

    @naming_entries
    def append_lines(self, subjects: Collection[str], encode: Encoder) -> None:
        with self._writing() as fd:
            tail = self._whole_tail(fd)
            known = self._read_sidecar(fd, tail, KNOWN)
            self._warn_passed_over(KNOWN, known)
            index = known.state
            lines = encode(
                last=tail.last,
                now=self.now(),
                known=index.known_ids(lambda position: _line_from(fd, int(index.offsets[position]), self.location)),
            )
            self._write_and_keep(fd, tail, lines, known)

    def append_stored(self, lines: Sequence[bytes], after: LogHead) -> None:
        with self._writing() as fd:
            tail = self._whole_tail(fd)
            if LogHead.of(tail.last) != after:
                raise LogChangedError(f"{self.location} changed while being written; run the command again")
            self._write_and_keep(fd, tail, lines, None)

    # -- the projections beside the log ------------------------------------

    def _write_and_keep(self, fd: int, tail: _Tail, lines: Iterable[bytes], known: _Sidecar | None) -> None:
        """Under the write lock: write ``lines`` after ``tail``, extending every kept projection as they go.

        The lines are taken one piece at a time (an import's million never
        sit in memory at once), each decoded once for every projection. A
        projection's new blocks wait in a temporary file as they are cut
        (``_Spill``): the sidecars are written only once the lines are
        durable, so that a crash never leaves blocks for entries the log
        does not hold. Best effort: a missing or stale sidecar only costs
        the next reader a parse.
        """
        projections = (KNOWN, *self.kept)
        sidecars = [
            known if projection is KNOWN and known is not None else self._read_sidecar(fd, tail, projection)
            for projection in projections
        ]
        foldings = [Folding(sidecar.state) for sidecar in sidecars]
        with contextlib.ExitStack() as stack:
            spills = [stack.enter_context(_Spill(projection)) for projection in projections]

            def folded() -> Iterator[bytes]:
                offset = tail.end
                for line in lines:
                    raw, end = decode_line(line), offset + len(line) + 1
                    for folding, spill in zip(foldings, spills, strict=True):
                        folding.add(raw, offset, end)
                        if folding.blocks:
                            spill.take(folding.blocks)
                    offset = end
                    yield line

            def folded_spooled(batch: SpooledLines) -> Iterator[bytes]:
                # As ``folded``, but the spool's observations are folded from its columns, a run at a time.
                for piece, runs in batch.pieces(_WRITE_LINES, tail.end):
                    for run in runs:
                        if run.figures is not None:
                            for folding in foldings:
                                folding.add_observations(run, _decoded)
                            continue
                        for line, (start, end) in zip(run.lines, run.spans(), strict=True):
                            raw = decode_line(line)
                            for folding in foldings:
                                folding.add(raw, start, end)
                    for folding, spill in zip(foldings, spills, strict=True):
                        if folding.blocks:
                            spill.take(folding.blocks)
                    yield from piece

            made = folded_spooled(lines) if isinstance(lines, SpooledLines) else folded()
            _write_all(fd, made, tail.end, self.location)
            for projection, sidecar, folding, spill in zip(projections, sidecars, foldings, spills, strict=True):
                spill.take(folding.done())
                self._write_sidecar(projection, sidecar, spill)

    def _read_sidecar(self, fd: int, tail: _Tail, projection: Projection) -> _Sidecar:
        """The sidecar's blocks that still match the log, plus blocks for the log beyond them.

        Blocks are handed to the projection as they are read, each checked
        first: it must follow the one before, and the log must still end its
        last line with the hash it names (the log is a hash chain, so all
        before it are then the entries it was made from).
        """
        path = self.sidecar_path(projection)
        found = {"kept": 0, "dropped": 0, "size": 0}
        frames = None

        def matching(blocks: Iterator[tuple[int, Any]]) -> Iterator[Any]:
            position = 0
            for end_at, block in blocks:
                if (block.first != position or not 0 < block.end_offset <= tail.end
                        or not _line_ends_with(fd, block.end_offset, block.last_hash)):  # fmt: skip
                    found["dropped"] = 1 + sum(1 for _ in blocks)
                    return
                found["kept"] = end_at
                position += block.count
                yield block

        try:
            with _opened(path) as f:
                if f is None:
                    state = projection.load([])
                else:
                    found["size"] = os.fstat(f.fileno()).st_size
                    frames = unframe(f, projection)
                    state = projection.load(matching(frames))
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        start = state.end_offset if found["kept"] else 0
        state, new = self._extended(fd, state, projection, tail.end, start)
        unread = frames.unread if frames is not None and not found["dropped"] else None
        return _Sidecar(state, found["kept"], new, found["size"], found["dropped"], unread)

    def _parsed(self, fd: int, start: int, end: int) -> Iterator[tuple[RawEntry, int, int]]:
        for offset, line in _stream_lines(fd, start, end, self.location):
            yield self._decoder(line, offset), offset, offset + len(line) + 1

    def _lines(self, fd: int, start: int, end: int) -> Iterator[tuple[int, list[bytes]]]:
        """The lines between bytes ``start`` and ``end``, in runs, each with the offset of its first line."""
        return _line_runs(fd, start, end, self.location)

    def _decoder(self, line: bytes, offset: int) -> RawEntry:
        try:
            return decode_line(line)
        except InputError as exc:
            with open(self.path, "rb") as f:  # a person opens the file at a line, not at a byte
                raise _unreadable(exc, self.location, f.fileno(), offset) from None

    @naming_entries
    def verify(self, *, repair_index: bool = False, progress: Progress | None = None) -> Verified:
        """Check the chain, and that every projection beside the log says what the log says.

        A sidecar is compared as it is on disk, before anything reads (and so
        rebuilds) it: one that does not match is evidence (of an edited log,
        or an edited sidecar), so it is moved to ``<sidecar>.mismatch-<n>``,
        never deleted, and the finding fails verification unless
        ``repair_index`` asks for a new one to be built at once.
        """
        checked, known = self._verify_chain(progress)
        notes, mismatch = [], False
        for projection in (KNOWN, *self.kept):
            rebuilt = known if projection is KNOWN else None
            note, bad, read = self._verify_sidecar(projection, checked, repair_index, rebuilt)
            if not read:
                self._read_through(projection, checked.head, rebuilt)
            if note is not None:
                notes.append(note)
                mismatch = mismatch or bad
        if not notes:
            return checked
        return attrs.evolve(checked, index_note="; ".join(notes), index_mismatch=mismatch)

    def _verify_chain(self, progress: Progress | None) -> tuple[Verified, _Rebuilt | None]:
        """``Store.verify`` of every line, and the index of ids and names rebuilt from as many as its sidecar holds
        (from every line, if there is none).

        A long log is checked by two processes, a window at a time: a fork
        checks the later part of each, while this one checks the earlier part
        and rebuilds the index from every line of the window (as
        ``_matches_log`` would, reading the log once more).
        """
        with self._open(write=False) as fd:
            if fd is None:
                return super().verify(progress=progress), None
            with self._locked(fd, fcntl.LOCK_SH):
                tail = _read_tail(fd, self.location)
                # With the tail: an append in between would have extended it past the lines read here. Without
                # a sidecar, the whole log (``_read_through`` then need not read it again).
                entries = self._sidecar_entries(KNOWN) or LogHead.of(tail.last).entries
                known = _Rebuilt(KNOWN, entries) if tail.end >= IN_TWO_BYTES else None
            if known is None:
                return super().verify(progress=progress), None

            def first(start: int, middle: int, stop: int) -> Iterator[int]:
                yield from self._checked_lines(fd, start, middle, known)
                known.add_runs((KNOWN.read_lines(lines, at) for at, lines in self._lines(fd, middle, stop)),
                               self._decoder)  # fmt: skip

            check_part = functools.partial(self._checked_lines, fd)
            runs = _in_windows(fd, 0, tail.end, check_part, VERIFY_WINDOW, _VERIFY_SHARE, first)
            with contextlib.closing(runs):
                # None: its last line is unreadable (the check names it, where it lies)
                run_checks(runs, progress, lambda: None if tail.last is None else tail.last.position + 1)
        return Verified(LogHead.of(tail.last), tail.torn), known

    def _sidecar_entries(self, projection: Projection) -> int:
        """How many entries a projection's sidecar holds (0: none, or unreadable), under the caller's lock."""
        try:
            with _opened(self.sidecar_path(projection)) as f:
                return 0 if f is None else projection.load(block for _, block in unframe(f, projection)).entries
        except (OSError, StoreError):
            return 0  # ``_verify_sidecar`` says what is wrong with it

    def _checked_lines(self, fd: int, start: int, end: int, known: _Rebuilt | None = None) -> Iterator[int]:
        """The lines from byte ``start`` to ``end`` checked as ``Store.verify`` checks them; how many, a run at a time.

        The chain is followed from the line before ``start``, only decoded
        here: the part that ends with it checks it, and comes first.
        """
        check = ChainCheck()
        if start > 0:
            [(_, before)] = itertools.islice(_lines_backwards(fd, start), 1)
            check.last = decode_line(before)
        for offset, lines in _line_runs(fd, start, end, self.location):
            for line in lines:
                raw, after = check.feed(line), offset + len(line) + 1
                self.check_readable(raw)
                if known is not None:
                    known.add(raw, offset, after)
                offset = after
            yield len(lines)

    def _read_through(self, projection: Projection, head: LogHead, rebuilt: _Rebuilt | None) -> None:
        """Read the whole log into ``projection``, as a reader without its sidecar reads it, for what that refuses
        (a fix of an observation not in the log before it): verify refuses every log a reader refuses.

        ``rebuilt``: the projection as verify's check of the chain rebuilt it, enough if it holds the whole log.
        """
        if rebuilt is not None and rebuilt.entries == head.entries and rebuilt.state() is not None:
            return
        with self._open(write=False) as fd:
            if fd is None:
                return
            with self._locked(fd, fcntl.LOCK_SH):
                self._extended(fd, projection.load([]), projection, _read_tail(fd, self.location).end, 0)

    def _verify_sidecar(
        self, projection: Projection, checked: Verified, repair: bool, rebuilt: _Rebuilt | None = None
    ) -> tuple[str | None, bool, bool]:
        """What verify says of a projection's sidecar, whether that is a finding, and whether the log was read
        through for it (or need not be: there is no log, or the finding stands for it)."""
        path = self.sidecar_path(projection)
        with self._open(write=False) as fd:
            if fd is None:
                return None, False, True
            with self._locked(fd, fcntl.LOCK_SH):
                tail = _read_tail(fd, self.location, strict=True)
                frames = None
                try:
                    with _opened(path) as f:
                        if f is None:
                            return None, False, False
                        frames = unframe(f, projection, checked=True)
                        stored = projection.load(block for _, block in frames)
                except OSError as exc:
                    raise StoreError(f"cannot read {path}: {exc.strerror}") from None
                except StoreError:
                    stored = None
                matches = stored is not None and self._matches_log(fd, projection, stored, tail, rebuilt)
        unread = frames.unread if frames is not None else None
        if matches and unread is None:
            return f"the {projection.title} beside the log matches it ({path})", False, (
                stored.entries == checked.head.entries)  # fmt: skip
        if matches:
            # Its whole blocks hold; what follows them was never read. A torn write is what a writer
            # killed mid-write leaves (no finding: it is only rebuilt); a damaged block is a finding.
            finding = f"the {projection.title} beside the log {unread}; its {stored.entries} entries before it match"
            return self._set_sidecar_aside(projection, path, finding, rebuild=repair or unread.torn)
        said = "unreadable" if stored is None else f"{stored.entries} entries, head {stored.last_hash or 'none'}"
        finding = (
            f"the {projection.title} beside the log does not match it: it says {said}; "
            f"the log has {checked.head.entries} entries, head {checked.head.head}"
        )
        return self._set_sidecar_aside(projection, path, finding, rebuild=repair)

    def _set_sidecar_aside(
        self, projection: Projection, path: Path, finding: str, *, rebuild: bool
    ) -> tuple[str, bool, bool]:
        """Keep a sidecar that verify could not vouch for as evidence, and build a new one if ``rebuild``.

        The note says what was found and done; it is a finding (verify fails)
        unless a new sidecar was built, from the whole log.
        """
        if self.read_only:
            return f"{finding} ({path}, left as it is)", True, True
        kept = self._set_aside(path)
        if rebuild:
            self.projection(projection)
            return f"{finding}; the old one is kept as {kept}; a new one was built", False, True
        return f"{finding}; the old one is kept as {kept} (`verify --repair-index` builds a new one)", True, True

    def _matches_log(
        self, fd: int, projection: Projection, stored: State, tail: _Tail, rebuilt: _Rebuilt | None = None
    ) -> bool:
        """Whether the stored state is exactly that of the log's first entries (it may lag behind).

        ``rebuilt``: the projection already rebuilt from the log, used if it
        holds as many entries (an append since may have extended the sidecar).
        """
        if stored.entries == 0:
            return True
        if stored.end_offset > tail.end or not _line_ends_with(fd, stored.end_offset, stored.last_hash):
            return False
        if rebuilt is not None and rebuilt.entries == stored.entries and (state := rebuilt.state()) is not None:
            return stored.same(state)
        if getattr(projection, "read_lines", None) is not None:  # built as a first replay builds it
            return stored.same(self._extended(fd, projection.load([]), projection, stored.end_offset, 0)[0])
        entries = itertools.islice(self._parsed(fd, 0, tail.end), stored.entries)
        return stored.same(extend(projection.load([]), entries)[0])

    # -- results kept beside the log ------------------------------------------

    def result(self, name: str, head: LogHead) -> BinaryIO | None:
        try:
            kept = _open_file(self.path.with_name(f"{self.path.name}.{name}"))
        except OSError:
            return None
        if kept is not None and kept.readline(200) != _result_header(head):
            kept.close()
            return None
        return kept

    def keep_result(self, name: str, head: LogHead, chunks: Iterable[bytes]) -> bool:
        """Write a new file beside the old one, make it durable, then put it in the old one's place."""
        if self.read_only:
            return False
        path = self.path.with_name(f"{self.path.name}.{name}")
        writing = path.with_name(f"{path.name}.writing-{os.getpid()}")
        _remove_abandoned(path)
        try:
            with open(writing, "wb") as out:
                out.write(_result_header(head))
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(writing, path)
            _fsync_dir(self.path.parent)
        except BaseException as exc:  # a full disk, or Ctrl-C and SIGTERM while it is written: none of it is left
            with contextlib.suppress(OSError):
                writing.unlink()
            if not isinstance(exc, OSError):
                raise
            return False
        return True

    def set_result_aside(self, name: str) -> str | None:
        path = self.path.with_name(f"{self.path.name}.{name}")
        return str(self._set_aside(path)) if path.exists() else None

    def _set_aside(self, path: Path) -> Path:
        """Move a sidecar to a free ``.mismatch-<n>`` name beside it, under the write lock."""
        with self._writing():
            n = 1
            while True:
                kept = path.with_name(f"{path.name}.mismatch-{n}")
                try:
                    # A hard link never replaces an existing file: earlier evidence stays.
                    os.link(path, kept)
                    break
                except FileExistsError:
                    n += 1
                except OSError as exc:
                    raise StoreError(f"cannot keep the mismatching {path.name} as {kept}: {exc.strerror}") from None
            path.unlink()
            _fsync_dir(self.path.parent)
        return kept

    def _extended(
        self, fd: int, state: State, projection: Projection, end: int, start: int | None = None
    ) -> tuple[State, list[Any]]:
        """``state`` followed by the entries of the log from byte ``start`` (its end, if None) to ``end``.

        A projection that reads lines without the log (``read_lines``) has a
        long stretch read by two processes at once (``parallel.in_two``).
        """
        start = state.end_offset if start is None else start
        if start == end:
            return state, []
        read = getattr(projection, "read_lines", None)
        if read is None:
            return extend_lines(state, self._lines(fd, start, end), self._decoder)

        def runs(first: int, last: int) -> Iterator[Any]:
            return (read(lines, at) for at, lines in self._lines(fd, first, last))

        if end - start < IN_TWO_BYTES:
            return extend_read(state, runs(start, end), self._decoder)
        with contextlib.closing(_in_windows(fd, start, end, runs)) as read_runs:
            if self.rebuilding is not None:  # a read at a time: there are about as many as reads of its bytes
                read_runs = self.rebuilding(read_runs, -(-(end - start) // _BLOCK), projection.title)
            return extend_read(state, read_runs, self._decoder)

    def _save_sidecar(self, fd: int, projection: Projection, sidecar: _Sidecar) -> None:
        """Keep what a reader parsed, if no writer is busy: the next reader starts from there."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        try:
            self._write_sidecar(projection, sidecar)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _write_sidecar(self, projection: Projection, sidecar: _Sidecar, spill: _Spill | None = None) -> None:
        """Under the write lock: cut the sidecar to its valid part and add the new blocks, then the spilled ones.

        Best effort: the log is already durable, and a missing or stale
        sidecar only costs the next reader a parse.
        """
        path = self.sidecar_path(projection)
        try:
            # Without blocking: a FIFO put in its place would wait for a reader forever (ENXIO; it is removed).
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666), "ab") as out:
                if not stat.S_ISREG(os.fstat(out.fileno()).st_mode):
                    raise OSError(errno.EINVAL, "not a regular file")
                if out.tell() != sidecar.size:
                    return  # changed since it was read; its owner knows better
                out.truncate(sidecar.kept)
                out.seek(sidecar.kept)
                for block in sidecar.new:  # one at a time: an import's blocks are never joined into one more copy
                    out.write(frame(projection.encode(block)))
                if spill is not None:
                    spill.copy_to(out)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()

    def _whole_tail(self, fd: int) -> _Tail:
        """The tail of a log a writer may extend: readable, not torn, and its last line ending in its hash.

        The new entries chain to that hash: a last line changed after it (a
        carriage return an editor added, say), which verify refuses, is
        never built on.
        """
        tail = _read_tail(fd, self.location, strict=True)
        if tail.torn is not None:
            raise TornLogError(
                f"{self.location} ends in an incomplete write ({tail.torn.size} bytes at byte "
                f"{tail.torn.offset}); run `timeline repair --log {self.location}` first"
            )
        if tail.last is not None and not _line_ends_with(fd, tail.end, tail.last.hash):
            raise UnreadableEntryError(
                f"{self.location}: the last entry, at position {tail.last.position}, does not end in its hash (its "
                "line was changed); nothing was appended"
            )
        return tail

    def repair(self) -> Repaired | None:
        """Move a torn tail into ``<log>.quarantine-<n>`` and cut it from the log; None if whole."""
        with self._writing() as fd:
            tail = _read_tail(fd, self.location, strict=True)
            torn = tail.torn
            if torn is None:
                return None
            data = _read_exactly(fd, torn.size, torn.offset)
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
    def _writing(self) -> Iterator[int]:
        """The log's file descriptor, under the write lock; the file is made if there is none.

        A log file this writer made and left empty (its first write refused,
        say) is removed before the lock is let go: a refused import leaves no
        file behind. A writer that was waiting for the lock on it then finds
        it unlinked, and opens the log anew. Through a symbolic link, the file
        it names is made and removed, never the link.
        """
        while True:
            made = self._make()
            with self._open(write=True) as fd:
                if fd is None:
                    continue  # made, then removed again by the writer that made it, before this one opened it
                with self._locked(fd, fcntl.LOCK_EX):
                    if os.fstat(fd).st_nlink == 0:
                        continue  # removed by the writer that made it
                    try:
                        yield fd
                    finally:
                        if made is not None:
                            _remove_if_empty(made, fd)
                    return

    def _make(self) -> Path | None:
        """Make the log's file if there is none, and say where (None: it was there already)."""
        if self.path.is_dir():
            raise StoreError(f"{self.location} is a directory, not a log file")
        target = Path(os.path.realpath(self.path))
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return None
        except OSError as exc:
            raise self._cannot_open(exc, write=True) from None
        _fsync_dir(target.parent)
        return target

    @contextmanager
    def _open(self, *, write: bool) -> Iterator[int | None]:
        """The log's file descriptor; None when there is no log file (``_writing`` makes it first)."""
        if self.path.is_dir():
            raise StoreError(f"{self.location} is a directory, not a log file")
        try:
            fd = os.open(self.path, os.O_RDWR if write else os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        except OSError as exc:
            raise self._cannot_open(exc, write) from None
        try:
            yield fd
        finally:
            os.close(fd)

    def _cannot_open(self, exc: OSError, write: bool) -> StoreError:
        if isinstance(exc, FileNotFoundError):
            return StoreError(f"cannot create {self.location}: its folder does not exist")
        if isinstance(exc, PermissionError):
            return StoreError(f"cannot {'write to' if write else 'read'} {self.location}: permission denied")
        return StoreError(f"cannot open {self.location}: {exc.strerror}")


def _open_file(path: Path) -> BinaryIO | None:
    """A file kept beside the log, open for reading; None if there is none, or something other than a file is in
    its place (opened plainly, a FIFO would wait for a writer forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


@contextmanager
def _opened(path: Path) -> Iterator[BinaryIO | None]:
    """``_open_file`` of a sidecar, closed afterwards: one that is not a file is read as none (a reader rebuilds
    it, and writes a file in its place)."""
    f = _open_file(path)
    try:
        yield f
    finally:
        if f is not None:
            f.close()


def _remove_if_empty(path: Path, fd: int) -> None:
    """Unlink the log's file if it is still empty and still this file (under the write lock)."""
    with contextlib.suppress(OSError):
        mine, named = os.fstat(fd), os.stat(path)
        if mine.st_size == 0 and (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino):
            os.unlink(path)
            _fsync_dir(path.parent)


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


def _write_all(fd: int, lines: Iterable[bytes], offset: int, location: str) -> None:
    """Write ``lines`` (each with a newline) at ``offset`` and make them durable, or leave the file as it was.

    They are taken and written a few thousand at a time: a batch of millions
    of imported rows is never joined into one more copy of itself. Whatever
    stops the batch half way (a full disk, or an error while its lines are
    made) cuts back what part of it was written.
    """
    at = offset
    try:
        for piece in in_pieces(lines, _WRITE_LINES):
            data = b"\n".join(piece) + b"\n"
            view = memoryview(data)
            written = 0
            while written < len(data):
                written += os.pwrite(fd, view[written:], at + written)
            at += len(data)
        # The append is acknowledged only once the bytes are on disk.
        os.fsync(fd)
    except BaseException as exc:
        # The file ended at ``offset`` (writers never extend a torn tail): cut back to it, even
        # when stopped inside a piece's pwrite, before ``at`` moved.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, offset)
            os.fsync(fd)
        if not isinstance(exc, OSError):
            raise
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
        raise StoreError(f"cannot write to {location}: {reason}; nothing was appended") from None


def _decoded(line: bytes, offset: int) -> RawEntry:
    """A line this append made, decoded (as ``folded`` decodes each)."""
    return decode_line(line)


def _result_header(head: LogHead) -> bytes:
    """The first line of a kept result: the head of the log it was made from."""
    return f"timeline result of {head.entries} entries, head {head.head}\n".encode()


def _read_exactly(fd: int, size: int, at: int) -> bytes:
    """``size`` bytes from byte ``at`` (fewer at the end of the file), leaving the file's offset alone: a fork
    shares it (``_checked_lines`` reads the line before its part)."""
    chunks, left = [], size
    while left:
        chunk = os.pread(fd, min(left, _BLOCK), at)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
        at += len(chunk)
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
        last = decode_line(line)
    except InputError as exc:
        if strict:
            raise _unreadable(exc, location, fd, start) from None
        return _Tail(end, size, None, 0)
    if last.position == last.batch_end:
        return _Tail(end, size, last, 0)
    # The last batch never finished: its lines are torn too.
    unfinished = 1
    for start, line in lines:
        try:
            raw = decode_line(line)
        except InputError as exc:
            raise _unreadable(exc, location, fd, start) from None
        if raw.batch_end != last.batch_end:
            return _Tail(start + len(line) + 1, size, raw, unfinished)
        unfinished += 1
    return _Tail(0, size, None, unfinished)


def _unreadable(exc: InputError, location: str, fd: int, offset: int) -> UnreadableEntryError:
    """The error for the line at byte ``offset`` of the log open at ``fd``, named by its number, as an editor
    shows it (counted only now: a log of millions is read by byte offsets)."""
    lines, at = 1, 0
    while at < offset and (chunk := os.pread(fd, min(offset - at, _COUNTED), at)):
        lines += chunk.count(b"\n")
        at += len(chunk)
    return UnreadableEntryError(f"{location}: the entry on line {lines:,} (byte {offset:,}) is unreadable ({exc})")


def _lines_backwards(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """Complete (newline-ended) lines from the end of the file: (offset, bytes without newline)."""
    pos = size
    buffer = b""
    cut: int | None = None  # offset of the end of the complete region
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        buffer = _read_exactly(fd, step, pos) + buffer
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


def _stream_lines(fd: int, start: int, end: int, location: str) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for the complete lines between bytes ``start`` and ``end``."""
    for offset, lines in _line_runs(fd, start, end, location):
        for line in lines:
            yield offset, line
            offset += len(line) + 1


def _line_runs(fd: int, start: int, end: int, location: str) -> Iterator[tuple[int, list[bytes]]]:
    """The complete lines between bytes ``start`` and ``end``, a read at a time: (offset of the first, lines)."""
    offset = start
    while offset < end:
        lines, after = whole_lines(fd, offset, end, _BLOCK)
        if not lines:
            if os.fstat(fd).st_size < end:
                raise StoreError(f"{location} shrank while being read")
            raise StoreError(f"{location}: the acknowledged part does not end in a newline")
        yield offset, lines
        offset = after


def _in_windows(
    fd: int,
    start: int,
    end: int,
    runs: Callable[[int, int], Iterator[Any]],
    window: int | None = None,
    share: float | None = None,
    first: Callable[[int, int, int], Iterator[Any]] | None = None,
) -> Iterator[Any]:
    """``runs`` of the lines from byte ``start`` to ``end``, each window of them read by two processes.

    This one reads ``share`` of each window (a replay's: ``_FIRST_SHARE`` of
    ``IN_TWO_WINDOW``) by ``first(start, middle, stop)`` (by default
    ``runs(start, middle)``), while a fork reads the rest by ``runs(middle, stop)``.
    """
    window = IN_TWO_WINDOW if window is None else window
    share = _FIRST_SHARE if share is None else share
    first = first or (lambda start, middle, stop: runs(start, middle))
    while start < end:
        stop = line_start_after(fd, start + window, end) if end - start > window else end
        middle = line_start_after(fd, start + int((stop - start) * share), stop)
        if middle < stop:
            parts = in_two(functools.partial(first, start, middle, stop), functools.partial(runs, middle, stop))
            with contextlib.closing(parts):
                yield from parts
        else:
            yield from first(start, stop, stop)
        start = stop


def _line_ends_with(fd: int, end: int, hash_: str) -> bool:
    """Whether the line ending at byte ``end`` is the entry with this hash."""
    suffix = f',"hash":"{hash_}"}}\n'.encode()
    return end >= len(suffix) and os.pread(fd, len(suffix), end - len(suffix)) == suffix


def _line_from(fd: int, offset: int, location: str) -> bytes:
    chunks = []
    while True:
        chunk = os.pread(fd, 4096, offset)
        if not chunk:
            raise StoreError(f"{location}: no complete line at byte {offset}")
        cut = chunk.find(b"\n")
        if cut >= 0:
            chunks.append(chunk[:cut])
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _free_name(path: Path) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.name}.quarantine-{n}")).exists():
        n += 1
    return candidate


def _remove_abandoned(path: Path) -> None:
    """Delete what writers of ``path`` that were killed left half written (``<path>.writing-<pid>``).

    A writer's file is its own while its process lives; one whose process is
    gone is never finished, and would lie beside the log as large as a
    whole replay.
    """
    for left in path.parent.glob(f"{glob.escape(path.name)}.writing-*"):
        pid = left.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                left.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, another user's
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    """Make a file's creation itself durable, not only its bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
