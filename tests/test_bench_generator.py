"""The benchmark's synthetic logs are deterministic, valid, and hold what the benchmark says they hold."""

from __future__ import annotations

from bench.generate import generate
from events_log.jsonl import JsonlStore
from timeline.replay import replay


def test_same_seed_same_bytes(tmp_path):
    """Two generations with one seed are byte-identical, so results can be compared across runs."""
    a = generate(tmp_path / "a.jsonl", 3000)
    b = generate(tmp_path / "b.jsonl", 3000)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.verify().head == b.verify().head


def test_full_and_cumulative_only_logs(tmp_path):
    """The full log mixes kinds, figures, corrections and retractions; the other only running totals."""
    full = generate(tmp_path / "full.jsonl", 4000)
    types = {e.type for e in full.entries()}
    assert {"Observation", "Correction", "Retraction"} <= types
    kinds = {e.event.kind.value for e in full.entries() if e.type == "Observation"}
    assert kinds == {"cumulative", "increment"}
    cumulative = generate(tmp_path / "cumulative.jsonl", 4000, cumulative_only=True)
    assert {e.type for e in cumulative.entries()} == {"IncidentDescribed", "MonitorDescribed", "Observation"}
    assert len(replay(JsonlStore(cumulative.path)).series) == 1000
