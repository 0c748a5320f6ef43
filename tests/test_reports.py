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
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

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


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=50))
def test_packed_data_is_deflate_that_zlib_inflates(data):
    """Pages are deflated by ISA-L: what they hold is plain deflate, as zlib (and the browser) inflates it."""
    from reports.build import pack

    assert json.loads(zlib.decompress(base64.b64decode(pack(data)))) == data


def test_a_large_page_packs_to_what_zlib_inflates():
    """The same at a page's size, past ISA-L's buffers (many megabytes of repeating and varied text)."""
    from reports.build import pack

    data = {"quote": [f"{n} killed in village {n % 977} on day {n % 731}: {'x' * (n % 300)}" for n in range(60_000)]}
    assert json.loads(zlib.decompress(base64.b64decode(pack(data)))) == data


def test_the_same_log_makes_the_same_bytes(tmp_path):
    """A report is reproducible: built twice, under two string-hash seeds, every file is the same."""
    out, first = tmp_path / "report", tmp_path / "first"
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-m", "timeline", "report", "--out", str(out)], cwd=ROOT,
                              env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        if seed == "1":
            out.rename(first)
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in out.iterdir()) and "index.html" in files
    assert all((first / name).read_bytes() == (out / name).read_bytes() for name in files)


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


def _add_incident_y(log, days: int, kind: Kind, figure) -> None:
    """Incident y, described, and one observation of monitor m a day (``figure(day)``) for ``days`` days."""
    log.append(
        IncidentDescribed(slug="y", title="Y", place="P", start_date=START, summary="s"),
        *(Observation(id=f"y{day}", incident="y", monitor="m", reported_on=START + dt.timedelta(days=day),
                      measure="killed", category="civilians", kind=kind, figure=figure(day),
                      source=Source(title="t", quote=f"y on {day}"))
          for day in range(days)),
    )  # fmt: skip


def test_a_page_reads_the_records_the_replay_reads(tmp_path):
    """Each page's records are the ones replay gives: corrected (as the latest correction gives them,
    with every correction's reason), not retracted, and cut at as-of and known-at."""
    from timeline.api import open_log

    log_path = _log(tmp_path / "log.jsonl", list(range(10)))
    log = open_log(log_path)
    log.correct("o3", reason="digits misread", low=99)
    known_at = log.head.entries
    log.correct("o5", reason="later fix", low=77)
    log.retract("o4", reason="entered twice")
    log.correct("o3", reason="misread again", quote="a new quote")
    store = open_store(str(log_path), read_only=True)
    _add_incident_y(log, 60, Kind.CUMULATIVE, lambda day: Figure(day, day, Qualifier.EXACT))
    for as_of, known in ((None, None), (START + dt.timedelta(days=6), None), (None, known_at)):
        moment = None if known is None else next(e.recorded_at for e in log.entries() if e.position == known - 1)
        result = replay(store, as_of=as_of, known_at=moment)
        for slug in ("x", "y") if known is None else ("x",):
            read = records(result, slug)
            expected = {i: result.observation_data(i) for i in result.observation_ids(slug)}
            assert [r.id for r in read.observations] == list(expected)
            assert {r.id: msgspec.to_builtins(r) for r in read.observations} == {
                i: {k: v for k, v in data.items() if k in Record.__struct_fields__} for i, data in expected.items()
            }
            assert read.corrections == {
                i: tuple(c.reason for c in result.corrections(i)) for i in expected if result.corrected(i)
            }
        shown = {r.id for r in records(result, "x").observations}
        assert ("o4" in shown) == (known is not None) and ("o8" in shown) == (as_of is None)


def _reference_table(result, slug: str) -> dict[str, list]:
    """A page's table, row by row from each observation's stored data, in order of date, monitor
    (ignoring case) and id."""
    from events_log.events import describe_figure

    rows = []
    for i in result.observation_ids(slug):
        o = result.observation_data(i)
        figure, source, start, end = o["figure"], o["source"], o["period_start"], o["period_end"]
        spans = start is not None and end is not None and start != end
        period = f"{start} to {end}" if spans else (start or end or "")
        rows.append({
            "id": i, "reported_on": o["reported_on"], "period": period, "monitor": o["monitor"],
            "what": o["measure"].replace("_", " ") + " · " + o["category"].replace("_", " "),
            "location": o["location"] or "", "kind": o["kind"], "low": figure["low"],
            "figure": describe_figure(figure["low"], figure["high"], figure["qualifier"]),
            "quote": source["quote"] or "", "note": o["note"] or "", "title": source["title"],
            "url": source["url"] or "", "corrected": "; ".join(c.reason for c in result.corrections(i)),
        })  # fmt: skip
    rows.sort(key=lambda row: (row["reported_on"], row["monitor"].casefold(), row["id"]))
    return {name: [row[name] for row in rows] for name in rows[0]}


