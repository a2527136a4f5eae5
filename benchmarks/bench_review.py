"""Effectiveness-review benchmark: the results of application of one profile over a quarter with
many logged decisions (SQLite; ``--pg URL`` also PostgreSQL).

    python benchmarks/bench_review.py                    # 200,000 decisions in the quarter
    python benchmarks/bench_review.py --decisions 50000 --pg postgresql://postgres@127.0.0.1/test

The store holds ``--decisions`` decisions dated in 2025-Q1, 10 profiles firing on ~1 % of them
each (a decision fires 0-2 profiles), a control result on half of the fired declarations and on
1 % of all at random. Measured: ``compute_results`` for one profile (SQL narrows the log's
``fired`` JSON with a LIKE on the profile's number, Python checks the rows it reads), against the
baseline of reading every decision of the quarter (``declaration_id, fired``) into Python, which
a review without the narrowing would do at the least. Best of ``--rounds``. Nothing asserts a
time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskengine.effectiveness import compute_results
from riskengine.store import migrate
from riskengine.store.schema import build_tables

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
PROFILES = [f"{n}A/01/2025/{n:05d}-01" for n in range(1, 11)]


def fill(engine: sa.Engine, n: int) -> None:
    """``n`` decisions, their declarations and control results (seeded: the same every run)."""
    rng = random.Random(7)
    tables = build_tables()
    decls, log, controls = [], [], []
    for i in range(n):
        day = START + dt.timedelta(days=rng.randrange(90))
        ident = f"D{i:08d}"
        fired: list[dict[str, Any]] = [
            {"key": p, "number": p, "degree": 70.0,
             "controls": [{"code": "102", "kind": "mandatory"}], "items": [1]}
            for p in PROFILES if rng.random() < 0.01
        ]  # fmt: skip
        chosen = rng.random() < 0.01
        decls.append({"pk": i + 1, "id": ident, "date": day, "office": f"UA{i % 12:06d}"})
        log.append({
            "declaration_id": ident, "bundle_revision": "1", "declaration_date": day,
            "as_of": day, "office": f"UA{i % 12:06d}", "regime": "40", "selected": bool(fired),
            "lane": "red" if fired or chosen else "green", "random_selected": chosen,
            "fired": fired, "controls": [{"code": "102", "kind": "mandatory"}] if fired else [],
            "scored_at": dt.datetime(2025, 4, 1),
        })  # fmt: skip
        if fired and rng.random() < 0.5:
            controls.append((i + 1, "102", fired[0]["key"], False, rng.random() < 0.3))
        elif chosen:
            controls.append((i + 1, "201", None, True, rng.random() < 0.05))
    with engine.begin() as conn:
        conn.execute(tables.declarations.insert(), decls)
        conn.execute(tables.decision_log.insert(), log)
        conn.execute(
            tables.control_results.insert(),
            [
                {"pk": k, "decl_pk": pk, "procedure": code, "profile_key": key,
                 "random_control": rnd, "violation_found": hit, "revenue": 100.0 if hit else None,
                 "date": dt.date(2025, 4, 1)}
                for k, (pk, code, key, rnd, hit) in enumerate(controls, start=1)
            ],
        )  # fmt: skip


def baseline(engine: sa.Engine) -> int:
    dl = build_tables().decision_log
    query = sa.select(dl.c.declaration_id, dl.c.fired).where(
        dl.c.declaration_date.between(START, END)
    )
    with engine.connect() as conn:
        return sum(1 for _, fired in conn.execute(query) if json.dumps(fired))


def review(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return compute_results(conn, build_tables(), PROFILES[0], START, END).total.fired


def best(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def measure(name: str, url: str, n: int, rounds: int) -> None:
    migrate.init(url)
    engine = sa.create_engine(url)
    began = time.perf_counter()
    fill(engine, n)
    filled = time.perf_counter() - began
    fired = review(engine)
    base = best(lambda: baseline(engine), rounds)
    mine = best(lambda: review(engine), rounds)
    engine.dispose()
    print(
        f"{name}: {n:,} decisions (filled in {filled:.1f} s); the profile fired on {fired:,}; "
        f"review {mine:.3f} s; baseline (read every decision of the quarter) {base:.3f} s; "
        f"ratio {mine / base:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", help="also on PostgreSQL (a fresh schema, dropped afterwards)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{folder}/review.db", args.decisions, args.rounds)
    if args.pg:
        schema = f"b_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = sa.make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
            measure("PostgreSQL", url.render_as_string(hide_password=False), args.decisions,
                    args.rounds)  # fmt: skip
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
