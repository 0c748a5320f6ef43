"""Checkpoints: a log rewritten and rehashed after a checkpoint is caught; one that only grew passes."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events_log import checkpoints as cps
from events_log.envelope import GENESIS, Entry, decode_line, encode_entry
from events_log.errors import CheckpointError, InputError
from events_log.events import IncidentDescribed, MonitorDescribed
from events_log.jsonl import JsonlStore
from events_log.stores import open_store

from .conftest import StepClock
from .helpers import invoke, obs
from .test_hardening import _rewrite

DESCRIBED = [
    IncidentDescribed(
        slug="coastal-2025",
        title="Coastal massacres",
        place="Syrian coast",
        start_date=dt.date(2025, 3, 6),
        summary=".",
    ),
    MonitorDescribed(slug="SOHR", full_name="Syrian Observatory for Human Rights", description="."),
]


def seeded(target: str) -> None:
    """A small log: the incident and monitor described, then three batches of SOHR figures."""
    store = open_store(target)
    store.clock = StepClock()
    store.append(DESCRIBED)
    store.append([obs("a", 8, 532), obs("b", 9, 745)])
    store.append([obs("c", 10, 1048)])
    store.close()


def grow(target: str) -> None:
    store = open_store(target)
    store.clock = StepClock(dt.datetime(2025, 4, 2, tzinfo=dt.UTC))
    store.append([obs("d", 11, 1225)])
    store.append([obs("e", 12, 1383)])
    store.close()


def forged(lines: list[bytes], position: int, low: int) -> list[bytes]:
    """The log with one figure changed at ``position`` and every later hash recomputed: a consistent rewrite."""
    out = lines[:position]
    prev = decode_line(lines[position - 1]).hash if position else GENESIS
    for line in lines[position:]:
        raw = decode_line(line)
        event = Entry.from_raw(raw).event
        if raw.position == position:
            event = attrs.evolve(event, figure=attrs.evolve(event.figure, low=low, high=low))
        body, prev = encode_entry(
            event, position=raw.position, recorded_at=raw.recorded_at, batch_end=raw.batch_end, prev_hash=prev
        )
        out.append(body)
    return out


def run(*args: str):
    return invoke(list(args))


def test_a_rewritten_and_rehashed_log_is_caught_by_expect_and_by_a_checkpoint_file(log_target, tmp_path):
    """Edit one figure, rehash the rest: the chain holds, every kept checkpoint catches it, in every store."""
    seeded(log_target)
    taken = run("checkpoint", "--log", log_target)
    assert taken.exit_code == 0, taken.output
    expect = taken.stdout.strip()
    checkpoint_file = tmp_path / "checkpoints.txt"
    assert run("checkpoint", "--log", log_target, "--out", str(checkpoint_file)).exit_code == 0
    grow(log_target)

    grown = run("verify", "--log", log_target, "--expect", expect, "--checkpoints", str(checkpoint_file))
    assert grown.exit_code == 0, grown.output
    assert re.search(r"extends all \d checkpoint\(s\)", grown.stdout)

    store = open_store(log_target)
    lines = list(store.lines())
    store.close()
    assert b'"low":745' in lines[3]
    _rewrite(log_target, forged(lines, 3, 754))
    assert open_store(log_target).verify().head.entries == len(lines)  # the chain alone can not tell

    by_expect = run("verify", "--log", log_target, "--expect", expect[:16])
    assert by_expect.exit_code == 1
    message = by_expect.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    short = cps.parse_checkpoint(expect, "taken").short
    assert f"does not extend checkpoint {short}" in message and "position 4" in message

    by_file = run("verify", "--log", log_target, "--checkpoints", str(checkpoint_file))
    assert by_file.exit_code == 1
    assert f"{checkpoint_file}:1" in by_file.stderr and "position 4" in by_file.stderr

    plain = run("verify", "--log", log_target)
    if log_target.startswith("postgresql://"):
        # The server kept the checkpoint when it was taken: its own verify catches the rewrite.
        assert plain.exit_code == 1 and "(checkpoint 1 kept in postgresql://" in plain.stderr
    elif log_target.startswith("sqlite:///"):
        # The figures table, written with the lines, still holds the key of the figure they said: verify sees that.
        assert plain.exit_code == 1 and "timeline_figures holds" in plain.stderr and "position 3," in plain.stderr
    else:
        assert plain.exit_code == 0


def test_a_log_shorter_than_its_checkpoint_says_so(tmp_path):
    """A log cut back below a checkpoint fails, saying it is shorter and where it ends."""
    log = str(tmp_path / "log.jsonl")
    seeded(log)
    lines = Path(log).read_bytes().splitlines(keepends=True)
    head = decode_line(lines[-1].rstrip(b"\n")).hash
    Path(log).write_bytes(b"".join(lines[:4]))
    result = run("verify", "--log", log, "--expect", f"{len(lines)}:{head}")
    assert result.exit_code == 1
    assert "shorter than the checkpoint" in result.stderr
    assert f"with 4 entries where the checkpoint has {len(lines)}," in result.stderr


def test_a_checkpoint_of_no_entries_with_another_head_than_genesis_is_refused(tmp_path):
    """0 entries can only have the genesis head: any other is bad input (exit 2), not a log said to be shorter."""
    log = str(tmp_path / "log.jsonl")
    seeded(log)
    head = decode_line(Path(log).read_bytes().splitlines()[-1]).hash
    refused = run("verify", "--log", log, "--expect", f"0:{head}")
    assert refused.exit_code == 2 and "shorter" not in refused.stderr
    assert (
        refused.stderr == f"timeline: error: --expect: a checkpoint of 0 entries has the empty log's head "
        f"{GENESIS[:12]}, got {head[:12]}\n"
    )
    path = tmp_path / "cps.jsonl"
    path.write_text(f'{{"entries": 0, "head": "{head}", "recorded_at": "x", "log": "l"}}\n')
    in_file = run("verify", "--log", log, "--checkpoints", str(path))
    assert in_file.exit_code == 2 and f"{path}:1: a checkpoint of 0 entries" in in_file.stderr
    assert run("verify", "--log", log, "--expect", f"0:{GENESIS[:12]}").exit_code == 0


@given(data=st.data())
def test_every_prefix_is_a_checkpoint_the_grown_log_extends_and_no_other_head_is(tmp_path_factory, data):
    """Each earlier (entries, head) holds on the grown log; the same entries with any other head do not."""
    folder = tmp_path_factory.mktemp("grown")
    store = JsonlStore(folder / "log.jsonl", clock=StepClock())
    store.append(DESCRIBED)
    heads = [store.head()]
    for day in range(8, 8 + data.draw(st.integers(1, 6))):
        store.append([obs(f"o{day}", day, day * 10)])
        heads.append(store.head())
    taken = data.draw(st.sampled_from(heads))
    width = data.draw(st.integers(12, 64))
    good = cps.Checkpoint(taken.entries, taken.head[:width])
    cps.check_extends(store, [("good", good)])
    digit = data.draw(st.integers(0, width - 1))
    other = taken.head[:digit] + ("0" if taken.head[digit] != "0" else "1") + taken.head[digit + 1 : width]
    with pytest.raises(CheckpointError, match=f"position {taken.entries - 1}"):
        cps.check_extends(store, [("good", good), ("bad", cps.Checkpoint(taken.entries, other))])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("167", "expected ENTRIES:HASH"),
        ("-1:99e7d3e040cd", "expected ENTRIES:HASH"),
        ("167:99e7d3e040c", "12 to 64 lowercase hex"),
        ("167:99e7d3e040cz", "12 to 64 lowercase hex"),
        ("١٦٧:99e7d3e040cd", "expected ENTRIES:HASH"),
        ("167:" + "a" * 65, "12 to 64 lowercase hex"),
    ],
)
def test_a_bad_expect_is_one_line_naming_the_option(text, fragment):
    """A malformed --expect exits 2 with one line naming --expect."""
    result = run("verify", "--expect", text)
    assert result.exit_code == 2
    assert result.stderr.startswith("timeline: error: --expect: ") and fragment in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_checkpoint_file_line_is_named(tmp_path):
    """A broken line of a checkpoint file exits 2 naming the file and line."""
    path = tmp_path / "cps.txt"
    path.write_text(
        '# ours\n\n{"entries": 167, "head": "99e7d3e040cd", "recorded_at": "x", "log": "l"}\n{"entries": 1}\n'
    )
    result = run("verify", "--checkpoints", str(path))
    assert result.exit_code == 2 and f"{path}:4: " in result.stderr


# -- signatures -----------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    """keygen makes KEY (0600) and KEY.pub; a second keygen to the same name exits 2 and changes nothing."""
    key = tmp_path / "ours"
    assert run("keygen", str(key)).exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert Path(f"{key}.pub").read_text().startswith("ssh-ed25519 ")
    before = key.read_bytes()
    again = run("keygen", str(key))
    assert again.exit_code == 2 and "never overwrites" in again.stderr
    assert key.read_bytes() == before


def test_a_signed_checkpoint_with_one_altered_digit_fails(tmp_path):
    """Signed lines verify under --trust; changing one digit of one fails, naming its line."""
    log = str(tmp_path / "log.jsonl")
    seeded(log)
    key, checkpoints = tmp_path / "ours", tmp_path / "cps.txt"
    run("keygen", str(key))
    assert run("checkpoint", "--log", log, "--out", str(checkpoints), "--sign", str(key)).exit_code == 0
    grow(log)
    assert run("checkpoint", "--log", log, "--out", str(checkpoints), "--sign", str(key)).exit_code == 0
    passed = run("verify", "--log", log, "--checkpoints", str(checkpoints), "--trust", f"{key}.pub")
    assert passed.exit_code == 0 and "2 signed, signatures valid" in passed.stdout

    first, second = checkpoints.read_bytes().splitlines()
    head = decode_line(Path(log).read_bytes().splitlines()[-1]).hash
    digit = head[20]
    altered = second.replace(head.encode(), (head[:20] + ("1" if digit != "1" else "2") + head[21:]).encode())
    assert altered != second
    checkpoints.write_bytes(first + b"\n" + altered + b"\n")
    for extra in ([], ["--trust", f"{key}.pub"]):
        failed = run("verify", "--log", log, "--checkpoints", str(checkpoints), *extra)
        assert failed.exit_code == 1
        assert f"{checkpoints}:2: the signature" in failed.stderr and "altered or forged" in failed.stderr


def test_a_value_repeated_after_the_signature_does_not_pass_as_signed(tmp_path):
    """A signed line with a second head appended after its signature fails: values, not bytes, are checked."""
    log = str(tmp_path / "log.jsonl")
    seeded(log)
    key, checkpoints = tmp_path / "ours", tmp_path / "cps.txt"
    run("keygen", str(key))
    run("checkpoint", "--log", log, "--out", str(checkpoints), "--sign", str(key))
    line = checkpoints.read_bytes().rstrip(b"\n")
    checkpoints.write_bytes(line[:-1] + b',"head":"' + b"1" * 64 + b'"}\n')
    failed = run("verify", "--log", log, "--checkpoints", str(checkpoints), "--trust", f"{key}.pub")
    assert failed.exit_code == 1 and f"{checkpoints}:1: the signature" in failed.stderr


def test_a_line_signed_by_another_key_fails_under_trust(tmp_path):
    """A valid signature by a key not given to --trust fails, naming the line; trusting that key passes."""
    log = str(tmp_path / "log.jsonl")
    seeded(log)
    ours, theirs, checkpoints = tmp_path / "ours", tmp_path / "theirs", tmp_path / "cps.txt"
    run("keygen", str(ours))
    run("keygen", str(theirs))
    run("checkpoint", "--log", log, "--out", str(checkpoints), "--sign", str(ours))
    run("checkpoint", "--log", log, "--out", str(checkpoints), "--sign", str(theirs))
    failed = run("verify", "--log", log, "--checkpoints", str(checkpoints), "--trust", f"{ours}.pub")
    assert failed.exit_code == 1 and f"{checkpoints}:2: " in failed.stderr and "not trusted" in failed.stderr
    both = run(
        "verify", "--log", log, "--checkpoints", str(checkpoints), "--trust", f"{ours}.pub", "--trust", f"{theirs}.pub"
    )
    assert both.exit_code == 0, both.output
    checkpoints.write_bytes(checkpoints.read_bytes().splitlines(keepends=True)[0])
    run("checkpoint", "--log", log, "--out", str(checkpoints))
    unsigned = run("verify", "--log", log, "--checkpoints", str(checkpoints), "--trust", f"{ours}.pub")
    assert unsigned.exit_code == 1 and f"{checkpoints}:2: " in unsigned.stderr and "not signed" in unsigned.stderr


@pytest.mark.parametrize("left", [b"", b"# notes only\n\n"])
def test_a_checkpoint_file_emptied_of_checkpoints_fails(tmp_path, left):
    """A file given to --checkpoints that holds none fails (exit 1) in one line, with --trust or without.

    Emptying the file is how a rewrite would otherwise pass the README's CI routine.
    """
    log = str(tmp_path / "log.jsonl")
    seeded(log)
    key, checkpoints = tmp_path / "desk", tmp_path / "cps.jsonl"
    run("keygen", str(key))
    run("checkpoint", "--log", log, "--sign", str(key), "--out", str(checkpoints))
    checkpoints.write_bytes(left)
    for extra in ([], ["--trust", f"{key}.pub"]):
        failed = run("verify", "--log", log, "--checkpoints", str(checkpoints), *extra)
        assert failed.exit_code == 1, failed.output
        assert f"{checkpoints}: holds no checkpoint" in failed.stderr and failed.stderr.count("\n") == 1


def test_a_key_that_is_not_one_is_one_line(tmp_path):
    """A private key given as --trust, or garbage as --sign, exits 2 naming the file."""
    key = tmp_path / "ours"
    run("keygen", str(key))
    (tmp_path / "cps.txt").write_text("")
    wrong = run("verify", "--checkpoints", str(tmp_path / "cps.txt"), "--trust", str(key))
    assert wrong.exit_code == 2 and f"{key}: not an Ed25519 public key" in wrong.stderr
    (tmp_path / "junk").write_bytes(b"\x00junk")
    junk = run("checkpoint", "--sign", str(tmp_path / "junk"))
    assert junk.exit_code == 2 and "junk: not an unencrypted Ed25519 private key" in junk.stderr


# -- the PostgreSQL store keeps checkpoints ------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_keeps_checkpoints_append_only_and_never_with_a_password(postgres_url):
    """checkpoint on a PostgreSQL log is kept in a table refusing UPDATE, DELETE and TRUNCATE, with no password."""
    import psycopg

    seeded(postgres_url)
    with_password = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
    taken = run("checkpoint", "--log", with_password)
    assert taken.exit_code == 0, taken.output
    [line] = open_store(postgres_url).kept_checkpoints()
    assert b"hunter2" not in line and "hunter2" not in taken.output
    assert cps.parse_line(line, "kept").checkpoint == cps.Checkpoint.of(open_store(postgres_url).head())
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for statement in (
            "UPDATE timeline_checkpoints SET line = 'x'",
            "DELETE FROM timeline_checkpoints",
            "TRUNCATE timeline_checkpoints",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                connection.execute(statement)
    grow(postgres_url)
    assert run("verify", "--log", postgres_url).exit_code == 0


def test_public_location_never_keeps_a_password():
    """Passwords in a URL's user part or query are dropped; paths and other parameters stay."""
    assert (
        cps.public_location("postgresql://me:s3cr@t@db.example.org:5432/tolls")
        == "postgresql://me@db.example.org:5432/tolls"
    )
    assert (
        cps.public_location("postgresql://me@db/tolls?password=s3cret&sslmode=require")
        == "postgresql://me@db/tolls?sslmode=require"
    )
    assert cps.public_location("my log.jsonl") == "my log.jsonl"


