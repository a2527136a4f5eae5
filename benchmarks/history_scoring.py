"""Scoring with history from the store (issue 13, item 2): ``bench_history.py --scoring``.

The sample profiles (``profiles/``) score demo declarations with their history read from a
SQLite and a PostgreSQL store holding the same 10,000 demo declarations (seed 1), each
declaration on its own date. Measured in one run, on the same declarations:

* ``old, uncached``: :class:`SqlHistoryProvider` (two statements built per lookup);
* ``new, uncached``: :class:`StoreHistoryProvider(cache=False)` (one statement compiled once,
  the window in the indexes of revision r0005);
* ``new, warm cache``: :class:`StoreHistoryProvider(cache=True)` after one pass over the
  declarations (the pass that fills the cache is not timed);
* ``no history`` (the empty provider): the evaluator alone, the ceiling.

Declarations/s and the p50/p99 latency of one ``Engine.score`` call, with ratios to the old
provider. Then the lookups the uncached run made, replayed four ways -- the statement built per
call (as the old provider did), the statement built once (SQLAlchemy's compiled cache, what the
provider does), its SQL string through ``exec_driver_sql`` (no compilation step at all), and the
bare DBAPI cursor (the floor: no SQLAlchemy) -- to show what each costs per lookup.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from riskengine import demo
from riskengine.evaluator import EmptyHistoryProvider, Engine
from riskengine.semantics.history import HistoryValue
from riskengine.store.history import SqlHistoryProvider, StoreHistoryProvider
from riskengine.store.history.online import _ranged, _successor, lookup_statement
from riskengine.store.maintenance import analyze
from riskengine.store.source import native_source

Lookup = tuple[Any, tuple[Any, ...], dt.date, dt.date, bool, bool]


class _Recording:
    """A provider that records the (spec, subject, window, parts) of every lookup it passes on."""

    def __init__(self, inner: StoreHistoryProvider) -> None:
        self.inner = inner
        self.asked: list[Lookup] = []

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        value = self.inner.history(profile, subject, as_of)
        plan = self.inner._by_profile[id(profile)][1]
        if plan is not None and not plan.empty and None not in subject:
            start = as_of - dt.timedelta(days=plan.window)
            self.asked.append((plan.spec, subject, start, as_of, plan.negative, plan.positive))
        return value


def _timed(engine: Engine, decls: list[Any], provider: Any) -> tuple[float, list[float]]:
    times = []
    began = time.perf_counter()
    for declaration in decls:
        start = time.perf_counter()
        engine.score(declaration, history=provider)
        times.append(time.perf_counter() - start)
    return time.perf_counter() - began, times


def _quantile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_scoring(store: sa.Engine, backend: str, args: argparse.Namespace) -> None:
    """Fill ``store`` with the demo data and print the scoring figures."""
    began = time.perf_counter()
    records = list(demo.generate(args.declarations, seed=args.seed))
    demo.write_demo(store, args.declarations, seed=args.seed)
    analyze(store)
    print(
        f"[{backend}] {args.declarations:,} demo declarations stored "
        f"in {time.perf_counter() - began:.1f} s"
    )
    engine = Engine.load(args.profiles)
    decls = [r.declaration for r in records]
    sample = random.Random(args.seed).sample(decls, min(args.sample, len(decls)))
    rows: list[tuple[str, float, list[float], str]] = []

    def measure(name: str, provider: Any, note: Callable[[], str] = lambda: "") -> None:
        seconds, times = _timed(engine, sample, provider)
        rows.append((name, len(sample) / seconds, times, note()))

    measure("no history (ceiling)", EmptyHistoryProvider())
    old = SqlHistoryProvider(store)
    measure("old, uncached", old, lambda: f"{old.queries / len(sample):.1f} queries/decl")
    new = StoreHistoryProvider(store, cache=False)
    recording = _Recording(new)
    measure("new, uncached", recording, lambda: f"{new.queries / len(sample):.1f} queries/decl")
    with StoreHistoryProvider(store, cache=True) as cached:
        _timed(engine, sample, cached)  # fills the cache
        filled = cached.queries
        measure(
            "new, warm cache",
            cached,
            lambda: f"{cached.queries - filled} queries (filling it took {filled:,})",
        )
        whole_began = time.perf_counter()
        _timed(engine, decls, cached)  # every declaration once: the rest of the cache
        _, every = _timed(engine, decls, cached)
        whole = time.perf_counter() - whole_began
    base_rate, base_times = next((r[1], r[2]) for r in rows if r[0] == "old, uncached")
    base_p99 = _quantile(base_times, 0.99)
    print(
        f"[{backend}] scoring {len(sample):,} of them (a seeded sample) with the "
        f"{len(engine.profiles.profiles)} sample profiles, history from the store "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    print(f"[{backend}]   {'provider':22} {'decl/s':>9} {'p50':>11} {'p99':>11}  vs old")
    for name, rate, times, note in rows:
        p99 = _quantile(times, 0.99)
        versus = ""
        if name.startswith("new"):
            versus = f"{rate / base_rate:6.1f}x, p99 {base_p99 / p99:,.0f}x lower"
        print(
            f"[{backend}]   {name:22} {rate:9,.0f} {_ms(_quantile(times, 0.5))} {_ms(p99)}  "
            f"{versus}  {note}"
        )
    print(
        f"[{backend}]   new, warm cache, all {len(decls):,}: {len(decls) / sum(every):,.0f} "
        f"decl/s, p50 {_ms(_quantile(every, 0.5))}, p99 {_ms(_quantile(every, 0.99))} "
        f"(two passes, the first filling the cache: {whole:.1f} s)"
    )
    replay(store, backend, recording.asked)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def _params(lookup: Lookup) -> tuple[dict[str, Any], tuple[bool, ...]]:
    spec, subject, start, end, _negative, _positive = lookup
    params: dict[str, Any] = {"start": start, "end": end}
    ranged = []
    for k, ((_path, prefix), value) in enumerate(zip(spec, subject, strict=True)):
        params[f"s{k}"] = value
        use = prefix is not None and _ranged(value)
        ranged.append(use)
        if use:
            params[f"lo{k}"] = value
            params[f"hi{k}"] = _successor(value)
    return params, tuple(ranged)


def replay(store: sa.Engine, backend: str, asked: list[Lookup]) -> None:
    """The uncached run's lookups, executed four ways (see the module docs)."""
    if not asked:
        return
    source = native_source()
    built: dict[Any, Any] = {}
    prepared = []
    for lookup in asked:
        params, ranged = _params(lookup)
        key = (lookup[0], lookup[4], lookup[5], ranged)
        if key not in built:
            built[key] = lookup_statement(lookup[0], source, lookup[4], lookup[5], ranged)
        prepared.append((lookup, params, key))
    strings: dict[Any, tuple[str, Any]] = {}
    for key, statement in built.items():
        compiled = statement.compile(dialect=store.dialect)
        strings[key] = (str(compiled), compiled)

    def driver_args(key: Any, params: dict[str, Any]) -> Any:
        compiled = strings[key][1]
        values = compiled.construct_params(params)
        if store.dialect.name == "sqlite":
            plain = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}
            return tuple(plain[name] for name in compiled.positiontup)
        return values

    args = [driver_args(key, params) for _, params, key in prepared]
    results: list[tuple[str, float]] = []
    with store.connect() as connection:

        def each(name: str, work: Callable[[int], object]) -> None:
            began = time.perf_counter()
            for n in range(len(prepared)):
                work(n)
            results.append((name, (time.perf_counter() - began) / len(prepared)))

        def per_call(n: int) -> object:
            lookup, params, key = prepared[n]
            statement = lookup_statement(lookup[0], source, lookup[4], lookup[5], key[3])
            return connection.execute(statement, params).all()

        def once(n: int) -> object:
            _, params, key = prepared[n]
            return connection.execute(built[key], params).all()

        def driver_sql(n: int) -> object:
            return connection.exec_driver_sql(strings[prepared[n][2]][0], args[n]).all()

        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]

        def bare(n: int) -> object:
            cursor.execute(strings[prepared[n][2]][0], args[n])
            return cursor.fetchall()

        for _ in range(2):  # the second round is measured (caches, prepared statements warm)
            results.clear()
            each("built per call (as the old provider)", per_call)
            each("built once, compiled cache (the provider)", once)
            each("SQL string via exec_driver_sql", driver_sql)
            each("bare DBAPI cursor (the floor)", bare)
        cursor.close()
    print(f"[{backend}] the {len(prepared):,} lookups of the uncached run, on one connection:")
    floor = results[-1][1]
    for name, seconds in results:
        print(
            f"[{backend}]   {name:42} {seconds * 1e6:9,.0f} µs per lookup "
            f"= {seconds / floor:5.2f}x the floor"
        )
