"""The bundled dataset: reproducible, append-only, verifiable, faithful to the seed texts, and pinned."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dataset.build import build, read_fixes, releases, write_releases
from events_log.errors import InputError, LogError, TimelineError
from events_log.events import Correction, IncidentDescribed, MonitorDescribed, Observation
from events_log.importers import COLUMNS, read_events
from events_log.jsonl import JsonlStore
from timeline.bundled import bundled_log
from timeline.replay import replay

from .helpers import invoke

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path(os.environ.get("TIMELINE_SEEDS", ROOT.parent / "shared" / "seeds"))

# Release 1 as shipped: whatever later releases append, these entries stay the log's beginning.
RELEASE_1_ENTRIES = 167
RELEASE_1_HEAD = "99e7d3e040cd8ad03008302fba44c71208186c69a0bc7e89aa0f4b0e1eb5e1ce"
RELEASE_1_AT = "2026-11-23T12:00:00Z"

EVENTS = [event for release in releases() for file in release.imports for _, event in read_events(file)]
FIXES = [fix for release in releases() if release.fixes for _, fix in read_fixes(release.fixes)]
# Every version of every record: as first imported, and as each correction left it.
OBSERVATIONS = [event for event in EVENTS if isinstance(event, Observation)] + [
    entry.event.replacement
    for entry in JsonlStore(bundled_log(), read_only=True).entries()
    if isinstance(entry.event, Correction)
]


def test_the_shipped_log_is_exactly_what_the_releases_build(tmp_path):
    """Replaying dataset/releases gives the shipped file byte for byte (same hashes, same head)."""
    rebuilt = tmp_path / "bundled.jsonl"
    build(rebuilt)
    assert rebuilt.read_bytes() == bundled_log().read_bytes()


def test_the_build_is_reproducible(tmp_path):
    """Two builds into two fresh files give the same bytes, and a rebuild over them changes nothing."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    build(first)
    build(second)
    assert first.read_bytes() == second.read_bytes()
    before = first.stat()
    build(first)
    after = first.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_release_1_is_a_prefix_of_the_shipped_log(tmp_path):
    """Release 1 alone has its pinned length and head, and the shipped log begins with exactly its bytes."""
    release_1 = write_releases(tmp_path / "release-1.jsonl", upto=1)
    head = release_1.verify().head
    assert (head.entries, head.head) == (RELEASE_1_ENTRIES, RELEASE_1_HEAD)
    shipped = bundled_log().read_bytes().splitlines(keepends=True)
    assert b"".join(shipped[:RELEASE_1_ENTRIES]) == release_1.path.read_bytes()
    assert json.loads(shipped[RELEASE_1_ENTRIES - 1])["hash"] == RELEASE_1_HEAD


def test_a_build_that_would_rewrite_the_shipped_log_is_refused(tmp_path):
    """A target whose entries the releases do not rebuild is left as it was, and the build says why."""
    target = tmp_path / "bundled.jsonl"
    build(target)
    tampered = target.read_bytes().replace(b"coastal-2025", b"coastal-2026", 1)
    target.write_bytes(tampered)
    with pytest.raises(LogError, match="no longer rebuild"):
        build(target)
    assert target.read_bytes() == tampered


@pytest.mark.parametrize(
    ("folders", "problem"),
    [
        ({"1": "2026-11-23T12:00:00Z", "3": "2026-11-24T12:00:00Z"}, "without gaps"),
        ({"1": "2026-11-23T12:00:00Z", "2": "2026-11-23T12:00:00Z"}, "recorded after release 1"),
        ({"1": "2026-11-23T12:00:00Z", "two": "2026-11-24T12:00:00Z"}, "named by its number"),
    ],
)
def test_releases_out_of_order_are_refused(tmp_path, folders, problem):
    """Releases must be numbered 1, 2, ... and each recorded after the one before."""
    for name, recorded_at in folders.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "release.toml").write_text(f"recorded_at = {recorded_at}\nimports = []\n")
    with pytest.raises(LogError, match=problem):
        releases(tmp_path)