# -- the replay index as evidence -------------------------------------------------------------------------


def test_verify_keeps_a_mismatching_index_as_evidence_and_prints_both_heads(tmp_path):
    """A rehashed log leaves its old index mismatching: verify exits 1, keeps it under a new name, names both heads."""
    log = tmp_path / "log.jsonl"
    seeded(str(log))
    assert run("replay", "--log", str(log)).exit_code == 0
    sidecar = Path(f"{log}.index")
    old_index, old_head = sidecar.read_bytes(), JsonlStore(log).head().head
    lines = log.read_bytes().splitlines()
    log.write_bytes(b"".join(line + b"\n" for line in forged(lines, 3, 754)))
    new_head = JsonlStore(log).head().head

    found = run("verify", "--log", str(log))
    assert found.exit_code == 1
    assert old_head in found.stderr and new_head in found.stderr
    evidence = Path(f"{sidecar}.mismatch-1")
    assert evidence.read_bytes() == old_index and not sidecar.exists()

    assert run("replay", "--log", str(log)).exit_code == 0
    sidecar.write_bytes(old_index)  # once more, and --repair-index: the earlier evidence stays
    repaired = run("verify", "--log", str(log), "--repair-index")
    assert repaired.exit_code == 0, repaired.output
    assert Path(f"{sidecar}.mismatch-2").read_bytes() == old_index and evidence.read_bytes() == old_index
    assert sidecar.exists() and "matches it" in run("verify", "--log", str(log)).stdout


