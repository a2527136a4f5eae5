"""One rule for choosing a regional fill: the evaluator, ``regional.fill_for`` and the SQL
backtest choose the same fill for every office and date.

On SQLite, PostgreSQL and DuckDB. Hypothesis draws fills of a few offices with validity ranges
that overlap, touch, leave gaps or share a start (overlaps are what ``check`` rejects as RE411;
the rule must still be one), and declarations of those offices (and of an office without
fills) on days around them. Each fill sets ``region.k`` to its own number and the profile's
degree is ``region.k``, so the degree the evaluator and the SQL backtest report names the fill
each one chose.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.backtest.pushdown import PlannedProfile, declaration_query, plan
from riskengine.evaluator import CompiledProfile
from riskengine.regional import fill_for
from riskengine.semantics.fills import applies, choose, fills_of
from riskengine.store.schema import build_tables
from riskengine.syntax import parse
from tests.backtest_store import write_store

NUMBER = "1A/20/2023/00005-01"
PROFILE = f"""
profile {NUMBER} "Degree of the fill in use" {{
    filling regional by "Unit"
    regional {{ k: number "the fill's own number" }}
    degree = region.k
    controls {{ 102 "Documentary check" mandatory from 1 }}
}}
"""
BASE = dt.date(2024, 1, 1)
OFFICES = ("UA100110", "UA500110", "UA209140")
OTHER_PROFILE = "1A/20/2023/00006-01"


def _fill(number: str, office: str, start: dt.date, end: dt.date, k: int) -> str:
    return f"""
fill for {number} {{
    office {office}
    order "{k}" of {start.isoformat()}
    valid {start.isoformat()} .. {end.isoformat()}
    values {{ k = {k} }}
}}
"""


@st.composite
def fill_sets(draw: st.DrawFn) -> tuple[m.Profile, tuple[m.Fill, ...]]:
    """A profile and 0–7 fills: each of a random office, starting on one of a few days (so
    starts coincide) and lasting 1–40 days (so ranges overlap, touch and leave gaps); some for
    another profile, which must never be chosen."""
    text = PROFILE
    for k in range(1, draw(st.integers(0, 7)) + 1):
        office = draw(st.sampled_from(OFFICES[:2]))
        start = BASE + dt.timedelta(days=draw(st.sampled_from((0, 5, 10, 20, 30))))
        end = start + dt.timedelta(days=draw(st.integers(0, 40)))
        number = OTHER_PROFILE if draw(st.integers(0, 9)) == 0 else NUMBER
        text += _fill(number, office, start, end, k)
    source = parse(text)
    return source.profiles[0], source.fills


def _k(fill: m.Fill) -> float:
    """The fill's own number, ``region.k``."""
    (value,) = fill.values
    assert isinstance(value.value, m.NumberLit)
    return float(value.value.value)


DAYS = st.integers(-3, 75).map(lambda d: BASE + dt.timedelta(days=d))
DECLARATIONS = st.lists(st.tuples(st.sampled_from(OFFICES), DAYS), min_size=1, max_size=12)


def _by_the_doc(fills: tuple[m.Fill, ...], office: str, day: dt.date) -> int | None:
    """docs/semantics.md#regional-profiles read literally: the profile's fills of the office
    valid on the day; of several, the one starting last, then the one given last."""
    valid = [
        k
        for k, f in enumerate(fills)
        if str(f.profile) == NUMBER
        and f.office == office
        and f.valid is not None
        and f.valid.start <= day <= (f.valid.end or dt.date.max)
    ]
    if not valid:
        return None
    return max(valid, key=lambda k: (fills[k].valid.start, k))  # type: ignore[union-attr]


def _empty(engine: sa.Engine) -> None:
    """The store's tables in ``engine``, without rows (one database serves every example)."""
    tables = build_tables()
    tables.metadata.create_all(engine)
    for table in (tables.control_results, tables.items, tables.declarations):
        with engine.begin() as conn:  # one at a time: DuckDB checks foreign keys per statement
            conn.execute(table.delete())


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(drawn=fill_sets(), decls=DECLARATIONS)
def test_evaluator_api_and_sql_choose_the_same_fill(
    engine: sa.Engine,
    drawn: tuple[m.Profile, tuple[m.Fill, ...]],
    decls: list[tuple[str, dt.date]],
) -> None:
    profile, fills = drawn
    own = fills_of(profile, fills)
    cp = CompiledProfile(profile, fills=fills)
    assert cp.fills == own

    # the SQL backtest, one declaration per (office, day); its degree names the fill it chose
    dialect = engine.dialect.name
    _empty(engine)
    rows = [(pk, f"D{pk}", day, office) for pk, (office, day) in enumerate(decls, start=1)]
    items = [(pk, 1, "CN", 100.0, 10.0) for pk, *_ in rows]
    source = write_store(engine, rows, items, [], BASE)
    (planned,) = plan([PlannedProfile(profile.key, profile, own)], dialect)
    assert planned.pushdown, planned.reason
    query, _codes = declaration_query(
        source, [planned], BASE - dt.timedelta(days=10), BASE + dt.timedelta(days=80), dialect
    )
    with engine.connect() as conn:
        sql = {r.decl_id: r.p0_best for r in conn.execute(query)}

    for pk, (office, day) in enumerate(decls, start=1):
        expected = _by_the_doc(fills, office, day)
        chosen = None if expected is None else fills[expected]
        # the evaluator
        k = cp.fill_for(office, day)
        assert (None if k is None else cp.fills[k]) is chosen
        assert cp.offices_on(day).get(office) == k
        scored = cp.evaluate({"office": office, "date": day, "items": [{}]}, day)
        want = None if chosen is None else _k(chosen)
        assert (None if scored is None else float(scored.degree)) == want
        # the API
        assert fill_for(profile, fills, office, day) is chosen
        # the SQL backtest
        assert sql[f"D{pk}"] == want


def test_a_later_start_wins_over_an_earlier_overlapping_fill_and_a_tie_goes_to_the_later_one() -> (
    None
):
    day = dt.date(2024, 2, 10)
    text = (
        PROFILE
        + _fill(NUMBER, "UA100110", dt.date(2024, 1, 1), dt.date(2024, 3, 31), 1)
        + _fill(NUMBER, "UA100110", dt.date(2024, 2, 1), dt.date(2024, 2, 29), 2)
        + _fill(NUMBER, "UA100110", dt.date(2024, 2, 1), dt.date(2024, 2, 15), 3)
    )
    source = parse(text)
    fills = source.fills
    assert [applies(f, "UA100110", day) for f in fills] == [True, True, True]
    assert choose(fills, "UA100110", day) == 2  # starts last, given last
    assert fill_for(source.profiles[0], fills, "UA100110", day) is fills[2]  # not the first
    assert choose(fills, "UA100110", dt.date(2024, 2, 20)) == 1  # the third has ended
    assert choose(fills, "UA100110", dt.date(2024, 3, 20)) == 0  # only the first is valid
    assert choose(fills, "UA500110", day) is None
    assert choose(fills, None, day) is None


def test_a_fill_of_another_edition_does_not_belong_to_the_profile() -> None:
    text = PROFILE + _fill("1A/20/2023/00005-02", "UA100110", BASE, BASE, 1)
    source = parse(text)
    (profile,) = source.profiles
    assert fills_of(profile, source.fills) == ()
    assert fill_for(profile, source.fills, "UA100110", BASE) is None