def test_a_users_import_of_the_release_files_gives_the_same_events(tmp_path):
    """`timeline import` of release 1's files, in order, records exactly the shipped events (only the time differs)."""
    log = tmp_path / "mine.jsonl"
    [release_1] = [release for release in releases() if release.number == 1]
    for file in release_1.imports:
        result = invoke(["import", "--log", str(log), str(file)])
        assert result.exit_code == 0, result.output
    mine = [entry.event for entry in JsonlStore(log).entries()]
    shipped = [entry.event for entry in JsonlStore(bundled_log(), read_only=True).entries()]
    assert mine == shipped[:RELEASE_1_ENTRIES]


def test_verify_accepts_the_bundled_log():
    """`timeline verify` with no --log checks the bundled dataset and finds the chain intact."""
    result = invoke(["verify"], env={"TIMELINE_LOG": None})
    assert result.exit_code == 0, result.output
    assert f"{len(EVENTS) + len(FIXES)} entries, chain intact" in result.output


def test_release_1_holds_the_curated_counts():
    """Release 1's files hold the 139 observations, 7 incidents and 21 monitors, every name described."""
    kinds = Counter(type(event).__name__ for event in EVENTS[:RELEASE_1_ENTRIES])
    assert kinds == {"Observation": 139, "IncidentDescribed": 7, "MonitorDescribed": 21}
    incidents = {e.slug for e in EVENTS if isinstance(e, IncidentDescribed)}
    monitors = {e.slug for e in EVENTS if isinstance(e, MonitorDescribed)}
    assert {o.incident for o in OBSERVATIONS} <= incidents
    assert {o.monitor for o in OBSERVATIONS} <= monitors


def _documents() -> list[dict[str, str]]:
    with open(ROOT / "dataset" / "documents.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_the_data_files_use_the_import_formats_own_columns_and_sources():
    """Each observations CSV has the import header in its documented order, and names a listed document."""
    addresses = {d["source_title"]: d["source_url"] or None for d in _documents()}
    for release in releases():
        for file in release.imports:
            if file.suffix == ".csv":
                with open(file, encoding="utf-8", newline="") as f:
                    assert tuple(next(csv.reader(f))) == COLUMNS, file
    assert {o.source.title for o in OBSERVATIONS} <= set(addresses)
    assert all(o.source.url == addresses[o.source.title] for o in OBSERVATIONS)


@pytest.fixture(scope="module")
def seed_texts() -> dict[str, str]:
    """Each seed document's text, whitespace folded, by the source title the figures give it."""
    if not SEEDS.is_dir():
        pytest.fail(f"seed documents not found at {SEEDS}; CI has them at ../shared/seeds (or set TIMELINE_SEEDS)")
    texts = {}
    for document in _documents():
        [path] = SEEDS.glob(f"{document['seed']}_*.txt")
        texts[document["source_title"]] = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))
    return texts


def test_every_quote_is_verbatim_in_its_seed_document(seed_texts):
    """Each observation's quote appears, word for word, in the document its source names."""
    missing = [o.id for o in OBSERVATIONS if re.sub(r"\s+", " ", o.source.quote) not in seed_texts[o.source.title]]
    assert missing == []


_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
# Figures the text gives without writing the number, and why.
_UNWRITTEN = {
    "residents-2025-03-07-sanobar-mayor": "the mayor and three sons: four people",
    "sohr-2025-03-08-salhab": "a sheikh and his son: two people",
    "hawar-undated": "'the same figure' as the advisor's 1,700",
    "loyalists-2016-05-12-zaraa": "'in the hundreds', read as at least 200",
    "reuters-2025-04-evictions": "'hundreds and possibly thousands', read as at least 200",
    "wikipedia-undated-arrested-alawite-men": "'hundreds', read as at least 200",
}


def numbers_in(text: str) -> set[int]:
    found = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\d|\d", text)}
    for word in re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()):
        parts = word.split("-")
        if all(p in _WORDS for p in parts):
            found.add(sum(_WORDS[p] for p in parts))
    return found


