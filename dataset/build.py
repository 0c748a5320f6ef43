"""Build the bundled log from the curated files, release by release, byte for byte.

    python -m dataset.build            # timeline/dataset/bundled.jsonl
    python -m dataset.build PATH       # anywhere else, e.g. to compare

Each folder ``dataset/releases/N/`` is one release: its ``release.toml`` gives
the fixed time its entries are recorded at, the files it imports, in order,
and the file of its fixes. The build replays the releases into a fresh log,
each file read by the importer that ``timeline import FILE`` uses and
appended as one batch, then each fix appended through ``Store.fix``, the call
that ``timeline correct`` and ``timeline retract`` make: the paths a user's
import, correction and retraction take are the paths that build the dataset.

The shipped log is append-only: the target is replaced only when the rebuilt
log extends it, and left alone when they are the same bytes. A change to the
files that would rewrite an entry already released is refused.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sys
import tempfile
import tomllib
from pathlib import Path

import attrs
import orjson

from events_log.errors import InputError, LogError, TimelineError
from events_log.events import Correction, Observation, Retraction
from events_log.importers import COLUMNS, observation_from_row, read_events, row_from_observation
from events_log.jsonl import JsonlStore
from events_log.known import KNOWN
from events_log.store import LogHead
from timeline.index import REPLAY_INDEX

RELEASES = Path(__file__).resolve().parent / "releases"
TARGET = Path(__file__).resolve().parents[1] / "timeline" / "dataset" / "bundled.jsonl"


@attrs.frozen
class Release:
    """One release: the files it imports, in order, its fixes, and the time they are recorded at."""

    number: int
    recorded_at: dt.datetime
    imports: tuple[Path, ...]
    fixes: Path | None = None


def releases(root: Path = RELEASES) -> list[Release]:
    """Every release under ``root``, in order: 1, 2, ..., with no gaps.

    A release is a numbered folder with a ``release.toml``; a folder without
    one (a release still being planned) is not built.
    """
    found = []
    for manifest_path in root.glob("*/release.toml"):
        if not manifest_path.parent.name.isdigit():
            raise LogError(f"{manifest_path.parent}: a release folder is named by its number")
        manifest = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
        files = tuple(manifest_path.parent / name for name in manifest["imports"])
        fixes = manifest_path.parent / manifest["fixes"] if "fixes" in manifest else None
        found.append(Release(int(manifest_path.parent.name), manifest["recorded_at"], files, fixes))
    found.sort(key=lambda release: release.number)
    numbers = [release.number for release in found]
    if numbers != list(range(1, len(found) + 1)):
        raise LogError(f"the releases in {root} are numbered {numbers}; they must be 1, 2, ... without gaps")
    for before, after in itertools.pairwise(found):
        if after.recorded_at <= before.recorded_at:
            raise LogError(f"release {after.number} must be recorded after release {before.number}")
    return found


def _fixed(moment: dt.datetime):
    return lambda: moment


@attrs.frozen
class Fix:
    """One line of a release's fixes file: what ``timeline correct`` or ``timeline retract`` is given.

    ``changes`` are CSV cells, as the options of ``timeline correct`` (an
    empty cell clears the field); a retraction has none.
    """

    observation_id: str
    expected_version: int
    reason: str
    changes: dict[str, str] | None

    def build(self, current: Observation, version: int) -> Correction | Retraction:
        """The fix made from the record as it stands at ``version``, as the command builds it."""
        if self.changes is None:
            return Retraction(observation_id=self.observation_id, reason=self.reason, expected_version=version)
        replacement = observation_from_row({**row_from_observation(current), **self.changes})
        if replacement == current:
            # As `timeline correct` refuses it: a fix that changes nothing would only add noise to the history.
            raise InputError("these values are what the record already says; nothing to correct", self.observation_id)
        return Correction(
            observation_id=self.observation_id,
            replacement=replacement,
            reason=self.reason,
            expected_version=version,
        )


_FIX_SHAPES = {
    frozenset({"correct", "expected_version", "set", "reason"}): "correct",
    frozenset({"retract", "expected_version", "reason"}): "retract",
}


def _fix_from(data: object, where: str) -> Fix:
    shape = _FIX_SHAPES.get(frozenset(data)) if isinstance(data, dict) else None
    if shape is None:
        raise InputError('a fix is {"correct", "expected_version", "set", "reason"} or {"retract", ...}', where)
    version, changes = data["expected_version"], data.get("set")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InputError("expected_version must be a log position (a whole number, 0 or more)", where)
    if not (isinstance(data[shape], str) and isinstance(data["reason"], str)):
        raise InputError(f"{shape} and reason must be text", where)
    if shape == "correct" and not (
        isinstance(changes, dict) and changes and all(isinstance(v, str) for v in changes.values())
    ):
        raise InputError('set must give at least one field and its CSV cell as text, e.g. {"low": "829"}', where)
    unknown = sorted(set(changes or ()) - (set(COLUMNS) - {"id"}))
    if unknown:
        raise InputError(f"set names {', '.join(unknown)}: not a field a correction can change", where)
    return Fix(data[shape], version, data["reason"], changes)


def read_fixes(path: Path) -> list[tuple[str, Fix]]:
    """The fixes of ``path``, one JSON object a line, each labelled by its file and line.

    ``{"correct": ID, "expected_version": N, "set": {FIELD: CELL, ...}, "reason": ...}`` or
    ``{"retract": ID, "expected_version": N, "reason": ...}``; the version is
    the record's log position the fix was made from, so a rebuilt history
    that moved it is refused rather than fixed blindly.
    """
    fixes = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.name}:{number}"
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc})", where) from None
        fixes.append((where, _fix_from(data, where)))
    return fixes


def write_releases(path: Path, upto: int | None = None, root: Path = RELEASES) -> JsonlStore:
    """Write releases 1..``upto`` (all by default) into a new log at ``path``."""
    if path.exists():
        raise LogError(f"{path} exists; the releases are replayed into a fresh log")
    for release in releases(root):
        if upto is not None and release.number > upto:
            break
        recording = JsonlStore(path, clock=_fixed(release.recorded_at))
        for file in release.imports:
            labelled = read_events(file)
            recording.append([event for _, event in labelled], labels=[label for label, _ in labelled])
        for where, fix in read_fixes(release.fixes) if release.fixes else ():
            recording.fix(fix.observation_id, fix.build, expected_version=fix.expected_version, label=where)
    store = JsonlStore(path)
    # No projection is shipped beside it: the installed dataset is read-only and small.
    for projection in (KNOWN, REPLAY_INDEX):
        store.sidecar_path(projection).unlink(missing_ok=True)
    return store


def build(target: Path = TARGET) -> LogHead:
    """Rebuild ``target`` from the releases; it may only grow, never change."""
    if not target.parent.is_dir():
        raise LogError(f"{target.parent} is not a folder")
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        fresh = write_releases(Path(scratch) / target.name)
        head = fresh.verify().head
        rebuilt = fresh.path.read_bytes()
        shipped = target.read_bytes() if target.exists() else b""
        if not rebuilt.startswith(shipped):
            raise LogError(
                f"the releases no longer rebuild {target} as it was shipped; "
                "a released entry may only be corrected or retracted in a new release"
            )
        if rebuilt != shipped:
            os.replace(fresh.path, target)
    return head


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET
    try:
        head = build(target)
    except (TimelineError, OSError) as exc:
        sys.exit(f"dataset.build: error: {exc}")
    print(f"{target}: {head.entries} entries, head {head.head}")
