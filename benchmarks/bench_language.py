"""Benchmark: parse + check of N generated profiles (target: 1,000 in ≤ 2 s on one core).

Prints the time of each stage and ratios against baselines measured in the same run:
- ``tokenize``: one pass of a single compiled regular expression over the same text (the floor
  any parser pays to read the bytes);
- ``lark``: the same files parsed by lark's own LALR parser and lexer with the same embedded
  model builder (what riskengine would spend without its fast driver).
The grammar is loaded once: building the parser is timed separately and not per file.

    python benchmarks/bench_language.py [N] [--repeat R]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_profiles import profile_sources

from riskengine.checks import check_models
from riskengine.syntax import parse_source
from riskengine.syntax.parser import _BUILDER, parser

_TOKEN = re.compile(r'\s*(?:#[^\n]*|"(?:[^"\\\n]|\\.)*"|[\w./-]+|==|!=|<=|>=|\.\.|[^\s\w])')


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    sources = profile_sources(args.n, seed=7)
    lines = sum(t.count("\n") for t in sources.values())
    print(
        f"{args.n} profiles in {len(sources)} files, {lines:,} lines, "
        f"{sum(map(len, sources.values())):,} characters"
    )

    t0 = time.perf_counter()
    parser.cache_clear()
    parser()
    print(f"build the parser (once per process): {time.perf_counter() - t0:.3f} s")

    def tokenize() -> None:
        for text in sources.values():
            pos = 0
            while pos < len(text) and (mt := _TOKEN.match(text, pos)):
                pos = mt.end()

    results = {}

    def parse_all() -> None:
        results.clear()
        for name, text in sources.items():
            results[name] = parse_source(text, name)

    def lark_all() -> None:
        for name, text in sources.items():
            _BUILDER.begin(name)
            parser().parse(text)

    def check_all() -> None:
        files = [r.source for r in results.values() if r.source is not None]
        check_models(files, {n: r.text for n, r in results.items()})

    t_tok = best(tokenize, args.repeat)
    t_parse = best(parse_all, args.repeat)
    assert all(r.ok for r in results.values()), "generated profiles must parse cleanly"
    t_lark = best(lark_all, args.repeat)
    t_check = best(check_all, args.repeat)
    total = t_parse + t_check
    print(f"baseline tokenize (one regex):  {t_tok:.3f} s")
    print(f"baseline lark parse:            {t_lark:.3f} s")
    print(
        f"parse (riskengine):             {t_parse:.3f} s   "
        f"{t_parse / t_tok:.1f}x the regex floor, {t_lark / t_parse:.2f}x faster than lark"
    )
    print(f"check:                          {t_check:.3f} s")
    print(
        f"parse + check:                  {total:.3f} s   "
        f"({args.n / total:,.0f} profiles/s; target for 1,000: <= 2 s -> "
        f"{'met' if args.n == 1000 and total <= 2 else 'see figure'})"
    )


if __name__ == "__main__":
    main()
