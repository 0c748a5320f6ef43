"""Data Packages and HXL: valid for the field's own tools, and a package imports back to the same series."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import hxl
import orjson
import pytest
from frictionless import Package
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import timeline
from events_log.jsonl import JsonlStore

from .conftest import StepClock
from .helpers import invoke
from .strategies import START, small_logs


def run(*args: str):
    return invoke(list(args), env={"TIMELINE_LOG": None})


def validate(descriptor: Path):
    return Package(str(descriptor)).validate()


def test_the_bundled_package_is_valid_and_says_what_it_comes_from(tmp_path):
    """frictionless validates every table, schema and key; the metadata names the log, as-of, known-at, licence."""
    out = tmp_path / "pkg"
    bundled = timeline.open_bundled()
    known_at = max(e.recorded_at for e in bundled.entries()).isoformat()
    ran = run("export", "--format", "datapackage", "--out", str(out), "--as-of", "2025-03-20",
              "--known-at", known_at, "--licence", "CC-BY-4.0")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    report = validate(out / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    descriptor = orjson.loads((out / "datapackage.json").read_bytes())
    head = bundled.head
    meta = descriptor["toll_timeline"]
    assert meta["log"]["entries"] == head.entries and meta["log"]["head"] == head.head
    assert meta["as_of"] == "2025-03-20" and meta["known_at"] == known_at.replace("+00:00", "Z")
    assert descriptor["licenses"] == [{"name": "CC-BY-4.0", "title": "CC-BY-4.0"}]
    schemas = {r["name"]: r["schema"] for r in descriptor["resources"]}
    assert schemas["observations"]["primaryKey"] == ["id"]
    assert {fk["reference"]["resource"] for fk in schemas["series"]["foreignKeys"]} == {"incidents", "monitors"}
    replayed = run("replay", "--format", "csv", "--as-of", "2025-03-20", "--known-at", known_at)
    assert (out / "series.csv").read_text() == replayed.output
    assert run("export", "--format", "datapackage", "--out", str(tmp_path / "bare")).exit_code == 0
    assert "licenses" not in orjson.loads((tmp_path / "bare" / "datapackage.json").read_bytes())


def test_validation_catches_a_broken_key(tmp_path):
    """The schemas have teeth: an observation naming a monitor the package lacks fails frictionless."""
    out = tmp_path / "pkg"
    assert run("export", "--format", "datapackage", "--out", str(out), "--incident", "zaraa-2016").exit_code == 0
    assert validate(out / "datapackage.json").valid
    monitors = (out / "monitors.csv").read_text().splitlines()
    (out / "monitors.csv").write_text("\n".join(line for line in monitors if not line.startswith("SOHR,")) + "\n")
    report = validate(out / "datapackage.json")
    assert not report.valid
    assert "foreign-key" in {error.type for task in report.tasks for error in task.errors}


def test_hxl_reads_back_with_libhxl(tmp_path):
    """libhxl finds each observation under its hashtags: #affected+killed, #org+name, #adm1+name, #meta+source."""
    out = tmp_path / "coastal.csv"
    ran = run("export", "--format", "hxl", "--incident", "coastal-2025", "--out", str(out))
    assert ran.exit_code == 0, ran.output
    rows = list(hxl.data(str(out), hxl.InputOptions(allow_local=True)))
    expected = timeline.open_bundled().replay(incident="coastal-2025").observations()
    assert len(rows) == len(expected)
    by_id = {row.get("#meta+id"): row for row in rows}
    total = by_id["sohr-2025-03-11-total"]
    assert total.get("#affected+killed") == "1225" and total.get("#org+code") == "SOHR"
    assert total.get("#org+name") == "Syrian Observatory for Human Rights"
    assert total.get("#date+reported") == "2025-03-11" and total.get("#meta+source")
    placed = [o for o in expected if o.location]
    assert placed and by_id[placed[0].id].get("#adm1+name") == placed[0].location
    floors = [o for o in expected if o.figure.high is None and o.measure == "killed"]
    assert floors and by_id[floors[0].id].get("#affected+killed+max") in ("", None)
    assert run("export", "--format", "hxl", "--incident", "coastal-2025").output == out.read_text()


