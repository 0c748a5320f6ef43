"""The JSON Lines store: chain, torn tails, repair, tampering and concurrent writers."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import time
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_log import jsonl
from events_log.errors import BrokenChainError, InputError, ReadOnlyLogError, StoreError, TornLogError
from events_log.events import Source
from events_log.jsonl import JsonlStore
from timeline.replay import replay

from .conftest import StepClock
from .helpers import invoke, obs
from .strategies import descriptions_of

# coastal-2025 and SOHR, the names ``obs`` uses: the first two entries of every log here.
NAMES = descriptions_of([obs("x", 8, 1)])


def lines_of(path):
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def store(tmp_path):
    s = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    s.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    s.append([obs("c", 9, 303, "increment")])
    s.append([obs("d", 11, 1225)])
    return s


def test_entries_chain_and_verify(store):
    """Positions run 0, 1, 2, ... and each entry links to the hash of the one before."""
    entries = list(store.entries())
    assert [e.position for e in entries] == [0, 1, 2, 3, 4, 5]
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(entries))
    assert [e.batch_end for e in entries] == [3, 3, 3, 3, 4, 5]
    checked = store.verify()
    assert checked.head.entries == 6 and checked.head.head == entries[-1].hash and checked.torn is None


def test_a_refused_batch_appends_nothing(store):
    """A batch with one bad event (a duplicate id) leaves the file byte-for-byte unchanged."""
    before = store.path.read_bytes()
    with pytest.raises(InputError, match="'a' is already in the log"):
        store.append([obs("e", 12, 1383), obs("a", 12, 1)])
    assert store.path.read_bytes() == before


def test_a_refused_first_write_leaves_no_file(tmp_path):
    """A log made by a write that is refused is removed again: nothing is left where there was nothing."""
    store = JsonlStore(tmp_path / "new.jsonl", clock=StepClock())
    with pytest.raises(InputError, match="not described"):
        store.append([obs("a", 8, 5)])
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty.jsonl").write_bytes(b"")  # an empty log someone made stays
    with pytest.raises(InputError, match="not described"):
        JsonlStore(tmp_path / "empty.jsonl").append([obs("a", 8, 5)])
    assert (tmp_path / "empty.jsonl").read_bytes() == b""


def test_a_refused_first_write_through_a_link_leaves_the_link_and_makes_no_file(tmp_path):
    """A log reached through a symbolic link to a file not made yet: refused, the link stays and names nothing;
    then a write that lands makes the file it names, never a file in the link's place."""
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "target.jsonl")
    with pytest.raises(InputError, match="not described"):
        JsonlStore(link, clock=StepClock()).append([obs("a", 8, 5)])
    assert link.is_symlink() and not (tmp_path / "target.jsonl").exists()
    batch = [obs("a", 8, 5)]
    JsonlStore(link, clock=StepClock()).append(descriptions_of(batch) + batch)
    assert link.is_symlink() and [o.id for o in replay(JsonlStore(tmp_path / "target.jsonl")).observations()] == ["a"]


def _first_writer(path: str, good: bool, start: float) -> None:
    """Append to a log no one has made yet, at ``start``: a batch that lands, or one refused."""
    batch = [obs(f"o{os.getpid()}", 8, 5)]
    time.sleep(max(0.0, start - time.time()))
    try:
        JsonlStore(Path(path), clock=StepClock()).append((descriptions_of(batch) if good else []) + batch)
    except InputError:
        os._exit(3)
    os._exit(0)


def test_writers_racing_to_make_a_log_lose_nothing_when_one_is_refused(tmp_path):
    """Writers start at once on a log none has made, some refused: every batch that lands is in the log at
    its path (a writer waiting for the lock on a file a refused writer removed opens the log anew)."""
    context = multiprocessing.get_context("fork")
    for round_ in range(12):
        path = tmp_path / f"log-{round_}.jsonl"
        start = time.time() + 0.2
        writers = [context.Process(target=_first_writer, args=(str(path), n % 2 == round_ % 2, start))
                   for n in range(6)]  # fmt: skip
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(30)
        landed = {f"o{w.pid}" for w in writers if w.exitcode == 0}
        assert {w.exitcode for w in writers} <= {0, 3}
        if landed:
            store = JsonlStore(path)
            assert store.verify().torn is None
            assert {o.id for o in replay(store).observations()} == landed
        else:
            assert not path.exists()


