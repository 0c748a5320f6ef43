"""Hostile input, crashes, tampering and a failing environment: the log keeps every acknowledged entry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events_log.admission import subject_id
from events_log.envelope import encode_entry, format_time
from events_log.errors import BrokenChainError, InputError, StoreError, shown
from events_log.events import Figure, IncidentDescribed, MonitorDescribed, Qualifier, Retraction
from events_log.importers import COLUMNS
from events_log.jsonl import JsonlStore
from events_log.stores import open_store
from timeline.output import safe_cell
from timeline.replay import replay

from . import helpers
from .conftest import STORE_KINDS, StepClock
from .helpers import obs
from .test_jsonl_store import NAMES

GOOD_ROW = {
    "id": "",
    "incident": "coastal-2025",
    "monitor": "SOHR",
    "reported_on": "2025-03-12",
    "period_start": "2025-03-06",
    "period_end": "2025-03-12",
    "measure": "killed",
    "category": "civilians",
    "location": "",
    "kind": "cumulative",
    "low": "1383",
    "high": "",
    "qualifier": "exact",
    "source_url": "https://en.wikipedia.org/wiki/2025_massacres_of_Syrian_Alawites",
    "source_title": "2025 massacres of Syrian Alawites",
    "quote": "The death toll reached 1383 by 12 March per the SOHR",
    "note": "",
}
NASTY = [
    "", " ", "-5", "1.5", "1,383", "abc", "0x10", "1e3", "٣", "2025-02-30", "2025-13-01", "20250312", "12/03/2025",
    "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "@SUM(A1)", "\ufeffkilled", "<script>alert(1)</script>",
    "javascript:alert(1)", "x" * 30_000, "9" * 40, "\x00", "line\nbreak", "ק\u05bcשׁ", "e\u0301", "exact", "range",
    "at_least", "increment", "killed", "civilians", "SOHR", "2025-03-01", "5", "0",
]  # fmt: skip


def invoke(args, log):
    """Run the CLI in-process the way the console script does, catching nothing on its behalf."""
    return helpers.invoke([*args[:1], "--log", str(log), *args[1:]])


def assert_clean_outcome(result, log: Path, before: bytes | None):
    """Either a correct append, or exit 2 with one line and the log byte-for-byte unchanged."""
    if result.exit_code == 0:
        JsonlStore(log).verify()
        return True
    assert result.exit_code == 2, (result.exit_code, result.output)
    message = result.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message and message.startswith("timeline: error: ")
    assert len(message) < 600, message
    after = log.read_bytes() if log.exists() else None
    assert after == before
    return False


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buffer.getvalue()


@st.composite
def hostile_csv(draw) -> bytes:
    """A CSV that starts from good rows and breaks them: cells, columns, encoding, BOM, line ends."""
    columns = draw(st.permutations(list(COLUMNS)))
    if draw(st.booleans()):
        columns = columns[: draw(st.integers(8, len(columns)))]
    if draw(st.integers(0, 9)) == 0:
        columns = [*columns, draw(st.sampled_from(["colour", "Low", "low ", "id"]))]
    rows = []
    for n in range(draw(st.integers(1, 4))):
        row = dict(GOOD_ROW, low=str(1383 + n), id=draw(st.sampled_from(["", f"r{n}", "r0"])))
        for _ in range(draw(st.integers(0, 3))):
            row[draw(st.sampled_from(COLUMNS))] = draw(st.sampled_from(NASTY))
        rows.append(row)
    text = _csv_text(rows, columns)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1256"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut]
    return data


@given(hostile_csv())
def test_hostile_csv_ends_in_one_clear_error_or_a_correct_append(tmp_path_factory, data):
    """Broken cells, columns, encodings, BOMs and line ends: a clean error or a correct import, never a partial one."""
    folder = tmp_path_factory.mktemp("csv")
    log = folder / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("seed", 8, 1)])
    before = log.read_bytes()
    path = folder / "rows.csv"
    path.write_bytes(data)
    result = invoke(["import", str(path)], log)
    if assert_clean_outcome(result, log, before):
        added = JsonlStore(log).head().entries - len(NAMES) - 1
        assert f"imported {added} events" in result.output


@given(st.binary(max_size=400))
def test_random_bytes_never_crash_an_import(tmp_path_factory, data):
    """Any bytes at all, as CSV or JSON Lines: a clean error or a correct append."""
    folder = tmp_path_factory.mktemp("bytes")
    for name in ("rows.csv", "events.jsonl"):
        log = folder / f"{name}.log.jsonl"
        path = folder / name
        path.write_bytes(data)
        assert_clean_outcome(invoke(["import", str(path)], log), log, None)


def _json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
        max_leaves=8,
    )


@given(st.lists(st.one_of(_json_values(), st.builds(lambda k, v: {"type": "Observation", k: v}, st.text(max_size=8),
                                                     _json_values())), min_size=1, max_size=4))  # fmt: skip
def test_hostile_json_lines_end_cleanly(tmp_path_factory, values):
    """Arbitrary JSON values as events: a clean error naming the line, never a crash."""
    folder = tmp_path_factory.mktemp("jsonl")
    log = folder / "log.jsonl"
    path = folder / "events.jsonl"
    path.write_text("\n".join(json.dumps(v) for v in values))
    assert_clean_outcome(invoke(["import", str(path)], log), log, None)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"reported_on": "2025-02-30"}, "rows.csv:2: reported_on: 2025-02-30 is not a calendar date"),
        ({"low": "-5"}, "rows.csv:2: low: '-5' is not a whole number"),
        ({"low": "1.5"}, "rows.csv:2: low: '1.5' is not a whole number"),
        ({"low": "many"}, "rows.csv:2: low: 'many' is not a whole number"),
        ({"low": "9" * 40}, "rows.csv:2: low: a number of 40 digits is not a casualty count"),
        ({"low": "10", "high": "5", "qualifier": "range"}, "rows.csv:2: high: high (5) is below low (10)"),
        ({"quote": "x" * 30_000}, "rows.csv:2: quote: is 30,000 characters long; the limit is 20,000"),
        ({"source_url": "javascript:alert(1)"}, "rows.csv:2: source_url: not a valid http(s) URL"),
        ({"monitor": '=HYPERLINK("x")'}, "rows.csv:2: monitor: not a valid monitor slug"),
        ({"measure": "Killed"}, "rows.csv:2: measure: not a valid measure"),
        ({"note": "a\x07bell"}, "rows.csv:2: note: contains control characters"),
    ],
)
def test_each_bad_field_is_named(tmp_path, change, fragment):
    """Impossible dates, negative, fractional, huge or non-numeric figures, low above high, bad text."""
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([{**GOOD_ROW, **change}], list(COLUMNS)))
    log = tmp_path / "log.jsonl"
    result = invoke(["import", str(path)], log)
    assert_clean_outcome(result, log, None)
    assert fragment in result.stderr


def test_formulas_in_text_are_kept_as_text_and_neutralised_in_csv(tmp_path):
    """A quote or place that looks like a formula is stored as written and exported with a leading quote."""
    path = tmp_path / "rows.csv"
    row = {**GOOD_ROW, "location": '=HYPERLINK("http://evil.example","click")', "quote": "@SUM(A1) +1"}
    path.write_text(_csv_text([row], list(COLUMNS)))
    log = tmp_path / "log.jsonl"
    assert invoke(["import", "--describe-new", str(path)], log).exit_code == 0
    exported = list(csv.reader(io.StringIO(invoke(["replay", "--format", "csv"], log).output)))
    assert exported[1][4] == '\'=HYPERLINK("http://evil.example","click")'
    for value in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(value) == "'" + value
    assert safe_cell("Baniyas") == "Baniyas"


# -- crashes ---------------------------------------------------------------------------------

_CRASHING_WRITER = """
import sys
from events_log.stores import open_store
from events_log.events import IncidentDescribed, MonitorDescribed
from tests.helpers import obs
store = open_store(sys.argv[1])
start = int(sys.argv[2])
if store.head().entries == 0:
    store.append([IncidentDescribed(slug="coastal-2025", title="t"), MonitorDescribed(slug="SOHR", full_name="s")])
