"""Results of application of a profile (riskengine.effectiveness) on a small hand-made store, on
every backend: each figure is worked out by hand from the rows written by
:func:`write_review_store` (the arithmetic is in the comments)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from riskengine.effectiveness import EffectivenessError, compute_results
from riskengine.effectiveness.results import Results, months_of
from riskengine.store.schema import build_tables

D = dt.date
P = "1A/01/2025/00001-01"  # the profile under review
P2 = "1A/01/2025/00001-02"  # its next edition
Q = "2B/02/2025/00002-01"  # another profile
START, END = D(2025, 1, 1), D(2025, 3, 31)  # 90 days, three months


def entry(number: str, degree: float, *codes: tuple[str, str]) -> dict[str, Any]:
    return {
        "key": number,
        "number": number,
        "degree": degree,
        "controls": [{"code": c, "kind": k} for c, k in codes],
        "items": [1],
    }


# declaration id, revision, declaration date, as_of, office, random selected, fired entries
LOG: list[tuple[str, str, dt.date | None, dt.date, str, bool | None, list[dict[str, Any]]]] = [
    ("D1", "r1", D(2025, 1, 10), D(2025, 1, 10), "A", False,
     [entry(P, 70, ("102", "mandatory"), ("201", "if necessary"))]),
    ("D1", "r2", D(2025, 1, 10), D(2025, 1, 11), "A", False,  # rescored: counts once
     [entry(P, 75, ("102", "mandatory"))]),
    ("D2", "r1", D(2025, 1, 20), D(2025, 1, 20), "A", False,
     [entry(P, 100, ("102", "mandatory")), entry(Q, 60, ("203", "mandatory"))]),
    ("D3", "r1", D(2025, 2, 5), D(2025, 2, 5), "B", False, [entry(P, 40)]),  # no control form
    ("D4", "r1", D(2025, 2, 10), D(2025, 2, 10), "B", True, [entry(Q, 80, ("201", "mandatory"))]),
    ("D5", "r1", D(2025, 3, 1), D(2025, 3, 1), "A", True, []),
    ("D6", "r1", D(2025, 3, 15), D(2025, 3, 15), "B", None, []),
    ("D7", "r1", D(2024, 12, 31), D(2024, 12, 31), "A", False,  # before the period
     [entry(P, 70, ("102", "mandatory"))]),
    ("D8", "r1", None, D(2025, 3, 20), "B", False,  # no declaration date: as_of counts
     [entry(P, 55, ("102", "mandatory"))]),
    ("D9", "r1", D(2025, 2, 20), D(2025, 2, 20), "A", False,
     [entry(P2, 70, ("102", "mandatory"))]),
]  # fmt: skip
# pk, id, date, office (D8 was never ingested; D10 was never logged)
DECLARATIONS = [
    (1, "D1", D(2025, 1, 10), "A"), (2, "D2", D(2025, 1, 20), "A"), (3, "D3", D(2025, 2, 5), "B"),
    (4, "D4", D(2025, 2, 10), "B"), (5, "D5", D(2025, 3, 1), "A"), (6, "D6", D(2025, 3, 15), "B"),
    (7, "D7", D(2024, 12, 31), "A"), (9, "D9", D(2025, 2, 20), "A"),
    (10, "D10", D(2025, 3, 5), "A"),
]  # fmt: skip
# decl_pk, procedure, profile_key, random control, violation found, revenue
CONTROLS: list[tuple[int, str, str | None, bool, bool, float | None]] = [
    (1, "102", P, False, True, 1000.0),  # D1: its control found a violation
    (2, "102", P, False, False, None),  # D2: its control found nothing ...
    (2, "203", Q, False, True, 500.0),  # ... Q's found one: missed by its forms
    (4, "201", None, True, True, 300.0),  # D4: a random control, a hit
    (5, "201", None, False, False, None),  # D5: chosen at random in the log, clean
    (6, "103", Q, False, True, 50.0),  # D6: Q's detection
    (7, "102", P, False, True, 999.0),  # D7: 2024, outside the period
    (9, "102", P2, False, False, None),  # D9: the other edition's control, clean
    (10, "102", P, False, True, 200.0),  # D10: at its order, but no logged firing
]


def write_review_store(engine: sa.Engine) -> None:
    """The rows above, into an initialised store."""
    tables = build_tables()
    with engine.begin() as conn:
        conn.execute(
            tables.declarations.insert(),
            [{"pk": pk, "id": i, "date": d, "office": o} for pk, i, d, o in DECLARATIONS],
        )
        conn.execute(
            tables.control_results.insert(),
            [
                {
                    "pk": k, "decl_pk": p, "procedure": c, "profile_key": key,
                    "random_control": r, "violation_found": v, "revenue": rev,
                    "date": D(2025, 4, 1),
                }
                for k, (p, c, key, r, v, rev) in enumerate(CONTROLS, start=1)
            ],
        )  # fmt: skip
        conn.execute(
            tables.decision_log.insert(),
            [
                {
                    "declaration_id": i, "bundle_revision": rev, "declaration_date": day,
                    "as_of": as_of, "office": office, "regime": "40", "selected": bool(fired),
                    "lane": "red" if fired or chosen else "green", "random_selected": chosen,
                    "fired": fired,
                    "controls": [c for e in fired for c in e["controls"]],
                    "scored_at": dt.datetime(2025, 4, 1, 12, 0),
                }
                for i, rev, day, as_of, office, chosen, fired in LOG
            ],
        )  # fmt: skip


@pytest.fixture
def review_store(store: sa.Engine) -> sa.Engine:
    write_review_store(store)
    return store


def results(engine: sa.Engine, number: str = P, start: dt.date = START,
            end: dt.date = END) -> Results:  # fmt: skip
    with engine.connect() as conn:
        return compute_results(conn, build_tables(), number, start, end)


def test_results_of_one_edition(review_store: sa.Engine) -> None:
    r = results(review_store)
    t = r.total
    # scored in the period: D1 (twice, once counted) D2 D3 D4 D5 D6 D8 (as_of) D9; not D7
    assert t.decisions == 8
    # fired: D1 D2 D3 D8 (D9 fired the other edition, D7 is before the period)
    assert t.fired == 4
    assert t.selectivity == pytest.approx(100 * 4 / 8)
    # control forms ordered on D1 D2 D8 (D3 fired below every form's threshold)
    assert t.ordered == 3
    # controlled at its order in the period: D1 D2 D10 (D9 is the other edition's, D7 in 2024)
    assert t.controlled == 3
    # ordered and carried out: D1 D2 (D8 was never ingested: no control result)
    assert t.carried_out == 2
    assert t.carried_out_share == pytest.approx(200 / 3)
    # hits: D1 and D10: 2 of 3; Wilson 95 % for 2/3 is 20.77 % .. 93.85 %
    assert (t.violations, t.hit_rate.hits, t.hit_rate.n) == (2, 2, 3)
    assert t.hit_rate.value == pytest.approx(200 / 3)
    # (centre (2/3 + 1.96² / 6) / (1 + 1.96² / 3) = 0.5731, half-width
    # 1.96 √(2/9 / 3 + 1.96² / 36) / 2.2805 = 0.3654)
    interval = t.hit_rate.interval
    assert interval is not None
    assert pytest.approx((20.766, 93.851), abs=1e-3) == interval
    # the random sample: D4 (random control) and D5 (chosen at random in the log), both
    # controlled; D4 found a violation: 1 of 2, Wilson 9.45 % .. 90.55 %
    assert (t.random.hits, t.random.n) == (1, 2)
    # (centre 0.5, half-width 1.96 √(1/8 + 1.96² / 16) / (1 + 1.96² / 2) = 0.4055)
    interval = t.random.interval
    assert interval is not None
    assert pytest.approx((9.453, 90.547), abs=1e-3) == interval
    # revenue of its controls: 1000 (D1) + 0 (D2) + 200 (D10); not D7's 999
    assert t.revenue == pytest.approx(1200.0)
    # every detection of the period: D1 D2 (Q's) D4 D6 D10 = 5; its own: 2 -> 40 %
    assert t.detections == 5
    assert t.detection_share == pytest.approx(40.0)
    # overlap: of D1 D2 D3 D8, only D2 was selected by another profile (Q): 1 / 4
    assert (r.overlap, r.overlap_share, r.overlap_with) == (1, 25.0, ((Q, 1),))
    # missed by its forms: D2 (its 102 clean, Q's 203 found a violation)
    assert r.missed == 1
    # controlled at its order without a logged firing: D10
    assert r.unlogged == 1
    # forms: 102 ordered on D1 D2 D8, carried out on D1 D2; 201 ordered on D1, never carried out
    assert [(f.code, f.kind, f.ordered, f.carried_out) for f in r.forms] == [
        ("102", "mandatory", 3, 2),
        ("201", "if necessary", 1, 0),
    ]
    # degrees: D1 the higher of its two decisions (75), D2 100, D3 40, D8 55
    assert r.degrees == ((40.0, 1), (55.0, 1), (75.0, 1), (100.0, 1))
    assert r.revisions == ("r1", "r2")
    assert r.days == 90
    assert "not which indicators were true" in r.indicator_note


def test_results_by_office(review_store: sa.Engine) -> None:
    r = results(review_store)
    a, b = r.offices
    assert (a.label, b.label) == ("office A", "office B")
    # A: scored D1 D2 D5 D9; fired D1 D2; controlled D1 D2 D10; hits D1 D10; revenue 1200;
    #    detections D1 D2 D10; random sample D5 (clean)
    assert (a.decisions, a.fired, a.ordered, a.carried_out) == (4, 2, 2, 2)
    assert (a.controlled, a.violations, a.revenue, a.detections) == (3, 2, 1200.0, 3)
    assert (a.random.hits, a.random.n) == (0, 1)
    # B: scored D3 D4 D6 D8; fired D3 D8; ordered D8, never controlled; detections D4 D6;
    #    random sample D4 (a hit)
    assert (b.decisions, b.fired, b.ordered, b.carried_out) == (4, 2, 1, 0)
    assert (b.controlled, b.violations, b.revenue, b.detections) == (0, 0, 0.0, 2)
    assert (b.random.hits, b.random.n) == (1, 1)
    assert b.hit_rate.value is None and b.detection_share == 0.0


def test_results_by_month(review_store: sa.Engine) -> None:
    r = results(review_store)
    assert [m.label for m in r.months] == ["2025-01", "2025-02", "2025-03"]
    jan, feb, mar = r.months
    # January: D1 D2 scored and fired, both controlled, D1 a hit; detections D1 D2
    assert (jan.decisions, jan.fired, jan.controlled, jan.violations, jan.detections) == (
        2, 2, 2, 1, 2)  # fmt: skip
    # February: D3 D4 D9 scored; D3 fired without forms; D4 a random hit
    assert (feb.decisions, feb.fired, feb.ordered, feb.controlled, feb.detections) == (
        3, 1, 0, 0, 1)  # fmt: skip
    assert (feb.random.hits, feb.random.n) == (1, 1)
    # March: D5 D6 D8 scored; D8 fired; D10 controlled at its order, a hit of 200
    assert (mar.decisions, mar.fired, mar.controlled, mar.violations, mar.revenue) == (
        3, 1, 1, 1, 200.0)  # fmt: skip
    assert mar.detections == 2  # D6 D10
    # the months add up to the period
    assert sum(m.fired for m in r.months) == r.total.fired
    assert sum(m.decisions for m in r.months) == r.total.decisions


def test_every_edition_of_a_number(review_store: sa.Engine) -> None:
    # without the edition suffix: -01 and -02 together; D9 (edition -02) joins
    r = results(review_store, "1A/01/2025/00001")
    t = r.total
    assert (t.fired, t.ordered) == (5, 4)  # D1 D2 D3 D8 D9; forms on D1 D2 D8 D9
    assert (t.controlled, t.carried_out, t.violations) == (4, 3, 2)  # D9 clean
    # another number shares nothing with it
    assert results(review_store, "1A/01/2025/0000").total.fired == 0


def test_a_period_without_data(review_store: sa.Engine) -> None:
    r = results(review_store, P, D(2023, 1, 1), D(2023, 1, 31))
    assert (r.total.decisions, r.total.fired, r.total.controlled) == (0, 0, 0)
    assert r.total.hit_rate.value is None and r.total.hit_rate.interval is None
    assert r.overlap_share is None and r.degrees == ()


def test_bad_input_is_a_clear_error(review_store: sa.Engine) -> None:
    with pytest.raises(EffectivenessError, match=r"ends .* before it starts"):
        results(review_store, P, END, START)
    with pytest.raises(EffectivenessError, match="number is empty"):
        results(review_store, "  ")


def test_a_store_without_a_decision_log(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with pytest.raises(EffectivenessError, match="no decision log"):
        results(engine)


def test_months_of_a_period() -> None:
    assert months_of(D(2024, 11, 15), D(2025, 2, 1)) == ["2024-11", "2024-12", "2025-01",
                                                         "2025-02"]  # fmt: skip


def test_a_draft_is_found_by_its_name_whatever_it_holds(store: sa.Engine) -> None:
    # a draft's key is its name; this one holds a quote, a backslash and LIKE's wildcards, which
    # the log's JSON escapes and the LIKE must not read as patterns
    name = 'Boots "50%_off" \\ cheap'
    other = 'Boots "50XYoff" \\ cheap'  # what an unescaped % and _ would match
    tables = build_tables()
    rows = [
        ("E1", [{"key": name, "number": None, "degree": 100.0, "controls": [], "items": [1]}]),
        ("E2", [{"key": other, "number": None, "degree": 100.0, "controls": [], "items": [1]}]),
        ("E3", []),
    ]
    with store.begin() as conn:
        conn.execute(
            tables.decision_log.insert(),
            [
                {
                    "declaration_id": ident, "bundle_revision": "1",
                    "declaration_date": D(2025, 1, 5), "as_of": D(2025, 1, 5), "office": "A",
                    "selected": bool(fired), "lane": "red" if fired else "green",
                    "random_selected": None, "fired": fired, "controls": [],
                    "scored_at": dt.datetime(2025, 1, 5),
                }
                for ident, fired in rows
            ],
        )  # fmt: skip
    r = results(store, name)
    # 3 declarations scored; only E1 fired this draft (E2's name differs where % and _ stand)
    assert (r.total.decisions, r.total.fired, r.total.ordered) == (3, 1, 0)
    assert r.degrees == ((100.0, 1),)
