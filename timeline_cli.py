"""The `timeline` command: a thin layer over the library.

It sits above every package it drives (events_log, timeline, reports), so
that none of them imports the command line or one another upwards; the
`timeline` console script and `python -m timeline` both start here.
Each command parses its options, calls the library and formats the result.
User errors end in one line on stderr and exit code 2; problems with the
log itself exit 1; nothing is appended unless the whole input is good.

The command line is built on the standard library's argparse: a command's
start-up is interpreter, argparse and this module (issue 17: at most
0.08 s), and everything a command needs loads inside it. Each command is a
plain function registered with the arguments it takes, read top-down below.
"""

from __future__ import annotations

import argparse
import collections
import errno
import io
import os
import signal
import sys
import warnings

from events_log.columns import COLUMNS
from events_log.errors import (
    BrokenChainError,
    IndexMismatchWarning,
    InputError,
    LogChangedError,
    LogError,
    ReadOnlyLogError,
    StoredEntryError,
    TimelineError,
    UnreadableEntryError,
    shown,
)

TYPE_CHECKING = False  # typing itself costs 5 ms of start-up; the checkers know this name
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path
    from typing import Any, TypeVar

    from events_log.envelope import Entry
    from events_log.events import Correction, Event, IncidentDescribed, MonitorDescribed, Observation
    from events_log.store import Store

    T = TypeVar("T")
    F = TypeVar("F", bound=Callable[..., Any])
    Argument = tuple[tuple[str, ...], dict[str, Any]]

# The package version (pyproject.toml reads it from here): `--version` need not load importlib.metadata.
__version__ = "0.1.0"

_NO_LOG = (
    "no log to write to: pass --log PATH (or set TIMELINE_LOG) to name a log of your own; "
    "a new path starts an empty log, and `timeline copy` copies the bundled dataset into one"
)

DESCRIPTION = """Keep every published casualty figure with its source, and replay them
into per-day running tolls for each monitor."""


# -- how commands are declared -------------------------------------------------


def arg(*flags: str, **settings: Any) -> Argument:
    """One argument of a command, in the words of ``ArgumentParser.add_argument``."""
    return flags, settings


# Every command by its name as typed ("replay", "describe incident"): the function and its arguments.
COMMANDS: dict[str, tuple[Callable[..., int | None], tuple[Argument, ...]]] = {}

# The commands that only group others: their help.
GROUPS = {
    "describe": """Describe an incident or a monitor, so that observations may name it.

    Describing a name again appends a new description that replaces the old
    one whole: give every field you want kept.
    """,
}


def command(name: str, *arguments: Argument) -> Callable[[F], F]:
    """Register the function as `timeline NAME`: its docstring is the help, its parameters the arguments' dests.

    A command returns its exit code, or None for success; it fails by raising a project error.
    """

    def register(function: F) -> F:
        COMMANDS[name] = (function, arguments)
        return function

    return register


class UsageError(InputError):
    """The command line itself is wrong: shown with the command whose help says how it goes."""

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose mistakes are raised (one line, exit 2) instead of printed with the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(_with_hint(message, self), self.prog)