for i in range(start, start + 100000):
    store.append([obs(f"k{i}", 1 + i % 28, i), obs(f"k{i}b", 1 + i % 28, i, "increment")])
    print(f"k{i}", flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_append_loses_no_acknowledged_entry(log_target):
    """A writer killed at random moments: after repair, verify passes and every acknowledged entry replays."""
    root = Path(__file__).resolve().parents[1]
    acknowledged: list[str] = []
    for round_ in range(12):
        process = subprocess.Popen(
            [sys.executable, "-c", _CRASHING_WRITER, log_target, str(round_ * 100_000)],
            cwd=root, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Wait for the first acknowledgement, so a slow start-up on a loaded machine still leaves
        # the kill landing mid-stream of appends, then kill at a moment that varies by round.
        first = process.stdout.readline()
        time.sleep((round_ % 5) * 0.07)
        os.kill(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        acknowledged += [first.strip(), *out.split()] if first.strip() else out.split()
        store = open_store(log_target)
        if hasattr(store, "repair"):
            store.repair()
        store.verify()
        ids = {e.event.id for e in store.entries() if e.type == "Observation"}
        missing = [i for i in acknowledged if i not in ids or f"{i}b" not in ids]
        assert missing == []
        assert len(ids) % 2 == 0  # batches of two: never half of one
        store.close()
    assert len(acknowledged) > 12
    replay(open_store(log_target))


def test_sigterm_mid_import_cuts_the_batch_back(tmp_path):
    """SIGTERM while an import writes (``timeout``, ``docker stop``) leaves the log as it was, not torn."""
    root = Path(__file__).resolve().parents[1]
    rows, log = tmp_path / "rows.csv", tmp_path / "log.jsonl"
    subprocess.run([sys.executable, "-m", "bench.generate", "csv", str(rows), "60000"], cwd=root, check=True)
    assert helpers.invoke(["describe", "incident", "early", "--title", "t", "--log", str(log)]).exit_code == 0
    before = log.read_bytes()
    process = subprocess.Popen([sys.executable, "-m", "timeline", "import", str(rows), "--describe-new",
                                "--log", str(log)], cwd=root, stderr=subprocess.PIPE, text=True)  # fmt: skip
    while log.stat().st_size == len(before) and process.poll() is None:  # until the batch is being written
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate()
    assert process.returncode == 143, errors
    assert errors.startswith("timeline: terminated; a batch is appended whole or not at all")
    assert log.read_bytes() == before and JsonlStore(log).torn() is None
    assert helpers.invoke(["describe", "monitor", "later", "--name", "n", "--log", str(log)]).exit_code == 0


def test_an_interrupted_command_that_writes_nothing_says_nothing_of_batches(tmp_path, monkeypatch):
    """Ctrl-C in a replay: one line saying it was interrupted, exit 130, and no word of a batch that could not
    have landed (only a command that writes is told how to see whether it did)."""
    from timeline import stored

    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 532)])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stored, "full_series", interrupted)
    ran = helpers.invoke(["replay", "--log", log, "--format", "csv"])
    assert (ran.exit_code, ran.stderr) == (130, "timeline: interrupted\n")


def test_sigterm_while_an_import_keeps_its_replay_leaves_the_import_and_no_half_written_file(tmp_path):
    """The batch landed before the replay is kept: SIGTERM then stops the keeping, and nothing of it is left."""
    root = Path(__file__).resolve().parents[1]
    rows, log = tmp_path / "rows.csv", tmp_path / "log.jsonl"
    subprocess.run([sys.executable, "-m", "bench.generate", "csv", str(rows), "30000"], cwd=root, check=True)
    process = subprocess.Popen([sys.executable, "-m", "timeline", "import", str(rows), "--describe-new",
                                "--log", str(log)], cwd=root, stderr=subprocess.PIPE, text=True)  # fmt: skip
    while not list(tmp_path.glob("log.jsonl.replay.*.writing-*")) and process.poll() is None:
        time.sleep(0.0005)
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate()
    assert process.returncode == 143, errors
    assert errors.startswith("timeline: terminated; a batch is appended whole or not at all")
    assert not list(tmp_path.glob("*.writing-*"))
    assert JsonlStore(log).head().entries > 30000 and JsonlStore(log).torn() is None


# -- tampering in every store ----------------------------------------------------------------


def _rows(lines: list[bytes]) -> list[tuple]:
    """Rows of the entries table holding these lines, each column read from its line as a writer fills it.

    So a forger who rewrote the lines and their hashes leaves columns that
    agree with them, and only the lines can give the forgery away. A line
    that is not an entry's, or one whose hash an earlier row holds (a line
    put in twice: the column is unique), gets a hash no line has.
    """
    rows, taken = [], set()
    for position, line in enumerate(lines):
        try:
            entry = orjson.loads(line)
            columns = (entry["recorded_at"], entry["type"], subject_id(entry["type"], entry["event"]), entry["hash"],
                       entry["prev_hash"])  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            columns = ("", "", None, f"unreadable {position}", "")
        if columns[3] in taken:
            columns = (*columns[:3], f"repeated {position}", columns[4])
        taken.add(columns[3])
        rows.append((position, *columns, line))
    return rows


_ROW_COLUMNS = ("position", "recorded_at", "type", "subject", "hash", "prev_hash", "line")


def _rewrite(target: str, lines: list[bytes]) -> None:
    """Put these lines in place of the log's, going around every guard the store has."""
    if target.startswith(("sqlite:///", "postgresql://")):
        _put_rows(target, _rows(lines))
    else:
        Path(target).write_bytes(b"".join(line + b"\n" for line in lines))


