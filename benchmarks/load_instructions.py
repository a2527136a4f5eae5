"""Parse, check and compile of N generated profiles, counted in CPU instructions, for two
revisions in the same run.

    python benchmarks/load_instructions.py --base f90bb42                 # vs this working tree
    python benchmarks/load_instructions.py --base f90bb42 --head HEAD --profiles 300
    python benchmarks/load_instructions.py --base f90bb42 --head HEAD --jobs 8   # runs at once

Wall-clock figures of ``Engine.load`` move by 20-40 % on a shared 2-core machine from one run to
the next; an instruction count does not (``valgrind --tool=callgrind`` counts the instructions
the interpreter executes: the same for the same code and input, whatever else runs). Each stage
is measured as the difference of two runs of one process: the imports and a warm-up load of 10
profiles, then the stage (parse; parse + check; parse + check + compile) of ``--profiles``
generated profiles (``benchmarks/bench_evaluator.profile_sources``, the profiles of figure (d)).
Prints millions of instructions per stage for base and head and the ratio head / base.
Needs ``valgrind``; takes about a minute per stage and revision for 300 profiles (each of the
eight runs far longer on a loaded machine: ``--jobs 8`` runs them all at once, the counts are
the same).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_revisions import checkout

#: The measured process: ``STAGE N`` on argv; the stage's code runs after the warm-up.
PROGRAM = """
import gc, sys
gc.disable()
from benchmarks.bench_evaluator import profile_sources
from riskengine.catalogue import default_catalogue
from riskengine.evaluator import ProfileSet
from riskengine.evaluator.engine import _check
from riskengine.syntax import parse_source

stage, n = sys.argv[1], int(sys.argv[2])
sources = profile_sources(n)
ProfileSet.load(sources=profile_sources(10))
if stage == "parse":
    {name: parse_source(text, name) for name, text in sources.items()}
elif stage == "check":
    _check(sources, default_catalogue())
elif stage == "compile":
    ProfileSet.load(sources=sources)
"""

STAGES = ("none", "parse", "check", "compile")
COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(tree: Path, stage: str, profiles: int) -> int:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", PROGRAM, stage, str(profiles)],
        cwd=tree, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{tree}: stage {stage} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def measure(tree: Path, profiles: int) -> dict[str, float]:
    """Millions of instructions of each stage alone (parse, check, compile) and in all."""
    return stages({s: instructions(tree, s, profiles) for s in STAGES})


def stages(total: dict[str, int]) -> dict[str, float]:
    """Millions of instructions per stage from the counts of the runs of :data:`STAGES`."""
    out = {
        "parse": (total["parse"] - total["none"]) / 1e6,
        "check": (total["check"] - total["parse"]) / 1e6,
        "compile": (total["compile"] - total["check"]) / 1e6,
    }
    out["parse + check + compile"] = (total["compile"] - total["none"]) / 1e6
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare with")
    parser.add_argument("--head", default=".", help="default: this working tree")
    parser.add_argument("--profiles", type=int, default=300)
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs of valgrind at once (8: all of them)"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    with checkout(args.base) as base_tree, checkout(args.head) as head_tree:
        if args.jobs > 1:
            with ThreadPoolExecutor(args.jobs) as pool:
                runs = {
                    (side, s): pool.submit(instructions, tree, s, args.profiles)
                    for side, tree in (("base", base_tree), ("head", head_tree))
                    for s in STAGES
                }
                base = stages({s: runs["base", s].result() for s in STAGES})
                head = stages({s: runs["head", s].result() for s in STAGES})
        else:
            base = measure(base_tree, args.profiles)
            head = measure(head_tree, args.profiles)
    print(f"parse + check + compile of {args.profiles} generated profiles (M instructions)")
    print(f"{'stage':<26}{'base ' + args.base:>16}{'head ' + args.head:>16}{'head / base':>13}")
    for stage in base:
        ratio = head[stage] / base[stage] if base[stage] else float("nan")
        print(f"{stage:<26}{base[stage]:>16,.0f}{head[stage]:>16,.0f}{ratio:>12.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
