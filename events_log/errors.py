"""The project's exceptions: few, named for what went wrong.

Each also subclasses the builtin it resembles, so a caller who does not know
this tree can still write ``except ValueError`` or ``except OSError``.
The command line maps ``InputError`` to exit code 2 and every other
``TimelineError`` to exit code 1, always as one line without a traceback.
"""

from __future__ import annotations


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: repr, on one line, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class TimelineError(Exception):
    """Base of every error the project raises on purpose."""


class InputError(TimelineError, ValueError):
    """Input that cannot become events: a bad file, row, field or reference.

    ``where`` names the place (``file.csv:12: low``) so that the one-line
    message is enough to find and fix the problem.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, where: str) -> InputError:
        """The same error, placed in front of an outer location (file, line)."""
        inner = f"{where}: {self.where}" if self.where else where
        return InputError(self.message, inner)


class LogError(TimelineError):
    """The log cannot be used as it stands."""


class LogChangedError(LogError):
    """A write lost a race: the log changed after what the write was made from was read.

    Like eventsourcing's ``RecordConflictError``: a fix made from a version of
    a record that is no longer its current one, or a copy whose target grew
    meanwhile. Nothing was appended. The command line exits 2, as for bad
    input (issue 12): the person only has to look again and redo it.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class TornLogError(LogError):
    """The log ends in an incomplete write; appends wait for ``timeline repair``."""


class BrokenChainError(LogError):
    """A stored entry does not match its hash or its place in the chain."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(message)


class StoredEntryError(LogError):
    """A stored entry this version cannot read: its line does not decode, or its event breaks the rules
    events are built under (a negative count, a high below its low).

    The chain may be intact (whoever wrote the line also hashed it), so only
    reading the event finds it. A reader that meets one deep inside (the
    replay index, built from lines) knows the position but not the log:
    ``located`` adds it.
    """

    def __init__(self, position: int, reason: str, location: str | None = None) -> None:
        self.position = position
        self.reason = reason
        self.location = location
        where = f"{location}: " if location else ""
        # What verify reports; any other reader adds where to look further.
        self.finding = f"{where}position {position} is not a readable entry ({reason})"
        super().__init__(f"{self.finding}; run `timeline verify`")

    def located(self, location: str) -> StoredEntryError:
        """The same error, naming the log it was found in (if it does not name one yet)."""
        return self if self.location else StoredEntryError(self.position, self.reason, location)


class ReadOnlyLogError(LogError, PermissionError):
    """Writing to a log that must not be written, such as the bundled dataset."""


class StoreError(LogError, OSError):
    """The store's medium failed: a file, a disk, a database connection."""


class UnreadableEntryError(StoreError):
    """A stored line that does not decode as an entry at all, named by where it lies.

    Like ``StoredEntryError``, it tells the reader to run verify, and
    ``finding`` is what verify reports of it.
    """

    def __init__(self, finding: str) -> None:
        self.finding = finding
        super().__init__(f"{finding}; run `timeline verify`")


class CheckpointError(LogError):
    """The log does not extend a checkpoint, or a checkpoint's signature does not hold."""


class IndexMismatchWarning(UserWarning):
    """The replay index beside a log did not match the log and was rebuilt from it."""