def _put_rows(target: str, rows: list[tuple]) -> None:
    """Put these rows (``_ROW_COLUMNS``) in place of a SQL log's entries, going around every guard the store has."""
    names = ", ".join(_ROW_COLUMNS)
    if target.startswith("sqlite:///"):
        import sqlite3

        database = sqlite3.connect(target.removeprefix("sqlite:///"))
        for trigger in ("no_update", "no_delete", "extends_chain"):
            database.execute(f"DROP TRIGGER IF EXISTS timeline_entries_{trigger}")
        database.execute("DELETE FROM timeline_entries")
        database.executemany(f"INSERT INTO timeline_entries ({names}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        database.commit()
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as database:
            database.execute("ALTER TABLE timeline_entries DISABLE TRIGGER USER")
            database.execute("DELETE FROM timeline_entries")
            with database.cursor() as cursor:
                cursor.executemany(f"INSERT INTO timeline_entries ({names}) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


@pytest.mark.parametrize(
    ("name", "tamper", "position"),
    [
        # Positions 0 and 1 describe the names; a, b, c, d are at 2, 3, 4, 5.
        ("edited", lambda ls: [*ls[:3], ls[3].replace(b"745", b"754"), *ls[4:]], 3),
        ("deleted", lambda ls: [*ls[:3], *ls[4:]], 3),
        ("reordered", lambda ls: [*ls[:3], ls[4], ls[3], *ls[5:]], 3),
        ("inserted", lambda ls: [*ls[:4], ls[3], *ls[4:]], 4),
        ("last edited", lambda ls: [*ls[:-1], ls[-1].replace(b'"low":3', b'"low":4')], 5),
    ],
)
def test_verify_names_every_tampered_entry(log_target, name, tamper, position):
    """Edited, deleted, reordered or inserted past entries are named by position, in every store."""
    store = open_store(log_target)
    store.clock = StepClock()
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    store.append([obs("c", 9, 1)])
    store.append([obs("d", 10, 3)])
    lines = list(store.lines())
    store.close()
    _rewrite(log_target, tamper(lines))
    with pytest.raises(BrokenChainError) as caught:
        open_store(log_target).verify()
    assert caught.value.position == position, name
    result = helpers.invoke(["verify", "--log", log_target])
    assert result.exit_code == 1 and f"position {position}" in result.stderr


# A column of one row given another value around the store's guards, the line (and so the chain) left as it was:
# the row's position (0 and 1 describe the names; observation b is at 3, the retraction of a at 4), the column
# (its place in ``_ROW_COLUMNS``), the value.
COLUMNS_CHANGED = {
    "recorded_at": (3, 1, "2025-04-01T09:00:01.500000Z"),
    "type": (3, 2, "Retraction"),
    "subject": (3, 3, "zzz"),
    "subject of a fix": (4, 3, "b"),
    "subject of a description": (1, 3, "a"),
    "hash": (3, 4, "f" * 64),
    "prev_hash": (3, 5, "0" * 64),
}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(("at", "column", "value"), COLUMNS_CHANGED.values(), ids=COLUMNS_CHANGED.keys())
def test_verify_names_a_row_whose_columns_do_not_hold_what_its_line_says(fresh_logs, kind, at, column, value):
    """Writers look entries up by these columns (a fix finds its record's version by ``subject``, a projection's
    block is trusted by ``hash``): a row changed around the guards misled the next writer while verify passed."""
    target = fresh_logs(kind)
    with open_store(target) as store:
        store.clock = StepClock()
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        store.append([Retraction(observation_id="a", reason="entered twice")])
        lines = list(store.lines())
    rows = _rows(lines)
    _rewrite(target, lines)
    with open_store(target) as store:
        assert store.verify().head.entries == 5  # the rows as writers wrote them
    forged = list(rows[at])
    forged[column] = value
    _put_rows(target, [*rows[:at], tuple(forged), *rows[at + 1 :]])
    with open_store(target) as store, pytest.raises(BrokenChainError) as caught:
        location = store.location
        store.verify()
    name = _ROW_COLUMNS[column]
    assert caught.value.position == at
    said = f"position {at}: the row's {name} column ({shown(value)}) does not hold what its line says"
    assert str(caught.value) == said
    ran = helpers.invoke(["verify", "--log", target])
    assert ran.exit_code == 1 and ran.stderr == f"timeline: error: {location}: {said}\n"


def _on_figures(target: str, statement: str) -> None:
    """Run SQL on a SQL log's database as its owner, around the store (the figures table is derived data, which no
    trigger guards)."""
    if target.startswith("sqlite:///"):
        import sqlite3

        database = sqlite3.connect(target.removeprefix("sqlite:///"))
        database.executescript(statement)
        database.close()
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as database:
            database.execute(statement)


def _key_at(target: str, position: int) -> str | None:
    """The figure key a SQL log's figures table holds for an entry."""
    with open_store(target) as store:
        cursor = store._connection(write=False).cursor()
        cursor.execute(f"SELECT figure FROM timeline_figures WHERE position = {store.placeholder}", (position,))
        return cursor.fetchone()[0]


# A change to a SQL log's figures table (positions 0 and 1 describe the names, observations a and b are at 2 and
# 3), and what verify then says of the table: {a} and {b} stand for the keys of a and b, as shown.
FIGURES_CHANGED = {
    "another's key": ("UPDATE timeline_figures SET figure = '{a}' WHERE position = 3", "holds {a} for position 3, "
                      "but that entry has the figure key {b}"),
    "a key for a description": ("UPDATE timeline_figures SET figure = '{a}' WHERE position = 1", "holds {a} for "
                                "position 1, but that entry has no figure key"),
    "no key": ("UPDATE timeline_figures SET figure = NULL WHERE position = 2", "holds no key for position 2, but "
               "that entry has the figure key {a}"),
    "a row missing": ("DELETE FROM timeline_figures WHERE position = 2", "has no row for position 2, though it has "
                      "rows after it"),
    "the first row missing": ("DELETE FROM timeline_figures WHERE position = 0", "has no row for position 0, though "
                              "it has rows after it"),
    "a row past the log": ("INSERT INTO timeline_figures VALUES (4, NULL)", "has a row for position 4, which the log "
                           "does not hold"),
}  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(("change", "said"), FIGURES_CHANGED.values(), ids=FIGURES_CHANGED.keys())
def test_verify_names_a_figures_table_that_does_not_hold_what_the_lines_make(fresh_logs, kind, change, said):
    """Admission looks repeats up in the figures table: a row changed outside the store let a repeat in while
    verify passed, and a row past the log stopped the catch-up from filling the rows before it. verify names the
    first wrong row and fails; ``--repair-index`` rebuilds the table from the lines, and repeats are seen."""
    target = fresh_logs(kind)
    with open_store(target) as store:
        store.clock = StepClock()
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        location = store.location
    keys = {"a": _key_at(target, 2), "b": _key_at(target, 3)}
    _on_figures(target, change.format(**keys))
    said = "timeline_figures " + said.format(**{name: shown(key) for name, key in keys.items()})
    ran = helpers.invoke(["verify", "--log", target])
    assert ran.exit_code == 1
    assert f"{location}: {said}; the table or the log was changed outside timeline: if the log's lines are right " \
           "(as `verify --expect` with a checkpoint shows), `verify --repair-index` rebuilds the table from them" \
           in ran.stderr
    repaired = helpers.invoke(["verify", "--log", target, "--repair-index"])
    assert repaired.exit_code == 0 and f"{said}; it was rebuilt from the log's lines" in repaired.stdout
    again = helpers.invoke(["verify", "--log", target])
    assert again.exit_code == 0 and "timeline_figures" not in again.stdout + again.stderr
    assert [_key_at(target, position) for position in range(4)] == [None, None, keys["a"], keys["b"]]
    with open_store(target) as store, pytest.raises(InputError, match="repeats observation 'b'"):
        store.append([obs("c", 8, 745)])


# A figures table made again otherwise than the store makes it, by SQL run as the table's owner: its rows'
# checks count on a primary key (unique whole positions), and on nothing changing what is written. Each makes
# b's row (position 3) a copy of a's first, so that a repeat of b would get in. The SQL per store, and what
# verify says the table is.
FIGURES_REMADE = {
    "no primary key": (
        "CREATE TABLE t (position INTEGER, figure TEXT); INSERT INTO t SELECT * FROM timeline_figures; "
        "DROP TABLE timeline_figures; ALTER TABLE t RENAME TO timeline_figures; "
        "UPDATE timeline_figures SET position = 2 WHERE position = 3; "
        "INSERT INTO timeline_figures VALUES (3, '{b}')",
        "CREATE TABLE t (position BIGINT, figure TEXT); INSERT INTO t SELECT * FROM timeline_figures; "
        "DROP TABLE timeline_figures; ALTER TABLE t RENAME TO timeline_figures; "
        "UPDATE timeline_figures SET position = 2 WHERE position = 3; "
        "INSERT INTO timeline_figures VALUES (3, '{b}')",
        {"sqlite": "made as 'CREATE TABLE \"timeline_figures\" (position INTEGER, figure TEXT)'",
         "postgres": "its columns are not position BIGINT PRIMARY KEY, figure TEXT"},
    ),
    "a trigger": (
        "CREATE TRIGGER forget AFTER INSERT ON timeline_figures BEGIN "
        "UPDATE timeline_figures SET figure = NULL WHERE position = new.position; END",
        "CREATE FUNCTION forget() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.figure := NULL; RETURN NEW; "
        "END $$; CREATE TRIGGER forget BEFORE INSERT ON timeline_figures FOR EACH ROW EXECUTE FUNCTION forget()",
        {"sqlite": "a trigger on it, 'forget'", "postgres": "a trigger on it, 'forget'"},
    ),
    "a view": (
        "ALTER TABLE timeline_figures RENAME TO kept; CREATE VIEW timeline_figures AS SELECT * FROM kept",
        "ALTER TABLE timeline_figures RENAME TO kept; CREATE VIEW timeline_figures AS SELECT * FROM kept",
        {"sqlite": "a view", "postgres": "a relation of kind 'v', not a plain table"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(("sqlite", "postgres", "said"), FIGURES_REMADE.values(), ids=FIGURES_REMADE.keys())
def test_verify_names_a_figures_table_the_store_did_not_make_and_leaves_it(fresh_logs, kind, sqlite, postgres, said):
    """A hostile tester's finds: without its key, a table passed verify while it let a repeat in; with a trigger
    on it, ``--repair-index`` said it rebuilt the rows and the next verify failed again. verify names what the
    table is, and fails, repair or not; dropped, the table is made again from the log by the next append."""
    target = fresh_logs(kind)
    with open_store(target) as store:
        store.clock = StepClock()
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        location = store.location
    statement = (sqlite if kind == "sqlite" else postgres).format(b=_key_at(target, 2))
    _on_figures(target, statement)
    expected = (f"{location}: timeline_figures is not the table timeline makes ({said[kind]}): drop it (DROP TABLE "
                "timeline_figures), and the next append by a role allowed to create it makes it again from the log")
    for repair in ([], ["--repair-index"]):
        ran = helpers.invoke(["verify", "--log", target, *repair])
        assert ran.exit_code == 1 and expected in ran.stderr, ran.output
    drop = "DROP VIEW timeline_figures; DROP TABLE kept" if "VIEW" in statement else "DROP TABLE timeline_figures"
    _on_figures(target, drop + (" CASCADE" if kind == "postgres" else ""))
    with open_store(target) as store:
        store.clock = StepClock(dt.datetime(2025, 4, 2, tzinfo=dt.UTC))
        with pytest.raises(InputError, match="repeats observation 'b'"):
            store.append([obs("c", 8, 745)])
    assert helpers.invoke(["verify", "--log", target]).exit_code == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_figures_table_that_lags_behind_the_log_passes_verify_and_is_filled_by_the_next_write(fresh_logs, kind):
    """A log made before the table lacks rows for its last entries until its next write gives them: no finding."""
    target = fresh_logs(kind)
    with open_store(target) as store:
        store.clock = StepClock()
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    key = _key_at(target, 3)
    _on_figures(target, "DELETE FROM timeline_figures WHERE position >= 2")
    ran = helpers.invoke(["verify", "--log", target])
    assert ran.exit_code == 0 and "timeline_figures" not in ran.stdout + ran.stderr
    with open_store(target) as store:
        store.clock = StepClock(dt.datetime(2025, 4, 2, tzinfo=dt.UTC))
        with pytest.raises(InputError, match="repeats observation 'b'"):
            store.append([obs("c", 8, 745)])
        store.append([obs("c", 9, 745)])
    assert _key_at(target, 3) == key and _key_at(target, 4) is not None
    assert helpers.invoke(["verify", "--log", target]).exit_code == 0


@contextmanager
def _unwritable(folder: Path, mode: int = 0o555) -> Iterator[None]:
    """``folder`` with ``mode`` (by default, no right to write for anyone) and, for root, whom rights do not stop,
    ext4's immutable flag; or a skip."""
    folder.chmod(mode)
    try:
        if os.geteuid() == 0:
            made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
            if made.returncode:
                pytest.skip(f"chattr +i failed: {made.stderr.decode().strip()}")
            try:
                yield
            finally:
                subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            yield
    finally:
        folder.chmod(0o755)


def test_a_sqlite_log_in_a_folder_no_one_may_write_is_read_and_verified(tmp_path):
    """A log sent on a stick, or on a share mounted read-only: SQLite's reader of a WAL database makes a file
    beside it, and could not there ("attempt to write a readonly database"). With no write-ahead log beside it,
    no writer can change it, and it is read as it lies. Where the folder's owner may still write, a writer could
    change the file under the reader: it is not read, and the one line says why."""
    folder = tmp_path / "sent"
    folder.mkdir()
    target = f"sqlite:///{folder / 'log.db'}"
    with open_store(target) as store:
        store.clock = StepClock()
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    assert sorted(path.name for path in folder.iterdir()) == ["log.db"]  # closed: nothing beside it
    row = "coastal-2025,SOHR,killed,civilians,,2025-03-08,745,745,reported,b"
    with _unwritable(folder):
        verified = helpers.invoke(["verify", "--log", target])
        assert verified.exit_code == 0 and "4 entries, chain intact" in verified.stdout, verified.output
        replayed = helpers.invoke(["replay", "--log", target, "--format", "csv"])
        assert replayed.exit_code == 0 and replayed.stdout.splitlines()[1:] == [row], replayed.output
        listed = helpers.invoke(["log", "--log", target])
        assert listed.exit_code == 0 and listed.stdout.count("\n") == 4, listed.output
        refused = helpers.invoke(["append", "--log", target, "--incident", "coastal-2025", "--monitor", "SOHR",
                                  *OBSERVATION_OPTIONS])  # fmt: skip
        assert refused.exit_code == 1 and refused.stderr.startswith(f"timeline: error: cannot write to {target}")
    assert sorted(path.name for path in folder.iterdir()) == ["log.db"]
    if os.geteuid() != 0:
        return  # a folder its owner may write but this reader may not takes another user to make
    with _unwritable(folder, 0o755):  # its owner has the right: a writer could change the file under the reader
        for command in (["verify"], ["log"]):
            ran = helpers.invoke([*command, "--log", target])
            assert ran.exit_code == 1 and ran.stderr == (
                f"timeline: error: cannot read {target}: SQLite reads a log in WAL mode by making log.db-shm beside "
                "it, and may not in its folder; it reads one as it lies only where no one may write in the folder and "
                "no write-ahead log lies beside it (a copy in a folder of your own can be read)\n"
            )


def test_verify_names_a_postgresql_row_whose_batch_end_is_not_its_lines(fresh_logs):
    """The chain trigger keeps each line's batch_end in a column (NULL in rows put in before it had one), and the
    next entry and the commit check read the column: one edited around the trigger is named."""
    import psycopg

    target = fresh_logs("postgres")
    with open_store(target) as store:
        store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
        assert store.verify().head.entries == 4
    with psycopg.connect(target, autocommit=True) as database:
        database.execute("ALTER TABLE timeline_entries DISABLE TRIGGER USER")
        database.execute("UPDATE timeline_entries SET batch_end = 2 WHERE position = 3")
    with open_store(target) as store, pytest.raises(BrokenChainError) as caught:
        store.verify()
    assert str(caught.value) == "position 3: the row's batch_end column (2) does not hold what its line says"


@pytest.mark.parametrize("value", [7, 2.5], ids=["a number", "a real"])
def test_a_sqlite_row_holding_no_line_is_named_by_verify(fresh_logs, value):
    """A row edited behind the triggers to hold a number for its line: one line naming its position."""
    import sqlite3

    target = fresh_logs("sqlite")
    store = open_store(target)
    store.clock = StepClock()
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745), obs("c", 9, 800)])
    store.close()
    database = sqlite3.connect(target.removeprefix("sqlite:///"), isolation_level=None)
    for trigger in ("no_update", "no_delete", "extends_chain"):
        database.execute(f"DROP TRIGGER IF EXISTS timeline_entries_{trigger}")
    database.execute("UPDATE timeline_entries SET line = ? WHERE position = 3", (value,))
    database.close()
    result = helpers.invoke(["verify", "--log", target])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "position 3: the line does not end in its hash" in result.stderr


# -- a failing environment ---------------------------------------------------------------------


@contextmanager
def small_filesystem(folder: Path, size: str):
    """A real tmpfs of ``size`` mounted at ``folder`` (needs root, as in CI)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); "
                    "test_jsonl_store simulates the full disk at the write call instead")  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_a_full_disk_appends_whole_batches_or_nothing(tmp_path, kind):
    """On a real 1 MiB filesystem, appends stop with a clear error; every acknowledged entry stays."""
    # (A SQLite log's pages are 16 KiB: its first append's write-ahead log alone takes 400 KiB.)
    with small_filesystem(tmp_path / "disk", "1m") as disk:
        target = str(disk / "log.jsonl") if kind == "jsonl" else f"sqlite:///{disk / 'log.db'}"
        store = open_store(target)
        store.clock = StepClock()
        store.append(NAMES)
        acknowledged, error = [], None
        for i in range(5000):
            batch = [obs(f"f{i}-{j}", 1 + i % 28, i, location=f"{j}" + "x" * 199) for j in range(3)]
            try:
                store.append(batch)
            except StoreError as exc:
                error = str(exc)
                break
            acknowledged += [o.id for o in batch]
        assert error is not None and "full" in error and "\n" not in error
        store.close()
        reopened = open_store(target)
        assert reopened.verify().head.entries == len(NAMES) + len(acknowledged)
        assert [e.event.id for e in reopened.entries(len(NAMES))] == acknowledged
        result = invoke(["verify"], target)
        assert result.exit_code == 0
        reopened.close()


def test_an_import_that_fills_the_disk_of_a_sqlite_log_says_so(tmp_path):
    """A batch larger than SQLite's cache spills into the log's file as it goes; a full disk there ends the
    transaction inside SQLite itself: the error is still the full disk, in one line, and nothing is appended."""
    with small_filesystem(tmp_path / "disk", "8m") as disk:
        target = f"sqlite:///{disk / 'log.db'}"
        with open_store(target) as store:
            store.clock = StepClock()
            store.append(NAMES)
            before = list(store.lines())
        rows = [{**dict.fromkeys(COLUMNS, ""), "id": f"r{n}", "incident": "idlib-2026", "monitor": "SOHR",
                 "reported_on": "2025-01-01", "measure": "killed", "category": "civilians", "kind": "cumulative",
                 "low": str(n), "qualifier": "exact", "source_title": f"Report {n}", "quote": "q" * 2_000}
                for n in range(30_000)]  # fmt: skip
        path = tmp_path / "big.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        result = invoke(["import", str(path), "--describe-new"], target)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "the disk is full; nothing was appended" in result.stderr
        with open_store(target) as store:
            assert list(store.lines()) == before
            assert store.verify().head.entries == len(before)


def _increments_csv(path: Path, numbers: range) -> Path:
    """A CSV of one increment of idlib-2026 for each of ``numbers``."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows({**dict.fromkeys(COLUMNS, ""), "incident": "idlib-2026", "monitor": "SOHR",
                          "reported_on": "2025-01-01", "measure": "killed", "category": "civilians",
                          "kind": "increment", "low": str(n), "qualifier": "exact", "source_title": f"Report {n}"}
                         for n in numbers)  # fmt: skip
    return path


