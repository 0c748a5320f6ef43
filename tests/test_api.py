"""The Python API from the package root: the command line's rules, its errors, the report's chart."""

from __future__ import annotations

import base64
import datetime as dt
import html
import inspect
import re
import subprocess
import sys
import zlib

import attrs
import orjson
import plotly.graph_objects as go
import pytest

import timeline
from events_log.errors import LogChangedError
from events_log.jsonl import JsonlStore

from .conftest import StepClock
from .helpers import invoke


def sohr(id="o1", day=11, low=1225, kind=timeline.Kind.CUMULATIVE) -> timeline.Observation:
    return timeline.Observation(
        id=id,
        incident="coastal-2025",
        monitor="SOHR",
        reported_on=dt.date(2025, 3, day),
        measure="killed",
        category="civilians",
        kind=kind,
        figure=timeline.Figure(low, low, timeline.Qualifier.EXACT),
        source=timeline.Source(title="SOHR", quote="q"),
    )


@pytest.fixture
def log(tmp_path):
    log = timeline.open_log(tmp_path / "log.jsonl", create=True)
    log.describe_incident("coastal-2025", "Coastal massacres", start_date="2025-03-06")
    log.describe_monitor("SOHR", "Syrian Observatory for Human Rights")
    return log


def test_every_public_name_is_importable_from_the_package_root():
    """`timeline.__all__` lists the API, and `timeline.replay` is no longer a function shadowing its module."""
    for name in timeline.__all__:
        assert getattr(timeline, name) is not None
    assert {"open_log", "open_bundled", "Log", "Tolls"} <= set(timeline.__all__)
    assert "replay" not in timeline.__all__
    import timeline.replay as module

    assert callable(module.replay)


def test_opening_a_missing_log_is_refused_unless_asked_to_create(tmp_path):
    """A typo in a path raises InputError instead of reading as an empty log; nothing is created."""
    with pytest.raises(timeline.InputError, match="no log at"):
        timeline.open_log(tmp_path / "typo.jsonl")
    assert not (tmp_path / "typo.jsonl").exists()
    with pytest.raises(timeline.InputError, match="unknown kind of log"):
        timeline.open_log("postgresq://u:secret@h/db")


def test_the_bundled_dataset_reads_but_refuses_writes():
    """open_bundled replays; appending to it raises ReadOnlyLogError (a TimelineError)."""
    log = timeline.open_bundled()
    assert log.replay().series
    with pytest.raises(timeline.TimelineError, match="read-only"):
        log.describe_monitor("X", "X")
    assert timeline.open_log("bundled").head == log.head


def test_append_correct_retract_round_trip(log):
    """Appended, corrected and retracted figures replay as the command line replays them."""
    log.append(sohr())
    entry = log.correct("o1", reason="misread", low=1383)
    assert entry.event.replacement.figure == timeline.Figure(1383, 1383, timeline.Qualifier.EXACT)
    [series] = log.replay().series
    assert (series.latest.low, series.latest.high) == (1383, 1383)
    log.retract("o1", reason="entered twice")
    assert log.replay().series == ()


def test_a_fix_made_from_an_old_version_is_refused(log):
    """expected_version works as --expected-version: a record changed since is not overwritten."""
    [entry] = log.append(sohr())
    log.correct("o1", reason="misread", low=1300)
    with pytest.raises(LogChangedError):
        log.correct("o1", reason="stale", low=1400, expected_version=entry.position)
    assert log.replay().series[0].latest.low == 1300


def test_bad_input_raises_input_error_naming_the_field(log):
    """Undescribed names, unknown fields, future dates and a bad known-at are InputErrors; the log is unchanged."""
    log.append(sohr())
    before = log.head
    with pytest.raises(timeline.InputError, match="not described"):
        log.append(attrs.evolve(sohr("o2"), monitor="SOHRR"))
    with pytest.raises(timeline.InputError, match="no such field"):
        log.correct("o1", reason="x", lowest=3)
    with pytest.raises(timeline.InputError, match="nothing to correct"):
        log.correct("o1", reason="x", low=1225)
    with pytest.raises(timeline.InputError, match=r"as_of.*future"):
        log.replay(as_of=dt.date.today() + dt.timedelta(days=30))
    with pytest.raises(timeline.InputError, match="known_at"):
        log.replay(known_at="yesterday")
    with pytest.raises(timeline.InputError, match=r"^monitor: .*did you mean SOHR"):
        log.replay(monitor="SOHRR")
    with pytest.raises(timeline.InputError, match="start_date"):
        log.describe_incident("x", "X", start_date="2025-02-30")
    assert log.head == before


