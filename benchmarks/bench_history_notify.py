"""How long after a commit a cached StoreHistoryProvider on another engine sees the write
(PostgreSQL LISTEN/NOTIFY; docs/store.md, "History for online scoring"). Needs a PostgreSQL
store with demo data at revision r0005:

    python benchmarks/bench_history_notify.py "postgresql://...?options=-csearch_path%3Dschema"

A plain INSERT of a clean control (no riskengine writer in the process: the trigger's notice
alone) is made 30 times; the reader looks up every 0.2 ms until it sees it. The rows are deleted
afterwards.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskengine import model as m
from riskengine.store.engine import connect
from riskengine.store.history import StoreHistoryProvider

FIRST_KEY = 10_000_000


def main() -> None:
    url = sys.argv[1]
    one, other = connect(url), connect(url)
    block = m.History(
        subjects=(m.HistorySubject(m.FieldRef("declaration.importer.id")),),
        window_days=3650,
        negative=None,
        positive=m.PositiveHistory(max=Decimal(100_000), step=Decimal(1)),
    )
    profile = m.Profile(number=None, name="notify", history=block)
    with one.connect() as c:
        pk, importer = c.execute(
            sa.text(
                "SELECT pk, importer_id FROM declarations WHERE importer_id IS NOT NULL "
                "ORDER BY pk LIMIT 1"
            )
        ).one()
    reader = StoreHistoryProvider(other)
    as_of = dt.date(2030, 1, 1)
    seen = []
    try:
        for n in range(30):
            before = reader.history(profile, (importer,), as_of).positive
            with one.begin() as c:
                c.execute(
                    sa.text(
                        "INSERT INTO control_results (pk, decl_pk, procedure, random_control, "
                        "violation_found, date) VALUES (:key, :decl, :proc, false, false, "
                        "DATE '2029-01-01')"
                    ),
                    {"key": FIRST_KEY + n, "decl": pk, "proc": f"X{n}"},
                )
            began = time.perf_counter()
            while reader.history(profile, (importer,), as_of).positive == before:
                time.sleep(0.0002)  # a service between requests; a spinning loop starves the
                # listener thread of the GIL and measures that instead
            seen.append(time.perf_counter() - began)
    finally:
        reader.close()
        with one.begin() as c:
            c.execute(sa.text("DELETE FROM control_results WHERE pk >= :key"), {"key": FIRST_KEY})
        one.dispose()
        other.dispose()
    seen.sort()
    print(
        f"a cached replica saw a committed write after: median {seen[len(seen) // 2] * 1e3:.2f} "
        f"ms, max {seen[-1] * 1e3:.2f} ms ({len(seen)} writes)"
    )


if __name__ == "__main__":
    main()