@pytest.mark.parametrize("logged", [0, 60_000])
def test_an_import_whose_sqlite_temporary_folder_fills_says_so(tmp_path, logged):
    """SQLite's temporary folder holds the keys it sorts to make a large batch's indexes again, and what its
    statements would undo: one too small stops an import with the full disk's one line, naming that folder,
    and nothing is appended, whether the batch is as large as the log or smaller."""
    with small_filesystem(tmp_path / "sorting", "64k") as sorting:
        target = f"sqlite:///{tmp_path / 'log.db'}"
        with open_store(target) as store:
            store.clock = StepClock()
            store.append(NAMES)
        if logged:
            assert invoke(["import", str(_increments_csv(tmp_path / "logged.csv", range(logged))),
                           "--describe-new"], target).exit_code == 0  # fmt: skip
        with open_store(target) as store:
            before = list(store.lines())
        path = _increments_csv(tmp_path / "rows.csv", range(logged, logged + 60_000 if logged else 10_000))
        command = [sys.executable, "-m", "timeline", "import", "--log", target, "--describe-new", str(path)]
        environment = {**os.environ, "SQLITE_TMPDIR": str(sorting)}
        done = subprocess.run(command, capture_output=True, text=True, env=environment)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and "the disk is full; nothing was appended" in done.stderr
        assert str(sorting) in done.stderr
        with open_store(target) as store:
            assert list(store.lines()) == before
            assert store.verify().head.entries == len(before)