@pytest.mark.parametrize("observation", OBSERVATIONS, ids=[f"{o.id}-{n}" for n, o in enumerate(OBSERVATIONS)])
def test_every_figure_is_written_in_its_quote(observation):
    """The low and high of each figure are numbers its verbatim quote states (or the note says why not)."""
    if observation.id in _UNWRITTEN:
        assert observation.note, "a figure read from words must say so in its note"
        return
    stated = numbers_in(observation.source.quote)
    figure = observation.figure
    bounds = {figure.high} if figure.qualifier == "at_most" else {figure.low, figure.high} - {None}
    assert bounds <= stated, f"{bounds} not all in {stated}"


# -- pins: the running figure of each monitor with several reports on coastal-2025 ------------------

PINS = [
    # monitor, measure, category, location, as-of, low, high, basis, the sentence of the seed
    ("SOHR", "killed", "civilians", None, "2025-03-06", 4, 4, "reported",
     "According to SOHR, at least 35 pro-government fighters and 32 pro-Assad gunmen died in the violence, while "
     "four civilians were also killed."),
    ("SOHR", "killed", "civilians", None, "2025-03-08", 745, 745, "reported",
     "By midday on 8 March, the number of killings reported by SOHR reached 532, and reached 745 by the end of the "
     "day."),
    ("SOHR", "killed", "civilians", None, "2025-03-09", 1048, 1048, "derived",
     "According to the SOHR, 303 civilians were reported to have been killed on 9 March"),
    ("SOHR", "killed", "civilians", None, "2025-03-10", 1191, None, "derived",
     "SOHR reported at least 143 civilian deaths on 10 March"),
    ("SOHR", "killed", "civilians", None, "2025-03-11", 1225, 1225, "reported",
     "bringing their cumulative total to 1,225 civilian deaths in forty-seven separate massacres since 6 March."),
    ("SOHR", "killed", "civilians", None, "2025-03-12", 1383, 1383, "reported",
     "The death toll reached 1383 by 12 March per the SOHR"),
    ("SOHR", "killed", "civilians", None, "2025-03-16", 1500, 1500, "carried",
     "increasing its reported number of deaths from sectarian killings since 6 March to 1,500."),
    ("SOHR", "killed", "civilians", None, "2025-03-17", 1557, 1557, "reported",
     "increasing the number of reported civilians massacred since 6 March to 1,557."),
    ("SOHR", "killed", "civilians", "Latakia Governorate", "2025-03-10", 220, None, "derived",
     "with 103 in Tartus Governorate, 194 in Lataika Governorate ... twenty-six in Lataika Governorate"),
    ("SOHR", "killed", "civilians", "Latakia Governorate", "2025-03-12", 683, 683, "reported",
     "The death toll reached 1383 by 12 March per the SOHR, with 683 deaths in Latakia"),
    ("SNHR", "killed", "civilians", None, "2025-03-07", 125, 125, "reported",
     "said 125 civilians were killed over 6–7 March in the attacks"),
    ("SNHR", "killed", "civilians", None, "2025-03-08", 164, 164, "reported",
     "SNHR, in contrast, said late on 8 March that since 6 March a total of 164 civilians ... were confirmed killed"),
    ("SNHR", "killed", "security_forces", None, "2025-03-07", 100, 100, "reported",
     "as well as 100 Syrian security forces and 15 civilians killed by Assadist groups."),
    ("SNHR", "killed", "security_forces", None, "2025-03-08", 121, 121, "reported",
     "as well as 121 General Security checkpoint personnel"),
    ("SNHR", "killed", "security_forces", None, "2025-03-11", 172, 172, "reported",
     "plus 172 pro-Damascus fighters and 211 civilians killed by pro-Assad forces."),
    ("SNHR", "killed", "unspecified", None, "2025-03-11", 803, None, "reported",
     "for the period from 6 to 10 March: at least at least 803 people"),
    ("SNHR", "killed", "unspecified", None, "2025-03-17", 1084, 1084, "reported",
     "As of 17 March 2025, the UK-based independent monitoring group Syrian Network for Human Rights (SNHR) "
     "reported that 1,084 people, including civilians and fighters, were killed in the clashes since 6 March."),
    ("SNHR", "killed", "civilians_killed_by_pro_assad_groups", None, "2025-03-17", 231, None, "reported",
     "Armed remnants of the former Assad regime were also responsible for the deaths of at least 231 civilians."),
    ("residents", "killed", "civilians", "Sanobar", "2025-03-08", 50, None, "reported",
     "A list of names of over 130 civilian victims in Muzayraa, over fifty from Snobar"),
    ("residents", "killed", "unspecified", "Arzah", "2025-03-07", 24, 24, "reported",
     "systematic house-to-house killings involving AK-47s that resulted in 24 deaths, including two women."),
    ("wikipedia", "killed", "civilians", "Sanobar", "2025-03-09", 133, None, "reported",
     "The number of civilian deaths in Sanobar was reported to have increased to at least 133."),
    ("syrian-state-media", "killed", "security_forces", "Beit Ana", "2025-03-07", 1, 1, "reported",
     "near Beit Ana, killing one security force member and wounding two."),
    ("UNFPA", "displaced", "civilians", None, "2025-03-14", 51000, 51000, "reported",
     "The United Nations Population Fund estimated on 14 March that 51,000 civilians had been displaced"),
    ("Reuters", "killed", "alawites", None, "2025-06-30", 1479, 1479, "reported",
     "An investigation by Reuters published on 30 June 2025 concluded that 1,479 Alawites were killed"),
    ("Reuters", "killed", "alawites", None, "2025-07-01", 1479, 1479, "carried",
     "An investigation by Reuters published on 30 June 2025 concluded that 1,479 Alawites were killed"),
    ("Reuters", "killed", "alawites", None, "2025-12-31", 1479, 1479, "carried",
     "An investigation by Reuters published on 30 June 2025 concluded that 1,479 Alawites were killed"),
    ("Reuters", "killed", "unspecified", "Al-Mukhtariya", "2025-06-30", 157, 157, "reported",
     "though a later Reuters study found that 157 people were killed in the village"),
    ("Reuters", "killed", "unspecified", "Al-Mukhtariya", "2025-08-01", 157, 157, "carried",
     "though a later Reuters study found that 157 people were killed in the village"),
    ("residents", "killed", "unarmed_men_and_youth", "al-Fuqara", "2025-03-07", 150, None, "reported",
     "alleging the killing of over 150 unarmed men and youth between the ages of 13 and 85."),
    ("residents", "killed", "civilians", "Muzayraa", "2025-03-10", 130, None, "carried",
     "A list of names of over 130 civilian victims in Muzayraa"),
    ("residents", "detained", "civilians", "Anaza, Qadam (Damascus)", "2025-03-16", 19, 19, "reported",
     "nineteen Alawite civilians who had been arrested on 7 March in the Anaza neighborhood of Qadam"),
    ("wikipedia", "killed", "civilians", "Tuwaym", "2025-03-08", 31, 31, "reported",
     "31 civilians in Tuwaym, including nine children and four women, were killed and buried in a mass grave."),
    ("wikipedia", "killed", "civilians", "Baniyas", "2025-03-10", 200, 200, "reported",
     "Almost 200 civilians in Baniyas had been killed since 7 March."),
    ("wikipedia", "killed", "unspecified", "Al-Rusafa", "2025-03-12", 60, None, "carried",
     "In the village of Al-Rusafa, ... at least 60 were killed"),
    ("syrian-state-media", "killed", "security_forces", "Daatour, Latakia city", "2025-03-04", 2, 2, "reported",
     "after an ambush by \"members of the remnants of Assad militias\" killed two security personnel."),
    ("syrian-state-media", "killed", "security_forces", "Daatour, Latakia city", "2025-03-06", 2, 2, "carried",
     "after an ambush by \"members of the remnants of Assad militias\" killed two security personnel."),
    ("syrian-state-media", "wounded", "security_forces", "Beit Ana", "2025-03-07", 2, 2, "reported",
     "near Beit Ana, killing one security force member and wounding two."),
    ("syrian-state-media", "killed", "security_forces", "Beit Ana", "2025-03-09", 1, 1, "carried",
     "near Beit Ana, killing one security force member and wounding two."),
    ("UNFPA", "displaced", "civilians", "Lebanon", "2025-03-14", 6000, 6000, "reported",
     "estimated on 14 March that 51,000 civilians had been displaced due to the violence, including 6,000 in Lebanon."),
    ("UNFPA", "displaced", "civilians", None, "2025-03-15", 51000, 51000, "carried",
     "The United Nations Population Fund estimated on 14 March that 51,000 civilians had been displaced"),
    ("UNFPA", "displaced", "civilians", None, "2025-03-17", 51000, 51000, "carried",
     "The United Nations Population Fund estimated on 14 March that 51,000 civilians had been displaced"),
    ("UNFPA", "displaced", "civilians", "Lebanon", "2025-03-20", 6000, 6000, "carried",
     "including 6,000 in Lebanon."),
    ("SNHR", "killed", "unspecified", None, "2025-03-14", 803, None, "carried",
     "for the period from 6 to 10 March: at least at least 803 people"),
    ("wikipedia", "killed", "unspecified", None, "2025-12-25", 1000, 2000, "reported",
     "Estimates of the death toll range from about 1,000 to 2,000"),
    ("Reuters", "killed", "alawites", None, "2025-09-15", 1479, 1479, "carried",
     "An investigation by Reuters published on 30 June 2025 concluded that 1,479 Alawites were killed"),
    ("syrian-state-media", "wounded", "security_forces", "Beit Ana", "2025-03-12", 2, 2, "carried",
     "near Beit Ana, killing one security force member and wounding two."),
    ("UNFPA", "displaced", "civilians", None, "2025-04-01", 51000, 51000, "carried",
     "The United Nations Population Fund estimated on 14 March that 51,000 civilians had been displaced"),
    ("residents", "killed", "unspecified", "Sharifa", "2025-03-09", 27, 27, "carried",
     "Surviving residents reported that they confirmed twenty-seven deaths, which included five women"),
]  # fmt: skip


