"""Bundle rebuild and load times (seed 003 §11.4: a fill reaches the clearance software within an
hour): the registry of the sample profiles (their fills entered), then one more fill entered and
the bundle rebuilt; the same for a registry of N generated editions; and, in the same run,
loading the approved set from the bundle (verify, check, compile) against loading the same texts
from a folder (check, compile), with the ratio.

    python benchmarks/bench_bundle.py               # the sample profiles and 300 editions
    python benchmarks/bench_bundle.py --editions 0  # the sample profiles only

The registries are filled through the registry's API (submit with a trivial unit test and one
recorded backtest run, approve, fill), in SQLite files in a temporary folder; filling 300
editions takes a few minutes and is not part of the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen_profiles import profile_sources  # noqa: E402

from riskengine import bundle as b  # noqa: E402
from riskengine import registry as r  # noqa: E402
from riskengine.backtest.run import profile_sha256  # noqa: E402
from riskengine.evaluator import Engine  # noqa: E402
from riskengine.format import format_source  # noqa: E402
from riskengine.store.engine import connect  # noqa: E402
from riskengine.store.migrate import init  # noqa: E402
from riskengine.store.schema import TABLES  # noqa: E402
from riskengine.syntax import parse  # noqa: E402

AS_OF = dt.date(2025, 3, 1)
DECIDED = dt.date(2025, 1, 10)
START, END = dt.date(2025, 2, 1), dt.date(2026, 12, 31)
#: One case every profile passes: a declaration without goods fires nothing.
TESTS = """\
[[case]]
name = "no goods, no hit"
as_of = 2025-06-02
fires = false

[case.declaration]
id = "D0"
"""


def drafts(files: dict[str, str]) -> list[str]:
    """Each profile of ``files`` as a draft text of its own (number and approval dates taken
    out; the file's named lists kept)."""
    out = []
    for name, text in files.items():
        sf = parse(text, name)
        for p in sf.profiles:
            draft = attrs.evolve(
                p, number=None, approved=None, edition_approved=None, edition_in_force=None
            )
            out.append(format_source(attrs.evolve(sf, profiles=(draft,), fills=())))
    return out


def record_run(store: sa.Engine, texts: list[str]) -> int:
    """One finished backtest run listing every text's canonical hash (as the backtest records)."""
    hashes = {}
    for text in texts:
        for p in parse(text, "profile.rp").profiles:
            hashes[p.key] = profile_sha256(p)
    now = dt.datetime(2025, 1, 1, 12)
    with store.begin() as connection:
        connection.execute(
            sa.insert(TABLES.backtest_runs),
            {"pk": 1, "started_at": now, "finished_at": now, "engine": "sqlite",
             "profile_hashes": hashes},
        )  # fmt: skip
    return 1


def fill_registry(url: str, texts: list[str]) -> tuple[sa.Engine, dict[str, str]]:
    """A store whose registry holds ``texts`` approved (edition 01 each); returns the store and
    the numbers by name."""
    init(url)
    store = connect(url)
    run = record_run(store, texts)
    numbers: dict[str, str] = {}
    for text in texts:
        sub = r.submit(store, text, tests=TESTS, backtest_run=run)
        ed = r.approve(
            store, sub.pk, decision=f"EC-{sub.pk}", decided_on=DECIDED, group="1A", unit="12",
            in_force_from=START, in_force_to=END,
        )  # fmt: skip
        numbers[sub.name] = ed.number
    return store, numbers


def sample_fills(number: str) -> list[str]:
    """The sample fills valid while the edition is in force, for its new number."""
    out = []
    for path in sorted((ROOT / "profiles" / "fills").glob("*.rp")):
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"^fill for .*?^}\n", text, re.M | re.S):
            valid = re.search(r"valid (\d{4}-\d\d-\d\d) \.\. (\d{4}-\d\d-\d\d)", block)
            assert valid is not None
            first, last = dt.date.fromisoformat(valid[1]), dt.date.fromisoformat(valid[2])
            if first >= START and last <= END:
                out.append(re.sub(r"^fill for \S+", f"fill for {number}", block))
    return out


def enter(store: sa.Engine, fill: str) -> None:
    order = re.search(r'order "[^"]*" of (\d{4}-\d\d-\d\d)', fill)
    assert order is not None
    r.fill(store, fill, responsible=["O. Kovalenko", "I. Shevchenko"], viewers=[],
           entered_on=dt.date.fromisoformat(order[1]) + dt.timedelta(days=1))  # fmt: skip


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The best and the median of ``repeat`` timings of ``fn`` (seconds)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def export(store: sa.Engine, folder: Path, bundle: Path, public: Path) -> None:
    """The bundle's editions and fills as a folder (the same texts, for the folder load)."""
    found = b.read_bundle(bundle, public)
    folder.mkdir()
    for name, data in found.members.items():
        if name.endswith(".rp"):
            (folder / name.replace("/", "_")).write_bytes(data)


def measure(label: str, store: sa.Engine, work: Path, extra_fill: str | None, repeat: int) -> None:
    private, public, _ = b.keygen(work / f"{label}.key")
    target = work / f"{label}.bundle"
    first = b.build(store, AS_OF, private, target)
    m = first.manifest
    size = target.stat().st_size
    print(f"\n{label}: {len(m.editions)} editions, {len(m.fills)} fills, bundle {size:,} bytes")
    if extra_fill is not None:
        enter(store, extra_fill)
    # the rebuild after a fill: each call is a new revision, recorded in the log
    build_best, build_median = best(lambda: b.build(store, AS_OF, private, target), repeat)
    after = b.read_bundle(target, public).manifest
    what = "rebuild after a fill" if extra_fill else "rebuild"
    print(f"  {what} (revision {after.revision}, {len(after.fills)} fills): "
          f"best {build_best:.3f} s, median {build_median:.3f} s")  # fmt: skip
    folder = work / f"{label}-folder"
    export(store, folder, target, public)
    bundle_best, bundle_median = best(lambda: Engine.from_bundle(target, public), repeat)
    folder_best, folder_median = best(lambda: Engine.load(folder), repeat)
    print(f"  load from the bundle (verify, check, compile): best {bundle_best:.3f} s, "
          f"median {bundle_median:.3f} s")  # fmt: skip
    print(f"  load from a folder of the same texts (check, compile): best {folder_best:.3f} s, "
          f"median {folder_median:.3f} s")  # fmt: skip
    print(f"  bundle / folder (best): {bundle_best / folder_best:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editions", type=int, default=300, help="generated editions (0: none)")
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        samples = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "profiles").glob("*.rp")}
        started = time.perf_counter()
        store, numbers = fill_registry(f"sqlite:///{work / 'samples.db'}", drafts(samples))
        regional = numbers[
            "Regional monitoring of low unit prices of goods chosen by the customs office"
        ]
        fills = sample_fills(regional)
        for fill in fills[:-1]:
            enter(store, fill)
        print(f"sample registry filled in {time.perf_counter() - started:.1f} s "
              f"({len(numbers)} profiles, {len(fills) - 1} fills)")  # fmt: skip
        try:
            measure("sample profiles", store, work, fills[-1], args.repeat)
        finally:
            store.dispose()
        if args.editions:
            started = time.perf_counter()
            texts = drafts(profile_sources(args.editions))[: args.editions]
            store, _ = fill_registry(f"sqlite:///{work / 'many.db'}", texts)
            print(
                f"\n{len(texts)} generated editions filled in {time.perf_counter() - started:.1f} s"
            )
            try:
                measure(f"{len(texts)} editions", store, work, None, args.repeat)
            finally:
                store.dispose()


if __name__ == "__main__":
    main()
