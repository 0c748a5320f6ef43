"""The import format's columns, in order.

A module of its own so that the command line can build its options from them
at start-up without loading the importers (and attrs, cattrs, the codec).
"""

COLUMNS = (
    "id",
    "incident",
    "monitor",
    "reported_on",
    "period_start",
    "period_end",
    "measure",
    "category",
    "location",
    "kind",
    "low",
    "high",
    "qualifier",
    "source_url",
    "source_title",
    "quote",
    "note",
)