def test_hostile_text_stays_exact_in_the_package_and_guarded_in_hxl(tmp_path):
    """Formulas, quotes, newlines and odd Unicode round-trip through a package; HXL cells never start a formula."""
    log = timeline.open_log(tmp_path / "log.jsonl", create=True)
    log.describe_incident("inc", '=HYPERLINK("http://x.example","y")', summary='a,"b"\nc\u2028d')
    log.describe_monitor("mon", "+Monitor\u202e", url="https://m.example/?a=1&b=2")
    quote = '=1+1, "quoted"\nsecond line\u0085 \u2028 ؀ 𝔘'
    log.append(timeline.Observation(
        id="o1", incident="inc", monitor="mon", reported_on=dt.date(2025, 3, 1), measure="killed",
        category="civilians", location="-Latakia", kind=timeline.Kind.CUMULATIVE,
        figure=timeline.Figure(5, 9, timeline.Qualifier.RANGE),
        source=timeline.Source(title="@title", url="https://s.example/a?b=c", quote=quote), note="\tnote",
    ))  # fmt: skip
    assert run("export", "--log", log.location, "--format", "datapackage", "--out", str(tmp_path / "p")).exit_code == 0
    assert validate(tmp_path / "p" / "datapackage.json").valid
    copy = tmp_path / "copy.jsonl"
    ran = run("import", str(tmp_path / "p"), "--log", str(copy))
    assert ran.exit_code == 0, ran.output
    original = [e.event for e in log.entries()]
    assert [e.event for e in timeline.open_log(copy).entries()] == original
    assert run("export", "--log", log.location, "--format", "hxl", "--out", str(tmp_path / "h.csv")).exit_code == 0
    rows = list(hxl.data(str(tmp_path / "h.csv"), hxl.InputOptions(allow_local=True)))
    cells = [value for value in rows[0].values if value]
    assert cells and not [c for c in cells if c[0] in "=+-@\t\r"]


@pytest.mark.postgres
def test_no_password_in_a_package(postgres_url, tmp_path):
    """A package of a PostgreSQL log named with a password keeps the password out of every file."""
    with_password = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
    assert "hunter2" in with_password
    log = timeline.open_log(with_password, create=True)
    log.describe_incident("inc", "Incident")
    out = tmp_path / "pkg"
    ran = run("export", "--log", with_password, "--format", "datapackage", "--out", str(out))
    assert ran.exit_code == 0, ran.output
    assert "hunter2" not in ran.output and "hunter2" not in repr(log)
    for path in out.iterdir():
        assert b"hunter2" not in path.read_bytes(), path.name
    assert "postgres:***@" in orjson.loads((out / "datapackage.json").read_bytes())["toll_timeline"]["log"]["location"]


def test_bad_exports_and_imports_change_nothing(tmp_path):
    """A missing --out, an --out that is a file, a folder that is no package: one line, exit 2, nothing written."""
    (tmp_path / "file").write_text("x")
    for args, message in [
        (["export", "--format", "datapackage"], "--out"),
        (["export", "--format", "datapackage", "--out", str(tmp_path / "file" / "p")], "is a file"),
        (["export", "--format", "hxl", "--licence", "CC0"], "--licence"),
        (["export", "--format", "csv", "--out", str(tmp_path / "x")], "--format"),
        (["export", "--format", "hxl", "--as-of", "2999-01-01"], "future"),
    ]:
        ran = run(*args)
        assert ran.exit_code == 2 and message in ran.output, (args, ran.output)
    log = tmp_path / "log.jsonl"
    ran = run("import", str(tmp_path), "--log", str(log))
    assert ran.exit_code == 2 and "datapackage.json" in ran.output
    assert not log.exists()
    assert run("export", "--format", "datapackage", "--out", str(tmp_path / "p")).exit_code == 0
    assert run("import", str(tmp_path / "p" / "datapackage.json"), "--log", str(log)).exit_code == 0
    before = log.read_bytes()
    again = run("import", str(tmp_path / "p"), "--log", str(log))
    assert again.exit_code == 2 and "timeline: error:" in again.output
    assert log.read_bytes() == before