# Pins that release 2 changes: as release 1 left them, and as release 2 does.
PINS_BY_RELEASE = {
    "release-1": [
        ("wikipedia", "killed", "unspecified", "Qurfays", "2025-03-08", 29, None, "derived",
         "six men were killed outside the Qurfays shrine ... a convoy of 80 vehicles arrived and killed 23 people"),
        ("SOHR", "killed", "militants", None, "2025-03-06", 32, 32, "reported",
         "at least 35 pro-government fighters and 32 pro-Assad gunmen (release 1: 'at least' governs the 35 only)"),
    ],
    "release-2": [
        ("wikipedia", "killed", "unspecified", "Qurfays", "2025-03-08", 23, None, "derived",
         "a convoy of 80 vehicles arrived and killed 23 people over two days."),
        ("wikipedia", "killed", "men", "Qurfays", "2025-03-08", 6, None, "derived",
         "six men were killed outside the Qurfays shrine"),
        ("SOHR", "killed", "militants", None, "2025-03-06", 32, None, "reported",
         "at least 35 pro-government fighters and 32 pro-Assad gunmen ('at least' may govern the 32 too)"),
        ("wikipedia", "killed", "children", "Al-Qabu", "2025-03-12", 2, 2, "reported",
         "after they allegedly killed her two children in front of her"),
    ],
}  # fmt: skip
KNOWN_AT = {"release-1": RELEASE_1_AT, "release-2": None}


