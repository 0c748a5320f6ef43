"""The `timeline` command line, in-process: every command and its bad-input paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from timeline.bundled import bundled_log
from timeline_cli import COMMANDS

from .helpers import invoke

HEADER = "incident,monitor,reported_on,measure,category,kind,low,high,qualifier,source_title,quote,id"
ROWS = [
    "coastal-2025,SOHR,2025-03-08,killed,civilians,cumulative,745,,exact,Wiki,reached 745 by the end of the day,s8",
    "coastal-2025,SOHR,2025-03-09,killed,civilians,increment,303,,exact,Wiki,303 civilians,s9",
    'coastal-2025,SNHR,2025-03-11,killed,unspecified,cumulative,803,,at_least,Wiki,"at least 803 people",n11',
]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run `timeline ARGS` in-process with a log of the test's own; returns the result."""
    monkeypatch.delenv("TIMELINE_LOG", raising=False)
    monkeypatch.chdir(tmp_path)

    def command(*args, env=None):
        return invoke(args, env=env)

    return command


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return path


def describe_names(run, log, incidents=("coastal-2025",), monitors=("SOHR", "SNHR")):
    """Describe incidents and monitors in ``log`` through the command line, as a user starts a log."""
    for slug in incidents:
        assert run("describe", "incident", slug, "--log", str(log), "--title", f"Incident {slug}").exit_code == 0
    for slug in monitors:
        assert run("describe", "monitor", slug, "--log", str(log), "--name", f"Monitor {slug}").exit_code == 0


@pytest.fixture
def log(tmp_path, run, csv_file):
    """A log that describes coastal-2025, SOHR and SNHR (positions 0-2), with the three rows imported."""
    path = tmp_path / "log.jsonl"
    describe_names(run, path)
    assert run("import", "--log", str(path), str(csv_file)).exit_code == 0
    return path


