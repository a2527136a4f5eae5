"""Pipeline fuzzer: mutated profiles through check, compile, score and SQL backtest, everywhere.

    python benchmarks/fuzz_pipeline.py                          # 10,000 profiles, seed 0, all
    python benchmarks/fuzz_pipeline.py --count 500 --seed 3 --backends sqlite,duckdb
    python benchmarks/fuzz_pipeline.py --count 10000 --start 5000 --seed 12   # the second half
    python benchmarks/fuzz_pipeline.py --count 200 --timeout 5 --json findings.json

Profiles (``benchmarks/fuzz_cases.py``): the sample profiles of ``profiles/`` (with their
regional fills) with numbers, operators and regular expressions mutated, and a small template
profile whose indicators, degree, control thresholds and history block are replaced by generated
expressions: random typed expressions,
edge numbers (0, 0.1, 1e308 and 1e-300 written out in digits, 310-digit literals, 1.2e29), deep
nesting (unary minus, ``not``, parentheses, ``max``/``min``/``round``/``abs``, ``if``; depth
1..150), wide sums and ``and``/``or`` chains (1..1000 terms) and classic catastrophic regexes.

Each profile goes through ``check`` (``riskengine.checks.check_sources``). If check rejects it,
every error must be located inside the text. If check accepts it, it is compiled for the
evaluator (``Engine.load``), scores every declaration of two small stores (fast path and
explaining path; edge values such as 1.4 / 1.4, 4,199,999.99 / 10,000, 1e308 / 0.1, 1e-300,
missing fields, 10,000-character descriptions; history from the store), and is backtested
(``run_backtest``) on SQLite, DuckDB and PostgreSQL over both stores. Expected outcomes:

* check rejects it with located diagnostics;
* everything runs, and on every backend the backtest selects the same number of declarations and
  applies the same controls as the evaluator scoring them one by one;
* or the backtest takes the Python fallback with a stated reason (still the same figures).

Anything else is a finding: an exception at any stage, a hang (``--timeout`` seconds per profile;
each profile runs in a worker process that is killed on a hang), a disagreement. Findings are
grouped into classes (stage, backend, exception type, message with numbers blanked); for each
class the script prints a minimized repro (the unmutated base profile if it already shows the
class, else the smallest case found, its depth or width bisected while the class persists) and
exits with status 1.

Speed: accepted profiles are backtested in batches (``--batch``, one SQL pass per backend and
store for the whole batch, as ``riskengine backtest`` does); a batch that fails or hangs is run
again profile by profile, so that each finding is attributed to its profile.

PostgreSQL: ``RISKENGINE_BENCH_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
test``), in a fresh schema dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import multiprocessing.connection
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_cases import (
    BACKENDS,
    PERIOD,
    STORES,
    Case,
    as_stored,
    make_case,
    plain_case,
    sample_texts,
    shorten,
    stores,
)

# ------------------------------------------------------------------------------- the pipeline


@dataclass
class Finding:
    klass: str
    detail: str


@dataclass
class Outcome:
    """What happened to one profile set. ``status``: "rejected" (check said no, with located
    errors), "accepted" (checked, compiled, scored; not yet backtested), "ok", "finding"."""

    status: str
    findings: list[Finding] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    expected: dict[str, Any] = field(default_factory=dict)


def _normalise(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)
    first = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", first)
    return first[:100]


def _exc_class(stage: str, exc: BaseException) -> Finding:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "riskengine" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return Finding(
        f"{stage}: {type(exc).__name__}: {_normalise(str(exc))}",
        f"{type(exc).__name__}: {message} (raised in {where})",
    )


class Worker:
    """The pipeline, run inside a worker process: check, compile, score; backtest batches."""

    def __init__(self, urls: dict[tuple[str, str], str]) -> None:
        self.urls = urls
        self._engines: dict[tuple[str, str], Any] = {}
        from riskengine.declaration import normalise_declaration

        self._raws = {name: make() for name, make in STORES.items()}
        # scored as the stores hold them (numbers the input rule refuses included)
        self._decls = {
            name: [as_stored(raw, normalise_declaration) for raw in raws]
            for name, raws in self._raws.items()
        }
        self._history: dict[str, Any] = {}

    def engine(self, key: tuple[str, str]) -> Any:
        from riskengine.sql.compile import register_functions
        from riskengine.store.engine import connect

        if key not in self._engines:
            engine = connect(self.urls[key])
            register_functions(engine)
            self._engines[key] = engine
        return self._engines[key]

    def history(self, store: str) -> Any:
        """The store's history for the evaluator (read once: the stores do not change)."""
        from riskengine.store.history import SqlHistoryProvider

        if store not in self._history:
            backend = "sqlite" if ("sqlite", store) in self.urls else next(iter(self.urls))[0]
            self._history[store] = SqlHistoryProvider(self.engine((backend, store)), cache=True)
        return self._history[store]

    def prepare(self, sources: dict[str, str]) -> Outcome:
        """Check; if accepted, compile and score every store's declarations."""
        from riskengine.checks import check_sources
        from riskengine.diagnostics import ProfileError
        from riskengine.evaluator import Engine

        try:
            checked = check_sources(sources)
        except Exception as exc:
            return Outcome("finding", [_exc_class("check", exc)])
        if not checked.ok:
            return self._rejected(checked, sources)
        keys = [p.key for p in checked.profiles]
        try:
            scorer = Engine.load(sources=sources)
        except ProfileError as exc:
            return Outcome(
                "finding", [Finding("compile: ProfileError after check accepted", str(exc)[:500])]
            )
        except Exception as exc:
            return Outcome("finding", [_exc_class("compile", exc)])
        outcome = Outcome("accepted")
        for store in STORES:
            try:
                outcome.expected[store] = self._score(scorer, store, keys)
            except Exception as exc:
                outcome.findings.append(_exc_class(f"score[{store}]", exc))
        if outcome.findings:
            outcome.status = "finding"
        return outcome

    def _rejected(self, checked: Any, sources: dict[str, str]) -> Outcome:
        for d in checked.errors:
            text = sources.get(d.span.file)
            if text is None:
                return Outcome("finding", [Finding("check: error without a file", repr(d))])
            lines = text.split("\n")
            if not (1 <= d.span.line <= len(lines)) or not (
                1 <= d.span.column <= len(lines[d.span.line - 1]) + 1
            ):
                return Outcome(
                    "finding", [Finding(f"check: {d.code} not located in the text", repr(d))]
                )
        return Outcome("rejected")

    def _score(self, scorer: Any, store: str, keys: list[str]) -> dict[str, Any]:
        """What the evaluator says, declaration by declaration, counted like the backtest."""
        history = self.history(store)
        selected = dict.fromkeys(keys, 0)
        controls: dict[str, dict[str, int]] = {k: {} for k in keys}
        for raw, decl in zip(self._raws[store], self._decls[store], strict=True):
            day = dt.date.fromisoformat(raw["date"])
            fast = scorer.score(decl, day, history=history)
            slow = scorer.score(decl, day, explain=True, history=history)
            a = {(f.key, f.degree, tuple(c.code for c in f.controls)) for f in fast.fired}
            b = {(f.key, f.degree, tuple(c.code for c in f.controls)) for f in slow.fired}
            if a != b:
                raise AssertionError(
                    f"the explaining path disagrees with the fast path on {raw['id']}: "
                    f"{sorted(a)} vs {sorted(b)}"
                )
            for f in fast.fired:
                if f.key in selected:
                    selected[f.key] += 1
                    for c in f.controls:
                        controls[f.key][c.code] = controls[f.key].get(c.code, 0) + 1
        return {"selected": selected, "controls": controls}

    def backtest(
        self, batch: list[tuple[dict[str, str], dict[str, Any]]], backend: str, store: str
    ) -> list[Outcome] | Finding:
        """Backtest every profile set of ``batch`` in one pass on one store; per set, its
        findings (disagreements with the evaluator) and fallbacks; or the pass's own failure."""
        from riskengine.backtest.run import BacktestOptions, planned_from, run_backtest
        from riskengine.checks import check_sources
        from riskengine.store.schema import build_tables
        from riskengine.store.source import native_source

        stage = f"backtest[{backend},{store}]"
        owner: dict[str, int] = {}
        planned = []
        for n, (sources, _) in enumerate(batch):
            checked = check_sources(sources)
            for profile in checked.profiles:
                owner[profile.key] = n
            planned += planned_from(checked)
        try:
            engine = self.engine((backend, store))
            with engine.connect() as conn:
                result = run_backtest(
                    conn, native_source(build_tables()), planned, BacktestOptions(*PERIOD),
                    record=False,
                )  # fmt: skip
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._engines.pop((backend, store)).dispose()
            return _exc_class(stage, exc)
        outcomes = [Outcome("ok") for _ in batch]
        for p in result.profiles:
            n = owner[p.key]
            outcome, expected = outcomes[n], batch[n][1][store]
            if p.path != "sql":
                if not p.reason:
                    outcome.findings.append(Finding(f"{stage}: fallback without a reason", p.key))
                outcome.fallbacks.append(f"{backend}: {p.reason}")
            want = expected["selected"].get(p.key)
            got_controls = {c: k for c, k in p.total.controls_applied.items() if k}
            if p.total.selected != want or got_controls != expected["controls"][p.key]:
                outcome.findings.append(
                    Finding(
                        f"disagree[{backend},{store}]: backtest ({p.path}) vs evaluator",
                        f"{p.key}: the backtest selects {p.total.selected} {got_controls}, "
                        f"the evaluator {want} {expected['controls'][p.key]}",
                    )
                )
        return outcomes