def test_a_read_only_filesystem_is_a_clear_error(tmp_path):
    """A log on a read-only filesystem can be read, and appending says why it cannot."""
    with small_filesystem(tmp_path / "disk", "1m") as disk:
        log = disk / "log.jsonl"
        JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 1)])
        before = log.read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = invoke(["append", "--json", json.dumps({"type": "Retraction", "observation_id": "a",
                                                          "reason": "x"})], log)  # fmt: skip
        assert result.exit_code == 1 and "read-only file system" in result.stderr.lower()
        assert invoke(["replay"], log).exit_code == 0
        assert log.read_bytes() == before


def test_a_read_only_file_is_a_clear_error(tmp_path):
    """Without write permission on the log file, appending is refused with one line."""
    if os.geteuid() == 0:
        pytest.skip("root writes through file permissions; the read-only filesystem test covers root")
    log = tmp_path / "log.jsonl"
    JsonlStore(log, clock=StepClock()).append([*NAMES, obs("a", 8, 1)])
    log.chmod(0o444)
    result = invoke(["retract", "a", "--reason", "x"], log)
    assert result.exit_code == 1 and "permission denied" in result.stderr


_LOCK_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def test_a_lock_held_by_a_dead_process_does_not_block(tmp_path):
    """A writer killed while holding the lock leaves nothing behind: the next append goes through."""
    log = tmp_path / "log.jsonl"
    store = JsonlStore(log, clock=StepClock(), lock_timeout=5)
    store.append([*NAMES, obs("a", 8, 1)])
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(log)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(StoreError, match="stayed locked by another writer"):
        JsonlStore(log, lock_timeout=0.3).append([obs("b", 9, 2)])
    holder.kill()
    holder.wait()
    store.append([obs("b", 9, 2)])
    assert store.verify().head.entries == len(NAMES) + 2


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_pointing_at_the_wrong_thing_is_one_line(tmp_path, kind, fresh_logs):
    """A folder, a non-database file, or a non-log file as --log: one line, exit 1, nothing written."""
    if kind == "jsonl":
        target = str(tmp_path)
    elif kind == "sqlite":
        junk = tmp_path / "notes.db"
        junk.write_text("these are my notes, not a database")
        target = f"sqlite:///{junk}"
    else:
        target = fresh_logs("postgres").replace("postgres@", "nosuchrole@")
    for args in (["replay"], ["append", "--json", json.dumps({"type": "Retraction", "observation_id": "a",
                                                              "reason": "x"})]):  # fmt: skip
        result = invoke(args, target)
        unreachable = kind == "postgres" and args == ["replay"]  # reading: a server one cannot reach holds no log
        assert result.exit_code == (2 if unreachable else 1), result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert not unreachable or "no log at" in result.stderr


# -- names the log has not described -------------------------------------------------------------

OBSERVATION_OPTIONS = ["--reported-on", "2025-03-12", "--measure", "killed", "--category", "civilians",
                       "--kind", "cumulative", "--low", "1383", "--qualifier", "exact",
                       "--source-title", "Wiki"]  # fmt: skip


def _described_log(target: str) -> str:
    """``target`` describing coastal-2025 and SOHR, holding one SOHR figure (id s8)."""
    for args in (["describe", "incident", "coastal-2025", "--title", "2025 massacres of Syrian Alawites"],
                 ["describe", "monitor", "SOHR", "--name", "Syrian Observatory for Human Rights"],
                 ["append", "--incident", "coastal-2025", "--monitor", "SOHR", "--id", "s8",
                  *OBSERVATION_OPTIONS]):  # fmt: skip
        result = helpers.invoke([*args, "--log", target])
        assert result.exit_code == 0, result.output
    return target


def _lines(target: str) -> list[bytes]:
    store = open_store(target)
    try:
        return list(store.lines())
    finally:
        store.close()


def assert_refused(result, target: str, before: list[bytes], *fragments: str) -> None:
    """Exit 2, one line holding every fragment, and the log unchanged."""
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert _lines(target) == before


TYPOS = [
    ("--monitor", "SHOR", "monitor 'SHOR' is not described in the log; did you mean SOHR?"),
    ("--monitor", "sohr", "monitor 'sohr' is not described in the log; did you mean SOHR?"),
    ("--incident", "coastal-2024", "incident 'coastal-2024' is not described in the log; did you mean coastal-2025?"),
    ("--incident", "Coastal-2025", "incident 'Coastal-2025' is not described in the log; did you mean coastal-2025?"),
]


