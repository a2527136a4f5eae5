"""The production input path (issue 13): declarations per second from data and from JSON text.

    python benchmarks/bench_input_path.py                 # 9 sample profiles and 1,000 generated
    python benchmarks/bench_input_path.py --quick         # fewer declarations and rounds
    python benchmarks/bench_input_path.py --base /work/main   # another checkout too (CLI, JSON)
    python benchmarks/bench_input_path.py --sets          # the two sets only (no batches, zen)

For the 9 sample profiles (profiles/) and 1,000 generated profiles (benchmarks/gen_profiles.py),
over the same generated declarations (1-5 goods items, ~700 bytes of JSON each), one core:

* ``score(Declaration)``: pre-normalised input, the baseline of every ratio;
* ``score(dict)``, old path: ``normalise_declaration`` (every catalogue field), then score, as
  ``Engine.score(dict)`` did before issue 13; new path: the set's compiled reader;
* JSON bytes in: ``score_json``; JSON bytes in → JSON out: ``dump_json(result.to_dict())``
  beside the old way (``load_json``, ``normalise_declaration``, ``to_json``);
* ``riskengine score`` over a JSON Lines file: the command's batch loop in a child process with
  the source tree on its path (``--base DIR``: another checkout's too), after loading;
* ``score_json`` against ``score(Declaration)`` of each tree (this one and ``--base``), each in
  its own child process, the trees taking turns (one child per tree and round): the ratio of
  issue 13's target (JSON bytes ≥ 80 % of the pre-normalised speed), before and after;
* ``score_many`` beside a loop over ``score`` keeping the results in a list, and beside
  ``score_many`` with the collector left on (as before issue 13), on a batch of 100,000 dicts
  (20,000 with --quick), with the share of the time spent in the garbage collector;
* with zen-engine installed (the ``bench`` extra), the footwear profile of bench_peers.py as a zen
  compiled expression over the same dicts beside ``score(dict)``: one-item declarations (zen
  also over the bare item dict, as measured before) and full generated declarations
  (``--zen`` runs this part alone). The footwear set is fused (riskengine/evaluator/fused.py):
  ``score(dict)`` is the fused path, whose result is built when first read; the rows beside it
  give the general path (the reader's Declaration, then the profile's evaluate) and the fused
  path with the whole result read (``to_dict``). Beside them, the floor of any evaluator written
  in Python:
  the profile by hand over the dict (:func:`by_hand`: the reads with the input rule's checks and
  the degree, returning only whether it fires; no records, no result).

Times are CPU time of the process (``time.process_time``; for the CLI, of the child), the best of
several rounds in which the contenders take turns: the machine is shared, and CPU time and
interleaving keep the ratios meaningful under load. The two sets' rows are timed slice by slice
(250 declarations; the best of each slice over the rounds, summed), so that a burst of load spoils
a slice, not a contender's whole pass. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_evaluator import ONE_PROFILE  # noqa: E402
from benchmarks.gen_profiles import declarations, write_profiles  # noqa: E402
from riskengine.declaration import load_json, normalise_declaration  # noqa: E402
from riskengine.evaluator import (  # noqa: E402
    Engine,
    ProfileSet,
    native,
)
from riskengine.evaluator import engine as engine_module  # noqa: E402
from riskengine.evaluator.inputs import dump_json, json_decoder  # noqa: E402

DAY = dt.date(2024, 4, 2)


def race(runners: Mapping[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """The least CPU time of each runner over ``rounds`` rounds, taking turns in each round."""
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(rounds):
        for name, fn in runners.items():
            gc.collect()
            started = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - started)
    return best


#: Declarations per slice in :func:`race_slices`.
SLICE = 250


def race_slices(
    runners: Mapping[str, tuple[Callable[[Any], Any], Sequence[Any]]], rounds: int
) -> dict[str, float]:
    """The CPU time of each runner (a function of one declaration, and its declarations) over
    all its declarations: the least time of each slice of :data:`SLICE` declarations over
    ``rounds`` rounds, summed. In each round every slice is run by every runner in turn, so a
    burst of load from the other work on the machine spoils a few slices of one round, not a
    whole pass of one contender."""
    size = min(len(data) for _, data in runners.values())
    starts = range(0, size, SLICE)
    best = {name: [float("inf")] * len(starts) for name in runners}
    clock = time.process_time
    for _ in range(rounds):
        gc.collect()
        for k, start in enumerate(starts):
            for name, (fn, data) in runners.items():
                part = data[start : start + SLICE]
                started = clock()
                for x in part:
                    fn(x)
                spent = clock() - started
                if spent < best[name][k]:
                    best[name][k] = spent
    return {name: sum(times) for name, times in best.items()}


@contextlib.contextmanager
def collector_on() -> Iterator[None]:
    """``score_many`` as before issue 13: the garbage collector left on during the batch."""
    saved = engine_module.gc_paused
    engine_module.gc_paused = contextlib.nullcontext  # type: ignore[assignment]
    try:
        yield
    finally:
        engine_module.gc_paused = saved


#: The CLI's batch loop, run in a child process with the source tree on its path: the profiles
#: are loaded first (not timed), then ``_score_batch`` reads the JSON Lines file as
#: ``riskengine score FILE.jsonl`` does (decode each line, read, score, write a JSON line to
#: /dev/null). Prints the CPU seconds.
_CLI_CHILD = """
import contextlib, os, sys, time
from riskengine.cli.score import _NotApplied, _score_batch
from riskengine.evaluator import Engine
engine = Engine.load(sys.argv[1])
best = float("inf")
for _ in range(int(sys.argv[3])):
    with open(sys.argv[2], encoding="utf-8") as stream, open(os.devnull, "w") as out:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            started = time.process_time()
            _score_batch(engine, stream, None, False, None, "json", None, _NotApplied(engine))
            best = min(best, time.process_time() - started)
