"""Hypothesis strategies for events and logs, shared by every property test."""

from __future__ import annotations

import datetime as dt
import unicodedata

import attrs
from hypothesis import strategies as st

from events_log.admission import names_in
from events_log.events import (
    Correction,
    Figure,
    IncidentDescribed,
    Kind,
    Link,
    MonitorDescribed,
    Observation,
    Qualifier,
    Retraction,
    Source,
)

START = dt.date(2025, 3, 1)

slugs = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
terms = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
# Any printable text, including quotes, markup and right-to-left scripts.
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t"),
    min_size=1,
    max_size=40,
).filter(str.strip)
# A place as new input gives it: composed (NFC), as every way in composes it (``events.composed``).
places = texts.map(lambda text: unicodedata.normalize("NFC", text))
urls = st.builds(lambda host, path: f"https://{host}.example/{path}", slugs, slugs)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 12, 31))
counts = st.integers(min_value=0, max_value=10**7)


@st.composite
def figures(draw) -> Figure:
    qualifier = draw(st.sampled_from(Qualifier))
    low = draw(counts)
    if qualifier in (Qualifier.EXACT, Qualifier.ABOUT):
        return Figure(low, low, qualifier)
    if qualifier is Qualifier.AT_LEAST:
        return Figure(low, None, qualifier)
    if qualifier is Qualifier.RANGE:
        return Figure(low, low + draw(st.integers(1, 10**6)), qualifier)
    return Figure(0, low + draw(st.integers(0, 10**6)), qualifier)  # at most: no floor (``events.check_new``)


sources = st.builds(Source, title=texts, url=st.none() | urls, quote=st.none() | texts)


@st.composite
def observations(draw, id: st.SearchStrategy[str] = ids) -> Observation:
    reported_on = draw(dates)
    start = draw(st.none() | st.dates(max_value=reported_on, min_value=dt.date(1999, 1, 1)))
    end = draw(st.none() | st.dates(min_value=start or dt.date(1999, 1, 1), max_value=reported_on))
    return Observation(
        id=draw(id),
        incident=draw(slugs),
        monitor=draw(slugs),
        reported_on=reported_on,
        measure=draw(terms),
        category=draw(terms),
        kind=draw(st.sampled_from(Kind)),
        figure=draw(figures()),
        source=draw(sources),
        period_start=start,
        period_end=end,
        location=draw(st.none() | places),
        note=draw(st.none() | texts),
    )


@st.composite
def corrections(draw) -> Correction:
    replacement = draw(observations())
    return Correction(observation_id=replacement.id, replacement=replacement, reason=draw(texts))


retractions = st.builds(Retraction, observation_id=ids, reason=texts)
incident_descriptions = st.builds(
    IncidentDescribed,
    slug=slugs,
    title=texts,
    place=st.none() | texts,
    start_date=st.none() | dates,
    summary=st.none() | texts,
    links=st.lists(st.builds(Link, title=texts, url=st.none() | urls), max_size=3).map(tuple),
)
monitor_descriptions = st.builds(
    MonitorDescribed, slug=slugs, full_name=texts, description=st.none() | texts, url=st.none() | urls
)
events = st.one_of(observations(), corrections(), retractions, incident_descriptions, monitor_descriptions)


def descriptions_of(*batches) -> list:
    """Descriptions of every incident and monitor the batches name, in order of first use.

    A log must describe a name before an observation may use it: tests put
    these in front of the observations they append.
    """
    described: set[tuple[str, str]] = set()
    needed: dict[tuple[str, str], None] = {}
    for batch in batches:
        for event in batch:
            if isinstance(event, IncidentDescribed | MonitorDescribed):
                described.add(("incident" if isinstance(event, IncidentDescribed) else "monitor", event.slug))
            for name in names_in(event):
                if name not in described:
                    needed.setdefault(name, None)
    return [
        IncidentDescribed(slug=slug, title=f"Incident {slug}") if kind == "incident"
        else MonitorDescribed(slug=slug, full_name=f"Monitor {slug}")
        for kind, slug in needed
    ]  # fmt: skip


# -- logs for replay properties ------------------------------------------------
#
# Replay logs draw from a small world (two incidents, two monitors, one
# measure, a few days) so that series collide, cumulatives and increments
# interleave, and corrections and retractions hit real targets.


@st.composite
def small_figures(draw) -> Figure:
    qualifier = draw(st.sampled_from([Qualifier.EXACT, Qualifier.EXACT, Qualifier.AT_LEAST, Qualifier.RANGE]))
    low = draw(st.integers(0, 500))
    if qualifier is Qualifier.EXACT:
        return Figure(low, low, qualifier)
    if qualifier is Qualifier.AT_LEAST:
        return Figure(low, None, qualifier)
    return Figure(low, low + draw(st.integers(1, 100)), qualifier)


