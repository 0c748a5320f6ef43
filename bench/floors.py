"""The least Python each of issue 14's two missed jobs could be: floors, to read its targets against.

Neither script is a way to do the job: each leaves out everything that makes
an import or a replay trustworthy, and keeps only the steps no Python
implementation of the job can skip. Measured in the same run as the peer
(``bench.peers`` for the import, ``python -m bench`` for the first replay),
a floor above the target says the target needs something else than Python
on one core (native code, or more cores than this machine has), not more
tuning of ours. Run as scripts::

    python -m bench.floors import IMPORT.csv OUT.jsonl
    python -m bench.floors sqlite LOG.jsonl NEW.db
    python -m bench.floors decode LOG.jsonl

``import``: each CSV row read by the ``csv`` module, made into the event the
log stores (JSON by orjson), put in its envelope, chained by SHA-256 as the
log chains it, and written with one fsync at the end. No validation, no
names, no repeats, no spool, no replay index, no kept replay.

``sqlite``: the lines of a log (the one ``import`` wrote) inserted into the
SQLite store's own table, with its indexes and triggers, in one transaction,
as the store sets SQLite up (the chain's trigger dropped while they go in, as
the store inserts a long batch); it prints the seconds of the insert and commit
alone (the lines are read and split into columns before).

``decode``: every line of a log decoded by msgspec into the few fields the
replay index keeps (``timeline.skim``), as a first replay must before it can
fold anything; nothing is kept. The fold and the CSV after it cost what
``timeline replay`` costs with an index (measured beside it).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import sys


def import_floor(source: str, out: str) -> None:
    import orjson

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    prev, pieces, size = b"0" * 64, [], 0
    with open(source, newline="", encoding="utf-8") as f, open(out, "wb") as log:
        reader = csv.DictReader(f)
        for position, row in enumerate(reader):
            event = orjson.dumps({
                "id": row["id"], "incident": row["incident"], "monitor": row["monitor"],
                "reported_on": row["reported_on"], "measure": row["measure"], "category": row["category"],
                "kind": row["kind"],
                "figure": {"low": int(row["low"]), "high": int(row["high"]), "qualifier": row["qualifier"]},
                "source": {"title": row["source_title"], "url": row["source_url"], "quote": row["quote"]},
                "location": row["location"] or None,
            })  # fmt: skip
            body = (b'{"position":%d,"recorded_at":"%s","type":"Observation","schema":2,"prev_hash":"%s","event":%s'
                    % (position, now, prev, event))  # fmt: skip
            prev = hashlib.sha256(body + b"}").hexdigest().encode()
            pieces.append(body + b',"hash":"' + prev + b'"}\n')
            size += len(pieces[-1])
            if size > 1 << 20:
                log.write(b"".join(pieces))
                pieces, size = [], 0
        log.write(b"".join(pieces))
        log.flush()
        os.fsync(log.fileno())


def sqlite_floor(log: str, database: str) -> None:
    import sqlite3
    import time

    import orjson

    from events_log.sqlite import EXTENDS_CHAIN, HASH_INDEX, PAGE_SIZE, SCHEMA, drop_indexes, remake_indexes

    rows = []
    with open(log, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            entry = orjson.loads(line)
            subject = entry["event"]["incident"]
            rows.append((entry["position"], entry["recorded_at"], entry["type"], subject, entry["hash"],
                         entry["prev_hash"], line))  # fmt: skip
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA cache_size = -65536")
    connection.executescript(SCHEMA)
    connection.execute(HASH_INDEX)
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    # As the store inserts a batch as large as the log: no chain trigger, and the indexes made after the rows.
    connection.execute("DROP TRIGGER timeline_entries_extends_chain")
    dropped = drop_indexes(connection.cursor())
    connection.executemany(
        "INSERT INTO timeline_entries (position, recorded_at, type, subject, hash, prev_hash, line) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    remake_indexes(connection.cursor(), dropped)
    connection.execute(EXTENDS_CHAIN)
    connection.execute("COMMIT")
    print(time.perf_counter() - started)


def decode_floor(log: str) -> None:
    from timeline.skim import skim

    with open(log, "rb") as f:
        for line in f:
            skim(line)


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["import", source, out]:
            import_floor(source, out)
        case ["sqlite", log, database]:
            sqlite_floor(log, database)
        case ["decode", log]:
            decode_floor(log)
        case _:
            raise SystemExit(__doc__.split("Run as scripts::")[1].split("``import``")[0].rstrip())