def _with_hint(message: str, parser: argparse.ArgumentParser) -> str:
    """argparse's complaint in the project's words: the option or value named first, and the nearest right name."""
    import difflib
    import re

    if match := re.match(r"unrecognized arguments: (\S+)", message):
        typed = match.group(1).split("=", 1)[0]
        known = [flag for action in parser._actions for flag in action.option_strings]
        if typed.startswith("-") and typed not in known and (near := difflib.get_close_matches(typed, known, n=1)):
            return f"no such option: {typed}; did you mean {near[0]}?"
        if typed.startswith("-") and typed not in known:
            return f"no such option: {typed}"
        return f"unexpected argument {shown(match.group(1))}"  # a word no argument takes (or one after "--")
    if match := re.match(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)$", message):
        choices = re.findall(r"'([^']*)'", match.group(3))
        near = difflib.get_close_matches(match.group(2), choices, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        if match.group(1) in ("COMMAND", "KIND"):  # the command's name itself
            return f"{shown(match.group(2))} is not a {match.group(1).lower()} of `{parser.prog}`{hint}"
        return f"{match.group(1)}: {shown(match.group(2))} is not one of {', '.join(choices)}{hint}"
    if match := re.match(r"argument (\S+): expected one argument$", message):
        return f"{match.group(1).split('/')[-1]} needs a value"
    if match := re.match(r"argument (\S+): (.*)$", message, re.DOTALL):
        return f"{match.group(1).split('/')[-1]}: {match.group(2)}"
    return message


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help as the docstrings lay it out, options wrapped to the terminal, at most 100 columns."""

    width = 100

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=self.width)


def _doc(text: str) -> str:
    """A docstring as help: its first line, then the rest without the indent of this file's docstrings."""
    first, *rest = text.strip().split("\n")
    return "\n".join([first.strip(), *(line.removeprefix("    ") for line in rest)])


def _named(argv: list[str]) -> str | None:
    """The command ARGV names ("replay", "describe incident"), if any: the first words not options."""
    words = [word for word in argv if not word.startswith("-")]
    for name in COMMANDS:
        if words[: len(name.split())] == name.split():
            return name
    return None


def parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line for ARGV, from the commands registered below, and the parser of the command it names.

    Only the command ARGV names gets its arguments (the others need only
    their one line of help): building them all would cost start-up.
    """
    try:
        _Formatter.width = min(100, os.get_terminal_size(sys.stdout.fileno()).columns - 2)
    except (OSError, ValueError, AttributeError):  # not a terminal, or a stream without a descriptor
        _Formatter.width = 100
    named = _named(argv)
    root = chosen = _Parser(
        prog="timeline", description=_doc(DESCRIPTION), formatter_class=_Formatter, allow_abbrev=False
    )
    root.add_argument("--version", action="version", version=f"%(prog)s, version {__version__}")
    root.set_defaults(parser=root)
    top = root.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}

    def add(under: argparse._SubParsersAction, name: str, doc: str) -> argparse.ArgumentParser:
        description = _doc(doc)
        sub = under.add_parser(
            name, help=description.split("\n")[0], description=description, formatter_class=_Formatter,
            allow_abbrev=False,
        )  # fmt: skip
        sub.set_defaults(parser=sub)
        return sub

    for name, (function, arguments) in COMMANDS.items():
        *group, leaf = name.split()
        under = top
        if group:
            if group[0] not in groups:
                groups[group[0]] = add(top, group[0], GROUPS[group[0]]).add_subparsers(title="kinds", metavar="KIND")
            under = groups[group[0]]
        sub = add(under, leaf, function.__doc__ or "")
        if name == named:
            for flags, settings in arguments:
                sub.add_argument(*flags, **settings)
            sub.set_defaults(function=function)
            chosen = sub
    return root, chosen


def _values_joined(argv: list[str], command: argparse.ArgumentParser) -> list[str]:
    """ARGV with each option that takes a value joined to it (``--quote=-5 dead``), as getopt reads them.

    argparse takes a word that starts with a dash for an option, so without
    this, a quote or a checkpoint that begins with one could not be given.
    """
    takes_value = {
        flag for action in command._actions if action.nargs is None and action.const is None
        for flag in action.option_strings
    }  # fmt: skip
    joined: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            joined += [word, *words]
        elif word in takes_value and (value := next(words, None)) is not None:
            joined.append(f"{word}={value}")
        else:
            joined.append(word)
    return joined


# -- values of arguments -------------------------------------------------------


class _Value(argparse.ArgumentTypeError):
    """A value argparse shows as `argument --name: <why>`."""


def _log_name(value: str) -> str:
    if not value.strip():
        raise _Value("must name a log: a JSON Lines file, sqlite:///path.db or postgresql://...")
    return value


def _path(*, file_okay: bool = True, dir_okay: bool = True) -> Callable[[str], Path]:
    """A path argument as a ``pathlib.Path``, refused at once if what is there cannot be what is asked for."""

    def convert(value: str) -> Path:
        from pathlib import Path

        path = Path(value)
        if not value:
            raise _Value("must not be empty")
        if not file_okay and path.is_file():
            raise _Value(f"{shown(value)} is a file, not a folder")
        if not dir_okay and path.is_dir():
            raise _Value(f"{shown(value)} is a folder, not a file")
        if path.exists() and not os.access(path, os.R_OK):
            raise _Value(f"{shown(value)} is not readable")
        return path

    return convert


def _count(least: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise _Value(f"{shown(value)} is not a whole number") from None
        if number < least:
            raise _Value(f"{number} is below {least}")
        return number

    return convert


def _parse_day(value: str) -> dt.date:
    """A date option that is a plain calendar date (--as-of has rules of its own)."""
    from events_log.codec import parse_date

    try:
        return parse_date(value)
    except ValueError as exc:
        raise _Value(str(exc)) from None


def _parse_as_of(value: str) -> dt.date:
    import datetime as dt

    from events_log.admission import SLACK

    day = _parse_day(value)
    # Today (UTC) plus the day of slack a report date may have (see admission.SLACK).
    latest = dt.datetime.now(dt.UTC).date() + SLACK
    if day > latest:
        raise _Value(f"{day} is in the future; nothing can have been reported after {latest}")
    return day


def _parse_known_at(value: str) -> dt.datetime:
    """A date (the end of that day, UTC) or an ISO timestamp (UTC when no zone is given)."""
    import datetime as dt

    from events_log.codec import parse_date

    try:
        day = parse_date(value)
    except ValueError:
        pass
    else:
        return dt.datetime.combine(day, dt.time.max, dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Value(f"expected a date or an ISO timestamp, got {shown(value)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise _Value(f"{shown(value)} is before the year 1 in UTC") from None


# -- arguments shared by commands ----------------------------------------------

LOG = arg(
    "--log", type=_log_name, metavar="PATH",
    help="The log: a JSON Lines file, sqlite:///path.db or postgresql://... "
    "Default: $TIMELINE_LOG, else (for reading) the bundled dataset, also named `bundled`.",
)  # fmt: skip


def _observation_arguments() -> tuple[Argument, ...]:
    """One option per CSV column, so `append` and `correct` read like the import file."""
    helps = {
        "id": "Observation id (default: derived from the content).",
        "kind": "cumulative or increment.",
        "qualifier": "exact, about, at_least, at_most or range.",
        "reported_on": "Date the figure was published (YYYY-MM-DD).",
    }
    return tuple(
        arg("--" + column.replace("_", "-"), dest=column, metavar="TEXT", help=helps.get(column)) for column in COLUMNS
    )


OBSERVATION = _observation_arguments()

DESCRIBE_NEW = arg(
    "--describe-new", action="store_true",
    help="Describe the incidents and monitors the log does not know yet, in the same batch, "
    "with the slug as their title or name (for loading a new dataset in one go).",
)  # fmt: skip

AS_OF = arg("--as-of", type=_parse_as_of, metavar="DATE", help="Only figures reported on or before DATE.")
KNOWN_AT = arg(
    "--known-at", type=_parse_known_at, metavar="TIME",
    help="Only what the log held at TIME: a date (its end, UTC) or an ISO timestamp (UTC if no zone).",
)  # fmt: skip

ALLOW_DUPLICATE = arg(
    "--allow-duplicate", action="store_true",
    help="Take an observation that repeats one in the log (same series, day and figure; for an increment "
    "also the same source URL or quote): for a monitor that really published the same figure twice.",
)  # fmt: skip

EXPECTED_VERSION = arg(
    "--expected-version", type=_count(0), metavar="N",
    help="Refuse unless the record is still at version N (the position `timeline log` shows for it "
    "or for its last correction). Default: the version read under the log's write lock.",
)  # fmt: skip


# -- running a command ---------------------------------------------------------

# The stores the running command opened: a database's connections end with the command. Those it opened
# to write to, too: only their interruption is worth a word on what landed.
_OPENED: list[Store] = []
_WRITING: list[Store] = []


def open_log(log: str | None, *, write: bool) -> Store:
    """The store a command works on; the bundled dataset only ever for reading.

    The name ``bundled`` is the bundled dataset wherever a log is named (``--log``,
    either side of ``copy``), as for ``timeline.open_log``: as a place to write it
    would otherwise start a file ``./bundled`` that later reads looked like the dataset.
    """
    from pathlib import Path

    from events_log.stores import open_store
    from timeline.bundled import bundled_log
    from timeline.index import REPLAY_INDEX

    bundled = bundled_log()
    if log is None:
        if write:
            raise ReadOnlyLogError(_NO_LOG)
        return open_store(str(bundled), read_only=True)
    if log == "bundled" or ("://" not in log and Path(log).resolve() == bundled.resolve()):
        if write:
            raise ReadOnlyLogError("the bundled dataset is read-only; " + _NO_LOG.split(": ", 1)[1])
        return open_store(str(bundled) if log == "bundled" else log, read_only=True)
    store = open_store(log)
    store.rebuilding = lambda runs, length, title: _progress(runs, f"reading the log into the {title}", length)
    _OPENED.append(store)
    if write:
        _WRITING.append(store)
    # Only writers create a log: a typo in a path must not read as an empty log.
    if not write and not store.exists():
        raise InputError(f"no log at {store.location}")
    store.keep(REPLAY_INDEX)  # every append keeps the replay index beside the log up to date
    return store


def run(argv: list[str] | None = None) -> int:
    """Run `timeline ARGV` (default: this process's arguments); its exit code.

    Every failure ends here as one line on stderr: 2 for what the user can
    fix by typing it again (a bad argument, bad input, a race lost to another
    writer: nothing was written), 1 for a problem with the log itself.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        with warnings.catch_warnings():
            # The library warns (say, of a replay index rebuilt); the command line says it once, in one line.
            warnings.simplefilter("once", IndexMismatchWarning)
            warnings.showwarning = _show_warning
            root, command = parser(argv)
            return _dispatch(root, _values_joined(argv, command))
    except UsageError as exc:
        _say(f"timeline: error: {exc} (see `{exc.prog or 'timeline'} --help`)", err=True)
        return 2
    except (InputError, LogChangedError) as exc:
        # A lost race is answered like bad input: nothing was written; look again and redo it.
        _say(f"timeline: error: {exc}", err=True)
        return 2
    except TimelineError as exc:
        _say(f"timeline: error: {exc}", err=True)
        return 1
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt as exc:
        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if _WRITING:
            stopped += "; a batch is appended whole or not at all, and `timeline log --last 1` shows whether it was"
        _say(f"timeline: {stopped}", err=True)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        _WRITING.clear()
        while _OPENED:
            _OPENED.pop().close()


def _dispatch(root: argparse.ArgumentParser, argv: list[str]) -> int:
    args, unknown = root.parse_known_args(argv)
    chosen: argparse.ArgumentParser = args.parser
    unknown = [word for word in unknown if word != "--"]  # after "--", every word is an unexpected argument
    if unknown:
        chosen.error(f"unrecognized arguments: {' '.join(unknown)}")
    settings = {name: value for name, value in vars(args).items() if name not in ("parser", "function")}
    function = getattr(args, "function", None)
    if function is None:
        if chosen is root:
            root.print_help()
            return 2
        raise UsageError("say what to describe: `incident SLUG --title T` or `monitor SLUG --name N`", chosen.prog)
    if "log" in settings and settings["log"] is None:
        settings["log"] = os.environ.get("TIMELINE_LOG") or None
    # psycopg logs some failures itself (a COPY cut off with the connection); the command
    # line reports each failure once, as its own one line.
    import logging

    psycopg_logger = logging.getLogger("psycopg")
    psycopg_logger.addHandler(logging.NullHandler())
    psycopg_logger.propagate = False
    try:
        return function(**settings) or 0
    except UsageError as exc:
        exc.prog = exc.prog or chosen.prog
        raise


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, a cancelled CI job), raised where the process is, as Ctrl-C is:
    a batch being written is cut back, not left as a torn tail that every later append refuses."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    """The console script: the command line, quiet when its output pipe closes early."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except OSError as exc:  # one line, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        # A full disk or a failing device on the way out; anything else is said as it is, not blamed on the output.
        what = "cannot write the output: " if exc.errno in _OUTPUT_FAILURES else ""
        print(f"timeline: error: {what}{exc.strerror or exc}{where}", file=sys.stderr)
        code = 1
    sys.exit(code)


_OUTPUT_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _say(text: str, *, err: bool = False, end: str = "\n") -> None:
    """One message for the reader: results on stdout, warnings and errors on stderr."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + end)
    stream.flush()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"timeline: warning: {message}", err=True)


def _progress(items: Iterable[T], label: str, length: int | None = None) -> Iterable[T]:
    """A progress bar on a terminal; silence when stderr is piped or redirected.

    The bar is redrawn from this loop, not by a thread of its own: a process
    with a second thread never forks, and a long replay reads and folds in
    two processes (``events_log/parallel.py``).
    """
    if not sys.stderr.isatty():
        return items

    def shown() -> Iterator[T]:
        import time

        from rich.console import Console  # loads only for a long job on a terminal
        from rich.progress import Progress

        with Progress(console=Console(file=sys.stderr), auto_refresh=False) as bar:
            task = bar.add_task(label, total=length)
            done, drawn, clock = 0, time.monotonic(), time.monotonic
            for done, item in enumerate(items, 1):
                yield item
                # The clock at every item (tens of nanoseconds): items may come fast, then slowly.
                if (now := clock()) - drawn >= _REDRAW:
                    bar.update(task, completed=done, refresh=True)
                    drawn = now
            bar.update(task, completed=done, total=done, refresh=True)  # done: however many a length guessed

    return shown()


_REDRAW = 0.1  # seconds between two drawings of a progress bar


def _warn_if_torn(store: Store) -> None:
    torn = store.torn()
    if torn is not None:
        _say(
            f"warning: {store.location} ends in an incomplete write ({torn.size} bytes); "
            f"using the complete entries; run `timeline repair` to set it aside",
            err=True,
        )


# -- the commands --------------------------------------------------------------


@command(
    "append", LOG, *OBSERVATION,
    arg("--json", dest="json_text", metavar="JSON", help='One event of any type, e.g. {"type": "Retraction", ...}.'),
    DESCRIBE_NEW, ALLOW_DUPLICATE,
)  # fmt: skip
def append(
    log: str | None, json_text: str | None, describe_new: bool, allow_duplicate: bool, **columns: str | None
) -> None:
    """Append one observation given as options, or one event as --json."""
    import orjson

    from events_log.codec import event_from_input
    from events_log.importers import observation_from_row
    from timeline import output
    given = {k: v for k, v in columns.items() if v is not None}
    if json_text is not None:
        if given:
            raise InputError("give either --json or the observation options, not both", "--json")
        try:
            data = orjson.loads(json_text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc})", "--json") from None
        event = _located(lambda: event_from_input(data), "--json")
    else:
        if not given:
            raise UsageError("give the observation's options or --json")
        event = _located(lambda: observation_from_row(given), "options")
    store = open_log(log, write=True)
    *described, entry = store.append(
        [event], labels=["--json" if json_text else "options"], describe_new=describe_new,
        allow_duplicate=allow_duplicate,
    )  # fmt: skip
    _echo_described([(entry.position, entry.event) for entry in described])
    _say(f"appended {output.describe_event(entry.event)} at position {entry.position} of {store.location}")


@command(
    "import", LOG, arg("file", metavar="FILE", type=_path()),
    arg("--format", dest="format_", choices=["csv", "jsonl"], help="Default: from the extension."),
    DESCRIBE_NEW, ALLOW_DUPLICATE,
)  # fmt: skip
def import_(log: str | None, file: Path, format_: str | None, describe_new: bool, allow_duplicate: bool) -> None:
    """Append every event of FILE (CSV of observations, or JSON Lines of events), all or nothing.

    FILE may also be a data package from `timeline export --format datapackage` (its folder or
    its datapackage.json): the incidents and monitors the log lacks are described, then its
    observations appended.
    """
    from events_log.cycles import no_cycle_collection
    from events_log.importers import iter_events
    from events_log.memory import give_back_freed
    from events_log.spool import Spool
    from timeline import interchange, output, stored
    store = open_log(log, write=True)
    store.check_writable()  # a mistyped --log fails now, not after the whole file is read
    if format_ is None and interchange.is_package(file):
        labelled = interchange.read_datapackage(file, store)
    else:
        # No bar, no counting of the file's lines for one, when stderr is not a terminal.
        reading = (lambda lines, length: _progress(lines, "reading", length)) if sys.stderr.isatty() else None
        labelled = iter_events(file, format_, progress=reading, stored=True)
    # The file's events wait in a spool, not in memory: an import of millions of rows stays small.
    tally = output.Tally()
    with no_cycle_collection(), Spool.of(tally.counting(labelled)) as spool:
        if not spool.count:
            raise InputError("no events in the file", str(file))
        appended = store.append_spool(
            spool,
            describe_new=describe_new,
            allow_duplicate=allow_duplicate,
            progress=lambda lines, length: _progress(lines, "writing", length),
        )
    _echo_described(list(enumerate(appended.described, appended.first - len(appended.described))))
    last = appended.first + appended.count - 1
    _say(f"imported {appended.count} events from {file} into {store.location} (positions {appended.first}-{last}):")
    for line in tally.lines():
        _say("  " + line)
    # The replay a freshly loaded dataset is asked for first is made now, and kept beside the log, on
    # memory the reading and writing freed (the allocator would keep it, and the replay would add to it).
    # It costs one replay of the whole log: only a batch at least as large as the log before it (a
    # dataset loaded) pays that; a day's rows into a large log leave it to the next whole replay.
    if appended.count + len(appended.described) >= appended.first - len(appended.described):
        give_back_freed()
        stored.keep(store, progress=lambda series, length: _progress(series, "replaying", length))


@command(
    "correct", LOG, arg("observation_id", metavar="ID"),
    arg("--reason", required=True, help="Why our record was wrong (kept in the log)."),
    EXPECTED_VERSION, *OBSERVATION,
)  # fmt: skip
def correct(
    log: str | None, observation_id: str, reason: str, expected_version: int | None, **columns: str | None
) -> None:
    """Fix our record of observation ID: give only the fields that change.

    An emptied option (--location "") clears that field. Changing --low of an
    exact figure moves its high with it. The record is read, and the fix
    appended, under one lock: a fix made at the same moment by someone else
    is built upon, never lost (or, with --expected-version, refused).
    """
    from events_log.events import Correction
    from events_log.importers import with_changes
    from timeline import output
    changes = {k: v for k, v in columns.items() if v is not None}
    if not changes:
        raise UsageError("give at least one field to change, e.g. --low 1383")
    if "id" in changes:
        raise InputError("an observation's id cannot be corrected; retract it and append a new one", "--id")
    store = open_log(log, write=True)
    was: list[Observation] = []

    def build(current: Observation, version: int) -> Correction:
        was.append(current)
        replacement = with_changes(current, changes)
        return Correction(
            observation_id=observation_id, replacement=replacement, reason=reason, expected_version=version
        )

    entry = store.fix(observation_id, build, expected_version=expected_version, label=observation_id)
    change = output.describe_change(was[-1], entry.event.replacement)
    _say(f"corrected {observation_id} at position {entry.position}: {change}")


@command(
    "retract", LOG, arg("observation_id", metavar="ID"),
    arg("--reason", required=True, help="Why the record should never have been entered."), EXPECTED_VERSION,
)  # fmt: skip
def retract(log: str | None, observation_id: str, reason: str, expected_version: int | None) -> None:
    """Withdraw our record of observation ID (it stays in the log, marked retracted)."""
    from events_log.events import Retraction
    store = open_log(log, write=True)
    _located(lambda: Retraction(observation_id=observation_id, reason=reason), "options")
    entry = store.fix(
        observation_id,
        lambda current, version: Retraction(observation_id=observation_id, reason=reason, expected_version=version),
        expected_version=expected_version,
        label=observation_id,
    )
    _say(f"retracted {observation_id} at position {entry.position}")


@command(
    "describe incident", LOG, arg("slug", metavar="SLUG"),
    arg("--title", required=True, help="What the incident is called, e.g. '2025 coastal massacres'."),
    arg("--place", help="Where it happened."),
    arg("--start-date", metavar="DATE", type=_parse_day, help="When it began (YYYY-MM-DD)."),
    arg("--summary", help="A few sentences on what happened."),
    arg("--link", dest="links", action="append", default=[], metavar="URL", help="A document about it (repeatable)."),
)  # fmt: skip
def describe_incident(
    log: str | None, slug: str, title: str, place: str | None, start_date: dt.date | None, summary: str | None,
    links: list[str],
) -> None:  # fmt: skip
    """Describe incident SLUG (its slug is what observations name)."""
    from events_log.events import IncidentDescribed, Link
    event = _located(
        lambda: IncidentDescribed(
            slug=slug, title=title, place=place or None, start_date=start_date, summary=summary or None,
            links=tuple(Link(title=url, url=url) for url in links),
        ),
        "options",
    )  # fmt: skip
    _append_description(log, event)


@command(
    "describe monitor", LOG, arg("slug", metavar="SLUG"),
    arg("--name", dest="full_name", required=True, help="Who the monitor is, e.g. 'Syrian Network for Human Rights'."),
    arg("--url", help="Its website."),
    arg("--about", help="What it is and how it counts, in the words of the sources."),
)  # fmt: skip
def describe_monitor(log: str | None, slug: str, full_name: str, url: str | None, about: str | None) -> None:
    """Describe monitor SLUG (its slug is what observations name)."""
    from events_log.events import MonitorDescribed
    event = _located(
        lambda: MonitorDescribed(slug=slug, full_name=full_name, url=url or None, description=about or None),
        "options",
    )
    _append_description(log, event)


def _append_description(log: str | None, event: IncidentDescribed | MonitorDescribed) -> None:
    from events_log.admission import DESCRIBES
    from timeline import output
    store = open_log(log, write=True)
    kind = DESCRIBES[type(event).__name__]
    again = (kind, event.slug) in store.names()
    [entry] = store.append([event], labels=["options"])
    replaced = "; it replaces the earlier description" if again else ""
    _say(f"described {output.describe_event(event)} at position {entry.position}{replaced}")


@command("incidents", LOG)
def incidents(log: str | None) -> None:
    """List the incidents the log describes: figures counted, latest report, title."""
    _list_described(log, "incident")


@command("monitors", LOG)
def monitors(log: str | None) -> None:
    """List the monitors the log describes: figures counted, latest report, name."""
    _list_described(log, "monitor")


def _list_described(log: str | None, kind: str) -> None:
    """One line per described name; figures are effective observations (after corrections and retractions)."""
    from events_log.events import IncidentDescribed
    from timeline.replay import replay as run_replay
    store = open_log(log, write=False)
    _warn_if_torn(store)
    result = run_replay(store)
    described = result.incidents if kind == "incident" else result.monitors
    tallies = result.tallies(kind)
    if not described:
        _say(f"(no {kind}s described in {store.location}; `timeline describe {kind} SLUG` describes one)")
        return
    width = max(len(slug) for slug in described)
    _say(f"{kind:<{width}}  {'figures':>8}  {'latest':<10}  {'title' if kind == 'incident' else 'name'}")
    for slug in sorted(described, key=lambda name: (name.casefold(), name)):
        count, latest = tallies.get(slug, (0, None))
        event = described[slug]
        title = event.title if isinstance(event, IncidentDescribed) else event.full_name
        _say(f"{slug:<{width}}  {count:>8,}  {latest.isoformat() if latest else '-':<10}  {title}")


@command(
    "replay", LOG, AS_OF, KNOWN_AT,
    arg("--incident", metavar="SLUG", help="Only this incident's series."),
    arg("--monitor", metavar="SLUG", help="Only this monitor's series."),
    arg("--format", dest="format_", choices=["table", "csv", "json"], default="table", help="Default: table."),
    arg(
        "--days", choices=["every", "reports"], default="every",
        help="CSV and JSON: every day of each series, or only its report days (no carried days). Default: every.",
    ),
)  # fmt: skip
def replay(
    log: str | None,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    format_: str,
    days: str,
) -> None:
    """Rebuild each monitor's per-day running toll from the log."""
    from timeline import output, stored
    from timeline.replay import replay as run_replay
    store = open_log(log, write=False)
    _warn_if_torn(store)
    # The whole log as CSV is kept beside it, for the head it was made at (timeline/stored.py).
    whole = format_ == "csv" and days == "every" and all(v is None for v in (as_of, known_at, incident, monitor))
    if whole and (kept := stored.kept_whole(store)) is not None:
        stored.copy(kept, sys.stdout.buffer)
        return
    progress = lambda series, length: _progress(series, "replaying", length)  # noqa: E731
    if whole:  # folded and written a series at a time, and kept beside the log on the way
        stored.keep(store, progress, out=sys.stdout.buffer)
        return
    result = run_replay(store, as_of=as_of, known_at=known_at, incident=incident, monitor=monitor, progress=progress)
    if format_ == "json":
        output.write_json(result, sys.stdout.buffer, reports_only=days == "reports")
    elif format_ == "csv":
        output.write_csv(result, sys.stdout, reports_only=days == "reports")
    else:
        _say(output.render_table(result), end="")


@command(
    "report", LOG, AS_OF, KNOWN_AT,
    arg("--incident", metavar="SLUG", help="Only this incident."),
    arg("--out", type=_path(file_okay=False), default="report", metavar="DIR",
        help="Folder to write the pages into. Default: report."),
    arg("--single-file", action="store_true", help="Inline plotly.js into every page (for e-mailing one file)."),
    arg("--open", dest="open_", action="store_true", help="Open the index in a web browser when done."),
)  # fmt: skip
def report(
    log: str | None,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    out: Path,
    single_file: bool,
    open_: bool,
) -> None:
    """Build interactive HTML timelines: an index of incidents and one page per incident."""
    import webbrowser

    from reports.build import build_report  # Plotly and Jinja2 load only for this command.
    from reports.commands import rebuild_command, verify_command
    from timeline.replay import replay as run_replay

    store = open_log(log, write=False)
    _warn_if_torn(store)
    result = run_replay(
        store, as_of=as_of, known_at=known_at, incident=incident,
        progress=lambda series, length: _progress(series, "replaying", length),
    )  # fmt: skip
    if incident is not None and not result.series:
        raise InputError(f"no observations of incident {shown(incident)} in {store.location}", "--incident")
    command = rebuild_command(
        log, as_of=as_of, known_at=known_at or result.last_recorded_at, incident=incident, out=out,
        single_file=single_file,
    )  # fmt: skip
    proof = verify_command(log, result.log)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} is a file, not a folder", "--out")
    built = build_report(result, out, command=command, single_file=single_file, verify_command=proof,
                         progress=lambda slugs, length: _progress(slugs, "writing pages", length),
                         reopen=lambda: open_log(log, write=False))  # fmt: skip
    _say(
        f"wrote {len(built.pages)} incident page(s) and the index to {built.folder}/ "
        f"({built.size / 1e6:.1f} MB, log of {result.log.entries} entries, head {result.log.head[:12]})"
    )
    _say(f"open {built.index.resolve().as_uri()}")
    if open_:
        webbrowser.open(built.index.resolve().as_uri())


