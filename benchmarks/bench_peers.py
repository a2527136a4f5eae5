"""The same profile logic in zen-engine (Rust, compiled expression) and rule-engine (Python).

    pip install zen-engine rule-engine      # the `bench` extra
    python benchmarks/bench_peers.py [--quick]

The logic is the degree of the sample footwear profile (three indicators, one with an
``unless``) and whether its lowest control applies, on one goods item given as a flat mapping.
Ours is the generated ``evaluate`` of the compiled profile (exception, degree, clamp, every
control, missing values handled). Targets: ≥ 4× faster than zen-engine, ≥ 50× faster than
rule-engine. Figures and ratios are measured in the same run; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_evaluator import ONE_PROFILE, one_profile_declarations, race
from riskengine.evaluator import EmptyHistoryProvider, ProfileSet

DAY = dt.date(2024, 4, 2)
RULE_ITEMS = 100  # rule-engine is slow: fewer items per turn

ZEN = (
    "((startsWith(hs_code, '6403') or startsWith(hs_code, '6404')) ? 40 : 0)"
    " + (origin in ['CN', 'VN'] ? 30 : 0)"
    " + (customs_value / net_mass < 12.5 and preference != 'GSP' ? 30 : 0) >= 30"
)
RULE = (
    "((hs_code =~ '^(6403|6404)') ? 40 : 0)"
    " + (origin in ['CN', 'VN'] ? 30 : 0)"
    " + (customs_value / net_mass < 12.5 and preference != 'GSP' ? 30 : 0) >= 30"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    print(
        f"riskengine vs peers, {dt.date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    # one complete item per case, so that the peers (which do not handle missing values the
    # way profiles do) compute the same answer as ours
    contexts: list[dict[str, Any]] = []
    for decl in one_profile_declarations(3000):
        item = dict(decl.items[0])
        item.setdefault("preference", "MFN")
        if item.get("net_mass") in (None, 0):
            item["net_mass"] = 1.0
        item.setdefault("customs_value", 100.0)
        item.setdefault("origin", "DE")
        contexts.append(item)
    variant = ProfileSet.load(sources={"one.rp": ONE_PROFILE}).profiles[0].default
    hist = EmptyHistoryProvider().history
    ours_args = [({}, (c,), {}, hist, DAY) for c in contexts]
    item_tuples = [(c,) for c in contexts]

    def ours() -> None:  # called the way the engine calls it
        evaluate, header, region, day = variant.evaluate, {}, {}, DAY
        for items in item_tuples:
            evaluate(header, items, region, hist, day)

    runners: dict[str, Callable[[], None]] = {"riskengine (generated)": ours}
    expected = [variant.evaluate(*a) is not None for a in ours_args]
    try:
        import zen

        expr = zen.compile_expression(ZEN)
        assert [bool(expr.evaluate(c)) for c in contexts] == expected

        def zen_run() -> None:
            for c in contexts:
                expr.evaluate(c)

        runners["zen-engine (compiled expression)"] = zen_run
    except ImportError:
        print("    zen-engine is not installed: pip install zen-engine")
    try:
        import rule_engine

        rule = rule_engine.Rule(RULE)
        assert [bool(rule.evaluate(c)) for c in contexts] == expected

        def rule_run() -> None:
            for c in contexts[:RULE_ITEMS]:
                rule.evaluate(c)

        runners["rule-engine"] = rule_run
    except ImportError:
        print("    rule-engine is not installed: pip install rule-engine")
    # each runner takes its turn in every round (see race()): the ratios hold under changing load
    best = race(runners, repeats * 4)
    per_call = {
        name: t / (RULE_ITEMS if name == "rule-engine" else len(contexts))
        for name, t in best.items()
    }
    ours_t = per_call["riskengine (generated)"]
    for name, t in per_call.items():
        print(f"    {name:<34} {t * 1e6:8.2f} µs/item   riskengine is {t / ours_t:6.1f}× faster")
    if "zen-engine (compiled expression)" in per_call:
        print(
            "    target vs zen-engine ≥ 4×: "
            f"{per_call['zen-engine (compiled expression)'] / ours_t:.1f}×"
        )
    if "rule-engine" in per_call:
        print(f"    target vs rule-engine ≥ 50×: {per_call['rule-engine'] / ours_t:.1f}×")


if __name__ == "__main__":
    main()
