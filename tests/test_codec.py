"""The codec: strict structuring, round-trips and schema upcasting."""

from __future__ import annotations

import copy
import hashlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events_log.codec import SCHEMA, event_from_input, event_from_stored, event_to_input, unstructure, upcast
from events_log.envelope import Entry, chained_lines, decode_line, encode_entry, entry_line, format_time
from events_log.errors import InputError
from events_log.events import Correction, Observation, Retraction
from events_log.jsonl import JsonlStore
from events_log.stores import open_store
from timeline.bundled import bundled_log

from .strategies import events

GOOD = {
    "type": "Observation",
    "id": "sohr-2025-03-12",
    "incident": "coastal-2025",
    "monitor": "SOHR",
    "reported_on": "2025-03-12",
    "measure": "killed",
    "category": "civilians",
    "kind": "cumulative",
    "figure": {"low": 1383, "high": 1383, "qualifier": "exact"},
    "source": {"title": "2025 massacres of Syrian Alawites", "url": None, "quote": "The death toll reached 1383"},
    "period_start": None,
    "period_end": None,
    "location": None,
    "note": None,
}


@given(events)
def test_every_event_type_round_trips(event):
    """Unstructure then structure (through JSON bytes) gives the same event back."""
    data = orjson.loads(orjson.dumps(event_to_input(event)))
    assert event_from_input(data) == event


def test_observation_without_id_gets_a_content_id():
    """An observation given without id gets one derived from what it says, the same every time."""
    data = {k: v for k, v in GOOD.items() if k != "id"}
    first, second = event_from_input(data), event_from_input(copy.deepcopy(data))
    assert first.id == second.id and first.id.startswith("obs-")
    data["figure"] = {"low": 1384, "high": 1384, "qualifier": "exact"}
    assert event_from_input(data).id != first.id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["figure"].update(low="12"), "$.figure.low: expected a whole number, got '12'"),
        (lambda d: d["figure"].update(low=12.5), "$.figure.low: expected a whole number, got 12.5"),
        (lambda d: d["figure"].update(low=-1, high=-1), "$.figure.low: must not be negative"),
        (lambda d: d["figure"].update(high=3), "$.figure.high: high (3) is below low (1383)"),
        (lambda d: d.update(reported_on="2025-02-30"), "$.reported_on: 2025-02-30 is not a calendar date"),
        (lambda d: d.update(reported_on="20250312"), "$.reported_on: expected a date written YYYY-MM-DD"),
        (lambda d: d.update(kind="running"), "$.kind: 'running' is not one of: cumulative, increment"),
        (lambda d: d.update(colour="red"), "$: unknown field(s): 'colour'"),
        (lambda d: d["source"].update(page=3), "$.source: unknown field(s): 'page'"),
        (lambda d: d.pop("monitor"), "$.monitor: required field missing"),
        (lambda d: d.update(period_start="2025-03-13"), "$.period_start: period_start 2025-03-13 is after"),
        (lambda d: d.update(period_start="2025-03-10", period_end="2025-03-09"), "$.period_end: period_end"),
        (lambda d: d["source"].update(url="javascript:alert(1)"), "$.source.url: not a valid http(s) URL"),
        (lambda d: d.update(type="Rumour"), "type: unknown or missing event type 'Rumour'"),
        (lambda d: d.update(source="a string"), "$.source: expected a Source"),
    ],
)
def test_bad_fields_are_named(change, message):
    """Every malformed field is refused with a message naming its path."""
    data = copy.deepcopy(GOOD)
    change(data)
    with pytest.raises(InputError) as caught:
        event_from_input(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_version_1_observations_are_upcast():
    """A version-1 observation (figure and source flat, as in the CSV) loads as today's type."""
    stored_v1 = {
        "id": "sohr-2025-03-12",
        "incident": "coastal-2025",
        "monitor": "SOHR",
        "reported_on": "2025-03-12",
        "period_start": None,
        "period_end": None,
        "measure": "killed",
        "category": "civilians",
        "location": None,
        "kind": "cumulative",
        "low": 1383,
        "high": 1383,
        "qualifier": "exact",
        "source_url": None,
        "source_title": "2025 massacres of Syrian Alawites",
        "quote": "The death toll reached 1383",
        "note": None,
    }
    event = event_from_stored("Observation", 1, stored_v1)
    expected = event_from_input(GOOD)
    assert isinstance(event, Observation) and event == expected


def test_unknown_schema_versions_are_refused():
    """A schema version newer than this code knows is an error, not a guess."""
    with pytest.raises(InputError, match="schema version 3 of Observation"):
        upcast("Observation", 3, {})


def test_descriptions_written_before_their_fields_were_optional_read_back_byte_for_byte():
    """Every description line of the bundled log decodes, and encodes again to the very bytes its hash covers."""
    store = open_store(str(bundled_log()), read_only=True)
    lines = [line for line in store.lines() if b'"type":"IncidentDescribed"' in line
             or b'"type":"MonitorDescribed"' in line]  # fmt: skip
    assert len(lines) == 7 + 21 + 1  # release 2 describes houla-2012 again
    for line in lines:
        entry = Entry.from_raw(decode_line(line))
        again, _ = encode_entry(entry.event, position=entry.position, recorded_at=format_time(entry.recorded_at),
                                batch_end=entry.batch_end, prev_hash=entry.prev_hash)  # fmt: skip
        assert again == line


def test_a_description_needs_only_its_title_or_name():
    """Place, start date, summary and the monitor's description may be left out, and read back as absent."""
    incident = event_from_input({"type": "IncidentDescribed", "slug": "aqrab-2012", "title": "Aqrab massacre"})
    assert (incident.place, incident.start_date, incident.summary, incident.links) == (None, None, None, ())
    monitor = event_from_input({"type": "MonitorDescribed", "slug": "SOHR", "full_name": "Syrian Observatory"})
    assert monitor.description is None and monitor.url is None
    with pytest.raises(InputError, match=r"\$.title: required field missing"):
        event_from_input({"type": "IncidentDescribed", "slug": "aqrab-2012"})


def test_version_1_fixes_load_without_an_expected_version():
    """Corrections and retractions stored before versions existed load, naming no version."""
    replacement = {k: v for k, v in GOOD.items() if k != "type"}
    fixed = event_from_stored("Correction", 1, {"observation_id": GOOD["id"], "replacement": replacement,
                                                "reason": "typo"})  # fmt: skip
    withdrawn = event_from_stored("Retraction", 1, {"observation_id": GOOD["id"], "reason": "wrong"})
    assert isinstance(fixed, Correction) and fixed.expected_version is None
    assert isinstance(withdrawn, Retraction) and withdrawn.expected_version is None


def test_an_old_log_keeps_its_hashes(tmp_path):
    """A log line written as schema 1 (no expected version) still verifies and reads under today's code."""
    observation = event_from_input(GOOD)
    path = tmp_path / "old.jsonl"
    lines, prev = [], "0" * 64
    for position, (name, data) in enumerate([("Observation", unstructure(observation)),
                                             ("Retraction", {"observation_id": GOOD["id"], "reason": "wrong"})]):
        body = orjson.dumps({"position": position, "recorded_at": "2025-04-01T09:00:00.000000Z", "type": name,
                             "schema": SCHEMA[name] if name == "Observation" else 1, "batch_end": position,
                             "prev_hash": prev, "event": data})  # fmt: skip
        prev = hashlib.sha256(body).hexdigest()
        lines.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}\n')
    path.write_bytes(b"".join(lines))
    store = JsonlStore(path)
    assert store.verify().head.head == prev
    assert [e.event for e in store.entries()][1] == Retraction(observation_id=GOOD["id"], reason="wrong")


