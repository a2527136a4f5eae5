"""Backtest on SQLite and PostgreSQL: the pushed-down pass against fetching the rows and scoring
them in Python, the same profiles over the same data, measured in the same run.

    python benchmarks/bench_backtest_fallback.py                    # 20,000 declarations, both
    python benchmarks/bench_backtest_fallback.py --declarations 100000 --backend sqlite
    python benchmarks/bench_backtest_fallback.py --profiles 9 --sample  # the sample profiles

Data: ``--declarations`` demo declarations (``riskengine.demo``, 2024-2025, with
outcomes, reasons and controls), cached as a SQLite file in ``benchmarks/.data/`` and generated
into a fresh PostgreSQL schema (dropped afterwards; ``RISKENGINE_BENCH_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Profiles: ``--profiles`` generated over
the demo data's headings and offices (``benchmarks/backtest_profiles.py``), or the sample
profiles of ``profiles/`` with ``--sample``.

Contenders, taking turns ``--repeat`` times (best time of each):

* pushdown: ``run_backtest`` (one SQL pass for every profile, history in SQL, counts per month);
* Python (the baseline): ``run_backtest(..., force_python=True)``, the project's fallback
  (``riskengine/backtest/fallback.py``): the period's declaration and item rows with the same
  SQL history columns and control results, streamed ordered by declaration, each declaration
  built and scored by the compiled evaluator, the same counts aggregated in Python.

The two results (every profile's totals and monthly series) are checked equal before the times
are printed. Target (issue 5): pushdown ≥ 5× faster than the Python path.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from backtest_data import DATA, base_store  # noqa: E402
from backtest_profiles import demo_profiles  # noqa: E402
from bench_ingest import fresh_store  # noqa: E402

from riskengine import demo  # noqa: E402
from riskengine.backtest.pushdown import PlannedProfile, plan  # noqa: E402
from riskengine.backtest.run import BacktestOptions, planned_from, run_backtest  # noqa: E402
from riskengine.checks import load_checked  # noqa: E402
from riskengine.sql.compile import register_functions  # noqa: E402
from riskengine.store.engine import connect  # noqa: E402
from riskengine.store.source import native_source  # noqa: E402

START = dt.date(2024, 1, 1)
END = dt.date(2025, 12, 31)


@contextlib.contextmanager
def store(backend: str, declarations: int, rebuild: bool) -> Iterator[sa.Engine]:
    """A store with the demo data: a cached SQLite file, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        path = base_store(declarations, 1, rebuild, backend="sqlite")
        engine = connect(f"sqlite:///{path}")
        register_functions(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with fresh_store("postgresql", str(DATA)) as engine:
        demo.write_demo(engine, declarations, 1)
        with engine.begin() as c:
            c.execute(sa.text("ANALYZE"))
        yield engine


def _profiles(args: argparse.Namespace) -> list[PlannedProfile]:
    if args.sample:
        return planned_from(load_checked([ROOT / "profiles"]))
    return planned_from(load_checked(demo_profiles(args.profiles, args.seed)))


def _summary(result: Any) -> dict[str, Any]:
    return {p.key: (p.total, p.series) for p in result.profiles} | {"considered": result.considered}


def _same(a: Any, b: Any) -> bool:
    """Equal, revenue sums to 1e-9 relative (summed in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__attrs_attrs__") and type(a) is type(b):
        import attrs

        return _same(attrs.asdict(a, recurse=False), attrs.asdict(b, recurse=False))
    return bool(a == b)


def bench(backend: str, args: argparse.Namespace) -> None:
    planned = _profiles(args)
    options = BacktestOptions(START, END, history=not args.no_history)
    with store(backend, args.declarations, args.rebuild) as engine:
        paths = plan(planned, engine.dialect.name)
        fallback = [(pp.key, pp.reason) for pp in paths if not pp.pushdown]
        print(f"\n{backend}: {args.declarations:,} demo declarations, {len(planned)} profiles "
              f"({len(planned) - len(fallback)} pushed down, {len(fallback)} on the Python "
              "fallback in both runs)")  # fmt: skip
        for key, reason in fallback:
            print(f"  fallback {key}: {reason}")
        times: dict[str, list[float]] = {"pushdown": [], "python": []}
        results: dict[str, Any] = {}
        for k in range(args.repeat):
            turns = ("pushdown", "python") if k % 2 == 0 else ("python", "pushdown")
            for kind in turns:
                with engine.connect() as conn:
                    started = time.perf_counter()
                    result = run_backtest(
                        conn, native_source(), planned, options, record=False,
                        force_python=kind == "python",
                    )  # fmt: skip
                    times[kind].append(time.perf_counter() - started)
                results[kind] = result
                print(f"  run {k + 1}: {kind:<8} {times[kind][-1]:8.2f} s   "
                      f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
        a, b = _summary(results["pushdown"]), _summary(results["python"])
        if not _same(a, b):
            bad = [k for k in a if not _same(a[k], b.get(k))]
            raise SystemExit(f"{backend}: the two paths differ for {bad[:5]}")
        selected = sum(p.total.selected for p in results["pushdown"].profiles)
        best_sql, best_py = min(times["pushdown"]), min(times["python"])
        ratio = best_py / best_sql
        print(
            f"  results equal (every profile's totals and monthly series; "
            f"{results['pushdown'].considered:,} declarations, Σ selected {selected:,})"
        )
        print(f"  pushdown (one SQL pass)     {best_sql:8.2f} s")
        print(f"  Python fallback (baseline)  {best_py:8.2f} s")
        print(f"  pushdown is faster by       {ratio:8.1f}×   target ≥ 5×: "
              f"{'met' if ratio >= 5 else 'NOT MET'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=20_000)
    parser.add_argument("--profiles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="profile generator seed")
    parser.add_argument("--sample", action="store_true", help="the sample profiles instead")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached data")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for backend in args.backend or ("sqlite", "postgresql"):
        bench(backend, args)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