@pytest.mark.parametrize(
    ("given", "where"),
    [
        (["hello"], "event 1"),
        ([[sohr()]], "event 1"),
        ([sohr(), 5], "event 2"),
    ],
)
def test_appending_what_is_not_an_event_is_an_input_error_naming_it(log, given, where):
    """A string, a list of events or a number is refused in one line naming which argument; nothing is written."""
    before = log.head
    with pytest.raises(timeline.InputError, match=f"^{where}: expected an event") as refused:
        log.append(*given)
    assert "\n" not in str(refused.value)
    assert log.head == before


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: attrs.evolve(sohr(), kind="cumulative"), "kind"),
        (lambda: timeline.Figure(5, 5, "exact"), "qualifier"),
        (lambda: attrs.evolve(sohr(), figure="5"), "figure"),
        (lambda: attrs.evolve(sohr(), source="SOHR"), "source"),
        (lambda: timeline.Correction(observation_id="o1", replacement="o1", reason="x"), "replacement"),
        (lambda: timeline.IncidentDescribed(slug="x", title="X", links="https://a.example"), "links"),
        (lambda: timeline.IncidentDescribed(slug="x", title="X", links=["https://a.example"]), "links"),
    ],
)
def test_events_refuse_plain_values_where_typed_ones_belong_naming_the_field(build, field):
    """As Figure("5", ...) is refused, so is "cumulative" for a Kind: an InputError naming the field, one line."""
    with pytest.raises(timeline.InputError, match=f"^{field}: must be ") as refused:
        build()
    assert "\n" not in str(refused.value)


def test_series_on_takes_an_iso_date_as_the_api_takes_as_of():
    """on("2025-03-11") is on(date(2025, 3, 11)); a malformed day is an InputError naming the argument."""
    tolls = timeline.open_bundled().replay(incident="coastal-2025")
    sohr_series = next(s for s in tolls.series if s.monitor == "SOHR" and s.category == "civilians")
    assert sohr_series.on("2025-03-11") == sohr_series.on(dt.date(2025, 3, 11))
    assert sohr_series.on("2025-03-11").low == 1225
    for bad in ("2025-03-32", "11 March 2025", 20250311):
        with pytest.raises(timeline.InputError, match=r"^date: "):
            sohr_series.on(bad)


def test_replay_parameters_mean_what_they_mean_on_the_command_line(tmp_path):
    """as_of, known_at, incident and monitor give the series `timeline replay --format json` gives."""
    path = tmp_path / "log.jsonl"
    store = JsonlStore(path, clock=StepClock())
    log = timeline.Log(store)
    log.describe_incident("coastal-2025", "Coastal massacres")
    log.describe_monitor("SOHR", "SOHR")
    log.append(sohr("o1", 8, 532))
    log.append(sohr("o2", 11, 1225))
    stamps = [e.recorded_at for e in store.entries()]
    cases = [
        ({"as_of": "2025-03-09"}, ["--as-of", "2025-03-09"]),
        ({"known_at": stamps[2]}, ["--known-at", stamps[2].isoformat()]),
        ({"known_at": "2025-04-01"}, ["--known-at", "2025-04-01"]),
        ({"incident": "coastal-2025", "monitor": "SOHR"}, ["--incident", "coastal-2025", "--monitor", "SOHR"]),
    ]
    for kwargs, options in cases:
        ran = invoke(["replay", "--log", str(path), "--format", "json", *options])
        assert ran.exit_code == 0, ran.output
        ours = [(s.monitor, [(p.date.isoformat(), p.low, p.high) for p in s.days]) for s in log.replay(**kwargs).series]
        theirs = [(s["monitor"], [(p["date"], p["low"], p["high"]) for p in s["days"]])
                  for s in orjson.loads(ran.output)["series"]]  # fmt: skip
        assert ours == theirs, kwargs


