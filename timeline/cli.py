"""The `timeline` command: a thin layer over the library.

Each command parses its options, calls the library and formats the result.
User errors end in one line on stderr and exit code 2; problems with the
log itself exit 1; nothing is appended unless the whole input is good.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import sys
import warnings
import webbrowser
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from events_log import checkpoints as cps
from events_log.codec import event_from_input, parse_date
from events_log.errors import IndexMismatchWarning, InputError, ReadOnlyLogError, TimelineError, shown
from events_log.events import Correction, Observation, Retraction
from events_log.importers import COLUMNS, observation_from_row, read_events, row_from_observation
from events_log.store import Store
from events_log.stores import open_store, redact_url

from . import output
from .dataset import bundled_log
from .replay import replay as run_replay

T = TypeVar("T")

_NO_LOG = (
    "no log to write to: pass --log PATH (or set TIMELINE_LOG) to name a log of your own; "
    "a new path starts an empty log, and `timeline copy` copies the bundled dataset into one"
)


# -- options shared by commands ---------------------------------------------


def log_option(command: Callable) -> Callable:
    return click.option(
        "--log",
        "log",
        envvar="TIMELINE_LOG",
        metavar="PATH",
        help="The log: a JSON Lines file. Default: $TIMELINE_LOG, else (for reading) the bundled dataset.",
    )(command)


def _observation_options(command: Callable) -> Callable:
    """One option per CSV column, so `append` and `correct` read like the import file."""
    helps = {
        "id": "Observation id (default: derived from the content).",
        "kind": "cumulative or increment.",
        "qualifier": "exact, about, at_least, at_most or range.",
        "reported_on": "Date the figure was published (YYYY-MM-DD).",
    }
    for column in reversed(COLUMNS):
        flag = "--" + column.replace("_", "-")
        command = click.option(flag, column, default=None, metavar="TEXT", help=helps.get(column))(command)
    return command


def open_log(log: str | None, *, write: bool) -> Store:
    """The store a command works on; the bundled dataset only ever for reading."""
    bundled = bundled_log()
    if log is None:
        if write:
            raise ReadOnlyLogError(_NO_LOG)
        return open_store(str(bundled), read_only=True)
    if "://" not in log and Path(log).resolve() == bundled.resolve():
        if write:
            raise ReadOnlyLogError("the bundled dataset is read-only; " + _NO_LOG.split(": ", 1)[1])
        return open_store(log, read_only=True)
    return open_store(log)


def _parse_as_of(ctx, param, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_known_at(ctx, param, value: str | None) -> dt.datetime | None:
    """A date (the end of that day, UTC) or an ISO timestamp (UTC when no zone is given)."""
    if value is None:
        return None
    try:
        day = parse_date(value)
    except ValueError:
        pass
    else:
        return dt.datetime.combine(day, dt.time.max, dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date or an ISO timestamp, got {shown(value)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


as_of_option = click.option(
    "--as-of", callback=_parse_as_of, metavar="DATE", help="Only figures reported on or before DATE."
)
known_at_option = click.option(
    "--known-at",
    callback=_parse_known_at,
    metavar="TIME",
    help="Only what the log held at TIME: a date (its end, UTC) or an ISO timestamp (UTC if no zone).",
)


def _progress(items: Iterable[T], label: str, length: int | None = None) -> Iterable[T]:
    """A progress bar on a terminal; silence when stderr is piped or redirected."""
    if not sys.stderr.isatty():
        return items

    def shown() -> Iterator[T]:
        with click.progressbar(items, label=label, length=length, file=sys.stderr) as bar:
            yield from bar

    return shown()


def _warn_if_torn(store: Store) -> None:
    torn = store.torn()
    if torn is not None:
        click.echo(
            f"warning: {store.location} ends in an incomplete write ({torn.size} bytes); "
            f"using the complete entries; run `timeline repair` to set it aside",
            err=True,
        )


# -- the commands ------------------------------------------------------------


class _Failure(click.ClickException):
    """A project error as the command line shows it: one line, no traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"timeline: error: {self.message}", err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"timeline: warning: {message}", err=True)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                # The library warns (say, of a replay index rebuilt); the command line says it once, in one line.
                warnings.simplefilter("once", IndexMismatchWarning)
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except click.UsageError as exc:
            # A bad option value of a command: one line too, and where to read more.
            name = exc.ctx.command_path if exc.ctx else "timeline"
            raise _Failure(f"{exc.format_message()} (see `{name} --help`)", 2) from None
        except InputError as exc:
            raise _Failure(str(exc), 2) from None
        except TimelineError as exc:
            raise _Failure(str(exc), 1) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="toll-timeline")
