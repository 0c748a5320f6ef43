"""End to end on data nobody here wrote: Ukraine's General Staff personnel tolls.

Source: tests/data/ukraine-personnel, copied from ../shared/data with its
LICENSE (PetroIvaniuk's dataset, MIT) so that every clone can run this. One
monitor publishes a running total every day; the transcriber's git history
holds real revisions, removals and re-additions, and five past versions of
the file give, for five moments, what a reader could have known then.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import pytest

from events_log.errors import InputError
from events_log.events import (
    Correction,
    Figure,
    IncidentDescribed,
    Kind,
    MonitorDescribed,
    Observation,
    Qualifier,
    Retraction,
    Source,
)
from events_log.jsonl import JsonlStore
from timeline.replay import replay

from .helpers import invoke

DATA = Path(__file__).resolve().parent / "data" / "ukraine-personnel"
HEAD_FILE = DATA / "petroivaniuk_russia_losses_personnel.json"
GIT_LOG = DATA / "petroivaniuk_personnel_observation_log_from_git.csv"
SOURCE_URL = "https://github.com/PetroIvaniuk/2022-Ukraine-Russia-War-Dataset"


def head_rows() -> list[dict]:
    return json.loads(HEAD_FILE.read_text())


def qualifier_of(row: dict) -> str:
    # "more" means the General Staff wrote "more than N": an open-ended floor.
    return "at_least" if row["personnel*"] == "more" else "about"


def test_import_and_replay_every_day_through_the_cli(tmp_path):
    """Import the whole file as CSV, replay as CSV, and find every published figure on its day."""
    rows = head_rows()
    path = tmp_path / "personnel.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["incident", "monitor", "reported_on", "measure", "category", "kind", "low", "qualifier",
                         "source_url", "source_title", "quote"])  # fmt: skip
        for row in rows:
            writer.writerow(["russia-ukraine-2022", "ua-general-staff", row["date"], "killed_or_wounded",
                             "combatants", "cumulative", row["personnel"], qualifier_of(row), SOURCE_URL,
                             "russia_losses_personnel.json", json.dumps(row)])  # fmt: skip
    log = str(tmp_path / "log.jsonl")
    imported = invoke(["import", "--log", log, "--describe-new", str(path)])
    assert imported.exit_code == 0, imported.output
    assert f"imported {len(rows)} events" in imported.output
    assert "described incident russia-ukraine-2022" in imported.output
    assert "described monitor ua-general-staff" in imported.output
    replayed = invoke(["replay", "--log", log, "--format", "csv"])
    assert replayed.exit_code == 0
    days = {r["date"]: r for r in csv.DictReader(replayed.output.splitlines())}
    for row in rows:
        day = days[row["date"]]
        assert (int(day["low"]), day["basis"]) == (row["personnel"], "reported"), row
        assert day["high"] == ("" if row["personnel*"] == "more" else str(row["personnel"]))
    # The dataset's README pins these.
    facts = {"2022-03-01": 5710, "2022-12-31": 105960, "2023-12-31": 359230, "2024-12-31": 789550,
             "2025-12-31": 1207910}  # fmt: skip
    for date, value in facts.items():
        assert int(days[date]["low"]) == value
    # Every calendar day from the first report to the last has a row, carried where nothing was published.
    first, last = dt.date.fromisoformat(rows[0]["date"]), dt.date.fromisoformat(rows[-1]["date"])
    assert len(days) == (last - first).days + 1
    assert invoke(["verify", "--log", log]).exit_code == 0


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _ahead_of(row: dict) -> bool:
    """Whether a row of the git log is dated more than a day after its commit."""
    published = dt.datetime.fromisoformat(row["published_at_utc"].replace("Z", "+00:00"))
    return dt.date.fromisoformat(row["report_date"]) > published.date() + dt.timedelta(days=1)


def build_history_log(path: Path) -> tuple[JsonlStore, dict[str, dt.datetime]]:
    """Replay the transcriber's git history into a log, one batch per commit, stamped with its time.

    new -> Observation; revised -> Correction; removed -> Retraction (a date added
    again later is a new observation with a new id). In December 2023 the
    transcriber dated four days two days ahead of the commit, and fixed them on
    11 December: the log refuses a figure dated more than a day after it is
    recorded, so those rows never enter it, and their fix enters as new ones.
    """
    qualifiers = {row["date"]: qualifier_of(row) for row in head_rows()}
    commits: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with GIT_LOG.open() as f:
        for row in csv.DictReader(f):
            commits[(row["published_at_utc"], row["commit"])].append(row)
    clock = _Clock()
    store = JsonlStore(path, clock=clock)
    store.append([IncidentDescribed(slug="russia-ukraine-2022", title="Russian invasion of Ukraine"),
                  MonitorDescribed(slug="ua-general-staff", full_name="General Staff of the Armed Forces of Ukraine")])
    live: dict[str, Observation] = {}
    versions: dict[str, int] = defaultdict(int)
    times: dict[str, dt.datetime] = {}

    def observation(row, id):
        value = int(row["personnel_cum"])
        qualifier = Qualifier(qualifiers.get(row["report_date"], "about"))
        return Observation(
            id=id,
            incident="russia-ukraine-2022",
            monitor="ua-general-staff",
            reported_on=dt.date.fromisoformat(row["report_date"]),
            measure="killed_or_wounded",
            category="combatants",
            kind=Kind.CUMULATIVE,
            figure=Figure.of(value, None, qualifier),
            source=Source(title="russia_losses_personnel.json", url=SOURCE_URL, quote=f"commit {row['commit']}"),
        )

    for (published, commit), rows in sorted(commits.items()):
        batch = []
        for row in rows:
            date = row["report_date"]
            if _ahead_of(row):
                continue
            if row["kind"] == "revised" and date not in live:
                row = {**row, "kind": "new"}  # its first version was refused as future-dated
            if row["kind"] == "removed" and date not in live:
                continue
            if row["kind"] == "new":
                versions[date] += 1
                live[date] = observation(row, f"gs-{date}-{versions[date]}")
                batch.append(live[date])
            elif row["kind"] == "revised":
                fixed = observation(row, live[date].id)
                batch.append(Correction(observation_id=fixed.id, replacement=fixed, reason=f"revised in {commit[:8]}"))
                live[date] = fixed
            else:
                batch.append(Retraction(observation_id=live.pop(date).id, reason=f"removed in {commit[:8]}"))
        clock.now = dt.datetime.fromisoformat(published.replace("Z", "+00:00"))
        store.append(batch)
        times[commit] = clock.now
    return store, times


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return build_history_log(tmp_path_factory.mktemp("history") / "log.jsonl")


@pytest.mark.parametrize("vintage", sorted(p.name for p in (DATA / "vintages").glob("*.json")))
def test_known_at_a_commit_equals_the_file_as_it_then_stood(history, vintage):
    """Replay known-at each past commit gives exactly the figures of the file at that commit."""
    store, times = history
    prefix = vintage.rsplit("_", 1)[1].removesuffix(".json")
    [known_at] = [t for commit, t in times.items() if commit.startswith(prefix)]
    rows = json.loads((DATA / "vintages" / vintage).read_text())
    expected = {}
    for row in rows:  # where a version holds a date twice, the later row is the one that stands
        expected[row["date"]] = row["personnel"]
    # Dates more than a day after the commit were refused by the log (see build_history_log).
    latest = (known_at.date() + dt.timedelta(days=1)).isoformat()
    expected = {date: value for date, value in expected.items() if date <= latest}
    [series] = replay(store, known_at=known_at).series
    reported = {p.date.isoformat(): p.low for p in series.days if p.basis == "reported"}
    assert reported == expected


def test_a_revision_shows_before_and_after(history):
    """2022-04-22 was published as 22,000 and corrected to 21,200 the next day; known-at sees both."""
    store, _times = history
    day = dt.date(2022, 4, 22)
    [before] = replay(store, known_at=dt.datetime(2022, 4, 23, tzinfo=dt.UTC)).series
    [after] = replay(store, known_at=dt.datetime(2022, 4, 24, tzinfo=dt.UTC)).series
    assert before.on(day).low == 22000 and after.on(day).low == 21200


def test_history_log_ends_where_the_file_ends(history):
    """The whole history, replayed, holds every date of the file at HEAD with its value."""
    store, _ = history
    assert store.verify().head.entries > 1700
    [series] = replay(store).series
    for row in head_rows():
        assert series.on(dt.date.fromisoformat(row["date"])).low == row["personnel"]


def test_the_transcribers_future_dated_rows_are_refused(tmp_path):
    """The four December 2023 rows dated two days after their commit are what the future-date rule refuses."""
    with GIT_LOG.open() as f:
        ahead = [row for row in csv.DictReader(f) if _ahead_of(row)]
    assert [(row["published_at_utc"][:10], row["report_date"]) for row in ahead] == [
        ("2023-12-07", "2023-12-09"), ("2023-12-08", "2023-12-10"), ("2023-12-09", "2023-12-11"),
        ("2023-12-10", "2023-12-12"),
    ]  # fmt: skip
    clock = _Clock()
    clock.now = dt.datetime(2023, 12, 7, 11, 39, 53, tzinfo=dt.UTC)
    store = JsonlStore(tmp_path / "log.jsonl", clock=clock)
    store.append([IncidentDescribed(slug="russia-ukraine-2022", title="Russian invasion of Ukraine"),
                  MonitorDescribed(slug="ua-general-staff", full_name="General Staff of the Armed Forces of Ukraine")])
    early = Observation(
        id="gs-2023-12-09", incident="russia-ukraine-2022", monitor="ua-general-staff",
        reported_on=dt.date(2023, 12, 9), measure="killed_or_wounded", category="combatants", kind=Kind.CUMULATIVE,
        figure=Figure.of(336230, None, "about"), source=Source(title="russia_losses_personnel.json", url=SOURCE_URL),
    )  # fmt: skip
    with pytest.raises(InputError, match="reported_on: 2023-12-09 is in the future: it is recorded on 2023-12-07"):
        store.append([early])
    assert store.head().entries == 2
