"""``Engine.load`` of 1,000 profiles cold and from the load cache (issue 13: ≤ 2 s).

    python benchmarks/bench_load_cache.py              # best of 3 rounds
    python benchmarks/bench_load_cache.py --rounds 5

Two sets of 1,000 profiles, each loaded from a folder and from a signed bundle:

* *sample-sized*: copies of the nine sample profiles (profiles/, 85-106 lines each), each copy
  renumbered and renamed so that the set checks clean (what issue 13 measured at 2.96 s);
* *generated*: ``benchmarks/gen_profiles.profile_sources(1000)`` (about 21 lines each, the
  profiles of figure (d) of bench_evaluator.py).

Per set and source: **cold** (``cache=False``: parse, check, compile), **miss** (a cache folder
without the entry: a cold load that also writes the entry) and **hit** (the entry read back).
Each round runs the contenders in turn (a fresh cache folder per round for the miss, so the hit
reads the entry the miss wrote); the figures are the best wall-clock and CPU time over the
rounds, with the ratio to cold measured in the same run (on a shared machine the CPU time is
the figure to read). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import attrs  # noqa: E402

from benchmarks.gen_profiles import profile_sources  # noqa: E402
from riskengine import bundle as b  # noqa: E402
from riskengine import model as m  # noqa: E402
from riskengine.bundle.build import encode_catalogue, encode_classifier  # noqa: E402
from riskengine.bundle.fileformat import Manifest, sha256_bytes, write_bundle  # noqa: E402
from riskengine.catalogue import default_catalogue  # noqa: E402
from riskengine.evaluator import Engine  # noqa: E402
from riskengine.format import format_source  # noqa: E402
from riskengine.syntax import parse  # noqa: E402

TARGET = 2.0
NUMBER = re.compile(r"\b([0-9A-Z]{2}/\d{2}/\d{4}/)(\d{5})(-\d{2})")
TITLE = re.compile(r'^(profile [^"\n]+ ")([^"]*)(")', re.MULTILINE)


def sample_sized(n: int) -> dict[str, str]:
    """``n`` copies of the sample profiles, renumbered (sequence ``k``) and renamed."""
    samples = sorted((ROOT / "profiles").glob("*.rp"))
    out: dict[str, str] = {}
    k = 0
    while len(out) < n:
        path = samples[k % len(samples)]
        text = path.read_text(encoding="utf-8")
        text = NUMBER.sub(rf"\g<1>{k + 1:05d}\g<3>", text)
        text = TITLE.sub(rf"\g<1>\g<2> (copy {k + 1})\g<3>", text)
        out[f"c{k + 1:04d}_{path.name}"] = text
        k += 1
    return out


def write_folder(texts: dict[str, str], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def one_per_file(texts: dict[str, str]) -> list[tuple[str, str, m.Profile]]:
    """Each profile of ``texts`` as a text of its own (a bundle member is one edition): files
    of one profile as they are, the others formatted one profile each with their lists (and
    an edition approval date: a bundle holds approved editions)."""
    out = []
    for name, text in texts.items():
        sf = parse(text, name)
        if len(sf.profiles) == 1:
            out.append((name, text, sf.profiles[0]))
            continue
        for k, p in enumerate(sf.profiles):
            if p.edition_approved is None:  # a bundle holds approved editions
                p = attrs.evolve(p, edition_approved=p.approved)
            alone = format_source(attrs.evolve(sf, profiles=(p,), fills=()))
            out.append((f"{name.removesuffix('.rp')}_{k}.rp", alone, p))
    return out


def write_signed(texts: dict[str, str], path: Path, key: Path) -> Path:
    """A bundle of ``texts`` as approved editions, signed with a new key (no registry)."""
    private, public, ident = b.keygen(key)
    cat = default_catalogue()
    members = {
        "catalogue.json": encode_catalogue(cat),
        "classifiers/reasons.json": encode_classifier(cat.reasons),
    }
    editions = []
    for name, text, p in one_per_file(texts):
        data = text.encode("utf-8")
        member = f"profiles/{name}"
        members[member] = data
        assert p.in_force is not None
        editions.append(
            b.EditionEntry(str(p.number), member, sha256_bytes(data), sha256_bytes(data), False,
                           p.in_force.start, None)
        )  # fmt: skip
    manifest = Manifest(
        revision=1, created_at=dt.datetime(2025, 3, 1), created_by="os:bench",
        as_of=dt.date(2025, 3, 1), key=ident, log_entry=None, log_hash=None,
        catalogue_version=None, editions=tuple(editions), fills=(),
        members={k: sha256_bytes(v) for k, v in members.items()},
    )  # fmt: skip
    with path.open("wb") as stream:
        write_bundle(stream, manifest, members, b.load_private_key(private))
    return public


def timed(fn: Callable[[object], Engine], cache: object) -> tuple[float, float, Engine]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    engine = fn(cache)
    return time.perf_counter() - wall, time.process_time() - cpu, engine


def bench(label: str, load: Callable[[object], Engine], rounds: int, work: Path) -> None:
    best = {k: (float("inf"), float("inf")) for k in ("cold", "miss", "hit")}
    for r in range(rounds):
        folder = work / f"cache-{label}-{r}".replace(" ", "_")
        for name, cache in (("cold", False), ("miss", folder), ("hit", folder)):
            wall, cpu, engine = timed(load, cache)
            assert engine.profiles.timings.cached == (name == "hit"), name
            assert len(engine.profiles) == 1000
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            del engine
        shutil.rmtree(folder)
    cold_wall, cold_cpu = best["cold"]
    print(f"\n  {label}")
    print(f"    {'':<28}{'wall':>9}{'CPU':>9}{'÷ cold (wall)':>15}{'÷ cold (CPU)':>14}")
    for name, text in (("cold", "cold (cache=False)"), ("miss", "miss (cold + write)"),
                       ("hit", "hit (from the cache)")):  # fmt: skip
        wall, cpu = best[name]
        print(f"    {text:<28}{wall:>8.3f}s{cpu:>8.3f}s{wall / cold_wall:>14.2f}×"
              f"{cpu / cold_cpu:>13.2f}×")  # fmt: skip
    hit, hit_cpu = best["hit"]
    verdict = "met" if hit <= TARGET else "NOT met"
    print(f"    target: Engine.load ≤ {TARGET:.1f} s — hit {hit:.3f} s wall, {hit_cpu:.3f} s CPU "
          f"({verdict}); cold {cold_wall:.3f} s wall, {cold_cpu:.3f} s CPU")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"riskengine load cache benchmark, {dt.date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; best of {args.rounds}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        Engine.load(ROOT / "profiles", cache=False)  # imports and the grammar, not timed
        for label, texts in (("1,000 sample-sized profiles", sample_sized(1000)),
                             ("1,000 generated profiles", profile_sources(1000))):  # fmt: skip
            tag = label.split()[1]
            lines = sum(t.count("\n") for t in texts.values()) / 1000
            folder = write_folder(texts, work / f"{tag}-folder")
            bundle = work / f"{tag}.bundle"
            public = write_signed(texts, bundle, work / f"{tag}.key")
            print(f"\n{label}: {len(texts)} files, {lines:.0f} lines per file on average")

            def from_folder(cache: object, folder: Path = folder) -> Engine:
                return Engine.load(folder, cache=cache)  # type: ignore[arg-type]

            def from_bundle(cache: object, bundle: Path = bundle, public: Path = public) -> Engine:
                return Engine.load(bundle, public_key=public, cache=cache)  # type: ignore[arg-type]

            bench(f"{label}, Engine.load(folder)", from_folder, args.rounds, work)
            bench(f"{label}, Engine.load(bundle, public_key=…)", from_bundle, args.rounds, work)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