def test_every_monitor_with_several_reports_is_pinned_on_five_dates():
    """Each monitor with two or more coastal-2025 reports has pins on at least five as-of dates."""
    counts: dict[str, int] = {}
    for o in OBSERVATIONS:
        if o.incident == "coastal-2025":
            counts[o.monitor] = counts.get(o.monitor, 0) + 1
    pinned: dict[str, set[str]] = {}
    for monitor, *_, as_of, _low, _high, _basis, _sentence in PINS:
        pinned.setdefault(monitor, set()).add(as_of)
    for monitor, count in counts.items():
        if count >= 2:
            assert len(pinned.get(monitor, ())) >= 5, monitor


def _replay(*options: str) -> dict:
    result = invoke(["replay", *options, "--format", "json"], env={"TIMELINE_LOG": None})
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def replays():
    """`timeline replay --format json` of the bundled dataset, once per as-of date and known-at release."""
    cache: dict[tuple[str, str], dict] = {}

    def as_of(date: str, release: str = "release-2") -> dict:
        if (date, release) not in cache:
            known_at = ["--known-at", KNOWN_AT[release]] if KNOWN_AT[release] else []
            cache[date, release] = _replay("--incident", "coastal-2025", "--as-of", date, *known_at)
        return cache[date, release]

    return as_of