@command(
    "export", LOG, AS_OF, KNOWN_AT,
    arg("--incident", metavar="SLUG", help="Only this incident's series and observations."),
    arg("--monitor", metavar="SLUG", help="Only this monitor's series and observations."),
    arg("--format", dest="format_", choices=["datapackage", "hxl"], required=True),
    arg("--out", type=_path(), metavar="PATH",
        help="datapackage: the folder to write (required). hxl: the file (default: standard output)."),
    arg("--licence", metavar="NAME", help="datapackage: the licence of the data, e.g. CC-BY-4.0."),
)  # fmt: skip
def export(
    log: str | None,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    format_: str,
    out: Path | None,
    licence: str | None,
) -> None:
    """Export a replay for other tools: a Frictionless Data Package, or HXL-tagged CSV for HDX."""
    from timeline import interchange
    from timeline.replay import replay as run_replay
    if format_ == "datapackage" and out is None:
        raise InputError("a data package is a folder: give --out DIR", "--out")
    if licence is not None and format_ != "datapackage":
        raise InputError("only a data package carries a licence", "--licence")
    if out is not None:
        for folder in (out if format_ == "datapackage" else out.parent, *out.parents):
            if folder.exists() and not folder.is_dir():
                raise InputError(f"{folder} is a file, not a folder", "--out")
        if format_ == "hxl" and out.is_dir():
            raise InputError(f"{out} is a folder; name the file to write", "--out")
    if licence is not None and not licence.strip():
        raise InputError("must not be empty", "--licence")
    store = open_log(log, write=False)
    _warn_if_torn(store)
    result = run_replay(store, as_of=as_of, known_at=known_at, incident=incident, monitor=monitor)
    if format_ == "datapackage":
        location = store.location if log is None else log
        try:
            written = interchange.write_datapackage(
                result, out, location=location, licence=licence, incident=incident, monitor=monitor
            )
        except OSError as exc:
            raise InputError(f"cannot write the package: {exc.strerror or exc}", "--out") from None
        _say(
            f"wrote a data package of {len(result.series)} series to {written} "
            f"(log of {result.log.entries} entries, head {result.log.head[:12]})"
        )
    elif out is None:
        interchange.write_hxl(result, sys.stdout)
    else:
        text = io.StringIO()
        interchange.write_hxl(result, text)
        try:
            out.write_text(text.getvalue(), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}", "--out") from None
        _say(f"wrote HXL-tagged CSV to {out}")


