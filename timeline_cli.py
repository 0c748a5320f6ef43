"""The `timeline` command: a thin layer over the library.

It sits above every package it drives (events_log, timeline, reports), so
that none of them imports the command line or one another upwards; the
`timeline` console script and `python -m timeline` both start here.
Each command parses its options, calls the library and formats the result.
User errors end in one line on stderr and exit code 2; problems with the
log itself exit 1; nothing is appended unless the whole input is good.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from events_log.columns import COLUMNS
from events_log.errors import IndexMismatchWarning, InputError, LogChangedError, ReadOnlyLogError, TimelineError, shown

if TYPE_CHECKING:
    from pathlib import Path

    from events_log.envelope import Entry
    from events_log.events import Correction, IncidentDescribed, MonitorDescribed, Observation
    from events_log.store import Store

# The package version (pyproject.toml reads it from here): `--version` need not load importlib.metadata.
__version__ = "0.1.0"

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


describe_new_option = click.option(
    "--describe-new",
    is_flag=True,
    help="Describe the incidents and monitors the log does not know yet, in the same batch, "
    "with the slug as their title or name (for loading a new dataset in one go).",
)


def open_log(log: str | None, *, write: bool) -> Store:
    """The store a command works on; the bundled dataset only ever for reading."""
    from pathlib import Path

    from events_log.stores import open_store
    from timeline.bundled import bundled_log
    from timeline.index import REPLAY_INDEX

    bundled = bundled_log()
    if log is None:
        if write:
            raise ReadOnlyLogError(_NO_LOG)
        return open_store(str(bundled), read_only=True)
    if "://" not in log and Path(log).resolve() == bundled.resolve():
        if write:
            raise ReadOnlyLogError("the bundled dataset is read-only; " + _NO_LOG.split(": ", 1)[1])
        return open_store(log, read_only=True)
    store = open_store(log)
    click.get_current_context().call_on_close(store.close)  # a database's connections end with the command
    # Only writers create a log: a typo in a path must not read as an empty log.
    if not write and not store.exists():
        raise InputError(f"no log at {store.location}")
    store.keep(REPLAY_INDEX)  # every append keeps the replay index beside the log up to date
    return store


class PathParam(click.Path):
    """A path option or argument as a ``pathlib.Path``; pathlib loads when one is given, not at every start-up."""

    def convert(self, value, param, ctx):
        from pathlib import Path

        return Path(super().convert(value, param, ctx))


def _parse_day(ctx, param, value: str | None) -> dt.date | None:
    """A date option that is a plain calendar date (--as-of has rules of its own)."""
    from events_log.codec import parse_date
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_as_of(ctx, param, value: str | None) -> dt.date | None:
    from events_log.admission import SLACK
    from events_log.codec import parse_date
    if value is None:
        return None
    try:
        day = parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    # Today (UTC) plus the day of slack a report date may have (see admission.SLACK).
    latest = dt.datetime.now(dt.UTC).date() + SLACK
    if day > latest:
        raise click.BadParameter(f"{day} is in the future; nothing can have been reported after {latest}")
    return day


def _parse_known_at(ctx, param, value: str | None) -> dt.datetime | None:
    """A date (the end of that day, UTC) or an ISO timestamp (UTC when no zone is given)."""
    from events_log.codec import parse_date
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
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise click.BadParameter(f"{shown(value)} is before the year 1 in UTC") from None


as_of_option = click.option(
    "--as-of", callback=_parse_as_of, metavar="DATE", help="Only figures reported on or before DATE."
)
known_at_option = click.option(
    "--known-at",
    callback=_parse_known_at,
    metavar="TIME",
    help="Only what the log held at TIME: a date (its end, UTC) or an ISO timestamp (UTC if no zone).",
)


allow_duplicate_option = click.option(
    "--allow-duplicate",
    is_flag=True,
    help="Take an observation that repeats one in the log (same series, day and figure; for an increment "
    "also the same source URL or quote): for a monitor that really published the same figure twice.",
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
        except (InputError, LogChangedError) as exc:
            # A lost race is answered like bad input: nothing was written; look again and redo it.
            raise _Failure(str(exc), 2) from None
        except TimelineError as exc:
            raise _Failure(str(exc), 1) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, package_name="toll-timeline")
def cli() -> None:
    """Keep every published casualty figure with its source, and replay them
    into per-day running tolls for each monitor."""
    # psycopg logs some failures itself (a COPY cut off with the connection); the command
    # line reports each failure once, as its own one line.
    import logging

    psycopg_logger = logging.getLogger("psycopg")
    psycopg_logger.addHandler(logging.NullHandler())
    psycopg_logger.propagate = False


@cli.command()
@log_option
@_observation_options
@click.option("--json", "json_text", metavar="JSON", help='One event of any type, e.g. {"type": "Retraction", ...}.')
@describe_new_option
@allow_duplicate_option
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
            raise click.UsageError("give the observation's options (see --help) or --json")
        event = _located(lambda: observation_from_row(given), "options")
    store = open_log(log, write=True)
    *described, entry = store.append(
        [event], labels=["--json" if json_text else "options"], describe_new=describe_new,
        allow_duplicate=allow_duplicate,
    )  # fmt: skip
    _echo_described(described)
    click.echo(f"appended {output.describe_event(entry.event)} at position {entry.position} of {store.location}")


@cli.command(name="import")
@log_option
@click.argument("file", type=PathParam(dir_okay=True))
@click.option("--format", "format_", type=click.Choice(["csv", "jsonl"]), help="Default: from the extension.")
@describe_new_option
@allow_duplicate_option
def import_(log: str | None, file: Path, format_: str | None, describe_new: bool, allow_duplicate: bool) -> None:
    """Append every event of FILE (CSV of observations, or JSON Lines of events), all or nothing.

    FILE may also be a data package from `timeline export --format datapackage` (its folder or
    its datapackage.json): the incidents and monitors the log lacks are described, then its
    observations appended.
    """
    from events_log.importers import read_events
    from timeline import interchange, output, stored
    store = open_log(log, write=True)
    store.check_writable()  # a mistyped --log fails now, not after the whole file is read
    if format_ is None and interchange.is_package(file):
        labelled = interchange.read_datapackage(file, store)
    else:
        labelled = read_events(file, format_, progress=lambda lines, length: _progress(lines, "reading", length))
    labels = [label for label, _ in labelled]
    entries = store.append(
        [event for _, event in labelled],
        labels=labels,
        describe_new=describe_new,
        allow_duplicate=allow_duplicate,
        progress=lambda lines, length: _progress(lines, "writing", length),
    )
    described = entries[: len(entries) - len(labelled)]
    _echo_described(described)
    entries = entries[len(described) :]
    first, last = entries[0].position, entries[-1].position
    click.echo(f"imported {len(entries)} events from {file} into {store.location} (positions {first}-{last}):")
    for line in output.summarise_events([e.event for e in entries]):
        click.echo("  " + line)
    # The replay a freshly loaded dataset is asked for first is made now, and kept beside the log.
    stored.keep(store, progress=lambda series, length: _progress(series, "replaying", length))


expected_version_option = click.option(
    "--expected-version",
    type=click.IntRange(min=0),
    metavar="N",
    help="Refuse unless the record is still at version N (the position `timeline log` shows for it "
    "or for its last correction). Default: the version read under the log's write lock.",
)


@cli.command()
@log_option
@click.argument("observation_id", metavar="ID")
@click.option("--reason", required=True, help="Why our record was wrong (kept in the log).")
@expected_version_option
@_observation_options
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
        raise click.UsageError("give at least one field to change, e.g. --low 1383")
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
    click.echo(f"corrected {observation_id} at position {entry.position}: {change}")


@cli.command()
@log_option
@click.argument("observation_id", metavar="ID")
@click.option("--reason", required=True, help="Why the record should never have been entered.")
@expected_version_option
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
    click.echo(f"retracted {observation_id} at position {entry.position}")


@cli.group(invoke_without_command=True)
@click.pass_context
def describe(ctx: click.Context) -> None:
    """Describe an incident or a monitor, so that observations may name it.

    Describing a name again appends a new description that replaces the old
    one whole: give every field you want kept.
    """
    if ctx.invoked_subcommand is None:
        raise click.UsageError("say what to describe: `incident SLUG --title T` or `monitor SLUG --name N`")


@describe.command(name="incident")
@log_option
@click.argument("slug")
@click.option("--title", required=True, help="What the incident is called, e.g. '2025 coastal massacres'.")
@click.option("--place", help="Where it happened.")
@click.option("--start-date", metavar="DATE", callback=_parse_day, help="When it began (YYYY-MM-DD).")
@click.option("--summary", help="A few sentences on what happened.")
@click.option("--link", "links", multiple=True, metavar="URL", help="A document about it (repeatable).")
def describe_incident(
    log: str | None, slug: str, title: str, place: str | None, start_date: dt.date | None, summary: str | None,
    links: tuple[str, ...],
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


@describe.command(name="monitor")
@log_option
@click.argument("slug")
@click.option("--name", "full_name", required=True, help="Who the monitor is, e.g. 'Syrian Network for Human Rights'.")
@click.option("--url", help="Its website.")
@click.option("--about", help="What it is and how it counts, in the words of the sources.")
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
    click.echo(f"described {output.describe_event(event)} at position {entry.position}{replaced}")


@cli.command()
@log_option
def incidents(log: str | None) -> None:
    """List the incidents the log describes: figures counted, latest report, title."""
    _list_described(log, "incident")


@cli.command()
@log_option
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
        click.echo(f"(no {kind}s described in {store.location}; `timeline describe {kind} SLUG` describes one)")
        return
    width = max(len(slug) for slug in described)
    click.echo(f"{kind:<{width}}  {'figures':>8}  {'latest':<10}  {'title' if kind == 'incident' else 'name'}")
    for slug in sorted(described, key=lambda name: (name.casefold(), name)):
        count, latest = tallies.get(slug, (0, None))
        event = described[slug]
        title = event.title if isinstance(event, IncidentDescribed) else event.full_name
        click.echo(f"{slug:<{width}}  {count:>8,}  {latest.isoformat() if latest else '-':<10}  {title}")


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
    from timeline import output, stored
    from timeline.replay import replay as run_replay
    store = open_log(log, write=False)
    _warn_if_torn(store)
    # The whole log as CSV is kept beside it, for the head it was made at (timeline/stored.py).
    whole = format_ == "csv" and days == "every" and not (as_of or known_at or incident or monitor)
    if whole and (kept := stored.kept_csv(store)) is not None:
        stored.copy(kept, sys.stdout.buffer)
        return
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
    elif whole:
        stored.write_and_keep(store, result, sys.stdout.buffer)
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
    "--out", type=PathParam(file_okay=False), default="report", show_default=True,
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
                         progress=lambda slugs, length: _progress(slugs, "writing pages", length))  # fmt: skip
    click.echo(
        f"wrote {len(built.pages)} incident page(s) and the index to {built.folder}/ "
        f"({built.size / 1e6:.1f} MB, log of {result.log.entries} entries, head {result.log.head[:12]})"
    )
    click.echo(f"open {built.index.resolve().as_uri()}")
    if open_:
        webbrowser.open(built.index.resolve().as_uri())


@cli.command()
@log_option
@as_of_option
@known_at_option
@click.option("--incident", metavar="SLUG", help="Only this incident's series and observations.")
@click.option("--monitor", metavar="SLUG", help="Only this monitor's series and observations.")
@click.option("--format", "format_", type=click.Choice(["datapackage", "hxl"]), required=True)
@click.option(
    "--out", type=PathParam(), metavar="PATH",
    help="datapackage: the folder to write (required). hxl: the file (default: standard output).",
)  # fmt: skip
@click.option("--licence", metavar="NAME", help="datapackage: the licence of the data, e.g. CC-BY-4.0.")
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
        click.echo(
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
        click.echo(f"wrote HXL-tagged CSV to {out}")


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
@click.option("--incident", metavar="SLUG", help="Only entries about this incident.")
@click.option("--monitor", metavar="SLUG", help="Only entries about this monitor.")
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
        click.echo(f"{entry.position:>6}  {stamp}Z  {entry.type:<17}  {output.describe_event(entry.event)}")


@cli.command()
@log_option
@click.option(
    "--expect", "expected", multiple=True, metavar="ENTRIES:HASH",
    help="A checkpoint the log must still extend (repeatable); the hash may be cut to 12 hex digits.",
)  # fmt: skip
@click.option(
    "--checkpoints", "checkpoint_file", type=PathParam(dir_okay=False), metavar="FILE",
    help="A file of checkpoints (from `timeline checkpoint --out`): the log must extend every one.",
)  # fmt: skip
@click.option(
    "--trust", "trusted", multiple=True, type=PathParam(dir_okay=False), metavar="PUBKEY",
    help="A public key (repeatable): every line of --checkpoints must be signed by one of them.",
)  # fmt: skip
@click.option(
    "--repair-index", is_flag=True,
    help="Build anew what is kept beside the log (the replay index, the replay kept as CSV) if it does not match.",
)  # fmt: skip
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
    from timeline import stored
    result_note, result_mismatch = stored.check(store, repair=repair_index)
    if result_note:
        click.echo(f"{store.location}: {result_note}", err=result_mismatch)
    if checked.torn is not None:
        click.echo(
            f"{store.location}: ends in an incomplete write ({checked.torn.size} bytes after the last entry); "
            f"run `timeline repair`",
            err=True,
        )
    if checked.torn is not None or checked.index_mismatch or result_mismatch:
        sys.exit(1)


@cli.command()
@log_option
@click.option(
    "--out", type=PathParam(dir_okay=False), metavar="FILE",
    help="Append the checkpoint to FILE (entries, head, time, log) instead of printing it.",
)  # fmt: skip
@click.option(
    "--sign", "key_file", type=PathParam(dir_okay=False), metavar="KEY",
    help="Sign the checkpoint line with this Ed25519 private key (from `timeline keygen`).",
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
@click.argument("key_file", metavar="KEY", type=PathParam(dir_okay=False))
def keygen(key_file: Path) -> None:
    """Write a new Ed25519 key pair: KEY (private, mode 0600) and KEY.pub; never overwrites."""
    from events_log import checkpoints as cps
    public = cps.write_key_pair(key_file)
    click.echo(f"wrote the private key {key_file} (keep it secret) and the public key {public} (share it)")


@cli.command()
@log_option
def repair(log: str | None) -> None:
    """Move an incomplete write at the end of the log into a quarantine file beside it."""
    store = open_log(log, write=True)
    if not store.can_tear:
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


def _echo_described(entries: list[Entry], limit: int = 20) -> None:
    """Each new description on a line, or, for a new dataset's many, how many of each and where."""
    from timeline import output
    if len(entries) <= limit:
        for entry in entries:
            click.echo(f"described {output.describe_event(entry.event)} at position {entry.position} (new)")
        return
    counts = collections.Counter(type(entry.event).__name__ for entry in entries)
    what = " and ".join(f"{counts[name]:,} {noun}" for name, noun in (
        ("IncidentDescribed", "incidents"), ("MonitorDescribed", "monitors")) if counts[name])  # fmt: skip
    click.echo(
        f"described {what} (new, positions {entries[0].position}-{entries[-1].position}), each titled with its slug; "
        "`timeline incidents` and `timeline monitors` list them"
    )


def main() -> None:
    """The console script: the command line, quiet when its output pipe closes early."""
    try:
        cli.main(prog_name="timeline")
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
