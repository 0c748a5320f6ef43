"""The report's pages at scale: what their charts carry, their packed data, and the build's progress bar."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pty
import re
import subprocess
import sys
import zlib
from pathlib import Path

import msgspec

from events_log.events import Figure, IncidentDescribed, Kind, MonitorDescribed, Observation, Qualifier, Source
from events_log.jsonl import JsonlStore
from events_log.stores import open_store
from reports.figures import monitor_colours, view_figure, views_of
from reports.sources import Record, records
from timeline.replay import replay

from .conftest import StepClock

ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2025, 1, 1)


def _log(path: Path, days: list[int], quote: str = "counted") -> Path:
    """One incident, one monitor, a running total on each of ``days`` (offsets from 1 January 2025)."""
    store = JsonlStore(path, clock=StepClock())
    store.append(
        [
            IncidentDescribed(slug="x", title="X", place="P", start_date=START, summary="s"),
            MonitorDescribed(slug="m", full_name="M", description="d"),
            *(Observation(id=f"o{day}", incident="x", monitor="m", reported_on=START + dt.timedelta(days=day),
                          measure="killed", category="civilians", kind=Kind.CUMULATIVE,
                          figure=Figure(10 + day, 10 + day, Qualifier.EXACT),
                          source=Source(title="t", url="https://example.org/", quote=quote))
              for day in days),
        ]
    )  # fmt: skip
    return path


def test_a_step_line_carries_its_report_days_and_last_day_only(tmp_path):
    """Three reports over ninety days give a step line of four points, not ninety-one days."""
    log = _log(tmp_path / "log.jsonl", [0, 40, 80])
    result = replay(open_store(str(log), read_only=True), as_of=START + dt.timedelta(days=90))
    [view] = views_of(result.series)
    traces = view_figure(result, view, monitor_colours(["m"]))["data"]
    [line] = [t for t in traces if t["meta"]["role"] == "line"]
    assert line["x"] == ["2025-01-01", "2025-02-10", "2025-03-22", "2025-04-01"]
    assert [c[1] for c in line["customdata"]] == ["reported", "reported", "reported", "carried"]
    assert "hovertext" not in line  # written by the page from the observations it already holds


def test_a_band_carries_only_the_days_it_has_height(tmp_path):
    """A range's band runs from its day to the next change; days between ranges are left out of it."""
    store = JsonlStore(tmp_path / "log.jsonl", clock=StepClock())
    figures = {0: (10, 10), 10: (20, 30), 20: (40, 40), 30: (50, 50), 40: (60, 70), 50: (80, 80)}
    store.append(
        [
            IncidentDescribed(slug="x", title="X", place="P", start_date=START, summary="s"),
            MonitorDescribed(slug="m", full_name="M", description="d"),
            *(Observation(id=f"o{day}", incident="x", monitor="m", reported_on=START + dt.timedelta(days=day),
                          measure="killed", category="civilians", kind=Kind.CUMULATIVE,
                          figure=Figure(low, high, Qualifier.RANGE if high > low else Qualifier.EXACT),
                          source=Source(title="t"))
              for day, (low, high) in figures.items()),
        ]
    )  # fmt: skip
    result = replay(open_store(str(tmp_path / "log.jsonl"), read_only=True))
    [view] = views_of(result.series)
    traces = {t["meta"]["role"]: t for t in view_figure(result, view, monitor_colours(["m"]))["data"]}
    days = [(START + dt.timedelta(days=d)).isoformat() for d in (10, 20, 40, 50)]
    assert traces["band-high"]["x"] == traces["band-low"]["x"] == days
    assert traces["band-high"]["y"] == [30, 40, 70, 80] and traces["band-low"]["y"] == [20, 40, 60, 80]
    assert len(traces["line"]["x"]) == len(figures)


def _page_data(page: Path) -> dict:
    html = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)[1])
    return {**data, **json.loads(zlib.decompress(base64.b64decode(data["packed"])))}


def test_each_quote_is_in_the_page_once_and_never_as_markup(tmp_path):
    """A page holds each quote once, deflated inside its data: markup in a quote never reaches the HTML."""
    hostile = '</script><img src=x onerror="window.pwned=1">'
    log = _log(tmp_path / "log.jsonl", list(range(30)), quote=hostile)
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "timeline", "report", "--log", str(log), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = out / "incident-x.html"
    assert "<img" not in page.read_text(encoding="utf-8")
    data = _page_data(page)
    assert data["observations"]["quote"] == [hostile] * 30
    assert data["observations"]["id"] == [f"o{day}" for day in range(30)]
    assert hostile not in json.dumps(data["views"]) + json.dumps(data["headline"])


def test_report_shows_progress_on_a_terminal_and_nothing_when_piped(tmp_path):
    """On a terminal the report draws a bar over its pages; piped, stderr stays empty."""
    log = _log(tmp_path / "log.jsonl", [0, 1, 2])
    command = [sys.executable, "-m", "timeline", "report", "--log", str(log), "--out"]
    piped = subprocess.run([*command, str(tmp_path / "piped")], cwd=ROOT, capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stderr == ""
    leader, follower = pty.openpty()
    try:
        shown = subprocess.run([*command, str(tmp_path / "shown")], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=follower)  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert shown.returncode == 0
    assert b"writing pages" in seen


def test_records_read_in_one_pass_are_what_the_replay_reads_one_by_one(tmp_path):
    """The report's one pass over the log gives each page the records replay gives: corrected, not
    retracted, and cut at as-of and known-at; so does the report of one small incident of a larger log,
    which reads its records one by one."""
    from timeline.api import open_log

    log_path = _log(tmp_path / "log.jsonl", list(range(10)))
    log = open_log(log_path)
    log.correct("o3", reason="digits misread", low=99)
    known_at = log.head.entries
    log.correct("o5", reason="later fix", low=77)
    log.retract("o4", reason="entered twice")
    log.correct("o3", reason="misread again", quote="a new quote")
    store = open_store(str(log_path), read_only=True)
    log.append(
        IncidentDescribed(slug="y", title="Y", place="P", start_date=START, summary="s"),
        *(Observation(id=f"y{day}", incident="y", monitor="m", reported_on=START + dt.timedelta(days=day),
                      measure="killed", category="civilians", kind=Kind.CUMULATIVE,
                      figure=Figure(day, day, Qualifier.EXACT), source=Source(title="t", quote=f"y on {day}"))
          for day in range(60)),
    )  # fmt: skip
    for as_of, known in ((None, None), (START + dt.timedelta(days=6), None), (None, known_at)):
        moment = None if known is None else next(e.recorded_at for e in log.entries() if e.position == known - 1)
        result = replay(store, as_of=as_of, known_at=moment)
        for incidents in (["x"], ["x", "y"]) if known is None else (["x"],):
            read = records(result, incidents)
            expected = {i: result.observation_data(i) for slug in incidents for i in result.observation_ids(slug)}
            assert {r.id: msgspec.to_builtins(r) for slug in incidents for r in read.by_incident[slug]} == {
                i: {k: v for k, v in data.items() if k in Record.__struct_fields__} for i, data in expected.items()
            }
            assert read.corrections == {
                i: [c.reason for c in result.corrections(i)] for i in expected if result.corrected(i)
            }
        shown = {r.id for r in read.by_incident["x"]}
        assert ("o4" in shown) == (known is not None) and ("o8" in shown) == (as_of is None)