@command("copy", arg("source", metavar="SRC", type=_log_name), arg("destination", metavar="DST", type=_log_name))
def copy(source: str, destination: str) -> None:
    """Copy every entry of log SRC into log DST, byte for byte (same hashes, same head).

    SRC and DST are log names as for --log (a file, sqlite:///path.db or postgresql://...);
    SRC may be `bundled` for the bundled dataset. DST must be empty or an earlier copy of SRC,
    so an interrupted copy can be run again.
    """
    source_store = open_log(source, write=False)
    _warn_if_torn(source_store)
    target = open_log(destination, write=True)
    length = source_store.head().entries
    before = target.head().entries
    head = target.copy_from(source_store, progress=lambda lines: _progress(lines, "copying", length))
    checked = target.verify()
    _say(
        f"copied {head.entries - before} entries into {target.location}; "
        f"both hold {checked.head.entries} entries with head {checked.head.head}"
    )


@command(
    "log", LOG, arg("--last", type=_count(1), metavar="N", help="Only the last N entries."),
    arg("--format", dest="format_", choices=["table", "jsonl"], default="table", help="Default: table."),
    arg("--incident", metavar="SLUG", help="Only entries about this incident."),
    arg("--monitor", metavar="SLUG", help="Only entries about this monitor."),
)  # fmt: skip
def log_(log: str | None, last: int | None, format_: str, incident: str | None, monitor: str | None) -> None:
    """List the log's entries: position, time recorded, type and what each says.

    With --incident or --monitor, only the entries about it: its description,
    the observations naming it, and their corrections and retractions.
    """
    from events_log.envelope import Entry, decode_line
    from timeline import output
    from timeline.replay import refuse_undescribed
    store = open_log(log, write=False)
    _warn_if_torn(store)
    chosen = None
    if incident is not None or monitor is not None:
        refuse_undescribed(store.names(), incident=incident, monitor=monitor)
        chosen = _about(incident, monitor)
    start = max(0, store.head().entries - last) if last else 0
    if format_ == "jsonl":
        lines = store.lines(start) if chosen is None else (
            line for line in store.lines() if chosen(Entry.from_raw(decode_line(line))))
        if chosen is not None and last:
            lines = collections.deque(lines, maxlen=last)
        for line in lines:
            sys.stdout.buffer.write(line + b"\n")
        return
    entries = store.entries(start) if chosen is None else (e for e in store.entries() if chosen(e))
    if chosen is not None and last:
        entries = collections.deque(entries, maxlen=last)
    for entry in entries:
        stamp = entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        _say(f"{entry.position:>6}  {stamp}Z  {entry.type:<17}  {output.describe_event(entry.event)}")