def assert_user_error(result, *fragments):
    """Exit 2 and one line naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_import_prints_what_was_added(run, log, csv_file):
    """import appends every row and lists each observation it added."""
    result = run("log", "--log", str(log))
    assert result.exit_code == 0
    assert "s8: SOHR on coastal-2025, reported 2025-03-08: 745 killed" in result.output
    assert "n11: SNHR on coastal-2025, reported 2025-03-11: at least 803 killed" in result.output


def test_import_is_all_or_nothing(run, log, tmp_path):
    """One bad row refuses the whole file and leaves the log byte-for-byte unchanged."""
    before = log.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"{HEADER}\n"
        "coastal-2025,SOHR,2025-03-12,killed,civilians,cumulative,1383,,exact,Wiki,q,s12\n"
        "coastal-2025,SOHR,2025-02-30,killed,civilians,cumulative,1,,exact,Wiki,q,s13\n"
    )
    result = run("import", "--log", str(log), str(bad))
    assert_user_error(result, "bad.csv:3: reported_on: 2025-02-30 is not a calendar date")
    assert log.read_bytes() == before


@pytest.mark.parametrize("kind", ["fifo", "dangling link"])
def test_import_into_a_log_that_is_no_file_fails_before_reading(tmp_path, kind):
    """A FIFO (which would block the reader forever) or a link to a missing folder is named at once."""
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\n{ROWS[0].replace('745', '-5')}\n")
    log = tmp_path / "log.jsonl"
    if kind == "fifo":
        os.mkfifo(log)
        expected = "is not a regular file"
    else:
        log.symlink_to(tmp_path / "gone" / "log.jsonl")
        expected = "its folder does not exist"
    done = subprocess.run(
        [sys.executable, "-m", "timeline", "import", "--log", str(log), str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr and "bad.csv" not in done.stderr


def test_import_of_a_new_dataset_says_what_it_added_in_a_screenful(run, tmp_path):
    """Thirty new incidents by two monitors: counts that add up to the file, not a line per pair or name."""
    rows = [
        f"case-{i:02d},{monitor},2025-03-0{day},killed,civilians,cumulative,{10 * day + i},,exact,Wiki,q,"
        f"c{i}-{monitor}-{day}"
        for i in range(30)
        for monitor in ("SOHR", "SNHR")
        for day in (1, 2)
    ]
    data = tmp_path / "many.csv"
    data.write_text("\n".join([HEADER, *rows]) + "\n")
    result = run("import", "--log", str(tmp_path / "new.jsonl"), str(data), "--describe-new")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "described 30 incidents and 2 monitors (new, positions 0-31), each titled with its slug; "
        "`timeline incidents` and `timeline monitors` list them"
    )
    assert lines[1] == f"imported {len(rows)} events from {data} into {tmp_path / 'new.jsonl'} (positions 32-151):"
    counts = lines[2:]
    assert len(counts) == 20
    assert counts[0].split() == ["4", "Observations", "of", "case-00"]
    assert counts[-1].split(maxsplit=1) == ["44", "Observations of 11 more incidents (`timeline log` lists each)"]
    assert sum(int(line.split()[0].replace(",", "")) for line in counts) == len(rows)


@pytest.mark.parametrize("scheme", ["", "sqlite:///"])
def test_import_into_a_log_that_cannot_be_created_fails_before_reading(run, tmp_path, scheme):
    """A mistyped --log is named at once: the file (here with a bad row) is not read first."""
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\n{ROWS[0].replace('745', '-5')}\n")
    missing = tmp_path / "no-such-folder" / "log"
    result = run("import", "--log", f"{scheme}{missing}", str(bad))
    assert result.exit_code == 1, result.output
    assert f"cannot create {scheme}{missing}: its folder does not exist" in result.stderr
    assert "bad.csv" not in result.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (f"{HEADER},colour\n", ["rows.csv:1", "unknown column(s) 'colour'"]),
        (f"{HEADER},id\n", ["rows.csv:1", "named twice: id"]),
        ("", ["rows.csv", "the file is empty"]),
        (f"{HEADER}\n", ["rows.csv", "no rows below the header"]),
        (f"{HEADER}\n{ROWS[0].replace('745', '-5')}\n", ["rows.csv:2: low", "not a whole number"]),
        (f"{HEADER}\n{ROWS[0].replace('745', '74.5')}\n", ["rows.csv:2: low", "not a whole number"]),
        (f"{HEADER}\n{ROWS[0].replace('745,', '745,700')}\n", ["rows.csv:2: high", "below low"]),
        (f"{HEADER}\n{ROWS[0].replace('cumulative', 'total')}\n", ["rows.csv:2: kind", "'total' is not one of"]),
        (f"{HEADER}\n{ROWS[0].replace(',exact', ',roughly')}\n", ["rows.csv:2: qualifier"]),
        (f"{HEADER}\n{ROWS[0].replace('coastal-2025', '')}\n", ["rows.csv:2: incident: is required"]),
        (f"{HEADER}\n{ROWS[0]},extra\n", ["rows.csv:2", "13 cells where the header has 12"]),
        (f"{HEADER}\n{ROWS[0]}\n{ROWS[0]}\n", ["rows.csv:3: id: observation id 's8' is given twice (also at line 2)"]),
        (f"{HEADER}\n{ROWS[0].removesuffix('s8')}\n{ROWS[0].removesuffix('s8')}\n",
         ["rows.csv:3: id: repeats line 2 word for word (a row without an id takes its id, obs-"]),
    ],
)
def test_bad_csv_names_file_line_and_field(run, tmp_path, content, fragments):
    """Every malformed header, row or field is one line naming where it is; nothing is written."""
    path = tmp_path / "rows.csv"
    path.write_text(content, encoding="utf-8")
    log = tmp_path / "new.jsonl"
    assert_user_error(run("import", "--log", str(log), "--describe-new", str(path)), *fragments)
    assert not log.exists()


def test_csv_with_bom_crlf_and_shuffled_columns_imports(run, tmp_path):
    """A spreadsheet export (BOM, CRLF, columns in another order, empty id) imports fine."""
    path = tmp_path / "excel.csv"
    text = "id,quote,monitor,incident,reported_on,measure,category,kind,qualifier,low,source_title\r\n"
    text += ',"He said ""1,700""",Hawar,coastal-2025,2025-03-07,killed,civilians,cumulative,about,1700,Wiki\r\n'
    path.write_bytes("\ufeff".encode() + text.encode())
    result = run("import", "--log", "x.jsonl", "--describe-new", str(path))
    assert result.exit_code == 0, result.output
    assert "about 1,700 killed" in result.output


