"""What a competent user would write instead: the daily series with polars, and with pandas.

Both read the log's JSON Lines, keep observations that are cumulative totals
(the part of the data they can express: no increments, no corrections),
keep the last total of each series per day, extend each series day by day
from its first report to its last, forward fill, and write the same CSV as
``timeline replay --format csv``. ``polars-csv`` does the same from the CSV
that ``timeline import`` reads (issue 17's peer: no log at all). Run as
scripts::

    python -m bench.baselines polars LOG OUT.csv
    python -m bench.baselines pandas LOG OUT.csv
    python -m bench.baselines polars-csv IMPORT.csv OUT.csv
"""

from __future__ import annotations

import sys

KEY = ["incident", "monitor", "measure", "category", "location"]
COLUMNS = [*KEY, "date", "low", "high", "basis", "observations"]


def with_polars(log: str, out: str) -> None:
    import polars as pl

    text = pl.String
    figure = pl.Struct({"low": pl.Int64, "high": pl.Int64, "qualifier": text})
    event = pl.Struct({name: text for name in ("id", "incident", "monitor", "reported_on", "measure", "category",
                                                "kind", "location")} | {"figure": figure})  # fmt: skip
    # The schema is given: inferring it from the first rows would miss columns that start out null.
    schema = {"position": pl.Int64, "type": text, "event": event}
    events = (
        pl.scan_ndjson(log, schema=schema)
        .filter(pl.col("type") == "Observation")
        .select("position", "event")
        .unnest("event")
        .collect()
    )
    reports = (
        events.filter(pl.col("kind") == "cumulative")
        .select(
            *KEY,
            pl.col("reported_on").str.to_date().alias("date"),
            "position",
            pl.struct(
                pl.col("figure").struct.field("low").alias("low"),
                pl.col("figure").struct.field("high").alias("high"),
                pl.col("id").alias("observations"),
            ).alias("figure"),
        )
        .sort("date", "position")
        .group_by([*KEY, "date"], maintain_order=True)
        .last()
        .drop("position")
    )
    _daily(reports).write_csv(out)


def with_polars_csv(source: str, out: str) -> None:
    """The daily series straight from an import CSV: sorted by (reported_on, row order), as the log would be."""
    import polars as pl

    rows = pl.read_csv(source, infer_schema=False).with_row_index("position")
    reports = (
        rows.filter(pl.col("kind") == "cumulative")
        .select(
            *KEY,
            pl.col("reported_on").str.to_date().alias("date"),
            "position",
            pl.struct(
                pl.col("low").cast(pl.Int64).alias("low"),
                pl.col("high").cast(pl.Int64).alias("high"),
                pl.col("id").alias("observations"),
            ).alias("figure"),
        )
        .sort("date", "position")
        .group_by([*KEY, "date"], maintain_order=True)
        .last()
        .drop("position")
    )
    _daily(reports).write_csv(out)


def _daily(reports):
    """Each series every day from its first report to its last: the reports left-joined and forward-filled."""
    import polars as pl

    days = (
        reports.group_by(KEY)
        .agg(pl.date_ranges(pl.col("date").min(), pl.col("date").max()).first().alias("date"))
        .explode("date")
    )
    result = (
        days.join(reports, on=[*KEY, "date"], how="left", nulls_equal=True)
        .sort([*KEY, "date"], nulls_last=False)
        .with_columns(
            pl.when(pl.col("figure").is_null()).then(pl.lit("carried")).otherwise(pl.lit("reported")).alias("basis"),
            # The whole report is carried forward, so an open-ended high stays open.
            pl.col("figure").forward_fill().over(KEY),
            pl.col("date").dt.strftime("%Y-%m-%d"),
        )
        .unnest("figure")
        .select(COLUMNS)
    )
    return result


def with_pandas(log: str, out: str) -> None:
    import pandas as pd

    frame = pd.read_json(log, lines=True)
    frame = frame[frame["type"] == "Observation"]
    events = pd.json_normalize(frame["event"].tolist())
    events["position"] = frame["position"].to_numpy()
    reports = events[events["kind"] == "cumulative"].copy()
    reports["date"] = pd.to_datetime(reports["reported_on"])
    reports["location"] = reports["location"].fillna("")
    reports = reports.sort_values(["date", "position"]).groupby([*KEY, "date"], sort=False).last().reset_index()
    pieces = []
    for key, group in reports.groupby(KEY, sort=False):
        group = group.set_index("date")
        span = pd.date_range(group.index.min(), group.index.max(), freq="D")
        filled = group[["figure.low", "figure.high", "id"]].reindex(span)
        filled["basis"] = "reported"
        filled.loc[filled["id"].isna(), "basis"] = "carried"
        filled[["figure.low", "figure.high", "id"]] = filled[["figure.low", "figure.high", "id"]].ffill()
        reported_high = group["figure.high"].reindex(span)
        filled["figure.high"] = reported_high.where(filled["basis"] == "reported", filled["figure.high"])
        for name, value in zip(KEY, key, strict=True):
            filled[name] = value
        pieces.append(filled)
    result = pd.concat(pieces).rename_axis("date").reset_index()
    result = result.rename(columns={"figure.low": "low", "figure.high": "high", "id": "observations"})
    result["date"] = result["date"].dt.strftime("%Y-%m-%d")
    result["low"] = result["low"].astype("int64")
    result["high"] = result["high"].astype("Int64")
    result[COLUMNS].to_csv(out, index=False)


if __name__ == "__main__":
    tool, log, out = sys.argv[1:4]
    {"polars": with_polars, "pandas": with_pandas, "polars-csv": with_polars_csv}[tool](log, out)