def test_a_pages_table_says_what_each_record_says(tmp_path):
    """The table is built a column at a time, from the replay's columns and the records: each row says
    what the observation's stored data says (corrected, cut at as-of), in order of date, monitor
    ignoring case (monitors equal but for case keep id order) and id."""
    from reports.table import observation_table
    from reports.words import Worded
    from timeline.api import open_log

    log = open_log(tmp_path / "log.jsonl", create=True)
    monitors = ("b-mon", "A-mon", "a-MON", "C")
    figures = (Figure(7, 7, Qualifier.EXACT), Figure(1_700, 1_700, Qualifier.ABOUT),
               Figure(803, None, Qualifier.AT_LEAST), Figure(0, 300, Qualifier.AT_MOST),
               Figure(0, 12, Qualifier.AT_MOST), Figure(125, 300, Qualifier.RANGE),
               Figure(0, 0, Qualifier.EXACT))  # fmt: skip
    observations = []
    for n in range(120):
        day = START + dt.timedelta(days=n % 9)
        observations.append(Observation(
            id=f"{'zyx'[n % 3]}{(n * 37) % 101}-{n}", incident="x", monitor=monitors[n % 4], reported_on=day,
            measure=("killed", "wounded", "killed_or_wounded")[n % 3], category=("civilians", "security_forces")[n % 2],
            kind=(Kind.CUMULATIVE, Kind.INCREMENT)[n % 5 == 0], figure=figures[n % 7],
            source=Source(title=f"title {n}", url=None if n % 4 else f"https://example.org/{n}",
                          quote=None if n % 6 == 0 else f'"{n}" <b>&'),
            period_start=day - dt.timedelta(days=n % 3) if n % 4 else None,
            period_end=(day if n % 8 == 1 else day - dt.timedelta(days=n % 3)) if n % 5 else None,
            location=None if n % 3 else f"place {n % 4}", note=None if n % 7 else f"note {n}",
        ))  # fmt: skip
    log.append(
        IncidentDescribed(slug="x", title="X", place="P", start_date=START, summary="s"),
        *(MonitorDescribed(slug=m, full_name=m, description="d") for m in monitors),
        *observations,
    )
    log.correct(observations[10].id, reason="digits misread", high=99)
    log.correct(observations[10].id, reason="and the monitor", monitor="C")
    log.correct(observations[11].id, reason="a floor", low=5, high=None, qualifier="at_least")
    log.retract(observations[12].id, reason="entered twice")
    store = open_store(str(tmp_path / "log.jsonl"), read_only=True)
    for as_of in (None, START + dt.timedelta(days=4)):
        result = replay(store, as_of=as_of)
        table = observation_table(records(result, "x"))
        expected = _reference_table(result, "x")
        assert table.columns == expected
        assert table.days == sorted(set(expected["reported_on"]))
        assert table.worded == Worded.of(expected["id"], lambda i, result=result: result.qualifier(i).value)
        assert table.worded.about and table.worded.at_most


def test_a_page_reads_records_stored_in_an_older_schema(tmp_path):
    """An observation and a correction stored in schema 1 are upcast, as replay reads them."""
    import hashlib

    import orjson

    flat = {"id": "old", "incident": "x", "monitor": "m", "reported_on": "2025-01-01", "period_start": None,
            "period_end": None, "measure": "killed", "category": "civilians", "location": None, "kind": "cumulative",
            "low": 5, "high": 5, "qualifier": "exact", "source_url": None, "source_title": "t", "quote": "q1",
            "note": None}  # fmt: skip
    nested = {**{k: v for k, v in flat.items() if k not in ("low", "high", "qualifier", "source_url",
                                                             "source_title", "quote")},
              "id": "fixed", "reported_on": "2025-01-02", "figure": {"low": 7, "high": 7, "qualifier": "exact"},
              "source": {"title": "t", "url": None, "quote": "q2"}}  # fmt: skip
    events = [
        ("IncidentDescribed", 1, {"slug": "x", "title": "X", "place": None, "start_date": None, "summary": None,
                                  "links": []}),
        ("MonitorDescribed", 1, {"slug": "m", "full_name": "M", "description": None, "url": None}),
        ("Observation", 1, flat),
        ("Observation", 2, nested),
        ("Correction", 1, {"observation_id": "fixed", "reason": "typo",
                           "replacement": {**nested, "figure": {"low": 8, "high": 8, "qualifier": "exact"}}}),
    ]  # fmt: skip
    lines, prev = [], "0" * 64
    for position, (name, schema, data) in enumerate(events):
        body = orjson.dumps({"position": position, "recorded_at": "2025-04-01T09:00:00.000000Z", "type": name,
                             "schema": schema, "batch_end": position, "prev_hash": prev, "event": data})  # fmt: skip
        prev = hashlib.sha256(body).hexdigest()
        lines.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}\n')
    (tmp_path / "old.jsonl").write_bytes(b"".join(lines))
    result = replay(open_store(str(tmp_path / "old.jsonl"), read_only=True))
    read = records(result, "x")
    assert {r.id: msgspec.to_builtins(r) for r in read.observations} == {
        i: {k: v for k, v in result.observation_data(i).items() if k in Record.__struct_fields__}
        for i in ("old", "fixed")
    }
    assert read.figures.low.tolist() == [5, 8] and read.corrections == {"fixed": ("typo",)}