@command(
    "verify", LOG,
    arg("--expect", dest="expected", action="append", default=[], metavar="ENTRIES:HASH",
        help="A checkpoint the log must still extend (repeatable); the hash may be cut to 12 hex digits."),
    arg("--checkpoints", dest="checkpoint_file", type=_path(dir_okay=False), metavar="FILE",
        help="A file of checkpoints (from `timeline checkpoint --out`): the log must extend every one."),
    arg("--trust", dest="trusted", action="append", default=[], type=_path(dir_okay=False), metavar="PUBKEY",
        help="A public key (repeatable): every line of --checkpoints must be signed by one of them."),
    arg("--repair-index", action="store_true",
        help="Build anew what is kept beside the log (the replay index, the replay kept as CSV) if it does not match."),
)  # fmt: skip
def verify(
    log: str | None,
    expected: list[str],
    checkpoint_file: Path | None,
    trusted: list[Path],
    repair_index: bool,
) -> int:
    """Check every entry's hash and the chain; name the first bad position (exit 1).

    With --expect or --checkpoints, also prove that the log still extends each
    checkpoint, so that a log rewritten and rehashed after one is caught. On a
    PostgreSQL log, the checkpoints kept on the server are checked too.
    """
    from events_log import checkpoints as cps
    if trusted and checkpoint_file is None:
        raise InputError("it checks the signatures of a checkpoint file: give --checkpoints FILE too", "--trust")
    wanted = [(f"--expect {text}", cps.parse_checkpoint(text, "--expect")) for text in expected]
    keys = [cps.load_public_key(path) for path in trusted]
    recorded = cps.read_file(checkpoint_file) if checkpoint_file is not None else []
    cps.check_signatures(recorded, keys or None)
    store = open_log(log, write=False)
    kept = cps.parse_lines(store.kept_checkpoints(), store.location, "checkpoint {number} kept in {name}")
    cps.check_signatures(kept, None)
    try:
        checked = store.verify(
            repair_index=repair_index, progress=lambda lines, length: _progress(lines, "verifying", length)
        )
    except (StoredEntryError, UnreadableEntryError) as exc:
        raise LogError(exc.finding) from None
    except BrokenChainError as exc:  # found knowing the line, not the log
        raise LogError(f"{store.location}: {exc}") from None
    _say(f"{store.location}: {checked.head.entries} entries, chain intact, head {checked.head.head}")
    every = wanted + [(item.where, item.checkpoint) for item in (*recorded, *kept)]
    if every:
        cps.check_extends(store, every)
        signed = sum(item.key is not None for item in (*recorded, *kept))
        _say(
            f"{store.location}: extends all {len(every)} checkpoint(s)"
            + (f" ({signed} signed, signatures valid)" if signed else "")
            + (f", {len(kept)} of them kept on the server" if kept else "")
        )
    if checked.index_note:
        _say(f"{store.location}: {checked.index_note}", err=checked.index_mismatch)
    from timeline import stored
    results = stored.check(store, repair=repair_index)
    for note, finding in results:
        _say(f"{store.location}: {note}", err=finding)
    result_mismatch = any(finding for _, finding in results)
    if checked.torn is not None:
        _say(
            f"{store.location}: ends in an incomplete write ({checked.torn.size} bytes after the last entry); "
            f"run `timeline repair`",
            err=True,
        )
    return 1 if checked.torn is not None or checked.index_mismatch or result_mismatch else 0