@st.composite
def small_observations(draw, number: int) -> Observation:
    return Observation(
        id=f"o{number}",
        incident=draw(st.sampled_from(["coastal-2025", "zaraa-2016"])),
        monitor=draw(st.sampled_from(["SOHR", "SNHR"])),
        reported_on=START + dt.timedelta(days=draw(st.integers(0, 9))),
        measure="killed",
        category="civilians",
        location=draw(st.sampled_from([None, None, "Latakia"])),
        kind=draw(st.sampled_from(Kind)),
        figure=draw(small_figures()),
        source=Source(title="t", quote="q"),
    )


# The names of the small world, described in the first batch of every small log.
SMALL_WORLD = [
    IncidentDescribed(slug="coastal-2025", title="2025 massacres of Syrian Alawites"),
    IncidentDescribed(slug="zaraa-2016", title="Zaraa massacre"),
    MonitorDescribed(slug="SOHR", full_name="Syrian Observatory for Human Rights"),
    MonitorDescribed(slug="SNHR", full_name="Syrian Network for Human Rights"),
]


@st.composite
def small_logs(draw) -> list[list]:
    """Batches of events where corrections and retractions name live observations.

    The first batch describes the small world's incidents and monitors.
    """
    batches: list[list] = [list(SMALL_WORLD)]
    live: list[str] = []
    number = 0
    for _ in range(draw(st.integers(1, 8))):
        batch = []
        for _ in range(draw(st.integers(1, 5))):
            choice = draw(st.sampled_from(["obs", "obs", "obs", "obs", "correct", "retract"]))
            if choice == "obs" or not live:
                observation = draw(small_observations(number))
                number += 1
                live.append(observation.id)
                batch.append(observation)
            elif choice == "correct":
                target = draw(st.sampled_from(live))
                replacement = draw(small_observations(0))
                replacement = attrs.evolve(replacement, id=target)
                batch.append(Correction(observation_id=target, replacement=replacement, reason="typo"))
            else:
                target = draw(st.sampled_from(live))
                live.remove(target)
                batch.append(Retraction(observation_id=target, reason="wrong"))
        batches.append(batch)
    return batches


# -- logs for the interval rule ---------------------------------------------------
#
# Every wording, small numbers (sums meet or miss by a few, "about" margins
# matter), a few days (several cumulatives on one day, increments before any
# cumulative). The incident and monitors are described first, and no
# observation repeats a standing one (same series, day and figure).

INTERVAL_MONITORS = ("SOHR", "SNHR")


@st.composite
def interval_figures(draw) -> Figure:
    qualifier = draw(st.sampled_from(Qualifier))
    n = draw(st.integers(0, 60))
    if qualifier in (Qualifier.EXACT, Qualifier.ABOUT):
        return Figure(n, n, qualifier)
    if qualifier is Qualifier.AT_LEAST:
        return Figure(n, None, qualifier)
    if qualifier is Qualifier.AT_MOST:  # "at most N" is [0, N]: no floor is taken with it (``events.check_new``)
        return Figure(0, n, qualifier)
    return Figure(n, n + draw(st.integers(1, 30)), qualifier)


@st.composite
def interval_observations(draw, id: str) -> Observation:
    return Observation(
        id=id,
        incident="coastal-2025",
        monitor=draw(st.sampled_from(INTERVAL_MONITORS)),
        reported_on=START + dt.timedelta(days=draw(st.integers(0, 5))),
        measure="killed",
        category="civilians",
        location=draw(st.sampled_from([None, None, "Latakia"])),
        kind=draw(st.sampled_from(Kind)),
        figure=draw(interval_figures()),
        source=Source(title="t", quote="q"),
    )


def described() -> list:
    """The descriptions a log needs before observations may name coastal-2025 and its monitors."""
    incident = IncidentDescribed(slug="coastal-2025", title="Coastal massacres", place="Syrian coast",
                                 start_date=dt.date(2025, 3, 6), summary="s")  # fmt: skip
    monitors = [MonitorDescribed(slug=m, full_name=m, description="d") for m in INTERVAL_MONITORS]
    return [incident, *monitors]


@st.composite
def interval_logs(draw) -> list[list]:
    """Batches: descriptions first, then observations, corrections and retractions of standing ones."""
    batches: list[list] = [described()]
    standing: dict[str, tuple] = {}  # id -> (series, day, figure)
    number = 0
    for _ in range(draw(st.integers(1, 6))):
        batch = []
        for _ in range(draw(st.integers(1, 6))):
            choice = draw(st.sampled_from(["obs", "obs", "obs", "obs", "correct", "retract"]))
            if choice == "retract" and standing:
                target = draw(st.sampled_from(sorted(standing)))
                del standing[target]
                batch.append(Retraction(observation_id=target, reason="wrong"))
                continue
            target = draw(st.sampled_from(sorted(standing))) if choice == "correct" and standing else None
            observation = draw(interval_observations(target or f"o{number}"))
            same = (observation.series_key, observation.reported_on, observation.figure)
            if any(same == other for i, other in standing.items() if i != target):
                continue
            standing[observation.id] = same
            if target is None:
                number += 1
                batch.append(observation)
            else:
                batch.append(Correction(observation_id=target, replacement=observation, reason="typo"))
        if batch:
            batches.append(batch)
    return batches