@pytest.mark.parametrize(("option", "typo", "message"), TYPOS)
def test_a_typo_in_a_name_never_starts_a_series(log_target, option, typo, message):
    """append and correct refuse a name the log has not described, naming the nearest one, in every store."""
    target = _described_log(log_target)
    before = _lines(target)
    names = {"--incident": "coastal-2025", "--monitor": "SOHR", option: typo}
    result = invoke(["append", "--incident", names["--incident"], "--monitor", names["--monitor"],
                     *OBSERVATION_OPTIONS], target)  # fmt: skip
    assert_refused(result, target, before, message)
    assert_refused(invoke(["correct", "s8", option, typo, "--reason", "x"], target), target, before, message)
    event = {"type": "Observation", "incident": names["--incident"], "monitor": names["--monitor"],
             "reported_on": "2025-03-12", "measure": "killed", "category": "civilians", "kind": "cumulative",
             "figure": {"low": 1, "high": 1, "qualifier": "exact"}, "source": {"title": "Wiki"}}  # fmt: skip
    assert_refused(invoke(["append", "--json", json.dumps(event)], target), target, before, message)


@pytest.mark.parametrize(("option", "typo", "message"), TYPOS)
def test_a_typo_in_a_filter_never_answers_nothing(log_target, option, typo, message):
    """replay, report and log refuse a filter naming what the log has not described, instead of an empty answer."""
    target = _described_log(log_target)
    before = _lines(target)
    commands = [["replay", option, typo], ["log", option, typo]]
    if option == "--incident":
        commands.append(["report", option, typo, "--out", "report"])
    for command in commands:
        assert_refused(invoke(command, target), target, before, f"{option}: {message}")
    assert invoke(["replay", option, "SOHR" if option == "--monitor" else "coastal-2025"], target).exit_code == 0


def test_an_import_names_every_unknown_name_at_once(tmp_path):
    """One import, one line: every undescribed name of the file, where it is first used, and what was meant."""
    log = _described_log(str(tmp_path / "log.jsonl"))
    before = _lines(log)
    rows = [{**GOOD_ROW, "monitor": "SHOR"}, {**GOOD_ROW, "monitor": "sohr", "low": "1"},
            {**GOOD_ROW, "incident": "coastal-2024", "low": "2"}, {**GOOD_ROW, "monitor": "SHOR", "low": "3"},
            {**GOOD_ROW, "monitor": "Hawar", "low": "4"}]  # fmt: skip
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text(rows, list(COLUMNS)))
    assert_refused(
        invoke(["import", str(path)], log), log, before,
        "4 names are not described in the log:",
        "rows.csv: 4 names are not described in the log:",
        "monitor 'SHOR' (line 2 and 1 more; did you mean SOHR?)",
        "monitor 'sohr' (line 3; did you mean SOHR?)",
        "incident 'coastal-2024' (line 4; did you mean coastal-2025?)",
        "monitor 'Hawar' (line 6)",
    )  # fmt: skip


def test_describe_new_describes_in_the_same_batch_but_never_a_case_variant(tmp_path):
    """--describe-new describes the new names with the import and says so; a name differing in case is still refused."""
    log = _described_log(str(tmp_path / "log.jsonl"))
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([{**GOOD_ROW, "monitor": "Hawar"}, {**GOOD_ROW, "monitor": "sohr", "low": "9"}],
                              list(COLUMNS)))  # fmt: skip
    before = _lines(log)
    assert_refused(invoke(["import", "--describe-new", str(path)], log), log, before,
                   "rows.csv:3: monitor 'sohr' is not described in the log; did you mean SOHR?")  # fmt: skip
    path.write_text(_csv_text([{**GOOD_ROW, "monitor": "Hawar"}, {**GOOD_ROW, "monitor": "HAWAR", "low": "9"}],
                              list(COLUMNS)))  # fmt: skip
    assert_refused(invoke(["import", "--describe-new", str(path)], log), log, before,
                   "rows.csv:3: monitor 'HAWAR' differs only in case from Hawar, which this import describes; "
                   "use one spelling")  # fmt: skip
    path.write_text(_csv_text([{**GOOD_ROW, "monitor": "Hawar"}, {**GOOD_ROW, "incident": "aqrab-2012"}],
                              list(COLUMNS)))  # fmt: skip
    result = invoke(["import", "--describe-new", str(path)], log)
    assert result.exit_code == 0, result.output
    assert "described monitor Hawar: Hawar at position 3 (new)" in result.output
    assert "described incident aqrab-2012: aqrab-2012 at position 4 (new)" in result.output
    assert "imported 2 events" in result.output
    entries = list(JsonlStore(log).entries())
    assert len({e.batch_end for e in entries[3:]}) == 1  # descriptions and figures landed as one batch
    result = invoke(["append", "--describe-new", "--incident", "zaraa-2016", "--monitor", "SOHR",
                     *OBSERVATION_OPTIONS], log)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("described incident zaraa-2016: zaraa-2016 at position 7 (new)\nappended ")
    assert "described monitor" not in result.output



def test_a_case_variant_of_a_name_the_file_itself_describes_is_named_as_such(tmp_path):
    """A JSON Lines import describing 'al-bayda' and then naming 'Al-Bayda' is told the name has two spellings."""
    log = _described_log(str(tmp_path / "log.jsonl"))
    path = tmp_path / "events.jsonl"
    observation = {"type": "Observation", "incident": "Al-Bayda", "monitor": "SOHR", "reported_on": "2025-03-08",
                   "measure": "killed", "category": "civilians", "kind": "cumulative",
                   "figure": {"low": 3, "high": 3, "qualifier": "exact"}, "source": {"title": "t"}}  # fmt: skip
    lines = [{"type": "IncidentDescribed", "slug": "al-bayda", "title": "Al-Bayda"}, observation]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = _lines(log)
    assert_refused(invoke(["import", str(path)], log), log, before,
                   "events.jsonl:2: incident 'Al-Bayda' differs only in case from al-bayda, which this import "
                   "describes; use one spelling")  # fmt: skip


def test_at_most_with_a_floor_is_refused_on_every_way_in_yet_read_where_a_log_holds_one(tmp_path):
    """"At most N" reads 0 to N: a low given with it is refused (command line, CSV, JSON Lines, Python), and one
    that a log written before holds is read as replay reads it, 0 to N."""
    log = _described_log(str(tmp_path / "log.jsonl"))
    before = _lines(log)
    fragment = ("an 'at_most' figure has no floor (it reads 0 to 300): give low as 0 (or leave it empty in a CSV "
                "cell or an option), or give 12-300 as a 'range'")
    options = [*OBSERVATION_OPTIONS]
    options[options.index("--qualifier") + 1] = "at_most"
    options[options.index("--low") + 1] = "12"
    appended = invoke(["append", "--incident", "coastal-2025", "--monitor", "SOHR", *options, "--high", "300"], log)
    assert_refused(appended, log, before, "options: low: " + fragment)
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([{**GOOD_ROW, "low": "12", "high": "300", "qualifier": "at_most"}], list(COLUMNS)))
    assert_refused(invoke(["import", str(path)], log), log, before, "rows.csv:2: low: " + fragment)
    line = {"type": "Observation", "incident": "coastal-2025", "monitor": "SOHR", "reported_on": "2025-03-08",
            "measure": "killed", "category": "civilians", "kind": "cumulative",
            "figure": {"low": 12, "high": 300, "qualifier": "at_most"}, "source": {"title": "t"}}  # fmt: skip
    (tmp_path / "events.jsonl").write_text(json.dumps(line) + "\n")
    refused = invoke(["import", str(tmp_path / "events.jsonl")], log)
    assert_refused(refused, log, before, "events.jsonl:1: figure: low: " + fragment)
    store = JsonlStore(log)
    floored = obs("f12", 8, 12)
    floored = attrs.evolve(floored, figure=Figure(12, 300, Qualifier.AT_MOST))  # as a log written before holds it
    with pytest.raises(InputError, match="event 1: figure: low: an 'at_most' figure has no floor"):
        store.append([floored])
    head = store.head()
    stored_line, _ = encode_entry(floored, position=head.entries, recorded_at=format_time(dt.datetime.now(dt.UTC)),
                                  batch_end=head.entries, prev_hash=head.head)  # fmt: skip
    store.append_stored([stored_line], head)
    [day] = [d for s in replay(store).series for d in s.segments() if d.observations == ("f12",)]
    assert (day.low, day.high) == (0, 300)
    # Exports say what replay counts, and a correction that leaves the figure alone carries 0, not the floor.
    exported = invoke(["export", "--format", "hxl", "--out", str(tmp_path / "hxl.csv")], log)
    assert exported.exit_code == 0, exported.output
    [row] = [r for r in csv.reader(io.StringIO((tmp_path / "hxl.csv").read_text())) if "f12" in r]
    assert "12" not in row and "0" in row and "300" in row
    corrected = invoke(["correct", "f12", "--note", "checked", "--reason", "a note"], log)
    assert corrected.exit_code == 0, corrected.output
    [day] = [d for s in replay(JsonlStore(log)).series for d in s.segments() if d.observations == ("f12",)]
    assert (day.low, day.high) == (0, 300)


