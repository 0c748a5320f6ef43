"""Every casualty figure in the five seed documents, as events for the bundled log.

How the figures were read (the notes of each observation say where a rule was applied):

- **Dates.** A figure takes the date the text ties to it: the date in its own
  sentence, or the dated day section of the article it sits in ("==== 9 March
  ===="). A figure "by the early hours of 8 March" is reported on 8 March; "by
  midday" and "by the end of the day" on the same day keep that order through
  their log position. A month without a day ("by July 2025") is read as the
  last day of that month: the figure was known by then, and as-of queries
  before it leave it out. A figure with no date at all (infoboxes, the lead,
  undated sentences) takes the latest date its document mentions, the nearest
  the text comes to saying when it was written; the note says so each time.
- **Wording.** "at least", "over", "more than" are ``at_least``; "as many as"
  is ``at_most``; "about", "almost", "approximately" and "estimated" are
  ``about``; "8-30" is a ``range``. "Hundreds" is read as at least 200 (the
  least number that is hundreds) and the note says so.
- **Who.** Each figure is attributed to whom the text attributes it. Sentences
  of the Wikipedia articles that name no source are attributed to
  ``wikipedia``; survivors' and residents' accounts to ``residents``.
- **What.** Killed, wounded, killed-or-wounded, kidnapped, captured, detained,
  displaced, evicted and beaten are different measures; civilians, security
  forces, militants and the narrower groups a text names (women, children,
  Christians, ...) are different categories. Where a monitor splits its count
  by perpetrator (SNHR), the perpetrator is part of the category.
- **Where.** Per-governorate and per-village figures carry a location and form
  series of their own; the incident-wide series holds only incident-wide
  figures, so nothing is counted twice. Spellings that the article varies
  (Sanobar/Snobar/Sonobar, Arzah/Arza, Lataika/Latakia, Tartous/Tartus) are
  given one location name; quotes stay verbatim.
- **Left out.** Single victims told as stories (a journalist wounded, "a
  Christian civilian"), vague words with no number ("thousands fled",
  "dozens of civilians", "several villagers were kidnapped"), and numbers that
  are not tolls (massacre counts, suspects, protesters, fighters sent).
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

from events_log.events import (
    Figure,
    IncidentDescribed,
    Kind,
    Link,
    MonitorDescribed,
    Observation,
    Qualifier,
    Source,
)


@attrs.frozen
class Document:
    """A seed document: its title, its address where known, and its file in ../shared/seeds."""

    title: str
    url: str | None
    seed: str


ALAWITES_2025 = Document(
    "2025 massacres of Syrian Alawites", "https://en.wikipedia.org/wiki/2025_massacres_of_Syrian_Alawites", "004"
)
ZARAA_WIKI = Document("Zara'a attack", "https://en.wikipedia.org/wiki/Zara%27a_attack", "000")
AQRAB_WIKI = Document("Aqrab massacre", "https://en.wikipedia.org/wiki/Aqrab_massacre", "001")
MODON = Document("Homs: Islamist Fighters Carry Out Massacre in Alawite Village", None, "002")
LIBERATION = Document(
    "The real criminals behind massacre in al-Zara, Syria (liberationnews.org)",
    "http://www.liberationnews.org/the-real-criminals-behind-massacre-in-al-zara-syria-us-quatar-turkey/",
    "003",
)
DOCUMENTS = (ZARAA_WIKI, AQRAB_WIKI, MODON, LIBERATION, ALAWITES_2025)

UNDATED_2025 = (
    "The article gives no date for this figure; it takes 25 December 2025, the latest date the article "
    "mentions, as the date by which it was published."
)
UNDATED_ZARAA = (
    "The article gives no date for this infobox figure; it takes 25 May 2016, the latest date the article "
    "mentions (the day after the handover of 24 May)."
)
UNDATED_AQRAB = (
    "The article gives no date for this infobox figure; it takes 14 December 2012, the latest date the "
    "article mentions (Alex Thomson's report)."
)
MODON_DATE = (
    "The article's publication date is not given; it reports the attack of 'Thursday morning' (12 May 2016) "
    "as news, and that day, the latest it mentions, is used."
)
LIBERATION_DATE = (
    "The article's publication date is not given; 12 May 2016, the date of the attack and the latest date it "
    "mentions, is used."
)

_FIGURE = re.compile(r"(?:(at least|at most|about) )?(\d+)(?:-(\d+))?")


def figure(text: str) -> Figure:
    """'745', 'at least 803', 'about 1700', 'at most 300' or '125-300'."""
    match = _FIGURE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a figure: {text!r}")
    wording, low, high = match.groups()
    if high is not None:
        return Figure(int(low), int(high), Qualifier.RANGE)
    if wording == "at most":
        return Figure(0, int(low), Qualifier.AT_MOST)
    qualifier = {None: Qualifier.EXACT, "at least": Qualifier.AT_LEAST, "about": Qualifier.ABOUT}[wording]
    return Figure.of(int(low), None, qualifier)


OBSERVATIONS: list[Observation] = []


def observe(
    id: str,
    incident: str,
    monitor: str,
    reported_on: str,
    measure: str,
    category: str,
    kind: str,
    value: str,
    document: Document,
    quote: str,
    *,
    location: str | None = None,
    period: tuple[str, str] | None = None,
    note: str | None = None,
) -> None:
    start, end = period if period else (None, None)
    OBSERVATIONS.append(
        Observation(
            id=id,
            incident=incident,
            monitor=monitor,
            reported_on=dt.date.fromisoformat(reported_on),
            period_start=dt.date.fromisoformat(start) if start else None,
            period_end=dt.date.fromisoformat(end) if end else None,
            measure=measure,
            category=category,
            location=location,
            kind=Kind(kind),
            figure=figure(value),
            source=Source(title=document.title, url=document.url, quote=quote),
            note=note,
        )
    )


C = "coastal-2025"
A = ALAWITES_2025

# == coastal-2025: SOHR, the incident-wide civilian count =========================================

observe(
    "sohr-2025-03-06-civilians",
    C,
    "SOHR",
    "2025-03-06",
    "killed",
    "civilians",
    "cumulative",
    "4",
    A,
    "According to SOHR, at least 35 pro-government fighters and 32 pro-Assad gunmen died in the violence, "
    "while four civilians were also killed.",
)
observe(
    "sohr-2025-03-06-security",
    C,
    "SOHR",
    "2025-03-06",
    "killed",
    "security_forces",
    "cumulative",
    "at least 35",
    A,
    "According to SOHR, at least 35 pro-government fighters and 32 pro-Assad gunmen died in the violence",
    note="Pro-government fighters counted as security forces.",
)
observe(
    "sohr-2025-03-06-militants",
    C,
    "SOHR",
    "2025-03-06",
    "killed",
    "militants",
    "cumulative",
    "32",
    A,
    "According to SOHR, at least 35 pro-government fighters and 32 pro-Assad gunmen died in the violence",
    note="'At least' is read as governing the 35 only, as written; pro-Assad gunmen counted as militants.",
)
observe(
    "sohr-2025-03-08-seventh",
    C,
    "SOHR",
    "2025-03-08",
    "killed",
    "civilians",
    "increment",
    "at least 162",
    A,
    "Combined with the earlier report of sixty civilians killed in Baniyas, the SOHR claimed that at least "
    "162 civilians were killed across five separate massacres on 7 March alone.",
    period=("2025-03-07", "2025-03-07"),
    note="Deaths of 7 March, reported with SOHR's village counts 'by the early hours of 8 March'.",
)
observe(
    "sohr-2025-03-08-midday",
    C,
    "SOHR",
    "2025-03-08",
    "killed",
    "civilians",
    "cumulative",
    "532",
    A,
    "By midday on 8 March, the number of killings reported by SOHR reached 532",
    note="The text says 'killings'; it is SOHR's running count that reaches 1,225 civilian deaths on 11 March.",
)
observe(
    "sohr-2025-03-08-evening",
    C,
    "SOHR",
    "2025-03-08",
    "killed",
    "civilians",
    "cumulative",
    "745",
    A,
    "By midday on 8 March, the number of killings reported by SOHR reached 532, and reached 745 by the end of the day.",
)
observe(
    "sohr-2025-03-09",
    C,
    "SOHR",
    "2025-03-09",
    "killed",
    "civilians",
    "increment",
    "303",
    A,
    "According to the SOHR, 303 civilians were reported to have been killed on 9 March by the security "
    "forces, Ministry of Defense personnel and allied forces",
    period=("2025-03-09", "2025-03-09"),
)
observe(
    "sohr-2025-03-10",
    C,
    "SOHR",
    "2025-03-10",
    "killed",
    "civilians",
    "increment",
    "at least 143",
    A,
    "SOHR reported at least 143 civilian deaths on 10 March",
    period=("2025-03-10", "2025-03-10"),
)
observe(
    "sohr-2025-03-11-day",
    C,
    "SOHR",
    "2025-03-11",
    "killed",
    "civilians",
    "increment",
    "132",
    A,
    "During 11 March, the SOHR said it had documented the killings of 132 Alawite civilians in three "
    "separate massacres",
    period=("2025-03-11", "2025-03-11"),
)
observe(
    "sohr-2025-03-11-total",
    C,
    "SOHR",
    "2025-03-11",
    "killed",
    "civilians",
    "cumulative",
    "1225",
    A,
    "bringing their cumulative total to 1,225 civilian deaths in forty-seven separate massacres since 6 March.",
    period=("2025-03-06", "2025-03-11"),
    note="745 on 8 March plus 303, at least 143 and 132 makes at least 1,323; SOHR published 1,225.",
)
observe(
    "sohr-2025-03-12-day",
    C,
    "SOHR",
    "2025-03-12",
    "killed",
    "civilians",
    "increment",
    "158",
    A,
    "On 12 March, SOHR said it had documented further massacres that day in which 158 civilians were killed",
    period=("2025-03-12", "2025-03-12"),
)
observe(
    "sohr-2025-03-12-total",
    C,
    "SOHR",
    "2025-03-12",
    "killed",
    "civilians",
    "cumulative",
    "1383",
    A,
    "The death toll reached 1383 by 12 March per the SOHR",
    period=("2025-03-06", "2025-03-12"),
    note="The text says 'death toll'; it continues SOHR's civilian count (1,225 + 158 = 1,383).",
)
observe(
    "sohr-2025-03-12-christians",
    C,
    "SOHR",
    "2025-03-12",
    "killed",
    "christians",
    "increment",
    "5",
    A,
    "SOHR reported five Christians among those killed on 12 March.",
    period=("2025-03-12", "2025-03-12"),
)
observe(
    "sohr-2025-03-12-shiites",
    C,
    "SOHR",
    "2025-03-12",
    "killed",
    "shiite_civilians",
    "increment",
    "2",
    A,
    "SOHR said that two Shiite civilians were killed",
    note="One in Al-Zurzuriyah, Homs Governorate; one found shot after being kidnapped a few days earlier.",
)
observe(
    "sohr-2025-03-13-day",
    C,
    "SOHR",
    "2025-03-13",
    "killed",
    "civilians",
    "increment",
    "93",
    A,
    "On 13 March, SOHR said it had documented 93 civilians killed in sectarian massacres",
    period=("2025-03-13", "2025-03-13"),
)
observe(
    "sohr-2025-03-13-total",
    C,
    "SOHR",
    "2025-03-13",
    "killed",
    "civilians",
    "cumulative",
    "1476",
    A,
    "increasing the reported number of killed civilians to 1,476.",
)
observe(
    "sohr-2025-03-14-day",
    C,
    "SOHR",
    "2025-03-14",
    "killed",
    "civilians",
    "increment",
    "24",
    A,
    "On 14 March, SOHR reported 24 civilians killed in two massacres in Latakia and Tartus Governorates",
    period=("2025-03-14", "2025-03-14"),
)
observe(
    "sohr-2025-03-14-total",
    C,
    "SOHR",
    "2025-03-14",
    "killed",
    "civilians",
    "cumulative",
    "1500",
    A,
    "increasing its reported number of deaths from sectarian killings since 6 March to 1,500.",
    period=("2025-03-06", "2025-03-14"),
    note="'Deaths from sectarian killings': the same running count as the civilian totals before and after.",
)
observe(
    "sohr-2025-03-17-day",
    C,
    "SOHR",
    "2025-03-17",
    "killed",
    "civilians",
    "increment",
    "57",
    A,
    "On 17 March, SOHR said massacres were committed in Latakia and Tartus mainly against Alawite Syrians, "
    "killing fifty-seven",
    period=("2025-03-17", "2025-03-17"),
)
observe(
    "sohr-2025-03-17-total",
    C,
    "SOHR",
    "2025-03-17",
    "killed",
    "civilians",
    "cumulative",
    "1557",
    A,
    "increasing the number of reported civilians massacred since 6 March to 1,557.",
    period=("2025-03-06", "2025-03-17"),
)
observe(
    "sohr-undated-6-12-march",
    C,
    "SOHR",
    "2025-12-25",
    "killed",
    "civilians",
    "cumulative",
    "1614",
    A,
    "The UK-based Syrian Observatory for Human Rights (SOHR) reported that 1,614 civilians were killed by "
    "armed militias supporting the Syrian government between 6 March 2025 and 12 March 2025.",
    period=("2025-03-06", "2025-03-12"),
    note=UNDATED_2025 + " It covers 6-12 March only.",
)
observe(
    "sohr-undated-infobox-civilians",
    C,
    "SOHR",
    "2025-12-25",
    "killed",
    "civilians",
    "cumulative",
    "1659",
    A,
    "1,659 civilians (ethnicity unspecified) and 259 Alawite militants (compared to 273 security forces), per SOHR",
    note="From the infobox. " + UNDATED_2025,
)
observe(
    "sohr-undated-infobox-militants",
    C,
    "SOHR",
    "2025-12-25",
    "killed",
    "militants",
    "cumulative",
    "259",
    A,
    "1,659 civilians (ethnicity unspecified) and 259 Alawite militants",
    note="From the infobox; 'Alawite militants'. " + UNDATED_2025,
)
observe(
    "sohr-undated-infobox-security",
    C,
    "SOHR",
    "2025-12-25",
    "killed",
    "security_forces",
    "cumulative",
    "273",
    A,
    "(compared to 273 security forces), per SOHR",
    note="From the infobox. " + UNDATED_2025,
)

# == coastal-2025: SOHR, by governorate ===========================================================

for governorate, value, quoted in (
    ("Tartus Governorate", "103", "103 in Tartus Governorate"),
    ("Latakia Governorate", "194", "194 in Lataika Governorate"),
    ("Hama Governorate", "6", "six in Hama Governorate"),
):
    observe(
        f"sohr-2025-03-09-{governorate.split()[0].lower()}",
        C,
        "SOHR",
        "2025-03-09",
        "killed",
        "civilians",
        "increment",
        value,
        A,
        "with 103 in Tartus Governorate, 194 in Lataika Governorate, and six in Hama Governorate.",
        location=governorate,
        period=("2025-03-09", "2025-03-09"),
        note=f"The governorate's share: {quoted}.",
    )
for governorate, value, quoted in (
    ("Hama Governorate", "71", "seventy-one in Hama Governorate"),
    ("Tartus Governorate", "42", "forty-two in Tartus Governorate"),
    ("Latakia Governorate", "26", "twenty-six in Lataika Governorate"),
    ("Homs Governorate", "4", "four in Homs Governorate"),
):
    observe(
        f"sohr-2025-03-10-{governorate.split()[0].lower()}",
        C,
        "SOHR",
        "2025-03-10",
        "killed",
        "civilians",
        "increment",
        value,
        A,
        "SOHR reported at least 143 civilian deaths on 10 March, with seventy-one in Hama Governorate, "
        "forty-two in Tartus Governorate, twenty-six in Lataika Governorate, and four in Homs Governorate.",
        location=governorate,
        period=("2025-03-10", "2025-03-10"),
        note=f"The governorate's share: {quoted}.",
    )
observe(
    "sohr-2025-03-12-latakia-day",
    C,
    "SOHR",
    "2025-03-12",
    "killed",
    "civilians",
    "increment",
    "25",
    A,
    "and in Latakia (25 in various locations, including 18 in Sanobar)",
    location="Latakia Governorate",
    period=("2025-03-12", "2025-03-12"),
)
for governorate, value in (
    ("Latakia Governorate", "683"),
    ("Tartus Governorate", "433"),
    ("Hama Governorate", "255"),
    ("Homs Governorate", "12"),
):
    observe(
        f"sohr-2025-03-12-{governorate.split()[0].lower()}-total",
        C,
        "SOHR",
        "2025-03-12",
        "killed",
        "civilians",
        "cumulative",
        value,
        A,
        "The death toll reached 1383 by 12 March per the SOHR, with 683 deaths in Latakia, 433 in Tartus, "
        "255 in Hama, and 12 in Homs.",
        location=governorate,
        period=("2025-03-06", "2025-03-12"),
    )

# == coastal-2025: SOHR, by town and village ======================================================

observe(
    "sohr-2025-03-06-jableh",
    C,
    "SOHR",
    "2025-03-06",
    "killed",
    "unspecified",
    "cumulative",
    "48",
    A,
    "SOHR said that 48 people were killed in clashes in Jableh.",
    location="Jableh",
)
observe(
    "sohr-2025-03-07-baniyas",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "civilians",
    "cumulative",
    "60",
    A,
    "SOHR reported sixty people killed in Baniyas, including ten women and five children, marking one of the "
    "largest single massacres documented on 7 March.",
    location="Baniyas",
    note="Called 'sixty civilians' where SOHR's 7 March total is given.",
)
observe(
    "sohr-2025-03-07-baniyas-women",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "women",
    "cumulative",
    "10",
    A,
    "SOHR reported sixty people killed in Baniyas, including ten women and five children",
    location="Baniyas",
)
observe(
    "sohr-2025-03-07-baniyas-children",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "children",
    "cumulative",
    "5",
    A,
    "SOHR reported sixty people killed in Baniyas, including ten women and five children",
    location="Baniyas",
)
LATAKIA_VILLAGES = "Al-Mukhtariya, Al-Shir and Al-Haffah"
observe(
    "sohr-2025-03-07-latakia-men",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "men",
    "cumulative",
    "52",
    A,
    "Monitoring groups, including the SOHR, reported that security forces had conducted executions of "
    "fifty-two Alawite men in the Latakia countryside.",
    location=LATAKIA_VILLAGES,
    note="The lead gives the same 52 ('52 Alawite individuals in the towns of Al-Mukhtariya and Al-Shir'). "
    "Dated by the article's 7 March section.",
)
observe(
    "sohr-2025-03-07-latakia-men-69",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "men",
    "cumulative",
    "69",
    A,
    "According to SOHR director Rami Abdul Rahman, gunmen killed 69 men in these villages while sparing "
    "women and children",
    location=LATAKIA_VILLAGES,
    note="Dated by the article's 7 March section; given after the 52.",
)
observe(
    "sohr-2025-03-07-latakia-women",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "women",
    "cumulative",
    "13",
    A,
    "but SOHR also told AFP that thirteen women and five children were killed.",
    location=LATAKIA_VILLAGES,
    note="Dated by the article's 7 March section.",
)
observe(
    "sohr-2025-03-07-latakia-children",
    C,
    "SOHR",
    "2025-03-07",
    "killed",
    "children",
    "cumulative",
    "5",
    A,
    "but SOHR also told AFP that thirteen women and five children were killed.",
    location=LATAKIA_VILLAGES,
    note="Dated by the article's 7 March section.",
)
EARLY_8_MARCH = (
    "By the early hours of 8 March, SOHR said that thirty-eight civilians in Al-Mukhtariya had been killed, as "
    "well as twenty-four civilians in Al-Shir, twenty-two in Qurfays, seven in the Al-Haffah district, seven in "
    "Beit Ana and Dweir Baabda in the Jableh countryside, and two in Yahmur in the Tartus countryside"
)
for slug, location, value in (
    ("mukhtariya", "Al-Mukhtariya", "38"),
    ("shir", "Al-Shir", "24"),
    ("qurfays", "Qurfays", "22"),
    ("haffah", "Al-Haffah district", "7"),
    ("beit-ana", "Beit Ana and Dweir Baabda", "7"),
    ("yahmur", "Yahmur", "2"),
):
    observe(
        f"sohr-2025-03-08-{slug}",
        C,
        "SOHR",
        "2025-03-08",
        "killed",
        "civilians",
        "cumulative",
        value,
        A,
        EARLY_8_MARCH,
        location=location,
    )
observe(
    "sohr-2025-03-08-salhab",
    C,
    "SOHR",
    "2025-03-08",
    "killed",
    "civilians",
    "cumulative",
    "2",
    A,
    "SOHR also reported that an Alawite sheikh, Shaaban Mansour, and his son were killed by a firing squad in "
    "a field execution in Salhab, Hama Governorate",
    location="Salhab",
    note="Two named victims; with the villages above and Baniyas they make SOHR's 162 of 7 March.",
)
for slug, location, value, quoted in (
    ("rusafa", "Al-Rusafa", "62", "Al-Rusafa, 62 killed"),
    ("arzah", "Arzah", "22", "Arza, 22"),
    ("baniyas", "Baniyas", "34", "Baniyas, 34 deaths"),
    ("barmaya", "Barmaya", "15", "Barmaya, 15"),
    ("sanobar", "Sanobar", "18", "including 18 in Sanobar"),
):
    observe(
        f"sohr-2025-03-12-{slug}",
        C,
        "SOHR",
        "2025-03-12",
        "killed",
        "civilians",
        "increment",
        value,
        A,
        "On 12 March, SOHR said it had documented further massacres that day in which 158 civilians were "
        "killed, the vast majority Alawites: in Hama (Al-Rusafa, 62 killed, and Arza, 22), in Tartous "
        "(Baniyas, 34 deaths, and Barmaya, 15), and in Latakia (25 in various locations, including 18 in "
        "Sanobar).",
        location=location,
        period=("2025-03-12", "2025-03-12"),
        note=f"This place's share: {quoted}.",
    )
observe(
    "sohr-2025-03-11-sabinah",
    C,
    "SOHR",
    "2025-03-11",
    "killed",
    "civilians",
    "cumulative",
    "8",
    A,
    "The bodies of eight civilians were found dumped in a well in Al-Sabinah, Rif Dimashq Governorate.",
    location="Al-Sabinah, Rif Dimashq Governorate",
)
observe(
    "sohr-2025-03-14-mawana",
    C,
    "SOHR",
    "2025-03-14",
    "killed",
    "civilians",
    "cumulative",
    "3",
    A,
    "SOHR said three civilians were killed in field executions after being seized at the Mawana security "
    "checkpoint along a road between Safita and Tartus.",
    location="Mawana checkpoint, Safita-Tartus road",
)
observe(
    "sohr-2025-03-16-bodies",
    C,
    "SOHR",
    "2025-03-16",
    "killed",
    "civilians",
    "cumulative",
    "5",
    A,
    "On 16 March, SOHR said that five bodies were found with traces of gunfire in the countryside of Tartus "
    "and Homs, presumed to be civilian victims of field executions.",
    location="Tartus and Homs countryside",
    note="Not added to the incident-wide count: SOHR's running total does not include them (1,500 + 57 = 1,557).",
)
observe(
    "sohr-2025-03-16-khmeimim",
    C,
    "SOHR",
    "2025-03-16",
    "killed",
    "unspecified",
    "cumulative",
    "3",
    A,
    "SOHR reported that sources told it that Russian forces agreed to bury three bodies at the Khmeimim base.",
    location="Khmeimim Air Base",
)
observe(
    "sohr-2025-03-17-sanobar",
    C,
    "SOHR",
    "2025-03-17",
    "killed",
    "civilians",
    "increment",
    "26",
    A,
    "killing fifty-seven (including 26 in Sonobar)",
    location="Sanobar",
    period=("2025-03-17", "2025-03-17"),
)

# == coastal-2025: SNHR ===========================================================================

SNHR_6_7 = (
    'Altogether, the Syrian Network for Human Rights (SNHR, described by The Guardian as "a human rights '
    'monitor considered independent and credible") said 125 civilians were killed over 6–7 March in the '
    "attacks, as well as 100 Syrian security forces and 15 civilians killed by Assadist groups."
)
SNHR_DATE_7 = "Published for 6-7 March; dated by the article's 7 March section."
observe(
    "snhr-2025-03-07-civilians",
    C,
    "SNHR",
    "2025-03-07",
    "killed",
    "civilians",
    "cumulative",
    "125",
    A,
    SNHR_6_7,
    period=("2025-03-06", "2025-03-07"),
    note="Civilians killed in the attacks by government-aligned fighters. " + SNHR_DATE_7,
)
observe(
    "snhr-2025-03-07-security",
    C,
    "SNHR",
    "2025-03-07",
    "killed",
    "security_forces",
    "cumulative",
    "100",
    A,
    SNHR_6_7,
    period=("2025-03-06", "2025-03-07"),
    note=SNHR_DATE_7,
)
observe(
    "snhr-2025-03-07-by-pro-assad",
    C,
    "SNHR",
    "2025-03-07",
    "killed",
    "civilians_killed_by_pro_assad_groups",
    "cumulative",
    "15",
    A,
    SNHR_6_7,
    period=("2025-03-06", "2025-03-07"),
    note=SNHR_DATE_7,
)
observe(
    "snhr-2025-03-07-mukhtariya",
    C,
    "SNHR",
    "2025-03-07",
    "killed",
    "civilians",
    "cumulative",
    "about 40",
    A,
    "SNHR also said about 40 civilians were executed together in al-Mukhtariya",
    location="Al-Mukhtariya",
    note="Dated by the article's 7 March section.",
)
SNHR_8 = (
    "SNHR, in contrast, said late on 8 March that since 6 March a total of 164 civilians, including seven children "
    "and 13 women, were confirmed killed in the villages and towns of Jableh, Baniyas, and Latakia, as well as 121 "
    "General Security checkpoint personnel and that 147 people (26 civilians and 121 security forces) had been "
    "killed by militants loyal to Assad"
)
for slug, category, value in (
    ("civilians", "civilians", "164"),
    ("children", "children", "7"),
    ("women", "women", "13"),
    ("security", "security_forces", "121"),
    ("by-pro-assad", "civilians_killed_by_pro_assad_groups", "26"),
    ("all-by-pro-assad", "people_killed_by_pro_assad_groups", "147"),
):
    observe(
        f"snhr-2025-03-08-{slug}",
        C,
        "SNHR",
        "2025-03-08",
        "killed",
        category,
        "cumulative",
        value,
        A,
        SNHR_8,
        period=("2025-03-06", "2025-03-08"),
        note="The 121 General Security personnel are those of the 147 killed by militants loyal to Assad."
        if slug in ("security", "all-by-pro-assad")
        else None,
    )
SNHR_11 = (
    "On 11 March, SNHR published a report on the violence and gave a cumulative total number of documented deaths "
    "in Latakia, Hama, Tartous and Homs for the period from 6 to 10 March: at least at least 803 people, including "
    '420 civilians and "disarmed militants" killed by armed forces aligned with Damascus, plus 172 pro-Damascus '
    "fighters and 211 civilians killed by pro-Assad forces."
)
for slug, category, value in (
    ("all", "unspecified", "at least 803"),
    ("disarmed", "civilians_and_disarmed_fighters", "420"),
    ("security", "security_forces", "172"),
    ("by-pro-assad", "civilians_killed_by_pro_assad_groups", "211"),
):
    observe(
        f"snhr-2025-03-11-{slug}",
        C,
        "SNHR",
        "2025-03-11",
        "killed",
        category,
        "cumulative",
        value,
        A,
        SNHR_11,
        period=("2025-03-06", "2025-03-10"),
        note={
            "security": "Pro-Damascus fighters counted as security forces.",
            "disarmed": "Killed by armed forces aligned with Damascus.",
        }.get(slug),
    )
SNHR_17 = (
    "As of 17 March 2025, the UK-based independent monitoring group Syrian Network for Human Rights (SNHR) reported "
    "that 1,084 people, including civilians and fighters, were killed in the clashes since 6 March."
)
observe(
    "snhr-2025-03-17-all",
    C,
    "SNHR",
    "2025-03-17",
    "killed",
    "unspecified",
    "cumulative",
    "1084",
    A,
    SNHR_17,
    period=("2025-03-06", "2025-03-17"),
)
observe(
    "snhr-2025-03-17-disarmed",
    C,
    "SNHR",
    "2025-03-17",
    "killed",
    "civilians_and_disarmed_fighters",
    "cumulative",
    "at least 639",
    A,
    "According to their documentation, at least 639 people, including civilians and disarmed combatants have "
    "been killed by forces aligned with the Syrian transitional government.",
    period=("2025-03-06", "2025-03-17"),
    note="The infobox repeats it as '639+'.",
)
observe(
    "snhr-2025-03-17-by-pro-assad",
    C,
    "SNHR",
    "2025-03-17",
    "killed",
    "civilians_killed_by_pro_assad_groups",
    "cumulative",
    "at least 231",
    A,
    "Armed remnants of the former Assad regime were also responsible for the deaths of at least 231 civilians.",
    period=("2025-03-06", "2025-03-17"),
)
observe(
    "snhr-2025-03-17-security",
    C,
    "SNHR",
    "2025-03-17",
    "killed",
    "security_forces",
    "cumulative",
    "213",
    A,
    "639+ civilians and disarmed fighters killed by government-aligned fighters (compared to 213 security "
    "forces and 231 civilians killed by Assadist militias) per SNHR",
    note="From the infobox, which gives it beside SNHR's 17 March figures (639, 231); dated with them.",
)

# == coastal-2025: Reuters, Amnesty, and the other named sources =================================

observe(
    "reuters-2025-06-30-alawites",
    C,
    "Reuters",
    "2025-06-30",
    "killed",
    "alawites",
    "cumulative",
    "1479",
    A,
    "An investigation by Reuters published on 30 June 2025 concluded that 1,479 Alawites were killed across "
    "40 different sites in a pattern of ethnically-targeted killing.",
    period=("2025-03-07", "2025-03-09"),
    note="The infobox gives the period: '1,479 Alawites during 7-9 March'.",
)
observe(
    "reuters-2025-06-30-mukhtariya",
    C,
    "Reuters",
    "2025-06-30",
    "killed",
    "unspecified",
    "cumulative",
    "157",
    A,
    "though a later Reuters study found that 157 people were killed in the village, or a quarter of the population.",
    location="Al-Mukhtariya",
    note="'A later Reuters study': dated with the Reuters investigation published on 30 June 2025, the only "
    "one the article dates.",
)
observe(
    "amnesty-2025-04-03",
    C,
    "Amnesty",
    "2025-04-03",
    "killed",
    "alawites",
    "cumulative",
    "at least 32",
    A,
    "In a separate statement dated 3 April 2025, the organization stated that it had investigated 32 of the "
    "killings and concluded that they were deliberate, targeted at the Alawite minority sect, and unlawful.",
    note="32 killings Amnesty investigated and found deliberate and unlawful: a floor, not a toll.",
)
observe(
    "advisor-2025-03-07",
    C,
    "alawite-council-advisor",
    "2025-03-07",
    "killed",
    "civilians",
    "cumulative",
    "at least 1700",
    A,
    "He alleged that over 1,700 civilians had been killed.",
    note="Said on 7 March to Al-Ahed, as the paragraph opens ('On 7 March, the advisor ...').",
)
observe(
    "hawar-undated",
    C,
    "Hawar",
    "2025-12-25",
    "killed",
    "unspecified",
    "cumulative",
    "at least 1700",
    A,
    'The Syrian Democratic Forces\' Hawar News Agency gave the same figure, citing "local sources".',
    note="'The same figure' as the advisor's 'over 1,700'; the infobox lists it as '1,700 unspecified'. "
    + UNDATED_2025,
)
observe(
    "state-media-2025-03-04-daatour",
    C,
    "syrian-state-media",
    "2025-03-04",
    "killed",
    "security_forces",
    "cumulative",
    "2",
    A,
    'after an ambush by "members of the remnants of Assad militias" killed two security personnel.',
    location="Daatour, Latakia city",
)
observe(
    "state-media-2025-03-07-beit-ana-killed",
    C,
    "syrian-state-media",
    "2025-03-07",
    "killed",
    "security_forces",
    "cumulative",
    "1",
    A,
    'State media reported that militias loyal to Assad had opened fire on "members and equipment of the '
    'defence ministry" near Beit Ana, killing one security force member and wounding two.',
    location="Beit Ana",
)
observe(
    "state-media-2025-03-07-beit-ana-wounded",
    C,
    "syrian-state-media",
    "2025-03-07",
    "wounded",
    "security_forces",
    "cumulative",
    "2",
    A,
    "near Beit Ana, killing one security force member and wounding two.",
    location="Beit Ana",
)
observe(
    "araby-2025-03-06-qardaha",
    C,
    "al-araby-al-jadeed",
    "2025-03-06",
    "captured",
    "security_forces",
    "cumulative",
    "at least 10",
    A,
    "At least 10 members of the security forces were captured by pro-Assad gunmen in Qardaha, according to "
    "Al-Araby Al-Jadeed.",
    location="Qardaha",
)

# == coastal-2025: survivors' and residents' accounts ============================================

observe(
    "residents-2025-03-07-fuqara",
    C,
    "residents",
    "2025-03-07",
    "killed",
    "unarmed_men_and_youth",
    "cumulative",
    "at least 150",
    A,
    "alleging the killing of over 150 unarmed men and youth between the ages of 13 and 85.",
    location="al-Fuqara",
    note="A survivor's testimony published by SOHR; the massacres of 6-7 March, dated by the article's "
    "7 March section.",
)
observe(
    "residents-2025-03-07-sanobar-mayor",
    C,
    "residents",
    "2025-03-07",
    "killed",
    "unspecified",
    "cumulative",
    "4",
    A,
    "Residents of Sanobar in Latakia Governorate reported that militants shot the town's mayor and three sons",
    location="Sanobar",
    note="The mayor and his three sons; dated by the article's 7 March section.",
)
observe(
    "residents-2025-03-07-arzah",
    C,
    "residents",
    "2025-03-07",
    "killed",
    "unspecified",
    "cumulative",
    "24",
    A,
    "followed by systematic house-to-house killings involving AK-47s that resulted in 24 deaths, including two women.",
    location="Arzah",
    note="'According to survivors'; dated by the article's 7 March section.",
)
observe(
    "residents-2025-03-07-arzah-women",
    C,
    "residents",
    "2025-03-07",
    "killed",
    "women",
    "cumulative",
    "2",
    A,
    "resulted in 24 deaths, including two women.",
    location="Arzah",
    note="'According to survivors'; dated by the article's 7 March section.",
)
observe(
    "residents-2025-03-08-sharifa",
    C,
    "residents",
    "2025-03-08",
    "killed",
    "unspecified",
    "cumulative",
    "27",
    A,
    "Surviving residents reported that they confirmed twenty-seven deaths, which included five women, after "
    "assembling photos and videos of residents killed.",
    location="Sharifa",
)
observe(
    "residents-2025-03-08-sharifa-women",
    C,
    "residents",
    "2025-03-08",
    "killed",
    "women",
    "cumulative",
    "5",
    A,
    "Surviving residents reported that they confirmed twenty-seven deaths, which included five women",
    location="Sharifa",
)
LISTS = (
    "A list of names of over 130 civilian victims in Muzayraa, over fifty from Snobar, forty-two from Ain "
    "al-Arous, and eleven in Bustan al-Basha was distributed by surviving locals."
)
for slug, location, value in (
    ("muzayraa", "Muzayraa", "at least 130"),
    ("sanobar", "Sanobar", "at least 50"),
    ("ain-al-arous", "Ain al-Arous", "42"),
    ("bustan-al-basha", "Bustan al-Basha", "11"),
):
    observe(
        f"residents-2025-03-08-list-{slug}",
        C,
        "residents",
        "2025-03-08",
        "killed",
        "civilians",
        "cumulative",
        value,
        A,
        LISTS,
        location=location,
        note="Lists of names distributed by surviving locals.",
    )
observe(
    "residents-2025-03-16-qadam",
    C,
    "residents",
    "2025-03-16",
    "detained",
    "civilians",
    "cumulative",
    "19",
    A,
    "Residents of Damascus called for Syrian government forces to reveal what happened to nineteen Alawite "
    "civilians who had been arrested on 7 March in the Anaza neighborhood of Qadam, Damascus",
    location="Anaza, Qadam (Damascus)",
    period=("2025-03-07", "2025-03-07"),
)

# == coastal-2025: figures the article states without naming a source ===========================

W = "wikipedia"
observe(
    "wikipedia-lead-range",
    C,
    W,
    "2025-12-25",
    "killed",
    "unspecified",
    "cumulative",
    "1000-2000",
    A,
    "Estimates of the death toll range from about 1,000 to 2,000",
    note="The lead's summary of all estimates ('about 1,000 to 2,000'). " + UNDATED_2025,
)
observe(
    "wikipedia-2025-03-08-rusafa",
    C,
    W,
    "2025-03-08",
    "killed",
    "unspecified",
    "cumulative",
    "at least 60",
    A,
    "In the village of Al-Rusafa, Alawites were humiliated by being forced to howl like dogs and at least 60 "
    "were killed",
    location="Al-Rusafa",
)
observe(
    "wikipedia-2025-03-08-qurfays-shrine",
    C,
    W,
    "2025-03-08",
    "killed",
    "unspecified",
    "increment",
    "6",
    A,
    "during the mediation efforts six men were killed outside the Qurfays shrine and another fifty were beaten.",
    location="Qurfays",
)
observe(
    "wikipedia-2025-03-08-qurfays-beaten",
    C,
    W,
    "2025-03-08",
    "beaten",
    "unspecified",
    "cumulative",
    "50",
    A,
    "six men were killed outside the Qurfays shrine and another fifty were beaten.",
    location="Qurfays",
)
observe(
    "wikipedia-2025-03-08-qurfays-convoy",
    C,
    W,
    "2025-03-08",
    "killed",
    "unspecified",
    "increment",
    "23",
    A,
    "Later on, a convoy of 80 vehicles arrived and killed 23 people over two days.",
    location="Qurfays",
    note="'Over two days' that the text does not date; dated by the article's 8 March section.",
)
TUWAYM = "31 civilians in Tuwaym, including nine children and four women, were killed and buried in a mass grave."
for slug, category, value in (("civilians", "civilians", "31"), ("children", "children", "9"), ("women", "women", "4")):
    observe(
        f"wikipedia-2025-03-08-tuwaym-{slug}",
        C,
        W,
        "2025-03-08",
        "killed",
        category,
        "cumulative",
        value,
        A,
        TUWAYM,
        location="Tuwaym",
    )
observe(
    "wikipedia-2025-03-08-muzayraa-funeral",
    C,
    W,
    "2025-03-08",
    "killed",
    "unspecified",
    "cumulative",
    "2",
    A,
    "During the afternoon, gunmen fired upon a funeral procession in Muzayraa, killing two brothers",
    location="Muzayraa",
)
observe(
    "wikipedia-2025-03-09-sanobar",
    C,
    W,
    "2025-03-09",
    "killed",
    "civilians",
    "cumulative",
    "at least 133",
    A,
    "The number of civilian deaths in Sanobar was reported to have increased to at least 133.",
    location="Sanobar",
)
observe(
    "wikipedia-2025-03-10-baniyas",
    C,
    W,
    "2025-03-10",
    "killed",
    "civilians",
    "cumulative",
    "about 200",
    A,
    "Almost 200 civilians in Baniyas had been killed since 7 March.",
    location="Baniyas",
    period=("2025-03-07", "2025-03-10"),
    note="'Almost 200'; the sentence sits in a paragraph of SOHR's reports but names no source.",
)

# == coastal-2025: displacement =================================================================

observe(
    "attieh-2025-03-08-akkar",
    C,
    "sajih-attieh",
    "2025-03-08",
    "displaced",
    "unspecified",
    "increment",
    "about 10000",
    A,
    'Lebanese lawmaker Sajih Attieh reported that "very large waves" of displaced Syrians evacuated to five or '
    "six Alawite villages in Akkar District, estimating a total of 10,000 arrivals in one day.",
    location="Akkar District, Lebanon",
    note="Arrivals in one day; dated by the article's 8 March section.",
)
observe(
    "unhcr-2025-03-11-lebanon",
    C,
    "UNHCR",
    "2025-03-11",
    "displaced",
    "unspecified",
    "cumulative",
    "at least 6000",
    A,
    "The United Nations Refugee Agency reported that more than 6,000 people had fled across the border into "
    "northern Lebanon by 11 March.",
    location="Lebanon",
    note="Repeated in the article's Displacement section.",
)
observe(
    "governor-2025-03-12-lebanon",
    C,
    "governor-north-lebanon",
    "2025-03-12",
    "displaced",
    "alawites",
    "cumulative",
    "at least 6000",
    A,
    "The Governor of North Lebanon reported that over 6,000 Alawite refugees had escaped to Lebanese Alawite "
    "settlements near the border",
    location="Lebanon",
)
observe(
    "unfpa-2025-03-14",
    C,
    "UNFPA",
    "2025-03-14",
    "displaced",
    "civilians",
    "cumulative",
    "about 51000",
    A,
    "The United Nations Population Fund estimated on 14 March that 51,000 civilians had been displaced due to "
    "the violence, including 6,000 in Lebanon.",
)
observe(
    "unfpa-2025-03-14-lebanon",
    C,
    "UNFPA",
    "2025-03-14",
    "displaced",
    "civilians",
    "cumulative",
    "about 6000",
    A,
    "estimated on 14 March that 51,000 civilians had been displaced due to the violence, including 6,000 in Lebanon.",
    location="Lebanon",
)

# == homs-countryside-2025-01: January =========================================================

H = "homs-countryside-2025-01"
observe(
    "sohr-2025-01-16-tasnin",
    H,
    "SOHR",
    "2025-01-16",
    "killed",
    "civilians",
    "cumulative",
    "6",
    A,
    "During the operation, the attackers set seven houses on fire and murdered six civilians.",
    location="Tasnin",
    period=("2025-01-14", "2025-01-16"),
    note="SOHR's account of an operation that lasted to the afternoon of 16 January, so reported no earlier.",
)
JANUARY_23 = (
    "During the operation, four civilians were extrajudicially killed, ten civilians were injured, and five "
    "others were arrested."
)
FAHEL = "al-Hamam, al-Ghozaylah, al-Gharbiyah and Fahel"
for slug, measure, category, value in (
    ("killed", "killed", "civilians", "4"),
    ("wounded", "wounded", "civilians", "10"),
    ("detained", "detained", "unspecified", "5"),
):
    observe(
        f"wikipedia-2025-01-23-{slug}",
        H,
        W,
        "2025-01-23",
        measure,
        category,
        "cumulative",
        value,
        A,
        JANUARY_23,
        location=FAHEL,
        note="The paragraph goes on with SOHR's claims, but this sentence names no source.",
    )

# == alawites-2025-04: April ====================================================================

P = "alawites-2025-04"
APRIL = (
    "The Syrian Observatory for Human Rights reported a marked re-escalation of extrajudicial killings by "
    '"unknown gunmen", with sixteen civilians being executed or murdered in 48 hours over 8–10 April, including '
    "eight deaths in Homs."
)
observe(
    "sohr-2025-04-10",
    P,
    "SOHR",
    "2025-04-10",
    "killed",
    "civilians",
    "cumulative",
    "16",
    A,
    APRIL,
    period=("2025-04-08", "2025-04-10"),
)
observe(
    "sohr-2025-04-10-homs",
    P,
    "SOHR",
    "2025-04-10",
    "killed",
    "civilians",
    "cumulative",
    "8",
    A,
    APRIL,
    location="Homs",
    period=("2025-04-08", "2025-04-10"),
)

# == alawites-2025-aftermath: kidnappings, detentions, evictions =================================

F = "alawites-2025-aftermath"
observe(
    "wikipedia-2025-kidnapped-women-and-girls",
    F,
    W,
    "2025-12-25",
    "kidnapped",
    "women_and_girls",
    "cumulative",
    "at most 33",
    A,
    "In the first few months of 2025, as many as 33 Alawite women and girls were kidnapped",
    note="'In the first few months of 2025'. " + UNDATED_2025,
)
observe(
    "wikipedia-2025-07-kidnapped-women",
    F,
    W,
    "2025-07-31",
    "kidnapped",
    "women",
    "cumulative",
    "50-60",
    A,
    "By July 2025, 50–60 Alawite women were estimated to have been kidnapped to be held as sabaya sex slaves.",
    note="'By July 2025': dated the last day of July.",
)
observe(
    "wikipedia-2025-12-incarcerated",
    F,
    W,
    "2025-12-31",
    "detained",
    "alawites_and_others",
    "cumulative",
    "about 829",
    A,
    "The total number of Alawites and others incarcerated was estimated at 829 by December 2025, though is likely "
    "to be significantly higher.",
    note="'By December 2025': dated the last day of December.",
)
observe(
    "reuters-2025-04-evictions",
    F,
    "Reuters",
    "2025-04-30",
    "evicted",
    "unspecified",
    "cumulative",
    "at least 200",
    A,
    "A Reuters investigation published at the end of April reported that since January hundreds and possibly "
    "thousands of people, mostly Alawites, had been evicted from their homes in Damascus suburbs",
    location="Damascus suburbs",
    period=("2025-01-01", "2025-04-30"),
    note="'Hundreds and possibly thousands', read as at least 200; 'the end of April' dated 30 April.",
)
observe(
    "opposition-monitor-2025-11-25-latakia",
    F,
    "opposition-war-monitor",
    "2025-11-25",
    "wounded",
    "unspecified",
    "cumulative",
    "1",
    A,
    "An opposition war monitor said security forces opened fire, wounding one person",
    location="Latakia",
    note="At a demonstration in Latakia on 25 November 2025.",
)

# == zaraa-2016 ================================================================================

Z = "zaraa-2016"
observe(
    "sohr-2016-05-12-zaraa",
    Z,
    "SOHR",
    "2016-05-12",
    "killed",
    "pro_government_militia",
    "cumulative",
    "8",
    ZARAA_WIKI,
    "According to the Syrian Observatory for Human Rights, eight pro-government militiamen were killed and "
    "several villagers were kidnapped",
    note="Given in the article's account of the attack of 12 May 2016, without a publication date.",
)
observe(
    "lcc-2016-05-12-zaraa",
    Z,
    "LCC",
    "2016-05-12",
    "killed",
    "pro_government_militia",
    "cumulative",
    "30",
    ZARAA_WIKI,
    "while the Local Coordination Committees of Syria claimed that 30 pro-government militiamen were killed.",
    note="Given in the article's account of the attack of 12 May 2016, without a publication date.",
)
for slug, category, value in (
    ("militia", "pro_government_militia", "8-30"),
    ("women", "women", "20-30"),
    ("children", "children", "12-23"),
):
    observe(
        f"wikipedia-zaraa-infobox-{slug}",
        Z,
        W,
        "2016-05-25",
        "killed",
        category,
        "cumulative",
        value,
        ZARAA_WIKI,
        "Fatalities: 8-30 NDF militiamen 20-30 women 12-23 children Unknown number lost till this day",
        note=UNDATED_ZARAA,
    )
observe(
    "eyewitnesses-2016-05-12-zaraa",
    Z,
    "eyewitnesses",
    "2016-05-12",
    "kidnapped",
    "women_and_children",
    "cumulative",
    "about 25",
    MODON,
    "Estimates indicate that the number of prisoners includes about 25 women and children, according to "
    "eyewitness accounts who said the detainees were moved by bus to the intersection of Ghajar village.",
    note="As reported by al-Modon. " + MODON_DATE,
)
observe(
    "loyalists-2016-05-12-zaraa",
    Z,
    "government-loyalists",
    "2016-05-12",
    "kidnapped",
    "unspecified",
    "cumulative",
    "at least 200",
    MODON,
    "This provoked a reaction from regime loyalists, who claimed the number of prisoners was in the hundreds",
    note="'In the hundreds', read as at least 200; as reported by al-Modon. " + MODON_DATE,
)
observe(
    "liberation-2016-05-12-zaraa",
    Z,
    "liberation-news",
    "2016-05-12",
    "killed",
    "civilians",
    "cumulative",
    "115",
    LIBERATION,
    "In Syria, on May 12, foreign-backed opposition groups, the so-called “moderate rebels,” attacked an Alawite "
    "town, al-Zara, in the countryside of Homs, massacring 115 civilians.",
    note=LIBERATION_DATE,
)

# == houla-2012 (named in the al-Modon article) ================================================

observe(
    "modon-2016-05-12-houla",
    "houla-2012",
    "al-modon",
    "2016-05-12",
    "killed",
    "children",
    "cumulative",
    "65",
    MODON,
    "such as the infamous Houla massacre in May 2012, in which 65 children were killed.",
    note="Named as background in al-Modon's article on al-Zarah. " + MODON_DATE,
)

# == aqrab-2012 ================================================================================

Q = "aqrab-2012"
observe(
    "sohr-2012-12-11-aqrab",
    Q,
    "SOHR",
    "2012-12-11",
    "killed_or_wounded",
    "civilians",
    "cumulative",
    "125",
    AQRAB_WIKI,
    "The UK-based pro-opposition Syrian Observatory for Human Rights (SOHR) said that multiple attacks killed or "
    "wounded 125 civilians, mostly Alawites, in Aqrab.",
    note="The first reports of the attacks of 10/11 December, before 'the next day'; the lead gives the same "
    "figure as '125 people'.",
)
observe(
    "activists-2012-12-11-aqrab",
    Q,
    "activists",
    "2012-12-11",
    "killed",
    "unspecified",
    "cumulative",
    "at most 300",
    AQRAB_WIKI,
    "while other activists claimed that as many as 300 people were killed.",
    note="Given with SOHR's first figure, before 'the next day'.",
)
observe(
    "activists-2012-12-12-aqrab",
    Q,
    "activists",
    "2012-12-12",
    "killed",
    "unspecified",
    "cumulative",
    "at least 10",
    AQRAB_WIKI,
    "The next day, the casualty counts still varied but several activists said that they could confirm the "
    "deaths of 10 people.",
    note="Ten confirmed deaths: a floor.",
)
observe(
    "wikipedia-aqrab-infobox",
    Q,
    W,
    "2012-12-14",
    "killed_or_wounded",
    "unspecified",
    "cumulative",
    "125-300",
    AQRAB_WIKI,
    "Fatalities: Unclear: 125–300 killed or wounded reported",
    note=UNDATED_AQRAB,
)


# == incidents and monitors ====================================================================


def _link(document: Document) -> Link:
    return Link(title=document.title, url=document.url)


INCIDENTS = [
    IncidentDescribed(
        slug=C,
        title="March 2025 massacres of Alawites on the Syrian coast",
        place="Latakia, Tartus, Hama and Homs Governorates, Syria",
        start_date=dt.date(2025, 3, 6),
        summary=(
            "After attacks by armed remnants of the former Assad government on security forces in Jableh, Baniyas "
            "and nearby areas on 6 March 2025, armed groups aligned with the caretaker government killed large "
            "numbers of Alawites in towns and villages of the coastal region and the Hama and Homs countryside, "
            "mainly from 7 to 9 March and until 17 March. Monitors' counts of the dead differ by source, "
            "category and perpetrator; estimates range from about 1,000 to 2,000."
        ),
        links=(_link(ALAWITES_2025),),
    ),
    IncidentDescribed(
        slug=H,
        title="Killings in the western Homs countryside, January 2025",
        place="Tasnin and villages west of Homs, Homs Governorate, Syria",
        start_date=dt.date(2025, 1, 14),
        summary=(
            "Security sweeps by the Military Operations Command and local gunmen in Alawite villages of the Homs "
            "countryside in January 2025, in Tasnin (14-16 January) and in al-Hamam, al-Ghozaylah, al-Gharbiyah and "
            "Fahel (23 January), with killings, injuries and arrests of civilians."
        ),
        links=(_link(ALAWITES_2025),),
    ),
    IncidentDescribed(
        slug=P,
        title="Re-escalation of killings, 8-10 April 2025",
        place="Homs, Latakia and other governorates, Syria",
        start_date=dt.date(2025, 4, 8),
        summary="Extrajudicial killings by unknown gunmen reported by SOHR over 48 hours between 8 and 10 April 2025.",
        links=(_link(ALAWITES_2025),),
    ),
    IncidentDescribed(
        slug=F,
        title="Kidnappings, detentions and evictions of Alawites in 2025",
        place="Syria (Damascus and its suburbs, the coast)",
        start_date=dt.date(2025, 1, 1),
        summary=(
            "Figures on the persecution of Alawites around and after the March massacres: kidnappings of women and "
            "girls, incarceration, evictions from homes in the Damascus suburbs, and a protest in Latakia."
        ),
        links=(_link(ALAWITES_2025),),
    ),
    IncidentDescribed(
        slug=Z,
        title="Zara'a attack",
        place="Al-Zara'a (Al-Zarah), between the northern Homs and southern Hama countryside, Syria",
        start_date=dt.date(2016, 5, 12),
        summary=(
            "On 12 May 2016 rebel factions including al-Nusra Front and Ahrar ash-Sham attacked and captured the "
            "predominantly Alawite village, defeating a National Defence Forces unit and taking residents captive. "
            "Counts of the dead and of those taken differ widely between sources."
        ),
        links=(_link(ZARAA_WIKI), _link(MODON), _link(LIBERATION)),
    ),
    IncidentDescribed(
        slug=Q,
        title="Aqrab massacre",
        place="Aqrab, Hama Governorate, Syria",
        start_date=dt.date(2012, 12, 11),
        summary=(
            "Killings in the Alawite section of the mixed town of Aqrab on 10/11 December 2012. The perpetrators are "
            "disputed, and reported counts range from 10 confirmed deaths to 300 killed or wounded."
        ),
        links=(_link(AQRAB_WIKI),),
    ),
    IncidentDescribed(
        slug="houla-2012",
        title="Houla massacre",
        place="Houla, Homs Governorate, Syria",
        start_date=dt.date(2012, 5, 25),
        summary="Mentioned in al-Modon's 2016 article as a massacre by regime forces in May 2012 that killed 65 "
        "children.",
        links=(_link(MODON),),
    ),
]

MONITORS = [
    MonitorDescribed(
        slug="SOHR",
        full_name="Syrian Observatory for Human Rights",
        description=(
            "UK-based monitor of the Syrian war, directed by Rami Abdul Rahman. The 2012 article calls it "
            "'pro-opposition'; the 2025 article, 'formerly associated with the anti-Assad opposition but highly "
            "critical of the new government'."
        ),
    ),
    MonitorDescribed(
        slug="SNHR",
        full_name="Syrian Network for Human Rights",
        description=(
            "Monitor described by The Guardian as 'a human rights monitor considered independent and credible' and "
            "by the 2025 article as 'the UK-based independent monitoring group'."
        ),
    ),
    MonitorDescribed(
        slug="Reuters",
        full_name="Reuters",
        description="News agency; its investigation of the March 2025 killings was published on 30 June 2025.",
    ),
    MonitorDescribed(
        slug="Amnesty",
        full_name="Amnesty International",
        description="International human rights organisation; its statement of 3 April 2025 reports on 32 killings "
        "it investigated.",
    ),
    MonitorDescribed(
        slug="LCC",
        full_name="Local Coordination Committees of Syria",
        description="Named in the 2016 article as the source of a count of militiamen killed; no further "
        "description is given.",
    ),
    MonitorDescribed(
        slug="Hawar",
        full_name="Hawar News Agency",
        description="News agency of the Syrian Democratic Forces, in the article's words; it cited 'local sources'.",
    ),
    MonitorDescribed(
        slug="alawite-council-advisor",
        full_name="Muhammad Nasser, advisor to the former Alawite Council president",
        description="Spoke to the Hezbollah newspaper Al-Ahed on 7 March 2025.",
    ),
    MonitorDescribed(
        slug="UNHCR",
        full_name="United Nations High Commissioner for Refugees",
        description="The UN refugee agency; reported on people fleeing into Lebanon.",
    ),
    MonitorDescribed(
        slug="UNFPA",
        full_name="United Nations Population Fund",
        description="UN agency; estimated the number of people displaced by the violence.",
    ),
    MonitorDescribed(
        slug="governor-north-lebanon",
        full_name="Governor of North Lebanon",
        description="Lebanese official who reported Alawite refugees arriving near the border.",
    ),
    MonitorDescribed(
        slug="sajih-attieh",
        full_name="Sajih Attieh, Lebanese lawmaker",
        description="Member of the Lebanese parliament who estimated arrivals of displaced Syrians in Akkar District.",
    ),
    MonitorDescribed(
        slug="syrian-state-media",
        full_name="Syrian state media",
        description="Official Syrian media, cited by the article as 'state media'.",
    ),
    MonitorDescribed(
        slug="al-araby-al-jadeed",
        full_name="Al-Araby Al-Jadeed",
        description="Arabic-language news outlet cited by the 2025 article.",
    ),
    MonitorDescribed(
        slug="residents",
        full_name="Survivors and local residents",
        description="Accounts of survivors and residents quoted in the 2025 article, including lists of victims' "
        "names distributed by surviving locals and a survivor's testimony published by SOHR.",
    ),
    MonitorDescribed(
        slug="wikipedia",
        full_name="Wikipedia (figures with no named source)",
        description="Figures the English Wikipedia articles state in their infobox, lead or text without naming "
        "who counted them.",
    ),
    MonitorDescribed(
        slug="opposition-war-monitor",
        full_name="An unnamed opposition war monitor",
        description="Quoted by the 2025 article on a demonstration in Latakia on 25 November 2025; not named.",
    ),
    MonitorDescribed(
        slug="activists",
        full_name="Activists (Aqrab, 2012)",
        description="Activists quoted by the Aqrab article, which calls some of them 'anti-government activists'.",
    ),
    MonitorDescribed(
        slug="eyewitnesses",
        full_name="Eyewitnesses (al-Zarah, 2016)",
        description="Eyewitness accounts quoted by the al-Modon article on al-Zarah.",
    ),
    MonitorDescribed(
        slug="government-loyalists",
        full_name="Syrian government loyalists",
        description="Described by the al-Modon article as 'regime loyalists' reacting to the attack on al-Zarah.",
    ),
    MonitorDescribed(
        slug="al-modon",
        full_name="al-Modon",
        description="Arabic news site whose article on al-Zarah was translated and edited by The Syrian Observer.",
    ),
    MonitorDescribed(
        slug="liberation-news",
        full_name="Liberation News (liberationnews.org)",
        description="Website whose article on al-Zara calls the attackers 'foreign-backed' and names 'U.S. "
        "imperialism' as the real criminal.",
        url="http://www.liberationnews.org/",
    ),
]


def events() -> list:
    """Descriptions first, then every observation, in the order a reader meets them in the texts."""
    return [*INCIDENTS, *MONITORS, *OBSERVATIONS]