@pytest.mark.parametrize("low", [10**12 + 1, 2**63 + 1])
def test_stored_counts_above_the_limit_do_not_load(low):
    """Reading refuses a count no input path could have written, so replay never adds one."""
    data = {k: v for k, v in GOOD.items() if k != "type"} | {"figure": {"low": low, "high": None,
                                                                       "qualifier": "at_least"}}  # fmt: skip
    with pytest.raises(InputError, match=r"\$\.figure\.low: .* above 1,000,000,000,000"):
        event_from_stored("Observation", 2, data)


@given(batch=st.lists(events, min_size=1, max_size=6), position=st.integers(0, 10**15),
       prev=st.text("0123456789abcdef", min_size=64, max_size=64))  # fmt: skip
def test_the_lines_of_a_batch_are_what_orjson_makes_of_each_envelope(batch, position, prev):
    """A batch's lines are written out directly (``entry_line``, and ``chained_lines`` for a whole batch): byte
    for byte the JSON of each whole envelope, each chained to the one before by the SHA-256 of its body."""
    recorded_at, end, first = "2025-04-01T09:00:00.000000Z", position + len(batch) - 1, prev
    stored_events = [(type(event).__name__, orjson.dumps(unstructure(event))) for event in batch]
    lines = []
    for n, (name, stored) in enumerate(stored_events):
        line, digest = entry_line(name, stored, position=position + n, recorded_at=recorded_at, batch_end=end,
                                  prev_hash=prev)  # fmt: skip
        body = orjson.dumps({"position": position + n, "recorded_at": recorded_at, "type": name,
                             "schema": SCHEMA[name], "batch_end": end, "prev_hash": prev,
                             "event": orjson.loads(stored)})  # fmt: skip
        prev = hashlib.sha256(body).hexdigest()
        assert (line, digest) == (body[:-1] + b',"hash":"' + prev.encode() + b'"}', prev)
        lines.append(line)
    chained = chained_lines(stored_events, position=position, recorded_at=recorded_at, batch_end=end,
                            prev_hash=first)  # fmt: skip
    assert list(chained) == lines