def test_replay_warns_once_when_the_index_does_not_match_the_log(tmp_path):
    """Replay over a mismatching index rebuilds it and says so once on stderr; the next replay is quiet."""
    log = tmp_path / "log.jsonl"
    seeded(str(log))
    run("replay", "--log", str(log))
    lines = log.read_bytes().splitlines()
    log.write_bytes(b"".join(line + b"\n" for line in forged(lines, 3, 754)))
    warned = run("replay", "--log", str(log))
    assert warned.exit_code == 0 and "754" in warned.stdout
    assert warned.stderr.count("timeline: warning: the replay index") == 1
    assert "warning" not in run("replay", "--log", str(log)).stderr


# -- reports are checkpoints ------------------------------------------------------------------------------


def test_the_reports_printed_command_passes_on_its_log_and_fails_on_a_rewritten_one(tmp_path):
    """Parsed from the page and run as printed, the verify command passes, then fails after a rewrite."""
    log = tmp_path / "log.jsonl"
    seeded(str(log))
    built = run("report", "--log", str(log), "--out", str(tmp_path / "report"))
    assert built.exit_code == 0, built.output
    commands = set()
    for page in (tmp_path / "report").glob("*.html"):
        found = re.search(r'<code class="command" id="verify-command">(.*?)</code>', page.read_text())
        assert found, page
        commands.add(html.unescape(found.group(1)))
    [command] = commands
    assert shlex.split(command)[:2] == ["timeline", "verify"] and "--expect" in command
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TIMELINE_LOG", None)
    assert subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    grow(str(log))
    assert subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    log.write_bytes(b"".join(line + b"\n" for line in forged(log.read_bytes().splitlines(), 3, 754)))
    failed = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "does not extend checkpoint" in failed.stderr


def test_checkpoint_parsing_refuses_what_is_not_one():
    """Checkpoint values validate on construction; parse errors are InputErrors naming where."""
    with pytest.raises(InputError, match=r"^x: "):
        cps.parse_checkpoint("1:xyz", "x")
    assert str(cps.parse_checkpoint(" 0:" + "0" * 12, "x")) == "0:000000000000"