def cli() -> None:
    """Keep every published casualty figure with its source, and replay them
    into per-day running tolls for each monitor."""
    # psycopg logs some failures itself (a COPY cut off with the connection); the command
    # line reports each failure once, as its own one line.
    psycopg_logger = logging.getLogger("psycopg")
    psycopg_logger.addHandler(logging.NullHandler())
    psycopg_logger.propagate = False


@cli.command()
@log_option
@_observation_options
@click.option("--json", "json_text", metavar="JSON", help='One event of any type, e.g. {"type": "Retraction", ...}.')
def append(log: str | None, json_text: str | None, **columns: str | None) -> None:
    """Append one observation given as options, or one event as --json."""
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
            raise click.UsageError("give the observation's options (see --help) or --json")
        event = _located(lambda: observation_from_row(given), "options")
    store = open_log(log, write=True)
    [entry] = store.append([event], labels=["--json" if json_text else "options"])
    click.echo(f"appended {output.describe_event(entry.event)} at position {entry.position} of {store.location}")


@cli.command(name="import")
@log_option
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--format", "format_", type=click.Choice(["csv", "jsonl"]), help="Default: from the extension.")
def import_(log: str | None, file: Path, format_: str | None) -> None:
    """Append every event of FILE (CSV of observations, or JSON Lines of events), all or nothing."""
    store = open_log(log, write=True)
    labelled = read_events(file, format_, progress=lambda lines, length: _progress(lines, "reading", length))
    labels = [label for label, _ in labelled]
    entries = store.append([event for _, event in labelled], labels=labels)
    first, last = entries[0].position, entries[-1].position
    click.echo(f"imported {len(entries)} events from {file} into {store.location} (positions {first}-{last}):")
    for line in output.summarise_events([e.event for e in entries]):
        click.echo("  " + line)


@cli.command()
@log_option
@click.argument("observation_id", metavar="ID")
@click.option("--reason", required=True, help="Why our record was wrong (kept in the log).")
@_observation_options
def correct(log: str | None, observation_id: str, reason: str, **columns: str | None) -> None:
    """Fix our record of observation ID: give only the fields that change.

    An emptied option (--location "") clears that field. Changing --low of an
    exact figure moves its high with it.
    """
    changes = {k: v for k, v in columns.items() if v is not None}
    if not changes:
        raise click.UsageError("give at least one field to change, e.g. --low 1383")
    if "id" in changes:
        raise InputError("an observation's id cannot be corrected; retract it and append a new one", "--id")
    store = open_log(log, write=True)
    current = _current_observation(store, observation_id)
    row = row_from_observation(current)
    # "exact 1,225" corrected to low 1,383 stays exact: the old high would contradict it.
    bound_moves = ("low" in changes or "qualifier" in changes) and "high" not in changes
    if bound_moves and changes.get("qualifier", row["qualifier"]) in ("exact", "about", "at_least"):
        row["high"] = ""
    row.update(changes)
    replacement = _located(lambda: observation_from_row(row), "options")
    if replacement == current:
        raise InputError("these values are what the record already says; nothing to correct")
    event = Correction(observation_id=observation_id, replacement=replacement, reason=reason)
    [entry] = store.append([event], labels=[observation_id])
    change = output.describe_change(current, replacement)
    click.echo(f"corrected {observation_id} at position {entry.position}: {change}")