print(best)
"""


def bench_cli(
    profiles: Path, lines: Path, n: int, rounds: int, trees: Mapping[str, Path]
) -> dict[str, float]:
    """CPU seconds per declaration of the CLI's batch loop for each source tree."""
    out: dict[str, float] = {}
    for name, tree in trees.items():
        env = {**os.environ, "PYTHONPATH": str(tree)}
        version = subprocess.run(
            [sys.executable, "-c", "import riskengine; print(riskengine.__file__)"],
            env=env, cwd=tree, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert version.stdout.strip().startswith(str(tree)), version.stdout
        # in the tree's folder: `python -c` puts the working folder first on the path
        done = subprocess.run(
            [sys.executable, "-c", _CLI_CHILD, str(profiles), str(lines), str(rounds)],
            env=env, cwd=tree, capture_output=True, text=True, check=True,
        )  # fmt: skip
        out[name] = float(done.stdout.split()[-1]) / n
    return out


#: ``score(Declaration)`` and ``score_json(bytes)`` of one source tree, in a child process with
#: that tree on its path: the declarations are the lines of a JSON Lines file (normalised by the
#: tree's own ``normalise_declaration``), timed in turns slice by slice as ``race_slices`` does;
#: prints the CPU seconds of each over the whole file as JSON.
_RATIO_CHILD = """
import gc, json, sys, time
from riskengine.declaration import normalise_declaration
from riskengine.evaluator import Engine
engine = Engine.load(sys.argv[1])
with open(sys.argv[2], "rb") as stream:
    texts = stream.read().splitlines()
decls = [normalise_declaration(json.loads(t), engine.profiles.catalogue) for t in texts]
for t, d in zip(texts, decls):
    assert engine.score_json(t) == engine.score(d)
runners = {"score": (engine.score, decls), "score_json": (engine.score_json, texts)}
starts = range(0, len(texts), 250)
best = {name: [float("inf")] * len(starts) for name in runners}
for _ in range(int(sys.argv[3])):
    gc.collect()
    for k, start in enumerate(starts):
        for name, (fn, data) in runners.items():
            part = data[start : start + 250]
            started = time.process_time()
            for x in part:
                fn(x)
            best[name][k] = min(best[name][k], time.process_time() - started)
print(json.dumps({name: sum(times) for name, times in best.items()}))
"""


def bench_json_ratio(
    profiles: Path, lines: Path, n: int, rounds: int, trees: Mapping[str, Path]
) -> dict[str, tuple[float, float]]:
    """CPU seconds per declaration of ``score(Declaration)`` and ``score_json(bytes)`` of each
    tree: a child per tree and round (the trees take turns), three timed passes each, the best
    of all."""
    best = {name: (float("inf"), float("inf")) for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            done = subprocess.run(
                [sys.executable, "-c", _RATIO_CHILD, str(profiles), str(lines), "3"],
                env=env, cwd=tree, capture_output=True, text=True, check=True,
            )  # fmt: skip
            got = json.loads(done.stdout.split("\n")[-2])
            old = best[name]
            best[name] = (min(old[0], got["score"] / n), min(old[1], got["score_json"] / n))
    return best


def show(rows: list[tuple[str, float]], base: float) -> None:
    for name, seconds in rows:
        rate, micro, ratio = 1 / seconds, seconds * 1e6, base / seconds
        print(f"    {name:<52} {rate:>10,.0f}/s {micro:>8.1f} µs {ratio:>6.2f}×")


def bench_set(
    label: str,
    engine: Engine,
    profile_dir: Path,
    raws: list[dict[str, Any]],
    rounds: int,
    trees: Mapping[str, Path],
    tmp: Path,
    fast: Engine | None = None,
) -> None:
    """``fast``: the same set with ``native=True``, timed beside."""
    n = len(raws)
    catalogue = engine.profiles.catalogue
    decls = [normalise_declaration(r, catalogue) for r in raws]
    texts = [json.dumps(r, ensure_ascii=False).encode() for r in raws]
    engine.profiles.reader  # noqa: B018 - compiled before timing (once per set)
    for raw, decl, text in zip(raws[:200], decls, texts, strict=False):  # same results first
        expected = engine.score(decl)
        assert engine.score(raw) == expected == engine.score_json(text)
    selected = sum(engine.score(d).selected for d in decls) / n
    score, score_json = engine.score, engine.score_json

    def old_dict(r: Any) -> None:
        score(normalise_declaration(r, catalogue))

    def old_json(t: bytes) -> None:
        score(normalise_declaration(load_json(t), catalogue)).to_json()

    def new_json(t: bytes) -> None:
        dump_json(score_json(t).to_dict())

    runners: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]] = {
        "score(Declaration) — baseline": (score, decls),
        "score(dict), old path (normalise_declaration)": (old_dict, raws),
        "score(dict), new path (compiled reader)": (score, raws),
        "score_json(bytes)": (score_json, texts),
        "JSON bytes in → JSON out, old (json, normalise)": (old_json, texts),
        "JSON bytes in → JSON out, new (score_json, dump_json)": (new_json, texts),
    }
    if fast is not None:
        for raw, text in zip(raws[:200], texts, strict=False):
            assert fast.score(raw) == engine.score(raw) == fast.score_json(text)
        runners["native: score(dict)"] = (fast.score, raws)
        runners["native: score_json(bytes)"] = (fast.score_json, texts)
    times = race_slices(runners, rounds)
    per = {k: v / n for k, v in times.items()}
    base = per["score(Declaration) — baseline"]
    print(
        f"  {label}: {len(engine.profiles)} profiles, a reader of "
        f"{len(engine.profiles.reader.fields)} fields, {n:,} declarations "
        f"({sum(map(len, texts)) / n:.0f} bytes of JSON, "
        f"{sum(len(d.items) for d in decls) / n:.1f} items on average), {selected:.1%} selected"
    )
    print(f"    {'':<52} {'decl/s':>12} {'CPU/decl':>11} {'× base':>7}")
    show(list(per.items()), base)
    lines = tmp / "declarations.jsonl"
    lines.write_bytes(b"\n".join(texts) + b"\n")
    cli = bench_cli(profile_dir, lines, n, rounds, trees)
    show([(f"riskengine score FILE.jsonl ({name})", s) for name, s in cli.items()], base)
    print(
        f"    JSON bytes → result: {base / per['score_json(bytes)']:.0%} of the pre-normalised "
        "speed (target ≥ 80 %)"
    )
    if fast is not None:
        print(
            f"    with native=True: {base / per['native: score_json(bytes)']:.0%} of the "
            "pre-normalised speed"
        )
    for name, (own, from_json) in bench_json_ratio(profile_dir, lines, n, rounds, trees).items():
        print(
            f"    {name}, in a child: score(Declaration) {own * 1e6:.1f} µs, score_json(bytes) "
            f"{from_json * 1e6:.1f} µs: {own / from_json:.1%} of the pre-normalised speed"
        )