def test_not_utf8_is_refused(run, tmp_path):
    """A file in another encoding is refused with its line, not decoded into mojibake."""
    path = tmp_path / "latin.csv"
    path.write_bytes(f"{HEADER}\n".encode() + ROWS[0].replace("Wiki", "Caf\xe9").encode("latin-1") + b"\n")
    assert_user_error(run("import", "--log", "x.jsonl", str(path)), "latin.csv:2", "not UTF-8")


def test_jsonl_import_and_its_errors(run, tmp_path, log):
    """JSON Lines import takes any event type; a bad line is named with its field path."""
    good = tmp_path / "events.jsonl"
    good.write_text(
        json.dumps({"type": "Retraction", "observation_id": "s9", "reason": "duplicate of another row"}) + "\n"
    )
    assert run("import", "--log", str(log), str(good)).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "Retraction", "observation_id": "s8", "reason": "x"}\n{"type": "Retraction"\n')
    assert_user_error(run("import", "--log", str(log), str(bad)), "bad.jsonl:2", "not valid JSON")
    bad.write_text(json.dumps({"type": "Retraction", "observation_id": "nope", "reason": "x"}) + "\n")
    assert_user_error(run("import", "--log", str(log), str(bad)), "bad.jsonl:1: observation_id", "no observation")
    bad.write_text(json.dumps({"type": "Retraction", "observation_id": "s8", "reason": 5}) + "\n")
    assert_user_error(run("import", "--log", str(log), str(bad)), "bad.jsonl:1", "$.reason: expected text")


def test_unknown_extension_needs_format(run, tmp_path):
    """A file whose extension says nothing asks for --format."""
    path = tmp_path / "rows.txt"
    path.write_text(HEADER + "\n" + ROWS[0] + "\n")
    assert_user_error(run("import", "--log", "x.jsonl", str(path)), "--format csv")
    assert run("import", "--log", "x.jsonl", "--format", "csv", "--describe-new", str(path)).exit_code == 0


def test_append_from_options_and_from_json(run, tmp_path):
    """append takes one observation as options named after the CSV columns, or any event as --json."""
    describe_names(run, "a.jsonl", monitors=("SOHR",))
    result = run(
        "append", "--log", "a.jsonl", "--incident", "coastal-2025", "--monitor", "SOHR", "--reported-on",
        "2025-03-12", "--measure", "killed", "--category", "civilians", "--kind", "cumulative", "--low", "1383",
        "--qualifier", "exact", "--source-title", "Wiki", "--quote", "The death toll reached 1383", "--id", "s12",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "appended s12" in result.output and "position 2" in result.output
    event = {"type": "Retraction", "observation_id": "s12", "reason": "wrong incident"}
    result = run("append", "--log", "a.jsonl", "--json", json.dumps(event))
    assert result.exit_code == 0 and "position 3" in result.output
    assert_user_error(run("append", "--log", "a.jsonl", "--json", "{not json"), "--json", "not valid JSON")
    assert_user_error(run("append", "--log", "a.jsonl", "--incident", "x", "--low", "3"), "options: kind: is required")


def test_correct_changes_only_the_given_fields(run, log):
    """correct --low of an exact figure keeps it exact and replays the corrected value."""
    result = run("correct", "--log", str(log), "s8", "--low", "754", "--reason", "digits swapped")
    assert result.exit_code == 0, result.output
    assert "low: 745 -> 754; high: 745 -> 754" in result.output
    replayed = json.loads(run("replay", "--log", str(log), "--format", "json", "--monitor", "SOHR").output)
    assert replayed["series"][0]["days"][0]["low"] == 754
    assert_user_error(run("correct", "--log", str(log), "nope", "--low", "1", "--reason", "x"), "no observation 'nope'")
    assert_user_error(run("correct", "--log", str(log), "s8", "--low", "754", "--reason", "x"), "nothing to correct")
    assert_user_error(run("correct", "--log", str(log), "s8", "--high", "1", "--reason", "x"), "high", "below low")


def test_retract_and_then_correct_is_refused(run, log):
    """A retracted observation can be neither retracted again nor corrected."""
    assert run("retract", "--log", str(log), "s9", "--reason", "duplicate").exit_code == 0
    assert_user_error(run("retract", "--log", str(log), "s9", "--reason", "again"), "was retracted")
    assert_user_error(run("correct", "--log", str(log), "s9", "--low", "1", "--reason", "x"), "was retracted")


def test_replay_formats(run, log):
    """table, csv and json show the same running figures; csv has one row per series and day."""
    table = run("replay", "--log", str(log)).output
    assert "at least 803" in table and "1,048" in table
    rows = run("replay", "--log", str(log), "--format", "csv").output.splitlines()
    assert rows[0] == "incident,monitor,measure,category,location,date,low,high,basis,observations"
    assert "coastal-2025,SOHR,killed,civilians,,2025-03-09,1048,1048,derived,s8 s9" in rows
    assert "coastal-2025,SNHR,killed,unspecified,,2025-03-11,803,,reported,n11" in rows
    document = json.loads(run("replay", "--log", str(log), "--format", "json", "--as-of", "2025-03-10").output)
    assert document["as_of"] == "2025-03-10" and document["log"]["entries"] == 6
    [sohr] = document["series"]
    assert sohr["latest"] == {
        "date": "2025-03-10", "low": 1048, "high": 1048, "basis": "carried", "observations": ["s8", "s9"],
    }  # fmt: skip


def test_replay_known_at_accepts_dates_and_timestamps(run, log):
    """--known-at takes a date or an ISO timestamp; before the first entry nothing is known."""
    early = json.loads(run("replay", "--log", str(log), "--format", "json", "--known-at", "2000-01-01").output)
    assert early["series"] == [] and early["log"]["entries"] == 0
    later = json.loads(
        run("replay", "--log", str(log), "--format", "json", "--known-at", "2999-01-01T00:00:00+02:00").output
    )
    assert later["known_at"] == "2998-12-31T22:00:00Z" and later["log"]["entries"] == 6
    result = run("replay", "--log", str(log), "--known-at", "yesterday")
    assert result.exit_code == 2 and "expected a date or an ISO timestamp" in result.output


def test_verify_and_repair(run, log):
    """verify names the first bad position and exits 1; repair moves a torn tail aside."""
    ok = run("verify", "--log", str(log))
    assert ok.exit_code == 0 and "6 entries, chain intact" in ok.output
    with open(log, "ab") as f:
        f.write(b'{"position":6,')
    torn = run("verify", "--log", str(log))
    assert torn.exit_code == 1 and "run `timeline repair`" in torn.stderr
    warned = run("replay", "--log", str(log))
    assert warned.exit_code == 0 and "incomplete write" in warned.stderr
    repaired = run("repair", "--log", str(log))
    assert repaired.exit_code == 0 and "moved 14 bytes" in repaired.output and "quarantine-1" in repaired.output
    assert "nothing to repair" in run("repair", "--log", str(log)).output
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:4]) + lines[4].replace(b"303", b"330") + lines[5])
    broken = run("verify", "--log", str(log))
    assert broken.exit_code == 1
    assert broken.stderr == f"timeline: error: {log}: position 4: the line's content does not match its hash\n"


