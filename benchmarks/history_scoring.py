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
from riskengine.store.history import SqlHistoryProvider, StoreHistoryProvider
from riskengine.store.history.online import _ranged, _successor, lookup_statement
from riskengine.store.maintenance import analyze
from riskengine.store.source import native_source

Lookup = tuple[Any, tuple[Any, ...], dt.date, dt.date, bool, bool]


class _Recording:
    """Records the reads of a provider (spec, subject, window, parts): the statements the
    uncached run sent, for the replay."""

    def __init__(self, inner: StoreHistoryProvider) -> None:
        self.inner = inner
        self.asked: list[Lookup] = []
        self._read = inner._read

    def __enter__(self) -> _Recording:
        self.inner._read = self.read  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.inner._read

    def read(
        self, spec: Any, subject: Any, start: dt.date, end: dt.date, neg: bool = True,
        pos: bool = True,
    ) -> Any:  # fmt: skip
        self.asked.append((spec, subject, start, end, neg, pos))
        return self._read(spec, subject, start, end, neg, pos)


def _timed(
    engine: Engine, decls: list[Any], provider: Any, cpu: list[float] | None = None
) -> tuple[float, list[float]]:
    """Wall seconds of the whole run and of each declaration; ``cpu``, when given, receives
    each declaration's CPU time of this thread (what the machine's load does not inflate: a
    preempted declaration's wall time includes other processes' turns)."""
    times = []
    clock, thread = time.perf_counter, time.thread_time
    began = clock()
    for declaration in decls:
        start, start_cpu = clock(), thread()
        engine.score(declaration, history=provider)
        end_cpu, end = thread(), clock()
        times.append(end - start)
        if cpu is not None:
            cpu.append(end_cpu - start_cpu)
    return clock() - began, times


def _quantile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_scoring(store: sa.Engine, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fill ``store`` with the demo data and print the scoring figures, for the sample profiles
    and, with ``args.generated``, for a set of that size (the samples and generated profiles).
    Returns the figures the summary quotes."""
    began = time.perf_counter()
    records = list(demo.generate(args.declarations, seed=args.seed))
    demo.write_demo(store, args.declarations, seed=args.seed)
    analyze(store)
    print(
        f"[{backend}] {args.declarations:,} demo declarations stored "
        f"in {time.perf_counter() - began:.1f} s"
    )
    decls = [r.declaration for r in records]
    sample = random.Random(args.seed).sample(decls, min(args.sample, len(decls)))
    sets: list[tuple[str, list[str]]] = [("the 9 sample profiles", [args.profiles])]
    if args.generated:
        sets.append(
            (
                f"{args.generated:,} profiles (the 9 samples and {args.generated - 9:,} generated)",
                [args.profiles, args.generated_dir],
            )
        )
    summary: dict[str, Any] = {}
    for label, paths in sets:
        engine = Engine.load(paths)
        summary[label] = _score_set(store, backend, engine, label, decls, sample)
    return summary


def _score_set(
    store: sa.Engine, backend: str, engine: Engine, label: str, decls: list[Any], sample: list[Any]
) -> dict[str, float]:
    figures: dict[str, float] = {}
    rows: list[tuple[str, float, list[float], list[float], str]] = []

    def measure(name: str, provider: Any, note: Callable[[], str] = lambda: "") -> None:
        cpu: list[float] = []
        seconds, times = _timed(engine, sample, provider, cpu)
        rows.append((name, len(sample) / seconds, times, cpu, note()))
        # declarations per CPU second of this process: on SQLite (in the process) all the
        # work, so the ratio the machine's load does not distort; on PostgreSQL the server's
        # share is not in it
        figures[f"{name} CPU rate"] = len(sample) / sum(cpu)

    _timed(engine, sample, EmptyHistoryProvider())  # the set's per-date views, built once
    measure("no history (ceiling)", EmptyHistoryProvider())
    old = SqlHistoryProvider(store)
    measure("old, uncached", old, lambda: f"{old.queries / len(sample):.1f} queries/decl")
    new = StoreHistoryProvider(store, cache=False)
    measure("new, uncached", new, lambda: f"{new.queries / len(sample):.1f} queries/decl")
    with _Recording(StoreHistoryProvider(store, cache=False)) as recording:
        _timed(engine, sample, recording.inner)  # the statements it sends, for the replay
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
        every_cpu: list[float] = []
        _, every = _timed(engine, decls, cached, every_cpu)
        whole = time.perf_counter() - whole_began
    base_rate, base_times = next((r[1], r[2]) for r in rows if r[0] == "old, uncached")
    base_p99 = _quantile(base_times, 0.99)
    print(
        f"[{backend}] scoring {len(sample):,} of them (a seeded sample) with {label}, "
        f"history from the store (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores):"
    )
    print(
        f"[{backend}]   {'provider':22} {'decl/s':>9} {'p50':>11} {'p99':>11} "
        f"{'p99 CPU':>11}  vs old"
    )
    for name, rate, times, cpu, note in rows:
        p99 = _quantile(times, 0.99)
        figures[f"{name} rate"] = rate
        figures[f"{name} p99"] = p99
        figures[f"{name} p99 CPU"] = _quantile(cpu, 0.99)
        versus = ""
        if name.startswith("new"):
            by_cpu = figures[f"{name} CPU rate"] / figures["old, uncached CPU rate"]
            versus = (
                f"{rate / base_rate:6.1f}x ({by_cpu:.1f}x per CPU second), "
                f"p99 {base_p99 / p99:,.0f}x lower"
            )
        print(
            f"[{backend}]   {name:22} {rate:9,.0f} {_ms(_quantile(times, 0.5))} {_ms(p99)} "
            f"{_ms(_quantile(cpu, 0.99))}  {versus}  {note}"
        )
    figures["all p99"] = _quantile(every, 0.99)
    figures["all p99 CPU"] = _quantile(every_cpu, 0.99)
    print(
        f"[{backend}]   new, warm cache, all {len(decls):,}: {len(decls) / sum(every):,.0f} "
        f"decl/s, p50 {_ms(_quantile(every, 0.5))}, p99 {_ms(_quantile(every, 0.99))} "
        f"(CPU {_ms(figures['all p99 CPU'])}; two passes, the first filling the cache: "
        f"{whole:.1f} s)"
    )
    floor = replay(store, backend, recording.asked)
    if floor is not None:
        per_decl = floor * len(recording.asked) / len(sample)
        figures["floor per declaration"] = per_decl
        print(
            f"[{backend}]   the floor of an uncached declaration: its "
            f"{len(recording.asked) / len(sample):.1f} lookups on the bare cursor = "
            f"{per_decl * 1e3:.3f} ms, {1 / per_decl:,.0f} decl/s at most"
        )
    return figures


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


def replay(store: sa.Engine, backend: str, asked: list[Lookup]) -> float | None:
    """The uncached run's lookups, executed four ways (see the module docs); returns the bare
    cursor's seconds per lookup (the floor)."""
    if not asked:
        return None
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
    return floor