@command(
    "checkpoint", LOG,
    arg("--out", type=_path(dir_okay=False), metavar="FILE",
        help="Append the checkpoint to FILE (entries, head, time, log) instead of printing it."),
    arg("--sign", dest="key_file", type=_path(dir_okay=False), metavar="KEY",
        help="Sign the checkpoint line with this Ed25519 private key (from `timeline keygen`)."),
)  # fmt: skip
def checkpoint(log: str | None, out: Path | None, key_file: Path | None) -> None:
    """Print the log's checkpoint, ENTRIES:HASH, after verifying its chain.

    Keep it outside the log (a file in git, a partner's inbox): `timeline verify
    --expect` or `--checkpoints` later proves that the log still extends it.
    On a PostgreSQL log the server keeps it too.
    """
    from events_log import checkpoints as cps
    key = cps.load_private_key(key_file) if key_file is not None else None
    store = open_log(log, write=False)
    _warn_if_torn(store)
    checked = store.verify()
    if checked.index_mismatch:
        _say(f"timeline: warning: {store.location}: {checked.index_note}", err=True)
    point = cps.Checkpoint.of(checked.head)
    location = store.location if log is None else cps.public_location(log)
    line = cps.checkpoint_line(point, store.now(), location, key)
    if store.keep_checkpoint(line):
        _say(f"kept checkpoint {point.short} in {store.location}", err=True)
    if out is not None:
        cps.append_line(out, line)
        _say(f"appended checkpoint {point} of {location} to {out}" + (" (signed)" if key else ""))
    elif key is not None:
        _say(line.decode())
    else:
        _say(str(point))


