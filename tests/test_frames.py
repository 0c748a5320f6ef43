"""Replays as Arrow, pandas and polars tables: the CSV's rows, typed, shared without copying."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
import textwrap

import pandas as pd
import polars as pl
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

import timeline
from events_log.jsonl import JsonlStore
from timeline.output import CSV_COLUMNS, write_csv

from .conftest import StepClock
from .strategies import small_logs


def csv_rows(tolls: timeline.Tolls, reports_only: bool) -> list[dict]:
    """The rows of `timeline replay --format csv`, each cell typed as the table types it."""
    text = io.StringIO()
    write_csv(tolls.result, text, reports_only=reports_only)
    rows = []
    for row in csv.DictReader(io.StringIO(text.getvalue())):
        rows.append({
            **row,
            "location": row["location"] or None,
            "date": dt.date.fromisoformat(row["date"]),
            "low": int(row["low"]),
            "high": int(row["high"]) if row["high"] else None,
            "observations": row["observations"].split(" "),
        })  # fmt: skip
    return rows


@given(small_logs(), st.booleans())
def test_the_table_holds_the_csv_rows(tmp_path_factory, batches, reports_only):
    """Every row of --format csv (or --days reports) is a row of the Arrow, pandas and polars tables, in order."""
    store = JsonlStore(tmp_path_factory.mktemp("log") / "log.jsonl", clock=StepClock())
    for batch in batches:
        store.append(batch, allow_duplicate=True)
    tolls = timeline.Log(store).replay()
    days = "reports" if reports_only else "every"
    expected = csv_rows(tolls, reports_only)
    table = tolls.to_arrow(days)
    assert table.column_names == list(CSV_COLUMNS)
    assert table.to_pylist() == expected
    assert tolls.to_polars(days).to_dicts() == expected
    frame = tolls.to_pandas(days)
    assert len(frame) == len(expected)
    assert [None if pd.isna(h) else h for h in frame["high"]] == [r["high"] for r in expected]


def test_dtypes_are_dates_and_nullable_integers():
    """Dates are date32, low and high int64 with an open high null, in all three libraries."""
    tolls = timeline.open_bundled().replay(incident="coastal-2025")
    table = tolls.to_arrow()
    assert table.schema.field("date").type == pa.date32()
    assert table.schema.field("low").type == table.schema.field("high").type == pa.int64()
    assert table.column("high").null_count > 0  # SOHR's floors before its first total
    assert table.column("low").null_count == 0
    frame = tolls.to_pandas()
    assert frame["date"].dtype == pd.ArrowDtype(pa.date32())
    assert frame["high"].dtype == pd.ArrowDtype(pa.int64()) and frame["high"].isna().any()
    polars = tolls.to_polars()
    assert polars.schema["date"] == pl.Date and polars.schema["high"] == pl.Int64
    assert polars["high"].null_count() == table.column("high").null_count


def test_pandas_and_polars_share_the_arrow_buffers():
    """pandas and polars are built over the Arrow table's memory: no column is copied."""
    table = timeline.open_bundled().replay().to_arrow()
    frame = timeline.frames.to_pandas(table)
    polars = timeline.frames.to_polars(table)
    for name in ("date", "low", "high"):
        [chunk] = table.column(name).chunks
        address = chunk.buffers()[1].address
        assert frame[name].array.__arrow_array__().chunk(0).buffers()[1].address == address
        assert polars[name].to_arrow().buffers()[1].address == address


def test_an_empty_replay_is_an_empty_typed_table(tmp_path):
    """A log with no observations gives zero rows with the same columns and types."""
    log = timeline.open_log(tmp_path / "log.jsonl", create=True)
    log.describe_monitor("SOHR", "SOHR")
    table = log.replay().to_arrow()
    assert table.num_rows == 0
    assert table.schema == timeline.open_bundled().replay().to_arrow().schema
    assert timeline.Log(log.store).replay().to_polars().shape == (0, len(CSV_COLUMNS))


def _without(modules: list[str], call: str) -> subprocess.CompletedProcess:
    """Run ``call`` in a fresh Python where importing any of ``modules`` fails, as if not installed."""
    script = textwrap.dedent(f"""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {modules!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, Blocker())
        import timeline
        tolls = timeline.open_bundled().replay()
        try:
            {call}
        except timeline.TimelineError as exc:
            print(type(exc).__name__, exc)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_without_the_extra_the_error_names_it():
    """With pyarrow, pandas or polars missing, the error says which extra to install; the rest still works."""
    for modules, call, missing in [
        (["pyarrow", "pandas", "polars"], "tolls.to_arrow()", "pyarrow"),
        (["pandas"], "tolls.to_pandas()", "pandas"),
        (["polars"], "tolls.to_polars()", "polars"),
    ]:
        ran = _without(modules, call)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == (
            f"MissingExtraError {missing} is not installed; install the DataFrame extra: "
            "pip install 'toll-timeline[dataframes]'"
        )
    ran = _without(["pyarrow", "pandas", "polars"], "print(len(tolls.series))")
    assert ran.stdout.strip().isdigit()