_PIN_CASES = [(release, pin) for release in KNOWN_AT for pin in PINS + PINS_BY_RELEASE[release]]


@pytest.mark.parametrize(
    ("release", "monitor", "measure", "category", "location", "as_of", "low", "high", "basis", "sentence"),
    [(release, *pin) for release, pin in _PIN_CASES],
    ids=[f"{release}-{p[0]}-{p[2]}-{p[3] or 'all'}-{p[4]}" for release, p in _PIN_CASES],
)
def test_running_figures_as_of(
    replays, release, monitor, measure, category, location, as_of, low, high, basis, sentence
):
    """Each pinned running figure is what the seed sentence says, as of that date, known at that release."""
    document = replays(as_of, release)
    [series] = [
        s
        for s in document["series"]
        if (s["monitor"], s["measure"], s["category"], s["location"]) == (monitor, measure, category, location)
    ]
    latest = series["latest"]
    assert (latest["date"], latest["low"], latest["high"], latest["basis"]) == (as_of, low, high, basis)


def test_sohr_inconsistency_is_flagged_not_fixed(replays):
    """'bringing their cumulative total to 1,225' after 745 + 303 + at least 143 + 132: the mismatch shows, alone."""
    [sohr] = [
        s for s in replays("2025-03-17")["series"]
        if (s["monitor"], s["category"], s["location"]) == ("SOHR", "civilians", None)
    ]  # fmt: skip
    # 8 March: 4 plus at least 162 is at least 166, and 532 fits; 1,383, 1,476, 1,500, 1,557 are totals alone.
    assert [(f["date"], f["kind"]) for f in sohr["flags"]] == [("2025-03-11", "mismatch")]
    assert sohr["flags"][0]["detail"] == (
        "sohr-2025-03-11-total reports 1,225, but sohr-2025-03-08-evening plus the increments since "
        "(745 + 303 + at least 143 + 132) make at least 1,323"
    )