def test_writing_needs_a_log_of_ones_own(run, csv_file):
    """Without --log, reading uses the bundled dataset and writing is refused with advice."""
    result = run("import", str(csv_file))
    assert result.exit_code == 1 and "--log PATH" in result.stderr and "timeline copy" in result.stderr
    event = json.dumps({"type": "Retraction", "observation_id": "x", "reason": "y"})
    result = run("append", "--log", str(bundled_log()), "--json", event)
    assert result.exit_code == 1 and "the bundled dataset is read-only" in result.stderr


def test_timeline_log_environment_variable(run, log):
    """TIMELINE_LOG names the log when --log is absent."""
    result = run("log", env={"TIMELINE_LOG": str(log)})
    assert result.exit_code == 0 and "s8" in result.output


def test_console_script_runs_and_reports_errors_without_traceback(tmp_path):
    """The installed entry point exits 2 with one line for a bad file."""
    bad = tmp_path / "bad.csv"
    bad.write_text("nope\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from timeline_cli import main; main()",
            "import",
            "--log",
            str(tmp_path / "l"),
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_copy_the_bundled_dataset_into_logs_of_ones_own(run, tmp_path):
    """`copy bundled DST` gives a log with the same length and head; copying over other entries is refused."""
    done = run("copy", "bundled", f"sqlite:///{tmp_path / 'team.db'}")
    assert done.exit_code == 0, done.output
    bundled_head = run("verify").output.split("head ")[1].strip()
    assert bundled_head in done.output
    done = run("copy", f"sqlite:///{tmp_path / 'team.db'}", str(tmp_path / "mine.jsonl"))
    assert done.exit_code == 0 and bundled_head in run("verify", "--log", str(tmp_path / "mine.jsonl")).output
    other = tmp_path / "other.jsonl"
    assert run("append", "--log", str(other), "--json", json.dumps({
        "type": "MonitorDescribed", "slug": "x", "full_name": "X", "description": "d", "url": None,
    })).exit_code == 0  # fmt: skip
    refused = run("copy", "bundled", str(other))
    assert refused.exit_code == 1 and "not a copy of the start" in refused.stderr


def test_the_name_bundled_is_the_read_only_dataset_wherever_a_log_is_named(run, tmp_path, log):
    """`copy SRC bundled` and `--log bundled` for a write are refused in one line; no ./bundled appears.

    Before, both started a file ./bundled, which `--log bundled` then read in place of the dataset.
    """
    for args in (["copy", str(log), "bundled"], ["describe", "monitor", "X", "--name", "X", "--log", "bundled"]):
        refused = run(*args)
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.startswith("timeline: error: the bundled dataset is read-only;")
        assert refused.stderr.count("\n") == 1
    assert not list(tmp_path.glob("bundled*"))
    assert run("log", "--log", "bundled", "--last", "1").output == run("log", "--last", "1").output


def test_describe_and_list_incidents_and_monitors(run, log):
    """describe appends a description (the latest wins); incidents and monitors count effective figures."""
    result = run("describe", "incident", "coastal-2025", "--log", str(log),
                 "--title", "2025 massacres of Syrian Alawites", "--place", "Latakia and Tartus",
                 "--start-date", "2025-03-06", "--summary", "Killings of Alawites.",
                 "--link", "https://en.wikipedia.org/wiki/2025_massacres_of_Syrian_Alawites")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "described incident coastal-2025: 2025 massacres of Syrian Alawites at position 6" in result.output
    assert "replaces the earlier description" in result.output
    result = run("describe", "monitor", "Hawar", "--log", str(log), "--name", "Hawar News Agency",
                 "--url", "https://hawarnews.com", "--about", "Kurdish news agency")  # fmt: skip
    assert result.exit_code == 0 and "replaces" not in result.output
    assert run("retract", "s9", "--log", str(log), "--reason", "duplicate").exit_code == 0
    incidents = run("incidents", "--log", str(log)).output.splitlines()
    assert incidents[1].split() == ["coastal-2025", "2", "2025-03-11", "2025", "massacres", "of", "Syrian", "Alawites"]
    monitors = [line.split() for line in run("monitors", "--log", str(log)).output.splitlines()[1:]]
    assert monitors == [["Hawar", "0", "-", "Hawar", "News", "Agency"], ["SNHR", "1", "2025-03-11", "Monitor", "SNHR"],
                        ["SOHR", "1", "2025-03-08", "Monitor", "SOHR"]]  # fmt: skip
    document = json.loads(run("replay", "--log", str(log), "--format", "json", "--monitor", "SNHR").output)
    assert [s["monitor"] for s in document["series"]] == ["SNHR"]
    assert_user_error(run("describe"), "say what to describe")
    assert_user_error(run("describe", "monitor", "bad slug", "--log", str(log), "--name", "x"),
                      "not a valid monitor slug")  # fmt: skip
    assert_user_error(run("describe", "incident", "x", "--log", str(log), "--title", "x", "--start-date", "2025-02-30"),
                      "2025-02-30 is not a calendar date")  # fmt: skip
    assert_user_error(run("describe", "incident", "x", "--log", str(log), "--title", "x", "--link", "javascript:x"),
                      "not a valid http(s) URL")  # fmt: skip


def test_an_empty_log_lists_nothing_described(run, tmp_path):
    """incidents and monitors on a log without descriptions say so, and how to describe one."""
    (tmp_path / "empty.jsonl").touch()
    result = run("monitors", "--log", str(tmp_path / "empty.jsonl"))
    assert result.exit_code == 0 and "no monitors described" in result.output


def test_log_filters_show_what_is_about_a_name(run, log):
    """log --monitor shows its description, its figures and their fixes, and nothing else."""
    assert run("correct", "s9", "--log", str(log), "--low", "304", "--reason", "typo").exit_code == 0
    assert run("retract", "n11", "--log", str(log), "--reason", "wrong").exit_code == 0
    shown_lines = run("log", "--log", str(log), "--monitor", "SOHR").output.splitlines()
    assert [line.split()[0] for line in shown_lines] == ["1", "3", "4", "6"]
    snhr = run("log", "--log", str(log), "--monitor", "SNHR", "--format", "jsonl", "--last", "2").output.splitlines()
    assert [json.loads(line)["position"] for line in snhr] == [5, 7]
    coastal = run("log", "--log", str(log), "--incident", "coastal-2025").output.splitlines()
    assert [line.split()[0] for line in coastal] == ["0", "3", "4", "5", "6", "7"]


def test_replay_days_reports_leaves_out_carried_days_and_every_keeps_the_rule():
    """`--days reports` gives only report days in CSV and JSON; the default still carries series to as-of."""
    args = ["replay", "--incident", "aqrab-2012", "--as-of", "2025-03-10"]
    every = invoke([*args, "--format", "csv"], env={"TIMELINE_LOG": None}).output.splitlines()
    reports = invoke([*args, "--format", "csv", "--days", "reports"], env={"TIMELINE_LOG": None})
    assert reports.exit_code == 0, reports.output
    rows = reports.output.splitlines()
    assert len(rows) == 5 and not any(",carried," in r for r in rows)
    assert len(every) > 4000 and every[-1].split(",")[5] == "2025-03-10"
    document = json.loads(
        invoke([*args, "--format", "json", "--days", "reports"], env={"TIMELINE_LOG": None}).output
    )
    assert [len(s["days"]) for s in document["series"]] == [2, 1, 1]
    assert all(s["latest"]["date"] == "2025-03-10" for s in document["series"])



# What a command's start-up must not load: each costs tens of milliseconds (issue 17: start-up at most 0.08 s).
HEAVY_PACKAGES = {"numpy", "attr", "cattrs", "msgspec", "polars", "pyarrow", "psycopg", "plotly", "jinja2",
                  "cryptography"}
HEAVY_MODULES = {"events_log.events", "events_log.jsonl", "events_log.stores", "timeline.replay", "timeline.api"}
START_UP = """
import sys
from timeline_cli import run
run(sys.argv[1:])
print(" ".join(sys.modules))
"""


@pytest.mark.parametrize("command", [None, "describe", *COMMANDS])
def test_help_loads_no_heavy_module(command):
    """`timeline [COMMAND] --help` starts without loading numpy, attrs, the stores, the replay or any extra."""
    args = (command.split() if command else []) + ["--help"]
    done = subprocess.run([sys.executable, "-c", START_UP, *args], capture_output=True, text=True, check=True)
    *usage, loaded = done.stdout.strip().split("\n")
    assert f"usage: timeline {command or ''}".strip() in "\n".join(usage)
    heavy = [m for m in loaded.split() if m.split(".")[0] in HEAVY_PACKAGES or m in HEAVY_MODULES]
    assert heavy == []


def test_version_is_the_installed_distributions(run):
    """`timeline --version` names the version pip installed (pyproject.toml reads timeline_cli.__version__)."""
    import importlib.metadata

    assert run("--version").output.endswith(f", version {importlib.metadata.version('toll-timeline')}\n")


def test_a_value_that_starts_with_a_dash_is_its_options_value(run, log):
    """A quote or a reason may begin with a dash: the word after an option is its value, as getopt reads it."""
    result = run("append", "--log", str(log), "--id", "dash", "--incident", "coastal-2025", "--monitor", "SOHR",
                 "--reported-on", "2025-03-12", "--measure", "killed", "--category", "civilians", "--kind",
                 "cumulative", "--low", "1500", "--qualifier", "exact", "--source-title", "-Wiki-",
                 "--quote", "--1500 dead, as stated")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert run("retract", "dash", "--log", str(log), "--reason", "-- a test").exit_code == 0
    event = json.loads(run("log", "--log", str(log), "--format", "jsonl", "--last", "2").output.splitlines()[0])
    assert event["event"]["source"] == {"title": "-Wiki-", "quote": "--1500 dead, as stated", "url": None}
    assert_user_error(run("retract", "dash", "--log", str(log), "--reason"), "--reason needs a value")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["repaly"], ["'repaly' is not a command of `timeline`; did you mean replay?", "(see `timeline --help`)"]),
        (["replay", "--incdent", "x"], ["no such option: --incdent; did you mean --incident?", "`timeline replay"]),
        (["replay", "--format", "cvs"], ["--format: 'cvs' is not one of table, csv, json; did you mean csv?"]),
        (["replay", "--inc", "coastal-2025"], ["no such option: --inc"]),  # never a silent abbreviation
        (["replay", "stray"], ["unexpected argument 'stray'"]),
        (["describe", "incdent", "x"], ["'incdent' is not a kind of `timeline describe`; did you mean incident?"]),
        (["describe"], ["say what to describe", "`timeline describe --help`"]),
        (["log", "--last", "0"], ["--last: 0 is below 1"]),
        (["log", "--last", "ten"], ["--last: 'ten' is not a whole number"]),
        (["retract", "x", "--log", "", "--reason", "r"], ["--log: must name a log"]),
        (["correct", "x", "--reason", "r"], ["give at least one field to change", "`timeline correct --help`"]),
        (["keygen", "."], ["KEY: '.' is a folder, not a file"]),
    ],
)
def test_a_typo_in_the_command_line_is_one_line_with_the_nearest_name(run, args, fragments):
    """Every mistake in the words typed is named in one line, with the nearest right word and where to read more."""
    assert_user_error(run(*args), *fragments)


