"""Build the bundled log from the curated figures, byte for byte reproducibly.

    python -m dataset.build            # writes timeline/dataset/bundled.jsonl

The events go through the public store API like any import; the clock is
fixed at the curation time so that rebuilding gives the same bytes, the same
hashes and the same head.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from events_log.jsonl import JsonlStore

from .curation import INCIDENTS, MONITORS, OBSERVATIONS

CURATED_AT = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
TARGET = Path(__file__).resolve().parents[1] / "timeline" / "dataset" / "bundled.jsonl"


def build(path: Path = TARGET) -> JsonlStore:
    path.unlink(missing_ok=True)
    store = JsonlStore(path, clock=lambda: CURATED_AT)
    store.append([*INCIDENTS, *MONITORS])
    store.append(OBSERVATIONS)
    # The replay index is not shipped: the installed dataset is read-only and small.
    store.sidecar_path.unlink(missing_ok=True)
    return store


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET
    head = build(target).verify().head
    print(f"wrote {target}: {head.entries} entries, head {head.head}")