def test_governorate_counts_before_a_governorate_total_are_floors():
    """SOHR's Latakia increments read "at least 220" until its first total, 683, which is no flag."""
    result = invoke(
        ["replay", "--incident", "coastal-2025", "--monitor", "SOHR", "--as-of", "2025-03-12"],
        env={"TIMELINE_LOG": None},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    latakia = result.output.split("· Latakia Governorate\n", 1)[1].split("\n\n", 1)[0]
    assert latakia.splitlines() == [
        "  2025-03-09  at least 194  derived   sohr-2025-03-09-latakia",
        "  2025-03-10  at least 220  derived   sohr-2025-03-09-latakia sohr-2025-03-10-latakia",
        "  2025-03-11  at least 220  carried   sohr-2025-03-09-latakia sohr-2025-03-10-latakia",
        "  2025-03-12           683  reported  sohr-2025-03-12-latakia-total",
    ]


def test_regional_breakdowns_never_enter_the_incident_wide_series(replays):
    """The incident-wide SOHR series rests only on observations without a location."""
    by_id = {o.id: o for o in OBSERVATIONS}
    for series in replays("2025-12-31")["series"]:
        for day in series["days"]:
            assert all(by_id[i].location == series["location"] for i in day["observations"])


@pytest.mark.slow
def test_the_installed_wheel_ships_the_dataset(tmp_path):
    """A wheel built from this tree, installed elsewhere, replays and verifies the bundled log."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)], check=True)
    [wheel] = wheels.glob("toll_timeline-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("TIMELINE_LOG", None)
    code = (
        "import timeline, sys; assert timeline.__file__.startswith(sys.argv[1]), timeline.__file__; "
        "from timeline_cli import main; sys.argv = ['timeline', 'verify']; main()"
    )
    done = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "chain intact" in done.stdout


def _series_by_key(document: dict) -> dict[tuple, list]:
    return {
        (s["incident"], s["monitor"], s["measure"], s["category"], s["location"]): s["days"] for s in document["series"]
    }


def test_known_at_release_1_differs_from_now_exactly_by_release_2():
    """Replayed as release 1 knew it, the log is release 1; the series that differ now are those release 2 touched."""
    incidents = sorted({o.incident for o in OBSERVATIONS})
    then, now = {}, {}
    for incident in incidents:
        then.update(_series_by_key(_replay("--incident", incident, "--known-at", RELEASE_1_AT)))
        now.update(_series_by_key(_replay("--incident", incident)))
    assert _replay("--known-at", RELEASE_1_AT)["log"] == {"entries": RELEASE_1_ENTRIES, "head": RELEASE_1_HEAD}
    changed = {key for key in then.keys() | now.keys() if then.get(key) != now.get(key)}
    # The note-only fixes (al-Modon, liberationnews, Reuters) change no figure, so no series.
    assert changed == {
        ("coastal-2025", "wikipedia", "killed", "unspecified", "Qurfays"),  # the six men leave it (A2)
        ("coastal-2025", "wikipedia", "killed", "men", "Qurfays"),  # and start it
        ("coastal-2025", "SOHR", "killed", "militants", None),  # exact 32 -> at least 32 (A5)
        ("coastal-2025", "wikipedia", "killed", "children", "Al-Qabu"),  # new (C1)
        ("alawites-2025-aftermath", "wikipedia", "detained", "alawites_and_others", None),  # about 829 -> at least (A1)
        ("alawites-2025-aftermath", "wikipedia", "detained", "men", None),  # new (C2)
    }
    [incarcerated_then] = then["alawites-2025-aftermath", "wikipedia", "detained", "alawites_and_others", None]
    [incarcerated_now] = now["alawites-2025-aftermath", "wikipedia", "detained", "alawites_and_others", None]
    assert (incarcerated_then["date"], incarcerated_then["low"], incarcerated_then["high"]) == ("2025-12-31", 829, 829)
    assert (incarcerated_now["date"], incarcerated_now["low"], incarcerated_now["high"]) == ("2025-12-25", 829, None)


def test_release_2_is_what_a_users_correct_and_import_make(tmp_path):
    """`timeline import` and `timeline correct` of release 2's files, after release 1, record the shipped events."""
    log = tmp_path / "mine.jsonl"
    write_releases(log, upto=1)
    [release_2] = [release for release in releases() if release.number == 2]
    for file in release_2.imports:
        result = invoke(["import", "--log", str(log), str(file)])
        assert result.exit_code == 0, result.output
    for _, fix in read_fixes(release_2.fixes):
        options = [f"--{field.replace('_', '-')}={value}" for field, value in fix.changes.items()]
        command = ["correct", "--log", str(log), fix.observation_id, "--reason", fix.reason]
        result = invoke([*command, "--expected-version", str(fix.expected_version), *options])
        assert result.exit_code == 0, result.output
    mine = [entry.event for entry in JsonlStore(log).entries()]
    shipped = [entry.event for entry in JsonlStore(bundled_log(), read_only=True).entries()]
    assert mine == shipped


def test_a_fix_made_from_a_version_the_record_no_longer_has_is_refused(tmp_path):
    """A release's fix names the version it was made from; a rebuilt history that moved the record stops the build."""
    root = tmp_path / "releases"
    (root / "1").mkdir(parents=True)
    for name in ("incidents-and-monitors.jsonl", "observations.csv"):
        (root / "1" / name).write_bytes((ROOT / "dataset" / "releases" / "1" / name).read_bytes())
    (root / "1" / "release.toml").write_text(
        'recorded_at = 2026-11-23T12:00:00Z\nimports = ["incidents-and-monitors.jsonl", "observations.csv"]\n'
        'fixes = "fixes.jsonl"\n'
    )
    retraction = {"retract": "sohr-2025-03-06-militants", "expected_version": 30, "reason": "a test"}
    (root / "1" / "fixes.jsonl").write_text(json.dumps(retraction) + "\n" + json.dumps(retraction) + "\n")
    with pytest.raises(InputError, match="retracted"):
        write_releases(tmp_path / "twice.jsonl", root=root)
    (root / "1" / "fixes.jsonl").write_text(json.dumps({**retraction, "expected_version": 29}) + "\n")
    with pytest.raises(TimelineError, match=r"fixes\.jsonl:1"):
        write_releases(tmp_path / "moved.jsonl", root=root)
    (root / "1" / "fixes.jsonl").write_text(json.dumps({"retract": "sohr-2025-03-06-militants"}) + "\n")
    with pytest.raises(InputError, match=r"fixes\.jsonl:1"):
        write_releases(tmp_path / "bad.jsonl", root=root)
    unchanged = {"correct": "sohr-2025-03-06-militants", "expected_version": 30, "set": {"low": "32"}, "reason": "x"}
    (root / "1" / "fixes.jsonl").write_text(json.dumps(unchanged) + "\n")
    with pytest.raises(InputError, match="nothing to correct"):
        write_releases(tmp_path / "same.jsonl", root=root)
    (root / "1" / "fixes.jsonl").write_text(json.dumps(retraction) + "\n")
    store = write_releases(tmp_path / "once.jsonl", root=root)
    [last] = list(store.entries(RELEASE_1_ENTRIES))
    assert type(last.event).__name__ == "Retraction" and last.event.expected_version == 30


def test_houla_is_described_again_by_release_2():
    """The Houla massacre starts 25 May 2012 as release 1 knew it, and 1 May 2012 ("May 2012") after release 2."""
    store = JsonlStore(bundled_log(), read_only=True)
    then = replay(store, known_at=dt.datetime.fromisoformat(RELEASE_1_AT)).incidents["houla-2012"]
    now = replay(store).incidents["houla-2012"]
    assert (then.start_date, now.start_date) == (dt.date(2012, 5, 25), dt.date(2012, 5, 1))
    assert "May 2012" in now.summary and "2016 article" not in now.summary


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"retract": "x", "expected_version": "30", "reason": "r"}', "expected_version must be a log position"),
        ('{"retract": "x", "expected_version": -1, "reason": "r"}', "expected_version must be a log position"),
        ('{"retract": "x", "expected_version": true, "reason": "r"}', "expected_version must be a log position"),
        ('{"correct": "x", "expected_version": 3, "set": {"low": 5}, "reason": "r"}', "CSV cell as text"),
        ('{"correct": "x", "expected_version": 3, "set": {}, "reason": "r"}', "at least one field"),
        ('{"correct": "x", "expected_version": 3, "set": {"lowe": "5"}, "reason": "r"}', "set names lowe"),
        ('{"correct": "x", "expected_version": 3, "set": {"id": "y"}, "reason": "r"}', "set names id"),
        ('{"retract": "x", "reason": "r"}', "a fix is"),
        ("[1]", "a fix is"),
        ('{"retract": "x", "expected_version": 3', "not valid JSON"),
    ],
)
def test_a_fixes_line_that_is_not_a_fix_is_named(tmp_path, line, problem):
    """Each malformed line of a fixes file is refused as bad input naming the file and line."""
    fixes = tmp_path / "fixes.jsonl"
    fixes.write_text('{"retract": "x", "expected_version": 3, "reason": "r"}\n' + line + "\n")
    with pytest.raises(InputError, match=problem) as refused:
        read_fixes(fixes)
    assert str(refused.value).startswith("fixes.jsonl:2: ")