class GcClock:
    """CPU time spent in garbage collections (``gc.callbacks``) while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def bench_batch(label: str, engine: Engine, raws: list[dict[str, Any]], rounds: int) -> None:
    """score_many against a loop over score that keeps the results, on a large batch of dicts:
    CPU time and the part of it spent in the garbage collector."""
    score = engine.score

    def keep() -> Any:
        out = []
        for r in raws:
            out.append(score(r))
        return out

    def many_gc() -> Any:
        with collector_on():
            return engine.score_many(raws)

    runners: dict[str, Callable[[], Any]] = {
        "loop over score(dict), results kept in a list": keep,
        "score_many(dicts), collector on (before issue 13)": many_gc,
        "score_many(dicts), collector paused": lambda: engine.score_many(raws),
    }
    best: dict[str, tuple[float, float, int]] = {}
    for _ in range(rounds):
        for name, fn in runners.items():
            gc.collect()
            with GcClock() as clock:
                started = time.process_time()
                kept = fn()
                spent = time.process_time() - started
            del kept
            if name not in best or spent < best[name][0]:
                best[name] = (spent, clock.seconds, clock.collections)
    n = len(raws)
    base = best["loop over score(dict), results kept in a list"][0]
    print(f"  batches, {label}: {n:,} declarations as dicts, one call")
    print(f"    {'':<52} {'decl/s':>12} {'in GC':>11} {'× loop':>7}")
    for name, (spent, in_gc, count) in best.items():
        print(
            f"    {name:<52} {n / spent:>10,.0f}/s {in_gc / spent:>10.1%} {base / spent:>6.2f}×"
            f"   ({count} collections, {in_gc:.2f} s)"
        )


#: The footwear profile (ONE_PROFILE) as one zen-engine expression over a whole declaration:
#: the AEO exception, then any goods item reaching degree 30 (``bench_peers.ZEN`` on ``#``).
ZEN_DECLARATION = (
    "declarant.aeo != true and some(items, "
    "((startsWith(#.hs_code, '6403') or startsWith(#.hs_code, '6404')) ? 40 : 0)"
    " + (#.origin in ['CN', 'VN'] ? 30 : 0)"
    " + (#.customs_value / #.net_mass < 12.5 and #.preference != 'GSP' ? 30 : 0) >= 30)"
)


def zen_data(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The data of the zen-engine comparison (also ``bench_zen_ab.py``'s): ``n`` complete item
    dicts (as bench_peers.py's; every other one made to reach the footwear profile), the one-item
    declarations holding them, and ``n`` full generated declarations with the same change."""
    items = []
    for k, raw in enumerate(declarations(n, seed=7)):
        item = dict(raw["items"][0])
        if k % 2 == 0:
            item.update(hs_code="6403990000", origin=("CN", "VN", "TR")[k % 3])
        items.append(item)
    one_item = [{"date": "2024-04-02", "items": [item]} for item in items]
    full = declarations(n, seed=7)
    for k, raw in enumerate(full):
        for item in raw["items"]:
            if not item.get("net_mass"):  # zen divides as it is told; ours reads no ratio
                item["net_mass"] = 1.0
            if k % 2 == 0:
                item.update(hs_code="6403990000", origin=("CN", "VN", "TR")[k % 3])
    return items, one_item, full


