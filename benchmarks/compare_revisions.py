"""Compare the evaluator and backtest benchmarks of two revisions, measured in the same run.

    python benchmarks/compare_revisions.py --base main                # main vs this working tree
    python benchmarks/compare_revisions.py --base main --head HEAD --rounds 5
    python benchmarks/compare_revisions.py --base v1 --head v2 --backend postgresql

Each revision is checked out into a temporary git worktree (``--head .``, the default, is this
working tree as it is, uncommitted changes included). Then, ``--rounds`` times, interleaved
(base, head, base, head, ...) so that a change of machine load hits both alike:

* ``benchmarks/bench_evaluator.py --quick`` (µs per declaration of one profile, declarations per
  second of 10 / 100 / 1000 profiles, parse + check + compile time);
* ``benchmarks/bench_backtest_fallback.py --sample --declarations N --backend B --repeat 1``
  (the sample profiles' backtest, pushed down and on the Python fallback).

Each run imports the code of its own revision (``PYTHONPATH`` = that worktree). Every timed figure
(µs, ms, s, decl/s, ×) is printed with the median of the rounds for base and head, the ratio
head / base and whether that is better or worse, and the spread of the rounds (max / min - 1) as
the noise to read the ratio against: a ratio within the noise is marked "noise", not "better" or
"worse". Run it with ``--base X --head X`` to see the noise alone.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(µs/decl|µs|ms|s|decl/s|×)(?![\w/])")
LOWER_IS_BETTER = {"µs/decl", "µs", "ms", "s"}
#: Lines that are not results (load averages, per-run lines repeated in the summary).
SKIP = re.compile(r"load average|^\s*run \d+:|generating|declarations, [\d,]+ items in")


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A temporary worktree at ``rev`` (``.``: this working tree, untouched)."""
    if rev == ".":
        yield ROOT
        return
    folder = Path(tempfile.mkdtemp(prefix="compare-rev-"))
    target = folder / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(target), rev],
        check=True,
    )
    try:
        yield target
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(target)], check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


def _run(tree: Path, args: Sequence[str]) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def figures(output: str, prefix: str) -> dict[str, tuple[float, str]]:
    """Every timed figure of a benchmark's output: label -> (value, unit). The label is the
    line with its figures blanked (``#``) and the figure's position in the line."""
    out: dict[str, tuple[float, str]] = {}
    seen: dict[str, int] = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) == 8 and cells[0].isdigit() and cells[7].endswith("×"):
            # a row of the evaluator's profile-set table: profiles, decl/s, µs/decl, ...
            name = f"{prefix}: {cells[0]} profiles"
            out[f"{name}, decl/s"] = (float(cells[1].replace(",", "")), "decl/s")
            out[f"{name}, µs/decl"] = (float(cells[2]), "µs/decl")
            out[f"{name}, decl/s without the index"] = (float(cells[6].replace(",", "")), "decl/s")
            continue
        line = re.sub(r"\(target[^)]*\)|target .*$", "", line)
        if SKIP.search(line) or not FIGURE.search(line):
            continue
        blank = " ".join(FIGURE.sub(lambda m: f"#{m.group(2)}", line).split())
        occurrence = seen.get(blank, 0)
        seen[blank] = occurrence + 1
        for match in FIGURE.finditer(line):
            # the text up to this figure names it (earlier figures blanked)
            upto = FIGURE.sub(lambda m: f"#{m.group(2)}", line[: match.start()])
            label = f"{prefix}: {' '.join(upto.split()).rstrip(':')} [{match.group(2)}]"
            if occurrence:
                label += f" ({occurrence + 1})"
            out[label] = (float(match.group(1).replace(",", "")), match.group(2))
    return out


def measure(tree: Path, declarations: int, backend: str) -> dict[str, tuple[float, str]]:
    found = figures(_run(tree, ["benchmarks/bench_evaluator.py", "--quick"]), "evaluator")
    fallback = _run(
        tree,
        ["benchmarks/bench_backtest_fallback.py", "--sample", "--declarations",
         str(declarations), "--backend", backend, "--repeat", "1"],
    )  # fmt: skip
    found.update(figures(fallback, "backtest"))
    return found


def _spread(values: list[float]) -> float:
    """max / min - 1 of the rounds (0 for one round)."""
    lo = min(values)
    return max(values) / lo - 1 if lo > 0 else 0.0


def report(
    base: list[dict[str, tuple[float, str]]], head: list[dict[str, tuple[float, str]]]
) -> str:
    labels = [label for label in base[0] if all(label in run for run in base + head)]
    width = max((len(label) for label in labels), default=10)
    lines = [
        f"{'figure':<{width}}  {'base':>10}  {'head':>10}  {'head/base':>9}  {'':6}  noise b/h"
    ]
    for label in labels:
        unit = base[0][label][1]
        b = [run[label][0] for run in base]
        h = [run[label][0] for run in head]
        mb, mh = statistics.median(b), statistics.median(h)
        ratio = mh / mb if mb else float("nan")
        better = (ratio < 1) if unit in LOWER_IS_BETTER or "grows" in label else (ratio > 1)
        noise = max(_spread(b), _spread(h))
        if abs(ratio - 1) <= max(noise, 0.005):
            verdict = "noise"
        else:
            verdict = "better" if better else "worse"

        def spread(values: list[float]) -> str:
            return f"{_spread(values) * 100:.0f}%"

        lines.append(
            f"{label:<{width}}  {mb:>10.4g}  {mh:>10.4g}  {ratio:>8.3f}×  {verdict:6}  "
            f"{spread(b)}/{spread(h)}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--head", default=".", help="git revision, or . for this working tree")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each side")
    parser.add_argument("--declarations", type=int, default=2000, help="backtest benchmark size")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    base_runs: list[dict[str, tuple[float, str]]] = []
    head_runs: list[dict[str, tuple[float, str]]] = []
    with checkout(args.base) as base_tree, checkout(args.head) as head_tree:
        for n in range(args.rounds):
            for name, tree, runs in (
                ("base", base_tree, base_runs),
                ("head", head_tree, head_runs),
            ):
                print(f"round {n + 1}/{args.rounds}: {name} ({tree})", file=sys.stderr, flush=True)
                runs.append(measure(tree, args.declarations, args.backend))
    print(f"base {args.base}, head {args.head}: median of {args.rounds} interleaved rounds; "
          f"noise = max/min - 1 over the rounds")  # fmt: skip
    print(report(base_runs, head_runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