def test_pages_written_in_a_pool_of_processes_are_the_pages_written_in_one(tmp_path, monkeypatch, log_kind,
                                                                           fresh_logs):  # fmt: skip
    """A large report writes its pages in forked processes, each reading through a store of its own
    (a database connection is never shared): the same files, byte for byte, from every store."""
    from reports import build
    from timeline.api import open_log

    log = open_log(_log(tmp_path / "log.jsonl", list(range(20))))
    log.correct("o3", reason="digits misread", low=99)
    _add_incident_y(log, 30, Kind.INCREMENT, lambda day: Figure(day, None, Qualifier.AT_LEAST))
    target = str(tmp_path / "log.jsonl")
    if log_kind != "jsonl":
        target = fresh_logs(log_kind)
        open_store(target).copy_from(open_store(str(tmp_path / "log.jsonl"), read_only=True))
    result = replay(open_store(target, read_only=True))
    built = {}
    for name, threshold in (("one", 10**9), ("pool", 0)):
        monkeypatch.setattr(build, "IN_PARALLEL_FROM", threshold)
        folder = build.build_report(result, tmp_path / name, command="timeline report",
                                    reopen=lambda: open_store(target, read_only=True)).folder  # fmt: skip
        built[name] = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    assert built["pool"] == built["one"]
    assert len(built["one"]) == 1 + 2 * 2 + 2  # plotly.js, two pages and their CSV, the index and the manifest
    assert "y on 29" in _page_data(tmp_path / "pool" / "incident-y.html")["observations"]["quote"]


def test_pages_word_figures_as_the_rule_does():
    """The pages' own wording of figures and sums is ``describe_figure``'s and ``rule.wording``'s."""
    import itertools

    from events_log.events import describe_figure
    from reports.words import Worded, figure_words, figures_words, sum_words, sums_words
    from timeline.index import OPEN, QUALIFIER_CODE
    from timeline.rule import wording

    qualifiers = [q.value for q in Qualifier]
    shapes, sums = [], []
    for low, high in ((0, 0), (0, 300), (7, 7), (1_383, 1_383), (125, 300), (803, None), (0, None)):
        for qualifier in qualifiers:
            assert figure_words(low, high, qualifier) == describe_figure(low, high, qualifier)
            shapes.append((low, high, qualifier))
        for many in (1, 2, 3):
            for chosen in itertools.combinations_with_replacement(qualifiers, many):
                assert sum_words(low, high, chosen) == wording(low, high, chosen)
                sums.append((low, high, chosen))
    lows, highs, codes = zip(*((low, OPEN if high is None else high, QUALIFIER_CODE[q]) for low, high, q in shapes),
                             strict=True)  # fmt: skip
    assert figures_words(np.array(lows), np.array(highs), np.array(codes)) == [figure_words(*s) for s in shapes]
    # Summed as a chart's points are: each figure an id, and the ids of a point's figures.
    summed = [tuple(f"{n}-{k}" for k in range(len(chosen))) for n, (_, _, chosen) in enumerate(sums)]
    qualifier = {i: q for ids, (_, _, chosen) in zip(summed, sums, strict=True)
                 for i, q in zip(ids, chosen, strict=True)}  # fmt: skip
    worded = Worded.of(qualifier, qualifier.__getitem__)
    lows, highs = (np.array([OPEN if v is None else v for v in column]) for column in list(zip(*sums, strict=True))[:2])
    assert sums_words(lows, highs, summed, worded) == [sum_words(*s) for s in sums]
    assert [worded.among(ids) for ids in summed] == [[q for q in ("about", "at_most") if q in chosen]
                                                       for _, _, chosen in sums]