_FOOTWEAR = ("6403", "6404")
_HIGH_RISK = frozenset(("CN", "VN"))
_NUMBERS = (int, float)


def by_hand(d: dict[str, Any]) -> bool:
    """The footwear profile written by hand over the dict, the floor of a Python evaluator:
    every read the profile needs with the input rule's type and range checks, the degree, and
    whether it reaches 30 (what zen's expression returns); nothing made, no error reported."""
    declarant = d.get("declarant")
    if declarant is not None and declarant.get("aeo") is True:
        return False
    for it in d["items"]:
        degree = 0.0
        hs = it.get("hs_code")
        if hs is not None and type(hs) is str and hs.startswith(_FOOTWEAR):
            degree += 40.0
        origin = it.get("origin")
        if origin is not None and type(origin) is str and origin in _HIGH_RISK:
            degree += 30.0
        value, mass = it.get("customs_value"), it.get("net_mass")
        if (
            type(value) in _NUMBERS
            and type(mass) in _NUMBERS
            and 0 <= value <= 1e15
            and 0 < mass <= 1e15
            and value / mass < 12.5
        ):
            preference = it.get("preference")
            if not (type(preference) is str and preference == "GSP"):
                degree += 30.0
        if degree >= 30.0:
            return True
    return False


def bench_zen(rounds: int, n: int) -> None:
    """zen-engine against ``Engine.score`` on the footwear profile, compiled once each, over the
    same dicts: the one-item declarations of before (zen also over their bare item dicts, as
    measured before issue 13's second pass) and full generated declarations (1-5 items, every
    field a clearance system sends). Both figures and the ratio come from the same run."""
    try:
        import zen
    except ImportError:
        print("  zen-engine is not installed (pip install zen-engine, the bench extra): skipped")
        return
    from benchmarks.bench_peers import ZEN

    engine = Engine(ProfileSet.load(sources={"one.rp": ONE_PROFILE}))
    items, one_item, full = zen_data(n)
    whole = zen.compile_expression(ZEN_DECLARATION)
    bare = zen.compile_expression(ZEN)
    score = engine.score
    missing = native.problem()
    if missing is None:  # the same set, its fused function compiled (loaded when kept)
        started = time.perf_counter()
        fast: Engine | None = Engine(engine.profiles, native=True)
        print(f"  Engine(native=True): compiled or loaded in {time.perf_counter() - started:.2f} s")
    else:
        fast = None
        print(f"  Engine(native=True) is not measured: {missing}")
    assert [bool(bare.evaluate(c)) for c in items] == [score(d).selected for d in one_item]
    for dicts in (one_item, full):  # the same answer from all, declaration by declaration
        assert [bool(whole.evaluate(d)) for d in dicts] == [score(d).selected for d in dicts]
        assert [by_hand(d) for d in dicts] == [score(d).selected for d in dicts]
        if fast is not None:
            assert [fast.score(d) for d in dicts] == [score(d) for d in dicts]

    def loop(fn: Callable[[Any], Any], data: Sequence[Any]) -> Callable[[], None]:
        def run() -> None:
            for x in data:
                fn(x)

        return run

    for label, dicts in (("one-item declarations", one_item), ("full declarations", full)):
        texts = [json.dumps(d).encode() for d in dicts]
        decls = [normalise_declaration(d) for d in dicts]

        def old(dicts: list[dict[str, Any]] = dicts) -> None:
            for d in dicts:
                score(normalise_declaration(d))

        runners = {"zen-engine compiled expression (the same dicts)": loop(whole.evaluate, dicts)}
        if dicts is one_item:
            runners["zen-engine, the bare item dict (as before)"] = loop(bare.evaluate, items)
        reader = engine.profiles.reader

        def general(dicts: list[dict[str, Any]] = dicts, read: Any = reader.read) -> None:
            for d in dicts:
                score(read(d))

        def read_all(dicts: list[dict[str, Any]] = dicts) -> None:
            for d in dicts:
                score(d).to_dict()

        runners.update(
            {
                "score(dict), old path (normalise_declaration)": old,
                "score(dict), general path (reader, then evaluate)": general,
                "score(dict)": loop(score, dicts),
                "score(dict), then the whole result read (to_dict)": read_all,
                "score_json(bytes)": loop(engine.score_json, texts),
                "score(Declaration)": loop(score, decls),
                "floor: the profile by hand in Python (a bool)": loop(by_hand, dicts),
            }
        )
        if fast is not None:

            def read_all_native(dicts: list[dict[str, Any]] = dicts, fast: Engine = fast) -> None:
                for d in dicts:
                    fast.score(d).to_dict()

            runners.update(
                {
                    "native: score(dict)": loop(fast.score, dicts),
                    "native: score(dict), then the whole result read": read_all_native,
                    "native: score_json(bytes)": loop(fast.score_json, texts),
                }
            )
        times = race(runners, rounds)
        zen_t = times["zen-engine compiled expression (the same dicts)"] / n
        print(
            f"  zen-engine vs riskengine, the footwear profile, {n:,} {label} "
            f"({sum(len(d['items']) for d in dicts) / n:.1f} items on average, "
            f"{sum(score(d).selected for d in dicts) / n:.0%} selected)"
        )
        print(f"    {'':<52} {'decl/s':>12} {'CPU/decl':>11} {'vs zen':>7}")
        show([(k, v / n) for k, v in times.items()], zen_t)
        print(
            f"    score(dict) is {zen_t / (times['score(dict)'] / n):.2f}× zen-engine's speed "
            "over the same dicts (target ≥ 3×); the fused path decides at once and builds "
            "the fired profiles, messages, controls and lane when the result is first read"
        )
        if fast is not None:
            print(
                f"    with native=True: {zen_t / (times['native: score(dict)'] / n):.2f}× "
                "zen-engine's speed (target ≥ 3×); the whole result read: "
                f"{zen_t / (times['native: score(dict), then the whole result read'] / n):.2f}×"
            )
        floor = times["floor: the profile by hand in Python (a bool)"] / n
        print(
            f"    3× zen leaves {zen_t / 3 * 1e6:.2f} µs a declaration; the floor takes "
            f"{floor * 1e6:.2f} µs of it, {(zen_t / 3 - floor) * 1e6:.2f} µs is left for the "
            "records, the profile index and the result"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer declarations and rounds")
    parser.add_argument("--declarations", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--base", type=Path, help="another checkout whose `riskengine score` is timed too"
    )
    parser.add_argument("--zen", action="store_true", help="only the zen-engine comparison")
    parser.add_argument("--sets", action="store_true", help="only the two profile sets")
    args = parser.parse_args()
    n = args.declarations or (2000 if args.quick else 10000)
    rounds = args.rounds or (3 if args.quick else 5)
    print(
        f"riskengine input path benchmark, {dt.date.today()}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
        f"JSON decoder {json_decoder()}"
    )
    if args.zen:
        bench_zen(rounds * 2, min(n, 3000))
        return
    trees = {"this tree": ROOT}
    if args.base is not None:
        trees[f"base {args.base}"] = args.base.resolve()
    raws = declarations(n)
    batch = 20000 if args.quick else 100000
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        samples = ROOT / "profiles"
        nine = Engine.load(samples)
        missing = native.problem()
        fast = None if missing else Engine(nine.profiles, native=True)
        bench_set("9 samples", nine, samples, raws, rounds, trees, tmp, fast)
        generated = tmp / "generated"
        write_profiles(1000, generated)
        engine = Engine.load(generated)
        bench_set("1,000 generated", engine, generated, raws, rounds, trees, tmp)
        if args.sets:
            return
        bench_batch("9 samples", Engine.load(samples), declarations(batch), 2)
        bench_batch("1,000 generated", engine, declarations(batch), 2)
    bench_zen(rounds * 2, min(n, 3000))


if __name__ == "__main__":
    main()