@command("keygen", arg("key_file", metavar="KEY", type=_path(dir_okay=False)))
def keygen(key_file: Path) -> None:
    """Write a new Ed25519 key pair: KEY (private, mode 0600) and KEY.pub; never overwrites."""
    from events_log import checkpoints as cps
    public = cps.write_key_pair(key_file)
    _say(f"wrote the private key {key_file} (keep it secret) and the public key {public} (share it)")


@command("repair", LOG)
def repair(log: str | None) -> None:
    """Move an incomplete write at the end of the log into a quarantine file beside it."""
    store = open_log(log, write=True)
    if not store.can_tear:
        _say(f"{store.location}: this kind of store cannot hold a torn write; nothing to repair")
        return
    repaired = store.repair()
    if repaired is None:
        _say(f"{store.location}: nothing to repair; the log ends with a complete entry")
        return
    torn = repaired.torn
    partial = f", holding {torn.entries} complete line(s) of an unfinished batch" if torn.entries else ""
    _say(
        f"moved {torn.size} bytes from the end of {store.location} (byte {torn.offset} on{partial}) "
        f"to {repaired.quarantine}; no acknowledged entry was touched"
    )


# -- helpers ---------------------------------------------------------------


def _located(build: Callable[[], T], where: str) -> T:
    try:
        return build()
    except InputError as exc:
        raise exc.located(where) from None