def test_torn_last_line_is_ignored_then_repaired(store):
    """A crash mid-line leaves bytes that readers skip, appends refuse, and repair moves aside."""
    whole = store.path.read_bytes()
    with open(store.path, "ab") as f:
        f.write(b'{"position":6,"recorded_at":"2025-')
    torn = store.torn()
    assert torn.offset == len(whole) and torn.entries == 0
    assert [e.position for e in store.entries()] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(TornLogError, match="timeline repair"):
        store.append([obs("e", 12, 1383)])
    repaired = store.repair()
    assert repaired.quarantine.read_bytes() == b'{"position":6,"recorded_at":"2025-'
    assert store.path.read_bytes() == whole
    assert store.verify().torn is None
    store.append([obs("e", 12, 1383)])
    assert store.head().entries == 7


def test_an_unfinished_batch_is_torn_as_a_whole(tmp_path, store):
    """Complete lines of a batch whose last line never arrived were never acknowledged."""
    whole = store.path.read_bytes()
    other = JsonlStore(tmp_path / "other.jsonl", clock=StepClock())
    other.path.write_bytes(whole)
    other.append([obs("e", 12, 1), obs("f", 12, 2), obs("g", 12, 3)])
    batch_lines = lines_of(other.path)[6:]
    # A crash after two of the three lines (and half of the third) reached the disk.
    store.path.write_bytes(whole + batch_lines[0] + batch_lines[1] + batch_lines[2][:20])
    torn = store.torn()
    assert torn.offset == len(whole) and torn.entries == 2
    assert store.head().entries == 6
    assert [e.position for e in store.entries()] == [0, 1, 2, 3, 4, 5]
    store.repair()
    assert store.path.read_bytes() == whole


@pytest.mark.parametrize("where", ["a line inside", "the last line"])
def test_a_line_no_reader_can_decode_is_named_by_its_line_number(store, where):
    """A person opens the log in an editor at a line, not at a byte: replay of a log with no index (which reads
    by offsets) and an append (which reads the last line) name it by both, and change nothing."""
    lines = store.path.read_bytes().splitlines(keepends=True)
    at = 3 if where == "a line inside" else len(lines) - 1
    lines[at] = lines[at].replace(b'"batch_end"', b'"batch_en\xff"', 1)
    store.path.write_bytes(b"".join(lines))
    before = store.path.read_bytes()
    offset = len(b"".join(lines[:at]))
    said = rf"log\.jsonl: the entry on line {at + 1} \(byte {offset:,}\) is unreadable \(not a log entry: .*batch_end"
    act = replay if where == "a line inside" else lambda s: s.append([obs("e", 12, 1383)])
    with pytest.raises(StoreError, match=said):
        act(JsonlStore(store.path))
    assert store.path.read_bytes() == before


def test_a_last_line_changed_after_its_hash_is_never_built_on(store):
    """A carriage return an editor added after the last entry's hash: the line still decodes, but verify refuses
    it, so a writer does too, changing nothing, rather than chain new entries to it."""
    store.path.write_bytes(store.path.read_bytes()[:-1] + b"\r\n")
    before = store.path.read_bytes()
    with pytest.raises(StoreError, match=r"the last entry, at position 5, does not end in its hash"):
        store.append([obs("e", 12, 1383)])
    assert store.path.read_bytes() == before
    with pytest.raises(BrokenChainError, match="position 5: the line does not end in its hash"):
        store.verify()


def test_verify_reports_a_line_no_reader_can_decode_as_what_it_found(store):
    """Reading back from the end for the last whole batch meets it (the last line leaves its batch open): one
    line naming it, exit 1, and no advice to run the command being run."""
    lines = store.path.read_bytes().splitlines(keepends=True)
    lines[-2] = b"{not an entry\n"
    lines[-1] = re.sub(rb'"batch_end":\d+', b'"batch_end":99', lines[-1])
    store.path.write_bytes(b"".join(lines))
    ran = invoke(["verify", "--log", str(store.path)])
    assert ran.exit_code == 1, ran.output
    assert ran.stderr == f"timeline: error: {store.path}: the entry on line {len(lines) - 1} (byte " \
        f"{len(b''.join(lines[:-2])):,}) is unreadable (not valid JSON: JSON is malformed: object keys must be " \
        "strings (byte 1))\n"  # fmt: skip


def test_nothing_to_repair_on_a_whole_log(store):
    """Repair of a whole log changes nothing and says so."""
    before = store.path.read_bytes()
    assert store.repair() is None
    assert store.path.read_bytes() == before