def test_a_place_is_composed_on_the_way_in_so_that_one_spelling_is_one_series(tmp_path):
    """"Jablé" composed and decomposed are one place: new input is composed (NFC) on every way in, and a figure
    repeated under the other form is a repeat; an event built in Python is refused if not composed."""
    composed, decomposed = "Jabl\u00e9", "Jable\u0301"
    log = _described_log(str(tmp_path / "log.jsonl"))
    appended = invoke(["append", "--incident", "coastal-2025", "--monitor", "SOHR", "--id", "p1", *OBSERVATION_OPTIONS,
                       "--location", decomposed], log)  # fmt: skip
    assert appended.exit_code == 0, appended.output
    before = _lines(log)
    assert composed.encode() in before[-1] and decomposed.encode() not in before[-1]
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([{**GOOD_ROW, "location": decomposed}], list(COLUMNS)))
    assert_refused(invoke(["import", str(path)], log), log, before, "rows.csv:2: figure: repeats observation 'p1'")
    line = {"type": "Observation", "incident": "coastal-2025", "monitor": "SOHR", "reported_on": "2025-03-12",
            "measure": "killed", "category": "civilians", "kind": "cumulative", "location": decomposed,
            "figure": {"low": 1383, "high": 1383, "qualifier": "exact"}, "source": {"title": "t"}}  # fmt: skip
    (tmp_path / "events.jsonl").write_text(json.dumps(line) + "\n")
    assert_refused(invoke(["import", str(tmp_path / "events.jsonl")], log), log, before,
                   "events.jsonl:1: figure: repeats observation 'p1'")  # fmt: skip
    store = JsonlStore(log)
    built = attrs.evolve(obs("p2", 11, 9), location=decomposed)
    with pytest.raises(InputError, match=r"event 1: location: .* is not in Unicode's composed form \(NFC\)"):
        store.append([built])
    head = store.head()  # a log written before may hold the other form: it is read as stored, a series apart
    stored_line, _ = encode_entry(built, position=head.entries, recorded_at=format_time(dt.datetime.now(dt.UTC)),
                                  batch_end=head.entries, prev_hash=head.head)  # fmt: skip
    store.append_stored([stored_line], head)
    assert {s.location for s in replay(store).series} >= {composed, decomposed}


# -- writers: versions, repeats, limits ---------------------------------------------------------

_NAMES = [
    IncidentDescribed(slug="coastal-2025", title="Coastal massacres", place="Latakia", summary="s",
                      start_date=dt.date(2025, 3, 6)),
    MonitorDescribed(slug="SOHR", full_name="Syrian Observatory for Human Rights", description="d"),
]  # fmt: skip
_OPTIONS = ["--incident", "coastal-2025", "--monitor", "SOHR", "--measure", "killed", "--category", "civilians",
            "--source-title", "t"]  # fmt: skip


@pytest.fixture
def named_log(tmp_path):
    """A log where coastal-2025 and SOHR are described and SOHR said 1,383 on 12 March 2025."""
    log = tmp_path / "log.jsonl"
    JsonlStore(log).append([*_NAMES, obs("r7", 12, 1383)])
    return log


def _observation_json(**figure) -> str:
    return json.dumps({"type": "Observation", "incident": "coastal-2025", "monitor": "SOHR",
                       "reported_on": "2025-03-12", "measure": "killed", "category": "civilians",
                       "kind": "increment", "figure": figure, "source": {"title": "t"}})  # fmt: skip


def test_a_fix_from_a_replaced_version_is_refused(named_log):
    """`correct`/`retract --expected-version` of a replaced version: one line naming the Correction and its position."""
    assert invoke(["correct", "r7", "--low", "1384", "--reason", "typo"], named_log).exit_code == 0
    before = named_log.read_bytes()
    for args in (["correct", "r7", "--location", "Baniyas", "--reason", "x", "--expected-version", "2"],
                 ["retract", "r7", "--reason", "x", "--expected-version", "2"]):  # fmt: skip
        result = invoke(args, named_log)
        assert_clean_outcome(result, named_log, before)
        assert "r7: expected version: observation 'r7' changed after version 2" in result.stderr
        assert "the Correction at position 3" in result.stderr
    assert invoke(["retract", "r7", "--reason", "x", "--expected-version", "3"], named_log).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["append", *_OPTIONS, "--reported-on", "2025-03-12", "--kind", "cumulative", "--low", "1383",
         "--qualifier", "exact"],
        ["append", "--json", json.dumps({"type": "Observation", **{k: v for k, v in
            [("incident", "coastal-2025"), ("monitor", "SOHR"), ("reported_on", "2025-03-12"), ("measure", "killed"),
             ("category", "civilians"), ("kind", "cumulative"), ("figure", {"low": 1383, "high": 1383,
             "qualifier": "exact"}), ("source", {"title": "other words"})]}})],
    ],
)  # fmt: skip
def test_a_repeat_is_refused_unless_allowed(named_log, args):
    """Appending what SOHR already said that day is refused naming r7; --allow-duplicate lets it in."""
    before = named_log.read_bytes()
    result = invoke(args, named_log)
    assert_clean_outcome(result, named_log, before)
    assert "repeats observation 'r7'" in result.stderr and "--allow-duplicate" in result.stderr
    assert invoke([*args, "--allow-duplicate"], named_log).exit_code == 0


def test_an_import_that_repeats_is_refused_unless_allowed(named_log, tmp_path):
    """An imported row that repeats the log, or another row of the file, is named; --allow-duplicate takes it."""
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([{**GOOD_ROW, "low": "1400"}, {**GOOD_ROW, "low": "1400", "source_title": "again"}],
                              list(COLUMNS)))  # fmt: skip
    before = named_log.read_bytes()
    result = invoke(["import", str(path)], named_log)
    assert_clean_outcome(result, named_log, before)
    assert "rows.csv:3: figure: repeats observation 'obs-" in result.stderr
    assert invoke(["import", str(path), "--allow-duplicate"], named_log).exit_code == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--reported-on", "2099-01-01"], "reported_on: 2099-01-01 is in the future"),
        (["--reported-on", "9999-12-31"], "reported_on: 9999-12-31 is in the future"),
        (["--reported-on", "2025-03-12", "--period-end", "2099-01-01"], "period_end 2099-01-01 is after reported_on"),
        (["--reported-on", "2025-03-12", "--low", "1000000000001"], "low: 1000000000001 is above 1,000,000,000,000"),
        (["--reported-on", "2025-03-12", "--low", "9223372036854775807"], "low: a number of 19 digits"),
    ],
)
def test_future_dates_and_huge_counts_in_options_are_refused(named_log, args, fragment):
    """A figure reported after tomorrow (UTC) or above 10**12 is one line, exit 2, log unchanged."""
    before = named_log.read_bytes()
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = {"--low": "5", "--kind": "increment", "--qualifier": "exact"} | given
    result = invoke(["append", *_OPTIONS, *[x for pair in options.items() for x in pair]], named_log)
    assert_clean_outcome(result, named_log, before)
    assert fragment in result.stderr


