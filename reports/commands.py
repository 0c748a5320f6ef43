"""The commands a page prints so that a reader can rebuild it, and prove which log it came from.

They belong with the pages: what a page promises to be reproducible from is
decided here, not by whoever parses the command line.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from pathlib import Path

from events_log import checkpoints as cps
from events_log.envelope import show_time
from events_log.store import LogHead
from events_log.stores import redact_url


def log_named(log: str) -> str:
    """How a page's commands name the log: never with its password.

    A log given by TIMELINE_LOG stays the variable; a URL given by --log keeps
    everything but its passwords, which libpq finds in PGPASSWORD or ~/.pgpass.
    """
    if log == os.environ.get("TIMELINE_LOG") and redact_url(log) != log:
        return '"$TIMELINE_LOG"'
    return shlex.quote(redact_url(log, mask=None))


def rebuild_command(
    log: str | None,
    *,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    out: Path,
    single_file: bool,
) -> str:
    """The `timeline report` command that builds the same pages again (known-at pinned to what was read)."""
    return " ".join(
        ["timeline report"]
        + ([f"--log {log_named(log)}"] if log is not None else [])
        + ([f"--as-of {as_of}"] if as_of else [])
        + ([f"--known-at {show_time(known_at)}"] if known_at else [])
        + ([f"--incident {incident}"] if incident else [])
        + [f"--out {shlex.quote(str(out))}"]
        + (["--single-file"] if single_file else [])
    )


def verify_command(log: str | None, head: LogHead) -> str:
    """The `timeline verify --expect` command that proves the log still extends the one the pages show."""
    return " ".join(
        ["timeline verify"]
        + ([f"--log {log_named(log)}"] if log is not None else [])
        + [f"--expect {cps.Checkpoint.of(head).short}"]
    )
