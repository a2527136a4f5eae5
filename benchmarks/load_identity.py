"""Everything loading decides, written out, to compare two revisions byte for byte.

    PYTHONPATH=TREE python benchmarks/load_identity.py OUT.txt [--fuzz 300]

For each profile set — the 1,000 generated profiles of bench (d), the sample profiles with their
fills, 1,000 sample-sized copies (bench_load_cache.py) and ``--fuzz`` cases of
``benchmarks/fuzz_cases.make_case`` (seed 12; deep, wide and mutated profiles, many refused) —
writes every diagnostic of parse and check as rendered (warnings included), and for a set that
loads: per compiled module, the index plan (atoms and guards), the degree's bounds and
interval, the generated evaluating source and the generated explaining source. Run it on two
trees and ``cmp`` the outputs (loading optimisations must leave them identical); the last line
is a SHA-256 of the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from riskengine.catalogue import default_catalogue  # noqa: E402
from riskengine.checks import check_models  # noqa: E402
from riskengine.diagnostics import ProfileError  # noqa: E402
from riskengine.evaluator import ProfileSet  # noqa: E402
from riskengine.evaluator.index import degree_bounds  # noqa: E402
from riskengine.syntax import parse_source  # noqa: E402

#: ``cache=False`` where the tree has a load cache (before it, every load is cold).
NO_CACHE: dict[str, Any] = (
    {"cache": False} if "cache" in inspect.signature(ProfileSet.load).parameters else {}
)


def sets(fuzz: int) -> Iterator[tuple[str, dict[str, str]]]:
    from bench_load_cache import sample_sized
    from fuzz_cases import make_case, sample_texts
    from gen_profiles import profile_sources

    yield "generated 1000", profile_sources(1000)
    samples = {
        p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "profiles").glob("*.rp"))
    }
    samples.update(
        {f"fills/{p.name}": p.read_text(encoding="utf-8")
         for p in sorted((ROOT / "profiles" / "fills").glob("*.rp"))}
    )  # fmt: skip
    yield "samples", samples
    yield "sample-sized 1000", sample_sized(1000)
    rng = random.Random(12)
    texts = sample_texts()
    for n in range(fuzz):
        case = make_case(rng, n, texts)
        yield f"fuzz {n}: {case.what}", case.sources


def dump(name: str, sources: dict[str, str]) -> Iterator[str]:
    yield f"=== {name}"
    parsed = {k: parse_source(t, k) for k, t in sources.items()}
    diagnostics = [d for r in parsed.values() for d in r.diagnostics]
    files = [r.source for r in parsed.values() if r.source is not None]
    try:
        diagnostics += check_models(
            files, sources, default_catalogue(), complete=len(files) == len(parsed)
        )
    except Exception as exc:
        yield f"check raised {type(exc).__name__}: {exc}"
    for d in diagnostics:
        yield f"diagnostic {d.render(sources)}"
    try:
        loaded = ProfileSet.load(sources=sources, allow_drafts=True, **NO_CACHE)
    except ProfileError as exc:
        yield f"refused:\n{exc}"
        return
    except Exception as exc:
        yield f"load raised {type(exc).__name__}: {exc}"
        return
    for cp in loaded.profiles:
        variants = [cp.default] + [cp.variant(k) for k in range(len(cp.fills))]
        for v in dict.fromkeys(variants):
            yield f"--- {v.generated.filename}"
            yield f"plan {v.plan!r} guards {v.plan.guards!r}"
            bounds = degree_bounds(cp.profile, cp.lists)
            yield f"degree {bounds!r} in range {v.unit.degree_in_range}"
            yield v.generated.source
            try:
                v.explain  # noqa: B018 - generated and compiled on first use
                assert v.explain_generated is not None
                yield v.explain_generated.source
            except Exception as exc:
                yield f"explain raised {type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--fuzz", type=int, default=300)
    args = parser.parse_args()
    digest = hashlib.sha256()
    with args.out.open("w", encoding="utf-8") as out:
        for name, sources in sets(args.fuzz):
            for text in dump(name, sources):
                out.write(text + "\n")
                digest.update(text.encode("utf-8", "surrogatepass") + b"\n")
        out.write(f"sha256 {digest.hexdigest()}\n")
    print(f"{args.out}: sha256 {digest.hexdigest()}")


if __name__ == "__main__":
    main()