# ----------------------------------------------------------------------- worker process plumbing


def _serve(conn: multiprocessing.connection.Connection, urls: dict[tuple[str, str], str]) -> None:
    worker = Worker(urls)
    while True:
        task = conn.recv()
        if task is None:
            return
        name, args = task
        try:
            result: Any = getattr(worker, name)(*args)
        except BaseException as exc:  # the pipeline's own crash, reported not raised
            result = Outcome("finding", [_exc_class(f"fuzzer {name}", exc)])
        conn.send(result)


class Hang(Exception):
    pass


class Pool:
    """One worker process; a task that takes longer than its timeout kills it (a hang)."""

    def __init__(self, urls: dict[tuple[str, str], str], timeout: float) -> None:
        self.urls = urls
        self.timeout = timeout
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.urls), daemon=True)
        self.proc.start()
        child.close()

    def call(self, name: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``Worker.name(*args)`` in the worker; :class:`Hang` after the timeout."""
        limit = timeout or self.timeout
        try:
            self.conn.send((name, args))
            if self.conn.poll(limit):
                return self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            self._restart()
            raise Hang(f"the worker died ({type(exc).__name__})") from None
        self._restart()
        raise Hang(f"no result within {limit:g} s")

    def _restart(self) -> None:
        self.proc.kill()
        self.proc.join()
        self._start()

    def run(self, sources: dict[str, str]) -> Outcome:
        """The whole pipeline for one profile set, backtested alone on every store."""
        try:
            outcome: Outcome = self.call("prepare", sources)
        except Hang as exc:
            return Outcome("finding", [Finding(f"hang: check, compile or score: {exc}", "")])
        if outcome.status != "accepted":
            return outcome
        outcome.status = "ok"
        for backend, store in self.urls:
            self._merge(outcome, self._backtest([(sources, outcome.expected)], backend, store)[0])
        return outcome

    def _backtest(
        self, batch: list[tuple[dict[str, str], dict[str, Any]]], backend: str, store: str
    ) -> list[Outcome]:
        try:
            result = self.call("backtest", batch, backend, store, timeout=self.timeout * 3)
        except Hang as exc:
            result = Finding(f"hang: backtest[{backend},{store}]: {exc}", "")
        if isinstance(result, Finding):
            if len(batch) > 1:  # attribute it: one by one
                return [self._backtest([one], backend, store)[0] for one in batch]
            return [Outcome("finding", [result])]
        assert isinstance(result, list)
        return result

    @staticmethod
    def _merge(into: Outcome, outcome: Outcome) -> None:
        into.findings += outcome.findings
        into.fallbacks += outcome.fallbacks
        if into.findings:
            into.status = "finding"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# ------------------------------------------------------------------------------- minimization


def _repro(case: Case, klass: str, pool: Pool) -> Case:
    """A smaller case with the same class: the unmutated base profile if it shows it already,
    else the case's shape bisected on its depth or width."""
    base = plain_case(case)
    if base is not None and any(f.klass == klass for f in pool.run(base.sources).findings):
        return base
    if case.build is None or case.size <= 1:
        return case
    best = case
    lo, hi = 0, case.size  # hi reproduces
    for _ in range(12):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        candidate = Case(case.build(mid), case.what, case.build, mid, case.base)
        if any(f.klass == klass for f in pool.run(candidate.sources).findings):
            hi, best = mid, candidate
        else:
            lo = mid
    return best


def describe(case: Case) -> str:
    return case.what.replace("{size}", str(case.size))


def profile_text(case: Case, limit: int = 1500) -> str:
    text = "\n".join(f"# {name}\n{t}" for name, t in case.sources.items())
    out = "\n".join(shorten(line, 160) for line in text.splitlines())
    return out if len(out) <= limit else out[:limit] + "\n..."


# --------------------------------------------------------------------------------------- running


@dataclass
class Report:
    cases: int = 0
    rejected: int = 0
    ok: int = 0
    fallback: int = 0
    seconds: float = 0.0
    classes: dict[str, tuple[Case, Finding, int]] = field(default_factory=dict)
    fallback_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, case: Case, outcome: Outcome) -> None:
        self.cases += 1
        if outcome.status == "rejected":
            self.rejected += 1
        elif outcome.status == "ok":
            self.ok += 1
        if outcome.fallbacks:
            self.fallback += 1
            for reason in outcome.fallbacks:
                key = _normalise(reason)
                self.fallback_reasons[key] = self.fallback_reasons.get(key, 0) + 1
        size = sum(len(t) for t in case.sources.values())
        for finding in outcome.findings:
            seen = self.classes.get(finding.klass)
            if seen is None:
                self.classes[finding.klass] = (case, finding, 1)
                continue
            old_case, old_finding, count = seen
            if size < sum(len(t) for t in old_case.sources.values()):
                old_case, old_finding = case, finding
            self.classes[finding.klass] = (old_case, old_finding, count + 1)


