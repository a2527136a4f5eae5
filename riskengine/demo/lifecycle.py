"""The demo's last step: the README's first profile from draft to the signed approved-set bundle.

The draft is the README's tutorial profile ("Cheap footwear from Asia") with the passport fields
a numbered profile needs (validity, module, spheres, filling, contact); its unit tests are one
case. The step backtests it on the demo store (the recorded run is the submission's evidence),
submits it, records the commission's approval, builds and signs the bundle with a demo key, and
scores a demo declaration from the bundle the way the clearance software would
(``Engine.load(bundle, public_key=...)``). Run again, it reuses the approved profile and the key
and builds the next revision of the bundle.

On a laptop store there are no access roles unless someone grants them (docs/registry.md): the
local user acts as the risk unit, the commission's secretary and the deployer in turn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

__all__ = ["DRAFT", "DRAFT_NAME", "TESTS", "LifecycleSummary", "draft_to_bundle"]

DRAFT_NAME = "Cheap footwear from Asia"

DRAFT = f"""\
# The README's first profile, with the passport fields an approved profile needs.
profile draft "{DRAFT_NAME}" {{
    in force 2025-02-01 .. 2025-12-31
    module declaration
    spheres 101
    filling central by "Customs value unit"

    indicators {{
        footwear: item.hs_code starts with ("6403", "6404")
        asian: item.origin in ("CN", "VN")
        cheap: item.customs_value / item.net_mass < 400
    }}

    degree = 40 * footwear + 30 * asian + 30 * cheap

    message "Check the declared value of {{item.hs_code}} ({{item.origin}})"

    controls {{
        102 "Documentary check"   mandatory            from 100
        201 "Physical inspection" mandatory when cheap from 100
    }}

    contact "Demo analyst" phone "+380 44 000 0000"
}}
"""

TESTS = """\
[[case]]
name = "cheap Chinese boots"
as_of = 2025-05-05
fires = true
degree = 100

[case.declaration]
id = "D1"

[[case.declaration.items]]
hs_code = "6403990000"
origin = "CN"
customs_value = 1000
net_mass = 10

[[case]]
name = "Chinese boots at a normal price"
as_of = 2025-05-05
fires = false

[case.declaration]
id = "D2"

[[case.declaration.items]]
hs_code = "6403990000"
origin = "CN"
customs_value = 10000
net_mass = 10
"""

DECIDED_ON = dt.date(2025, 1, 10)
IN_FORCE = (dt.date(2025, 2, 1), dt.date(2025, 12, 31))
AS_OF = dt.date(2025, 3, 1)


@attrs.frozen
class LifecycleSummary:
    """What the step did, for the demo's output."""

    draft: Path
    run_id: int | None
    selected: int
    considered: int
    submission: int | None  # None: the profile was approved by an earlier demo run
    number: str
    bundle: Path
    revision: int
    editions: int
    key_id: str
    scored: str | None  # the declaration scored from the bundle
    lane: str | None
    fired: tuple[str, ...]


def _approved_number(store: sa.Engine, name: str) -> str | None:
    """The edition number in force on the bundle's date of the approved profile called ``name``,
    if an earlier run made it (the registry's own list decides)."""
    from riskengine.registry.casefile import profiles

    with store.connect() as connection:
        if not sa.inspect(connection).has_table("profiles"):
            return None
        for line in profiles(connection, AS_OF):
            if line.name == name and line.state == "approved" and line.edition != "-":
                return line.edition
    return None


def draft_to_bundle(
    store: sa.Engine,
    folder: Path,
    declarations: Callable[[], Iterable[Mapping[str, Any]]],
) -> LifecycleSummary:
    """Backtest, submit, approve, bundle and score the tutorial draft on the demo store; the
    files (draft, tests, key pair, bundle) go into ``folder``. ``declarations``: the demo's raw
    declarations, for the one scored from the bundle."""
    from riskengine import bundle as b
    from riskengine import registry as r
    from riskengine.backtest.run import BacktestOptions, planned_from, run_backtest
    from riskengine.bundle.keys import public_key_path
    from riskengine.checks import load_checked
    from riskengine.evaluator import Engine
    from riskengine.store.schema import build_tables
    from riskengine.store.source import native_source

    folder.mkdir(parents=True, exist_ok=True)
    draft, tests = folder / "first.rp", folder / "first.test.toml"
    draft.write_text(DRAFT, encoding="utf-8")
    tests.write_text(TESTS, encoding="utf-8")

    checked = load_checked({str(draft): DRAFT})
    options = BacktestOptions(dt.date(2024, 1, 1), dt.date(2025, 12, 31))
    with store.connect() as connection:
        result = run_backtest(
            connection, native_source(build_tables()), planned_from(checked), options
        )
    (figures,) = result.profiles
    submission: int | None = None
    number = _approved_number(store, DRAFT_NAME)
    if number is None:
        sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=result.run_id, file=str(draft))
        submission = sub.pk
        edition = r.approve(
            store, sub.pk, decision="DEMO-1", decided_on=DECIDED_ON, group="1A", unit="12",
            in_force_from=IN_FORCE[0], in_force_to=IN_FORCE[1],
        )  # fmt: skip
        number = edition.number

    key = folder / "deploy.key"
    if not key.exists():
        b.keygen(key)
    built = b.build(store, AS_OF, key, folder / "approved.bundle")
    engine = Engine.load(built.path, public_key=public_key_path(key))
    scored_id: str | None = None
    lane: str | None = None
    fired: tuple[str, ...] = ()
    for raw in declarations():
        when = dt.date.fromisoformat(str(raw["date"]))
        if when < IN_FORCE[0]:
            continue
        score = engine.score(raw)
        if score.fired:
            scored_id, lane = score.declaration_id, str(score.lane)
            fired = tuple(f"{f.number} (degree {f.degree:g})" for f in score.fired)
            break
    return LifecycleSummary(
        draft=draft,
        run_id=result.run_id,
        selected=figures.total.selected,
        considered=result.considered,
        submission=submission,
        number=number,
        bundle=built.path,
        revision=built.revision,
        editions=len(built.manifest.editions),
        key_id=built.manifest.key,
        scored=scored_id,
        lane=lane,
        fired=fired,
    )