def test_a_system_error_that_reaches_the_command_line_is_one_line_saying_what_it_is():
    """Only a full disk or a failing device is called a failure to write the output; any other error of the
    system (here a fork that was already reaped) is said as it is, in one line."""
    script = (
        "import errno, timeline_cli\n"
        "def failing(argv):\n"
        "    raise ChildProcessError(errno.ECHILD, 'No child processes')\n"
        "timeline_cli.run = failing\n"
        "timeline_cli.main(['replay'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "timeline: error: No child processes\n")


def test_bare_timeline_shows_the_commands(run):
    result = run()
    assert result.exit_code == 2 and "usage: timeline" in result.stdout
    assert all(f"\n    {name}" in result.stdout for name in ("import", "replay", "report", "describe", "verify"))


def test_a_long_job_shows_progress_on_a_terminal_and_nothing_when_piped(tmp_path, csv_file):
    """`import` draws its bars on a terminal's stderr; piped, stderr stays empty."""
    import pty

    command = [sys.executable, "-m", "timeline", "import", "--describe-new", str(csv_file), "--log"]
    environment = {**os.environ, "TERM": "xterm"}
    leader, follower = pty.openpty()
    with subprocess.Popen([*command, str(tmp_path / "terminal.jsonl")], stdout=subprocess.DEVNULL, stderr=follower,
                          env=environment) as child:  # fmt: skip
        os.close(follower)
        drawn = b""
        while True:  # read as it is drawn: a terminal's buffer is small
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child is gone and its terminal closed
                break
            if not chunk:
                break
            drawn += chunk
    os.close(leader)
    assert child.returncode == 0
    assert all(label in drawn for label in (b"reading", b"writing", b"replaying")), drawn
    piped = subprocess.run([*command, str(tmp_path / "piped.jsonl")], capture_output=True, env=environment, check=True)
    assert piped.stderr == b""


_REPLAY_COUNTING_FORKS = """
import os, sys
from timeline import scratch
from timeline_cli import main

scratch.IN_TWO_ROWS = 0  # however few its rows, a replay's series are shared with a fork where one can be made
forks, fork = [], os.fork

def counted():
    pid = fork()
    if pid:
        forks.append(pid)
    return pid

os.fork = counted
try:
    main(["replay", "--log", sys.argv[1], "--format", "json"])
finally:
    with open(sys.argv[2], "w") as f:
        f.write(str(len(forks)))
"""


def test_a_replay_drawing_its_progress_on_a_terminal_still_folds_in_two_processes(tmp_path, csv_file):
    """The bar is redrawn by the loop, not by a thread: a process with a second thread never forks."""

    log, counted = tmp_path / "log.jsonl", tmp_path / "forks"
    subprocess.run([sys.executable, "-m", "timeline", "import", "--describe-new", str(csv_file), "--log", str(log)],
                   capture_output=True, check=True)  # fmt: skip
    returncode, drawn = _on_a_terminal([sys.executable, "-c", _REPLAY_COUNTING_FORKS, str(log), str(counted)])
    assert returncode == 0
    assert b"replaying" in drawn
    assert counted.read_text() == "1"


_APPEND_TO_A_CLONE = """
import sys
from events_log import jsonl
from timeline_cli import main

jsonl.IN_TWO_BYTES = 0  # however short the log, its sidecars are rebuilt as a long log's are: in two processes
main(["append", "--log", sys.argv[1], "--incident", "coastal-2025", "--monitor", "SOHR", "--reported-on",
      "2025-03-09", "--measure", "killed", "--category", "civilians", "--kind", "cumulative", "--low", "900",
      "--qualifier", "exact", "--source-title", "SOHR daily"])
"""


def test_the_first_append_to_a_cloned_log_shows_its_rebuilds_on_a_terminal(tmp_path, csv_file):
    """A log copied without its sidecars has both indexes rebuilt by its first append: each draws a bar on a
    terminal, ending full; piped, stderr stays empty."""
    logs = [tmp_path / "terminal.jsonl", tmp_path / "piped.jsonl"]
    for log in logs:
        subprocess.run([sys.executable, "-m", "timeline", "import", "--describe-new", str(csv_file), "--log",
                        str(log)], capture_output=True, check=True)  # fmt: skip
        for sidecar in tmp_path.glob(log.name + ".*"):
            sidecar.unlink()  # as a clone has none
    command = [sys.executable, "-c", _APPEND_TO_A_CLONE]
    returncode, drawn = _on_a_terminal([*command, str(logs[0])])
    assert returncode == 0
    for title in (b"index of ids and names", b"replay index"):
        assert b"reading the log into the " + title in drawn, drawn
        last = drawn.rsplit(b"reading the log into the " + title, 1)[1]
        assert b"100%" in last.split(b"reading the log", 1)[0], drawn  # its last drawing: full
    piped = subprocess.run([*command, str(logs[1])], capture_output=True, env=_TERMINAL, check=True)
    assert piped.stderr == b"" and b"appended" in piped.stdout
    assert {path.name for path in tmp_path.glob("piped.jsonl.*")} == {"piped.jsonl.known", "piped.jsonl.index"}


_TERMINAL = {**os.environ, "TERM": "xterm"}


def _on_a_terminal(command: list[str]) -> tuple[int, bytes]:
    """Run ``command`` with its stderr on a pseudo-terminal: its exit code, and all it drew there."""
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower, env=_TERMINAL) as child:
        os.close(follower)
        drawn = b""
        while chunk := _read_terminal(leader):
            drawn += chunk
    os.close(leader)
    return child.returncode, drawn


def _read_terminal(leader: int) -> bytes:
    try:
        return os.read(leader, 65536)
    except OSError:  # the child is gone and its terminal closed
        return b""