@pytest.mark.parametrize(
    ("tamper", "position"),
    [
        (lambda lines: lines[:3] + lines[4:], 3),  # deleted
        (lambda lines: [*lines[:3], lines[4], lines[3], lines[5]], 3),  # reordered
        (lambda lines: [*lines[:4], lines[3], *lines[4:]], 4),  # inserted (a copy)
        (lambda lines: [*lines[:3], lines[3].replace(b"745", b"754"), *lines[4:]], 3),  # edited
    ],
)
def test_tampering_is_named_by_position(store, tamper, position):
    """Deleted, reordered, inserted and edited entries are all caught at their position."""
    store.path.write_bytes(b"".join(tamper(lines_of(store.path))))
    with pytest.raises(BrokenChainError) as caught:
        store.verify()
    assert caught.value.position == position
    assert f"position {position}" in str(caught.value)


@given(st.data())
def test_any_single_byte_edit_is_caught(tmp_path_factory, data):
    """Changing any one byte of a stored log makes verify fail (or shows as a torn tail)."""
    folder = tmp_path_factory.mktemp("log")
    store = JsonlStore(folder / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 532), obs("b", 8, 745)])
    store.append([obs("c", 9, 303, "increment")])
    original = bytearray(store.path.read_bytes())
    index = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != original[index]))
    original[index] = value
    store.path.write_bytes(bytes(original))
    try:
        checked = store.verify()
    except (BrokenChainError, StoreError):
        return
    # The only edit verify can survive is one that cuts the final newline: then the
    # last entry is a torn tail, which verify reports and the command exits 1 for.
    assert checked.torn is not None


def test_bundled_style_read_only_store_refuses_appends(store):
    """A read-only store refuses writes before touching the file."""
    reader = JsonlStore(store.path, read_only=True)
    with pytest.raises(ReadOnlyLogError):
        reader.append([obs("z", 12, 1)])


def test_a_directory_is_not_a_log(tmp_path):
    """Pointing the store at a folder is a clear error, for reading and writing."""
    s = JsonlStore(tmp_path)
    with pytest.raises(StoreError, match="is a directory"):
        s.append([obs("a", 8, 1)])
    with pytest.raises(StoreError, match="is a directory"):
        list(s.entries())


def test_reading_a_log_that_does_not_exist_yet_is_empty(tmp_path):
    """A new path is an empty log until the first append creates it."""
    s = JsonlStore(tmp_path / "new.jsonl")
    assert list(s.entries()) == [] and s.head().entries == 0
    assert replay(s).series == ()
    assert not (tmp_path / "new.jsonl").exists()


def test_log_file_is_fsynced_and_has_no_partial_batch_after_disk_full(tmp_path, monkeypatch):
    """If the disk fills mid-batch, the part written is cut back and nothing is appended."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    store.append([*NAMES, obs("a", 8, 1)])
    before = store.path.read_bytes()
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def full_disk(fd, data, offset):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_pwrite(fd, bytes(data[:10]), offset)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(StoreError, match="the disk is full; nothing was appended"):
        store.append([obs("b", 9, 2), obs("c", 10, 3)])
    monkeypatch.undo()
    assert store.path.read_bytes() == before


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quotes=st.lists(st.integers(0, 3000), min_size=1, max_size=10), read=st.sampled_from([1, 7, 300, 1 << 18]))
def test_lines_are_read_whole_however_the_reads_cut_them(tmp_path_factory, quotes, read):
    """Read a byte at a time, a few hundred, or a quarter megabyte (lines longer than a read among them): every
    line whole, as the file holds it, and verify and a replay that parses the log find what they find in big reads."""
    store = JsonlStore(tmp_path_factory.mktemp("log") / "log.jsonl", clock=StepClock())
    store.append([*NAMES, *(attrs.evolve(obs(f"o{n}", 8 + n, 100 + n), source=Source(title="t", quote="q" * length))
                            for n, length in enumerate(quotes))])  # fmt: skip
    expected = replay(JsonlStore(store.path)).series
    for sidecar in store.path.parent.glob("log.jsonl.*"):
        sidecar.unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonl, "_BLOCK", read)
        assert list(store.lines()) == store.path.read_bytes().split(b"\n")[:-1]
        assert store.verify().head == store.head()
        assert replay(JsonlStore(store.path)).series == expected
