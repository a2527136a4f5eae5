"""Where the fused path's time goes (issue 13): the footwear profile's fused function with parts
of its generated source cut out, beside zen-engine and the floor, over the same dicts.

    python benchmarks/bench_fused_parts.py           # one-item declarations
    python benchmarks/bench_fused_parts.py --full    # full generated declarations
    python benchmarks/bench_fused_parts.py --source  # print the generated source too

Each variant is the generated source of ``ProfileSet.fused`` with one part replaced, compiled in
the same namespace: without the result (the hits are returned), without the profile block,
without the ``id``/``office``/``regime`` reads, without the per-day flags lookup; and the same
function compiled (``Engine(native=True)``), through ``Engine.score`` and called directly. A variant
without a part computes something else, so these are only for seeing the cost of each part:
the difference to the whole function is that part's time. Times are the least CPU time over
the rounds (contenders take turns), per declaration. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_evaluator import ONE_PROFILE
from benchmarks.bench_input_path import ZEN_DECLARATION, by_hand, zen_data
from riskengine.evaluator import Engine, ProfileSet, native


def _cut(source: str, start: str, end: str, instead: str = "") -> str:
    """``source`` with the text from ``start`` up to ``end`` replaced."""
    i = source.index(start)
    j = source.index(end, i)
    return source[:i] + instead + source[j:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full generated declarations")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--declarations", type=int, default=3000)
    parser.add_argument("--source", action="store_true", help="print the generated source")
    args = parser.parse_args()

    engine = Engine(ProfileSet.load(sources={"one.rp": ONE_PROFILE}))
    scorer = engine.profiles.fused
    assert scorer is not None
    _, one_item, full = zen_data(args.declarations)
    dicts = full if args.full else one_item
    source = scorer.source
    if args.source:
        print(source)

    def build(text: str) -> Callable[..., Any]:
        env = dict(scorer._env)
        exec(compile(text, "<variant>", "exec"), env)
        fn: Callable[..., Any] = env["score"]
        return fn

    header_reads = source
    for name in ("id", "office", "regime"):
        line = next(ln for ln in source.splitlines() if ln.endswith(f"= raw.get({name!r})"))
        header_reads = header_reads.replace(line, line.split("=")[0] + "= None")
    variants: dict[str, Callable[..., Any]] = {
        "the fused function": build(source),
        "  without making the result": build(
            _cut(source, "    r = _new(_Pending)", "    return r", "    r = hits\n")
        ),
        "  without the profile block": build(
            _cut(source, "    if on[0]:", "    r = _new(_Pending)")
        ),
        "  without reading id, office, regime": build(header_reads),
        "  without the per-day flags lookup": build(
            _cut(source, "    on = _ON.get(as_of)", "    hits = None", "    on = (True,)\n")
        ),
    }
    runners: dict[str, Callable[[], None]] = {}
    try:
        import zen

        expression = zen.compile_expression(ZEN_DECLARATION)

        def run_zen() -> None:
            for d in dicts:
                expression.evaluate(d)

        runners["zen-engine compiled expression"] = run_zen
    except ImportError:
        print("zen-engine is not installed (pip install zen-engine): no baseline")

    def run_score() -> None:
        for d in dicts:
            engine.score(d)

    runners["Engine.score(dict)"] = run_score
    missing = native.problem()
    if missing is None:
        fast = Engine(engine.profiles, native=True)
        compiled = engine.profiles.fused.native()  # type: ignore[union-attr]

        def run_native_score() -> None:
            for d in dicts:
                fast.score(d)

        def run_native() -> None:
            for d in dicts:
                compiled(d, None, fast)

        runners["native: Engine.score(dict)"] = run_native_score
        runners["native: the fused function"] = run_native
    else:
        print(f"native=True is not measured: {missing}")
    for name, fn in variants.items():

        def run(fn: Callable[..., Any] = fn) -> None:
            for d in dicts:
                fn(d, None, engine)

        runners[name] = run

    def run_floor() -> None:
        for d in dicts:
            by_hand(d)

    runners["floor: the profile by hand (a bool)"] = run_floor
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(args.rounds):
        for name, fn in runners.items():
            gc.collect()
            started = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - started)
    n = len(dicts)
    print(
        f"riskengine fused path, parts, {dt.date.today()}, Python {platform.python_version()}, "
        f"{n:,} {'full' if args.full else 'one-item'} declarations, best of {args.rounds}"
    )
    whole = best["the fused function"] / n
    zen_t = best.get("zen-engine compiled expression", float("nan")) / n
    for name, spent in best.items():
        per = spent / n
        part = f"{(whole - per) * 1e6:+.2f} µs" if name.startswith("  ") else ""
        print(f"  {name:<40} {per * 1e6:6.2f} µs  {zen_t / per:5.2f}× zen  {part}")
    print(f"  3× zen-engine leaves {zen_t / 3 * 1e6:.2f} µs a declaration")


if __name__ == "__main__":
    main()