@cli.command()
@log_option
@click.argument("observation_id", metavar="ID")
@click.option("--reason", required=True, help="Why the record should never have been entered.")
def retract(log: str | None, observation_id: str, reason: str) -> None:
    """Withdraw our record of observation ID (it stays in the log, marked retracted)."""
    store = open_log(log, write=True)
    event = _located(lambda: Retraction(observation_id=observation_id, reason=reason), "options")
    [entry] = store.append([event], labels=[observation_id])
    click.echo(f"retracted {observation_id} at position {entry.position}")


@cli.command()
@log_option
@as_of_option
@known_at_option
@click.option("--incident", metavar="SLUG", help="Only this incident's series.")
@click.option("--monitor", metavar="SLUG", help="Only this monitor's series.")
@click.option("--format", "format_", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option(
    "--days", type=click.Choice(["every", "reports"]), default="every", show_default=True,
    help="CSV and JSON: every day of each series, or only its report days (no carried days).",
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
    store = open_log(log, write=False)
    _warn_if_torn(store)
    result = run_replay(
        store,
        as_of=as_of,
        known_at=known_at,
        incident=incident,
        monitor=monitor,
        progress=lambda series, length: _progress(series, "replaying", length),
    )
    if format_ == "json":
        output.write_json(result, sys.stdout.buffer, reports_only=days == "reports")
    elif format_ == "csv":
        output.write_csv(result, sys.stdout, reports_only=days == "reports")
    else:
        click.echo(output.render_table(result), nl=False)


@cli.command()
@log_option
@as_of_option
@known_at_option
@click.option("--incident", metavar="SLUG", help="Only this incident.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("report"), show_default=True,
    help="Folder to write the pages into.",
)  # fmt: skip
@click.option("--single-file", is_flag=True, help="Inline plotly.js into every page (for e-mailing one file).")
@click.option("--open", "open_", is_flag=True, help="Open the index in a web browser when done.")
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
    from reports.build import build_report  # Plotly and Jinja2 load only for this command.

    store = open_log(log, write=False)
    _warn_if_torn(store)
    result = run_replay(
        store, as_of=as_of, known_at=known_at, incident=incident,
        progress=lambda series, length: _progress(series, "replaying", length),
    )  # fmt: skip
    if incident is not None and not result.series:
        raise InputError(f"no observations of incident {shown(incident)} in {store.location}", "--incident")
    pinned = known_at or result.last_recorded_at
    command = " ".join(
        ["timeline report"]
        + ([f"--log {_log_named(log)}"] if log is not None else [])
        + ([f"--as-of {as_of}"] if as_of else [])
        + ([f"--known-at {pinned.isoformat().replace('+00:00', 'Z')}"] if pinned else [])
        + ([f"--incident {incident}"] if incident else [])
        + [f"--out {shlex.quote(str(out))}"]
        + (["--single-file"] if single_file else [])
    )
    proof = " ".join(
        ["timeline verify"]
        + ([f"--log {_log_named(log)}"] if log is not None else [])
        + [f"--expect {cps.Checkpoint.of(result.log).short}"]
    )
    built = build_report(result, out, command=command, single_file=single_file, verify_command=proof,
                         progress=lambda slugs, length: _progress(slugs, "writing pages", length))  # fmt: skip
    click.echo(
        f"wrote {len(built.pages)} incident page(s) and the index to {built.folder}/ "
        f"({built.size / 1e6:.1f} MB, log of {result.log.entries} entries, head {result.log.head[:12]})"
    )
    click.echo(f"open {built.index.resolve().as_uri()}")
    if open_:
        webbrowser.open(built.index.resolve().as_uri())


@cli.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
def copy(source: str, destination: str) -> None:
    """Copy every entry of log SRC into log DST, byte for byte (same hashes, same head).

    SRC and DST are log names as for --log (a file, sqlite:///path.db or postgresql://...);
    SRC may be `bundled` for the bundled dataset. DST must be empty or an earlier copy of SRC,
    so an interrupted copy can be run again.
    """
    source_store = open_log(None if source == "bundled" else source, write=False)
    _warn_if_torn(source_store)
    target = open_log(destination, write=True)
    length = source_store.head().entries
    before = target.head().entries
    head = target.copy_from(source_store, progress=lambda lines: _progress(lines, "copying", length))
    checked = target.verify()
    click.echo(
        f"copied {head.entries - before} entries into {target.location}; "
        f"both hold {checked.head.entries} entries with head {checked.head.head}"
    )


@cli.command(name="log")
@log_option
@click.option("--last", type=click.IntRange(min=1), metavar="N", help="Only the last N entries.")
@click.option("--format", "format_", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def log_(log: str | None, last: int | None, format_: str) -> None:
    """List the log's entries: position, time recorded, type and what each says."""
    store = open_log(log, write=False)
    _warn_if_torn(store)
    start = max(0, store.head().entries - last) if last else 0
    if format_ == "jsonl":
        for line in store.lines(start):
            sys.stdout.buffer.write(line + b"\n")
        return
    for entry in store.entries(start):
        stamp = entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{entry.position:>6}  {stamp}Z  {entry.type:<17}  {output.describe_event(entry.event)}")


@cli.command()
@log_option
@click.option(
    "--expect", "expected", multiple=True, metavar="ENTRIES:HASH",
    help="A checkpoint the log must still extend (repeatable); the hash may be cut to 12 hex digits.",
)  # fmt: skip
@click.option(
    "--checkpoints", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="A file of checkpoints (from `timeline checkpoint --out`): the log must extend every one.",
)  # fmt: skip
@click.option(
    "--trust", "trusted", multiple=True, type=click.Path(dir_okay=False, path_type=Path), metavar="PUBKEY",
    help="A public key (repeatable): every line of --checkpoints must be signed by one of them.",
)  # fmt: skip
@click.option("--repair-index", is_flag=True, help="Build a new replay index if the one beside the log does not match.")
def verify(
    log: str | None,
    expected: tuple[str, ...],
    checkpoint_file: Path | None,
    trusted: tuple[Path, ...],
    repair_index: bool,
) -> None:
    """Check every entry's hash and the chain; name the first bad position (exit 1).

    With --expect or --checkpoints, also prove that the log still extends each
    checkpoint, so that a log rewritten and rehashed after one is caught. On a
    PostgreSQL log, the checkpoints kept on the server are checked too.
    """
    if trusted and checkpoint_file is None:
        raise InputError("it checks the signatures of a checkpoint file: give --checkpoints FILE too", "--trust")
    wanted = [(f"--expect {text}", cps.parse_checkpoint(text, "--expect")) for text in expected]
    keys = [cps.load_public_key(path) for path in trusted]
    recorded = cps.read_file(checkpoint_file) if checkpoint_file is not None else []
    cps.check_signatures(recorded, keys or None)
    store = open_log(log, write=False)
    kept = cps.parse_lines(store.kept_checkpoints(), store.location, "checkpoint {number} kept in {name}")
    cps.check_signatures(kept, None)
    checked = store.verify(repair_index=repair_index)
    click.echo(f"{store.location}: {checked.head.entries} entries, chain intact, head {checked.head.head}")
    every = wanted + [(item.where, item.checkpoint) for item in (*recorded, *kept)]
    if every:
        cps.check_extends(store, every)
        signed = sum(item.key is not None for item in (*recorded, *kept))
        click.echo(
            f"{store.location}: extends all {len(every)} checkpoint(s)"
            + (f" ({signed} signed, signatures valid)" if signed else "")
            + (f", {len(kept)} of them kept on the server" if kept else "")
        )
    if checked.index_note:
        click.echo(f"{store.location}: {checked.index_note}", err=checked.index_mismatch)
    if checked.torn is not None:
        click.echo(
            f"{store.location}: ends in an incomplete write ({checked.torn.size} bytes after the last entry); "
            f"run `timeline repair`",
            err=True,
        )
    if checked.torn is not None or checked.index_mismatch:
        sys.exit(1)


@cli.command()
@log_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="Append the checkpoint to FILE (entries, head, time, log) instead of printing it.",
)  # fmt: skip
@click.option(
    "--sign", "key_file", type=click.Path(dir_okay=False, path_type=Path), metavar="KEY",
    help="Sign the checkpoint line with this Ed25519 private key (from `timeline keygen`).",
)  # fmt: skip
def checkpoint(log: str | None, out: Path | None, key_file: Path | None) -> None:
    """Print the log's checkpoint, ENTRIES:HASH, after verifying its chain.

    Keep it outside the log (a file in git, a partner's inbox): `timeline verify
    --expect` or `--checkpoints` later proves that the log still extends it.
    On a PostgreSQL log the server keeps it too.
    """
    key = cps.load_private_key(key_file) if key_file is not None else None
    store = open_log(log, write=False)
    _warn_if_torn(store)
    checked = store.verify()
    if checked.index_mismatch:
        click.echo(f"timeline: warning: {store.location}: {checked.index_note}", err=True)
    point = cps.Checkpoint.of(checked.head)
    location = store.location if log is None else cps.public_location(log)
    line = cps.checkpoint_line(point, store.now(), location, key)
    if store.keep_checkpoint(line):
        click.echo(f"kept checkpoint {point.short} in {store.location}", err=True)
    if out is not None:
        cps.append_line(out, line)
        click.echo(f"appended checkpoint {point} of {location} to {out}" + (" (signed)" if key else ""))
    elif key is not None:
        click.echo(line.decode())
    else:
        click.echo(str(point))


@cli.command()
@click.argument("key_file", metavar="KEY", type=click.Path(dir_okay=False, path_type=Path))
def keygen(key_file: Path) -> None:
    """Write a new Ed25519 key pair: KEY (private, mode 0600) and KEY.pub; never overwrites."""
    public = cps.write_key_pair(key_file)
    click.echo(f"wrote the private key {key_file} (keep it secret) and the public key {public} (share it)")


@cli.command()
@log_option
def repair(log: str | None) -> None:
    """Move an incomplete write at the end of the log into a quarantine file beside it."""
    store = open_log(log, write=True)
    if not hasattr(store, "repair"):
        click.echo(f"{store.location}: this kind of store cannot hold a torn write; nothing to repair")
        return
    repaired = store.repair()
    if repaired is None:
        click.echo(f"{store.location}: nothing to repair; the log ends with a complete entry")
        return
    torn = repaired.torn
    partial = f", holding {torn.entries} complete line(s) of an unfinished batch" if torn.entries else ""
    click.echo(
        f"moved {torn.size} bytes from the end of {store.location} (byte {torn.offset} on{partial}) "
        f"to {repaired.quarantine}; no acknowledged entry was touched"
    )


# -- helpers ---------------------------------------------------------------


def _log_named(log: str) -> str:
    """How a page's rebuild command names the log: never with its password.

    A log given by TIMELINE_LOG stays the variable; a URL given by --log keeps
    everything but its passwords, which libpq finds in PGPASSWORD or ~/.pgpass.
    """
    if log == os.environ.get("TIMELINE_LOG") and redact_url(log) != log:
        return '"$TIMELINE_LOG"'
    return shlex.quote(redact_url(log, mask=None))


def _located(build: Callable[[], T], where: str) -> T:
    try:
        return build()
    except InputError as exc:
        raise exc.located(where) from None


def _current_observation(store: Store, observation_id: str) -> Observation:
    current: Observation | None = None
    for entry in store.entries():
        event = entry.event
        if isinstance(event, Observation) and event.id == observation_id:
            current = event
        elif isinstance(event, Correction) and event.observation_id == observation_id:
            current = event.replacement
        elif isinstance(event, Retraction) and event.observation_id == observation_id:
            raise InputError(f"observation {shown(observation_id)} was retracted", "ID")
    if current is None:
        raise InputError(f"no observation {shown(observation_id)} in {store.location}", "ID")
    return current


def main() -> None:
    """The console script: the command line, quiet when its output pipe closes early."""
    try:
        cli.main(prog_name="timeline")
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