def test_a_correction_into_the_future_is_refused(named_log):
    """`correct --reported-on` far ahead is refused like an append."""
    before = named_log.read_bytes()
    result = invoke(["correct", "r7", "--reported-on", "2099-01-01", "--reason", "x"], named_log)
    assert_clean_outcome(result, named_log, before)
    assert "reported_on: 2099-01-01 is in the future" in result.stderr


def test_tomorrow_is_allowed_for_time_zones_ahead_of_utc(named_log):
    """A figure dated tomorrow (UTC) is taken: east of UTC it is already today."""
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    result = invoke(["append", *_OPTIONS, "--reported-on", tomorrow, "--kind", "increment", "--low", "5",
                     "--qualifier", "exact"], named_log)  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("count", [2**63 + 1, 2**64 + 5, 10**12 + 1])
def test_huge_counts_in_json_and_json_lines_are_refused(named_log, tmp_path, count):
    """Above 10**12 (and above 2**63) in --json or a JSON Lines import: one line, exit 2, nothing written."""
    before = named_log.read_bytes()
    text = _observation_json(low=count, high=None, qualifier="at_least")
    result = invoke(["append", "--json", text], named_log)
    assert_clean_outcome(result, named_log, before)
    # orjson reads integers beyond 64 bits as floats: those are refused as not whole.
    assert "$.figure.low: " + ("above 1,000,000,000,000" if count < 2**64 else "expected a whole number") in (
        result.stderr.replace(f"{count} is above", "above")
    )
    path = tmp_path / "events.jsonl"
    path.write_text(text + "\n")
    result = invoke(["import", str(path)], named_log)
    assert_clean_outcome(result, named_log, before)
    assert "events.jsonl:1: $.figure.low" in result.stderr
    assert invoke(["replay"], named_log).exit_code == 0


def test_the_largest_count_then_an_increment_replays(named_log):
    """10**12 and an increment on top replay without overflow (the old 2**63-1 case)."""
    base = ["append", *_OPTIONS, "--qualifier", "exact"]
    assert invoke([*base, "--reported-on", "2025-03-13", "--kind", "cumulative", "--low", str(10**12)],
                  named_log).exit_code == 0  # fmt: skip
    assert invoke([*base, "--reported-on", "2025-03-14", "--kind", "increment", "--low", str(10**12)],
                  named_log).exit_code == 0  # fmt: skip
    result = invoke(["replay", "--format", "csv"], named_log)
    assert result.exit_code == 0 and "2000000000000" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["replay", "--known-at", "0001-01-01T00:00:00+14:00"], "before the year 1 in UTC"),
        (["replay", "--as-of", "9999-12-31"], "9999-12-31 is in the future"),
        (["report", "--as-of", "2099-01-01"], "2099-01-01 is in the future"),
    ],
)
def test_impossible_times_are_one_line(named_log, args, fragment):
    """A known-at before year 1 in UTC, an as-of in the future: one line, exit 2."""
    result = invoke(args, named_log)
    assert_clean_outcome(result, named_log, named_log.read_bytes())
    assert fragment in result.stderr


def test_known_at_early_in_year_one_replays_nothing(named_log):
    """A known-at in year 1 is a time like any other: nothing was recorded by then."""
    result = invoke(["replay", "--known-at", "0001-01-02T00:00:00+00:00"], named_log)
    assert result.exit_code == 0 and "no series" in result.output


def test_a_report_of_year_one_and_a_report_into_a_file(tmp_path):
    """Series dated in year 1 render; --out below a file is one line, exit 2."""
    log = tmp_path / "log.jsonl"
    early = [attrs.evolve(obs(f"y{day}", 1, day, kind), reported_on=dt.date(1, 1, day))
             for day, kind in ((1, "cumulative"), (2, "increment"))]  # fmt: skip
    JsonlStore(log).append([*_NAMES, *early])
    assert invoke(["report", "--out", str(tmp_path / "rep")], log).exit_code == 0
    (tmp_path / "f").write_text("not a folder")
    result = invoke(["report", "--out", str(tmp_path / "f" / "rep")], log)
    assert_clean_outcome(result, log, log.read_bytes())
    assert "f is a file, not a folder" in result.stderr


@pytest.mark.parametrize("command", [["replay"], ["report", "--out", "rep"], ["log"], ["verify"]])
@pytest.mark.parametrize("kind", ["jsonl", "sqlite", "postgres-empty", "postgres-unreachable"])
def test_reading_a_log_that_does_not_exist_is_one_line(tmp_path, fresh_logs, kind, command, monkeypatch):
    """A missing file, a missing SQLite file, an empty or unreachable database: "no log at", exit 2, nothing made."""
    monkeypatch.chdir(tmp_path)
    target = {
        "jsonl": lambda: str(tmp_path / "typo.jsonl"),
        "sqlite": lambda: f"sqlite:///{tmp_path / 'typo.db'}",
        "postgres-empty": lambda: fresh_logs("postgres"),
        "postgres-unreachable": lambda: "postgresql://nobody@127.0.0.1:1/none",
    }[kind]()
    result = helpers.invoke([*command[:1], "--log", target, *command[1:]])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("timeline: error: no log at ") and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    if kind == "postgres-empty":
        import psycopg

        with psycopg.connect(target) as connection:
            assert connection.execute("SELECT to_regclass('timeline_entries')").fetchone()[0] is None


def test_line_separators_inside_text_are_not_line_breaks(named_log, tmp_path):
    """U+2028 and U+0085 in a JSON string and in an unquoted CSV cell: imported, stored and read back as text."""
    path = tmp_path / "events.jsonl"
    event = json.loads(_observation_json(low=4, high=4, qualifier="exact"))
    event["source"]["quote"] = "four\u2028killed\u0085today"
    path.write_text(json.dumps(event, ensure_ascii=False) + "\n", encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")
    result = invoke(["import", str(path)], named_log)
    assert result.exit_code == 0, result.output
    rows = tmp_path / "rows.csv"
    rows.write_text(_csv_text([{**GOOD_ROW, "low": "7", "location": "Jableh\u2028north\u0085"}], list(COLUMNS)),
                    encoding="utf-8")  # fmt: skip
    result = invoke(["import", str(rows)], named_log)
    assert result.exit_code == 0 and "imported 1 events" in result.output, result.output
    assert invoke(["verify"], named_log).exit_code == 0
    quotes = [e.event.source.quote for e in JsonlStore(named_log).entries() if hasattr(e.event, "source")]
    assert "four\u2028killed\u0085today" in quotes


def test_an_import_whose_spool_fills_its_disk_says_so_in_one_line_and_appends_nothing(tmp_path):
    """An import's events wait in a temporary file: a full disk there is one line, exit 1, an unchanged log."""
    log = tmp_path / "log.jsonl"
    described = helpers.invoke(["describe", "incident", "coastal-2025", "--title", "Coast", "--log", str(log)])
    assert described.exit_code == 0
    before = log.read_bytes()
    rows = [f"coastal-2025,SOHR,2025-03-{1 + i % 28:02d},killed,civilians,increment,{i},,exact,Wiki,q{i},w{i}"
            for i in range(5_000)]  # fmt: skip
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(["incident,monitor,reported_on,measure,category,kind,low,high,qualifier,source_title,"
                               "quote,id", *rows]) + "\n", encoding="utf-8")  # fmt: skip
    with small_filesystem(tmp_path / "spool", "64k") as disk:
        env = {**os.environ, "TMPDIR": str(disk)}
        done = subprocess.run([sys.executable, "-m", "timeline", "import", "--log", str(log), str(path),
                               "--describe-new"], capture_output=True, text=True, env=env,
                              cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "No space left on device; nothing was appended" in done.stderr
    assert str(disk) in done.stderr and "TMPDIR" in done.stderr
    assert log.read_bytes() == before