def _series(tolls: timeline.Tolls) -> list:
    return [(s.key, list(s.days), s.flags) for s in tolls.series]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(small_logs(), st.data())
def test_export_import_replay_gives_equal_series(tmp_path_factory, batches, data):
    """export --format datapackage -> import into an empty log -> replay equals the replay exported."""
    folder = tmp_path_factory.mktemp("roundtrip")
    clock = StepClock()
    store = JsonlStore(folder / "log.jsonl", clock=clock)
    stamps = []
    for batch in batches:
        store.append(batch, allow_duplicate=True)
        stamps.append(clock.now)
    options: list[str] = []
    as_of = data.draw(st.none() | st.integers(0, 9).map(lambda d: START + dt.timedelta(days=d)))
    if as_of is not None:
        options += ["--as-of", as_of.isoformat()]
    known_at = data.draw(st.none() | st.sampled_from(stamps))
    if known_at is not None:
        options += ["--known-at", known_at.isoformat()]
    incident = data.draw(st.none() | st.sampled_from(["coastal-2025", "zaraa-2016"]))
    if incident is not None:
        options += ["--incident", incident]
    ran = run("export", "--log", str(folder / "log.jsonl"), "--format", "datapackage", "--out",
              str(folder / "pkg"), *options)  # fmt: skip
    assert ran.exit_code == 0, ran.output
    exported = timeline.Log(store).replay(as_of, known_at, incident=incident)
    copy = folder / "copy.jsonl"
    ran = run("import", str(folder / "pkg"), "--log", str(copy), "--allow-duplicate")
    assert ran.exit_code == 0, ran.output
    imported = timeline.open_log(copy).replay(as_of)
    assert _series(imported) == _series(exported)
    assert [attrs.asdict(o) for o in imported.observations()] == [attrs.asdict(o) for o in exported.observations()]


def test_a_damaged_package_is_refused_with_its_file_and_line(tmp_path):
    """A missing file, a foreign descriptor, a short row or bad bytes: one line naming it, exit 2, the log unchanged."""
    good = tmp_path / "good"
    assert run("export", "--format", "datapackage", "--out", str(good), "--incident", "zaraa-2016").exit_code == 0
    damages = {
        "observations.csv": (None, "observations.csv: no such file"),
        "datapackage.json": (b'{"resources": 5}', "expected a resource 'observations'"),
        "incidents.csv": (b"slug,title,place,start_date,summary,links\nabc\n", "incidents.csv:2: the row does not"),
        "monitors.csv": (b"slug,name\n", "monitors.csv:1: expected the columns"),
    }
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"")
    for name, (content, message) in damages.items():
        package = tmp_path / f"damaged-{name}"
        package.mkdir()
        for path in good.iterdir():
            (package / path.name).write_bytes(path.read_bytes())
        if content is None:
            (package / name).unlink()
        else:
            (package / name).write_bytes(content)
        ran = run("import", str(package), "--log", str(log))
        assert ran.exit_code == 2 and message in ran.output, (name, ran.output)
        assert ran.output.count("\n") == 1 and "Traceback" not in ran.output
        assert log.read_bytes() == b""
    (tmp_path / "folder.csv").mkdir()
    ran = run("export", "--format", "hxl", "--out", str(tmp_path / "folder.csv"))
    assert ran.exit_code == 2 and "is a folder" in ran.output