def _about(incident: str | None, monitor: str | None) -> Callable[[Entry], bool]:
    """Whether an entry, met in log order, is about the incident and monitor chosen."""
    from events_log.events import Correction, IncidentDescribed, Observation, Retraction
    ids: set[str] = set()

    def names_them(o: Observation) -> bool:
        return (incident is None or o.incident == incident) and (monitor is None or o.monitor == monitor)

    def chosen(entry: Entry) -> bool:
        event = entry.event
        if isinstance(event, Observation):
            if names_them(event):
                ids.add(event.id)
            return event.id in ids
        if isinstance(event, Correction):
            # A correction that moves a record to or from the chosen names is about them.
            was = event.observation_id in ids
            if names_them(event.replacement):
                ids.add(event.observation_id)
            return was or event.observation_id in ids
        if isinstance(event, Retraction):
            return event.observation_id in ids
        if isinstance(event, IncidentDescribed):
            return monitor is None and event.slug == incident
        return incident is None and event.slug == monitor

    return chosen


def _echo_described(described: list[tuple[int, Event]], limit: int = 20) -> None:
    """Each new description on a line, with its position, or, for a new dataset's many, how many of each and where."""
    from timeline import output
    if len(described) <= limit:
        for position, event in described:
            _say(f"described {output.describe_event(event)} at position {position} (new)")
        return
    counts = collections.Counter(type(event).__name__ for _, event in described)
    what = " and ".join(f"{counts[name]:,} {noun}" for name, noun in (
        ("IncidentDescribed", "incidents"), ("MonitorDescribed", "monitors")) if counts[name])  # fmt: skip
    _say(
        f"described {what} (new, positions {described[0][0]}-{described[-1][0]}), each titled with its slug; "
        "`timeline incidents` and `timeline monitors` list them"
    )