def test_replay_takes_every_option_of_the_command_line(tmp_path):
    """Each `timeline replay` option but --log is a parameter of Log.replay; --format is Tolls.to_text.

    --days and --format print what the command prints, byte for byte.
    """
    usage = invoke(["replay", "--help"]).output.split("\n\n")[0]
    options = {o.replace("-", "_") for o in re.findall(r"\[--([a-z-]+)", usage)} - {"help", "log", "format"}
    assert options == {"as_of", "known_at", "incident", "monitor", "days"}
    assert options <= set(inspect.signature(timeline.Log.replay).parameters)
    path = tmp_path / "log.jsonl"
    log = timeline.Log(JsonlStore(path, clock=StepClock()))
    log.describe_incident("coastal-2025", "Coastal massacres")
    log.describe_monitor("SOHR", "SOHR")
    log.append(sohr("o1", 8, 532), sohr("o2", 11, 1225))
    for days in ("every", "reports"):
        tolls = log.replay(days=days, as_of="2025-03-20")
        assert tolls.to_polars().height == (13 if days == "every" else 2)  # 8 to 20 March, or the 2 report days
        for format in ("table", "csv", "json"):
            ran = invoke(["replay", "--log", str(path), "--as-of", "2025-03-20", "--format", format, "--days", days])
            assert ran.exit_code == 0, ran.output
            assert tolls.to_text(format) == ran.output, (format, days)


def test_a_bad_days_or_format_is_an_input_error_naming_it(log):
    """days is checked before any replay, as --days is; a format the command line lacks is refused."""
    with pytest.raises(timeline.InputError, match=r"^days: expected 'every' or 'reports'"):
        log.replay(days="all")
    with pytest.raises(timeline.InputError, match=r"^format: expected 'table', 'csv' or 'json'"):
        log.replay().to_text("xlsx")


def test_the_figure_is_the_report_pages_first_chart(tmp_path):
    """Tolls.figure draws what the incident page draws: the same traces, points and title."""
    ran = invoke(["report", "--incident", "coastal-2025", "--out", str(tmp_path / "r")],
                             env={"TIMELINE_LOG": None})  # fmt: skip
    assert ran.exit_code == 0, ran.output
    page = (tmp_path / "r" / "incident-coastal-2025.html").read_text()
    found = re.search(r'id="page-data" type="application/json">(.*?)</script>', page, re.S)
    packed = orjson.loads(html.unescape(found.group(1)))["packed"]
    data = orjson.loads(zlib.decompress(base64.b64decode(packed)))  # as the page inflates it
    drawn = data["views"][0]["figure"]
    figure = timeline.open_bundled().figure("coastal-2025")
    assert isinstance(figure, go.Figure)
    assert figure.layout.title.text == drawn["layout"]["title"]["text"]

    def points(traces):
        return [(t.get("name"), list(t.get("x") or ()), list(t.get("y") or ())) for t in traces]

    assert points(figure.to_plotly_json()["data"]) == points(drawn["data"])
    assert sum(len(x) for _, x, _ in points(drawn["data"])) > 10


def test_a_figure_for_an_unknown_incident_or_view_says_what_there_is():
    """A typo in the incident suggests the described one; an absent measure lists the views offered."""
    tolls = timeline.open_bundled().replay()
    with pytest.raises(timeline.InputError, match="coastal-2025"):
        tolls.figure("coastal-2052")
    with pytest.raises(timeline.InputError, match="killed/civilians"):
        tolls.figure("coastal-2025", measure="drowned")


def test_correct_takes_python_values_and_none_clears(log):
    """Dates may be dates, numbers numbers; None empties a field; a bool is refused rather than read as 1."""
    log.append(attrs.evolve(sohr(), location="Latakia"))
    entry = log.correct("o1", reason="wrong day", reported_on=dt.date(2025, 3, 10), location=None, high=1300,
                        qualifier="range")  # fmt: skip
    fixed = entry.event.replacement
    assert (fixed.reported_on, fixed.location, fixed.figure) == (
        dt.date(2025, 3, 10), None, timeline.Figure(1225, 1300, timeline.Qualifier.RANGE),
    )  # fmt: skip
    with pytest.raises(timeline.InputError):
        log.correct("o1", reason="x", low=True)


@pytest.mark.parametrize("package", ["events_log", "timeline"])
def test_package_exports_load_on_first_use(package):
    """Importing a package root loads no numpy; every name in its __all__ then resolves, and dir() lists it."""
    script = (f"import sys, {package} as p\n"
              "assert 'numpy' not in sys.modules, 'numpy loaded by the import alone'\n"
              "assert set(p.__all__) <= set(dir(p))\n"
              "print(sorted(n for n in p.__all__ if getattr(p, n) is None))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