def fuzz(
    count: int,
    seed: int,
    backends: Sequence[str],
    timeout: float,
    *,
    batch: int = 20,
    minimize: bool = True,
    progress: Callable[[int, Report], None] | None = None,
    start: int = 0,
) -> Report:
    """Run cases ``start`` to ``count - 1`` of the seed's sequence; the report of outcomes and
    finding classes (minimized). The cases before ``start`` are generated and skipped, so a long
    run can be split into chunks (``--start``) that together run exactly the cases of one run."""
    rng = random.Random(seed)
    samples = sample_texts()
    report = Report()
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-pipeline-"))
    try:
        with stores(backends, folder) as urls:
            pool = Pool(urls, timeout)
            pending: list[tuple[Case, Outcome]] = []

            def flush() -> None:
                items = [(c.sources, o.expected) for c, o in pending]
                for backend, store in urls:
                    for (_, outcome), more in zip(
                        pending, pool._backtest(items, backend, store), strict=True
                    ):
                        pool._merge(outcome, more)
                for case, outcome in pending:
                    report.add(case, outcome)
                pending.clear()

            try:
                for n in range(count):
                    case = make_case(rng, n, samples)
                    if n < start:
                        continue
                    try:
                        outcome = pool.call("prepare", case.sources)
                    except Hang as exc:
                        outcome = Outcome(
                            "finding", [Finding(f"hang: check, compile or score: {exc}", "")]
                        )
                    if outcome.status == "accepted":
                        outcome.status = "ok"
                        pending.append((case, outcome))
                        if len(pending) >= batch:
                            flush()
                    else:
                        report.add(case, outcome)
                    if progress is not None:
                        progress(n + 1, report)
                flush()
                if minimize:
                    for klass, (case, finding, hits) in list(report.classes.items()):
                        report.classes[klass] = (_repro(case, klass, pool), finding, hits)
            finally:
                pool.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def format_report(report: Report) -> str:
    out = [
        f"{report.cases} profiles in {report.seconds:.0f} s: {report.rejected} rejected by check, "
        f"{report.ok} ran everywhere ({report.fallback} with a Python fallback somewhere), "
        f"{len(report.classes)} classes of findings"
    ]
    for reason, n in sorted(report.fallback_reasons.items(), key=lambda kv: -kv[1]):
        out.append(f"  fallback ({n}x): {reason}")
    for number, (klass, (case, finding, hits)) in enumerate(sorted(report.classes.items()), 1):
        out.append(f"\n[{number}] {klass}  ({hits} profiles)")
        out.append(f"    repro: {describe(case)}")
        if finding.detail.strip():
            out.append("    detail: " + shorten(finding.detail.strip(), 400))
        out.append("    " + profile_text(case, 1200).replace("\n", "\n    "))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="profiles (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start", type=int, default=0,
        help="skip the seed's first N profiles (run a long fuzz in chunks: --start 5000)",
    )  # fmt: skip
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,duckdb,postgresql"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per profile")
    parser.add_argument("--batch", type=int, default=20, help="profiles per backtest pass")
    parser.add_argument("--no-minimize", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="write the finding classes as JSON")
    args = parser.parse_args(argv)
    # killed: clean up (worker, temporary stores, PostgreSQL schemas) as on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    started = time.perf_counter()

    def progress(n: int, report: Report) -> None:
        if n > args.start and (n % 100 == 0 or n == args.count):
            took = time.perf_counter() - started
            print(
                f"{n}/{args.count} profiles, {len(report.classes)} finding classes, {took:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    report = fuzz(
        args.count, args.seed, backends, args.timeout, batch=args.batch,
        minimize=not args.no_minimize, progress=progress, start=args.start,
    )  # fmt: skip
    print(format_report(report))
    if args.json:
        classes = [
            {"class": k, "profiles": hits, "repro": describe(c), "sources": c.sources,
             "detail": f.detail}
            for k, (c, f, hits) in sorted(report.classes.items())
        ]  # fmt: skip
        Path(args.json).write_text(json.dumps(classes, ensure_ascii=False, indent=1), "utf-8")
    return 1 if report.classes else 0


if __name__ == "__main__":
    sys.exit(main())
