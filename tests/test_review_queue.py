"""The review queue (``riskengine review due``), the suggested-interval rule (seed 003 §9.2) and
the ``reviews_on_time`` KPI metric, on a small registry whose dates are worked out by hand.

The registry of the tests (:func:`_registry`), all approved on 2025-01-10 and in force from
2025-02-01 to 2026-12-31:

* A ``1A/12/2025/00001`` "Undervalued footwear from China": no ``review by``; the decision log
  has 90 declarations dated 2025-04-01 on which it fired (and 10 on which nothing fired), so in
  its first 90 days in force (2025-02-01 .. 2025-05-01) it fired 90 × 30 / 90 = 30.0 times per
  30 days — exactly the edge of the 3-month band: first review due 2025-02-01 + 3 months =
  2025-05-01.
* B ``1A/12/2025/00002`` "Undervalued boots": ``review by 2025-06-30`` in its text: due then.
* C ``1A/12/2025/00003`` regional, no ``review by``, never fired but the log has decisions: 0
  per 30 days, the 12-month band: due 2025-02-01 + 12 months = 2026-02-01. Office UA100110's
  fill is valid 2025-04-01 .. 2025-06-30: its first monitoring is due 2025-04-01 + 3 months =
  2025-07-01 (§11.5), and the fill expires on 2025-06-30.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine import registry as r
from riskengine.cli import cli
from riskengine.kpi.metrics import EMPTY, compute_metric, compute_metric_each
from riskengine.kpi.periods import reporting_year
from riskengine.registry.due import due_items, on_time
from riskengine.registry.interval import (
    Band,
    Firings,
    IntervalRule,
    fired_on,
    firings,
    load_rule,
    scored,
    suggest,
)
from riskengine.store.schema import TABLES
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)

D = dt.date
A, B, C = "1A/12/2025/00001", "1A/12/2025/00002", "1A/12/2025/00003"
BOOTS = DRAFT.replace('"Undervalued footwear from China"', '"Undervalued boots"').replace(
    "    module declaration\n", "    module declaration\n    review by 2025-06-30\n"
)


def _decision(pk: int, day: dt.date, fired: list[str]) -> dict[str, Any]:
    return {
        "declaration_id": f"D{pk}",
        "bundle_revision": "1",
        "declaration_date": day,
        "as_of": day,
        "office": "UA100110",
        "regime": "IM",
        "selected": bool(fired),
        "lane": "red" if fired else "green",
        "random_selected": False,
        "fired": [
            {"key": "k", "number": n, "degree": 100, "controls": [], "items": [1]} for n in fired
        ],
        "controls": [],
        "scored_at": dt.datetime(2025, 4, 1, 12),
    }


def _registry(url: str) -> sa.Engine:
    store = new_store(url)
    for text, tests in ((DRAFT, TESTS), (BOOTS, TESTS), (REGIONAL, REGIONAL_TESTS)):
        sub = r.submit(store, text, tests=tests, backtest_run=record_backtest(store, text))
        r.approve(store, sub.pk, decision="EC-1", decided_on=D(2025, 1, 10), group="1A",
                  unit="12", in_force_from=D(2025, 2, 1), in_force_to=D(2026, 12, 31))  # fmt: skip
    fill = fill_text(f"{C}-01", "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    r.fill(store, fill, responsible=["O. Bondar", "P. Koval"], viewers=[],
           entered_on=D(2025, 3, 21))  # fmt: skip
    rows = [_decision(i, D(2025, 4, 1), [f"{A}-01"]) for i in range(90)]
    rows += [_decision(100 + i, D(2025, 4, 1), []) for i in range(10)]
    # the same declaration scored again with another bundle revision counts once
    rows.append({**_decision(0, D(2025, 4, 1), [f"{A}-01"]), "bundle_revision": "2"})
    with store.begin() as c:
        c.execute(sa.insert(TABLES.decision_log), rows)
    return store


@pytest.fixture
def store(db_url: str) -> Iterator[sa.Engine]:
    """The registry of the module's docstring on SQLite, PostgreSQL and DuckDB."""
    engine = _registry(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _queue(store: sa.Engine, day: dt.date, **kwargs: Any) -> list[tuple[str, str, Any, Any]]:
    with store.connect() as c:
        return [(x.kind, x.number, x.office, x.due) for x in due_items(c, day, **kwargs)]


# --- the interval rule -----------------------------------------------------------------------

RULE = IntervalRule(
    (Band(300, 1), Band(30, 3), Band(3, 6), Band(0, 12)), window_days=90, no_data_months=6
)


@pytest.mark.parametrize(
    ("rate", "months"),
    [(1000.0, 1), (300.0, 1), (299.99, 3), (30.0, 3), (29.9, 6), (3.0, 6), (2.99, 12),
     (0.0, 12), (None, 6)],
)  # fmt: skip
def test_the_bands_give_the_months_a_rate_at_an_edge_belongs_to_its_band(
    rate: float | None, months: int
) -> None:
    assert RULE.months(rate) == months


def test_the_shipped_rule_is_the_documented_one() -> None:
    assert load_rule() == RULE


def test_a_suggestion_counts_the_days_in_force_within_the_window() -> None:
    found = Firings(D(2025, 1, 1), D(2025, 3, 31), scored=500, fired={A: 45, B: 2})
    # in force from 2025-02-01: 59 days (Feb 28 + Mar 31); 45 × 30 / 59 = 22.9 → 6 months
    s = suggest(RULE, found, A, (D(2025, 2, 1), None))
    assert (s.count, s.days, round(s.rate or 0, 1), s.months) == (45, 59, 22.9, 6)
    assert s.describe() == (
        "6 months (45 firings in 59 days 2025-02-01 .. 2025-03-31: 22.9 per 30 days)"
    )
    # a whole quarter (90 days) of 45: 15.0 → 6; another profile that never fired: 0 → 12
    assert suggest(RULE, found, A, (D(2025, 1, 1), None)).months == 6
    assert suggest(RULE, found, C, (D(2025, 1, 1), None)).months == 12
    # the decision log holds nothing for the window: no data, 6 months
    empty = Firings(D(2025, 1, 1), D(2025, 3, 31), scored=0, fired={})
    assert suggest(RULE, empty, A, (D(2025, 1, 1), None)).describe() == (
        "6 months (no decisions logged 2025-01-01 .. 2025-03-31: no firing data)"
    )


@pytest.mark.parametrize(
    ("bands", "problem"),
    [
        ("[[band]]\nat_least = 10\nmonths = 3\n[[band]]\nat_least = 1\nmonths = 6\n",
         "the last band must start at 0"),
        ("[[band]]\nat_least = 10\nmonths = 6\n[[band]]\nat_least = 0\nmonths = 3\n",
         r"band 2: a lower firing rate cannot get a shorter interval \(3 months < 6"),
        ("[[band]]\nat_least = 0\nmonths = 6\n[[band]]\nat_least = 0\nmonths = 9\n",
         r"band 2: at_least must be lower than the band above's \(0.0\)"),
        ("[[band]]\nat_least = 0\nmonths = 0\n",
         "band 1: months must be a whole number from 1 to 120, not 0"),
    ],
)  # fmt: skip
def test_a_bad_rule_file_is_refused_with_its_reason(
    tmp_path: Path, bands: str, problem: str
) -> None:
    path = tmp_path / "rule.toml"
    path.write_text("window_days = 90\nno_data_months = 6\n" + bands, encoding="utf-8")
    with pytest.raises(r.RegistryError, match=f"^{path}: {problem}"):
        load_rule(path)
    path.write_text("window_days = 0\nno_data_months = 6\n" + bands, encoding="utf-8")
    with pytest.raises(r.RegistryError, match="window_days must be a whole number from 1 to"):
        load_rule(path)


def test_firings_are_read_from_the_decision_log(store: sa.Engine) -> None:
    with store.connect() as c:
        found = firings(c, D(2025, 4, 1), D(2025, 4, 1))
        before = firings(c, D(2025, 3, 1), D(2025, 3, 31))
        counted = [fired_on(c, n, D(2025, 4, 1), D(2025, 4, 1)) for n in (A, B, "1A/12/2025/0000")]
        total = scored(c, D(2025, 3, 1), D(2025, 4, 30))
    # 100 declarations scored (D0 twice, with two bundle revisions: once); A fired on 90
    assert (found.scored, dict(found.fired)) == (100, {A: 90})
    assert (before.scored, dict(before.fired)) == (0, {})
    # one profile at a time: A 90, B none, and no number is a prefix of another
    assert (counted, total) == ([90, 0, 0], 100)


# --- the queue -------------------------------------------------------------------------------


def test_the_queue_lists_what_is_due_within_the_window(store: sa.Engine) -> None:
    # 2025-06-20 + 30 days = 2025-07-20: A overdue (2025-05-01), B due 2025-06-30, C's fill
    # ends 2025-06-30, C's monitoring due 2025-07-01; C's review (2026-02-01) is not yet due
    assert _queue(store, D(2025, 6, 20)) == [
        ("review", A, None, D(2025, 5, 1)),
        ("review", B, None, D(2025, 6, 30)),
        ("fill expires", C, "UA100110", D(2025, 6, 30)),
        ("monitoring", C, "UA100110", D(2025, 7, 1)),
    ]
    # with a window of 5 days (to 2025-06-25): only the overdue review
    assert _queue(store, D(2025, 6, 20), within=5) == [("review", A, None, D(2025, 5, 1))]
    # one office: its monitoring and fills only
    assert _queue(store, D(2025, 6, 20), office="UA100110") == [
        ("fill expires", C, "UA100110", D(2025, 6, 30)),
        ("monitoring", C, "UA100110", D(2025, 7, 1)),
    ]
    assert _queue(store, D(2025, 6, 20), office="UA500000") == []


def test_recorded_reviews_move_the_due_dates_and_leave_follow_ups(store: sa.Engine) -> None:
    r.review(store, B, decision="keep", decided_on=D(2025, 8, 12), next_review=D(2026, 2, 12))
    r.review(store, A, decision="terminate", decided_on=D(2025, 8, 15), next_review=None)
    r.review(store, C, decision="amend", decided_on=D(2025, 7, 25), next_review=D(2025, 9, 1),
             office=None)  # fmt: skip
    r.review(store, C, decision="keep", decided_on=D(2025, 6, 30), next_review=None,
             office="UA100110")  # fmt: skip
    # 2025-08-20 + 30 = 2025-09-19. A: terminate decided, not recorded: pending. B: next
    # 2026-02-12, not due. C: amend decided 2025-07-25, no edition since: pending; its next
    # review 2025-09-01 is due. UA100110's next monitoring 2025-09-30 is after the window, and
    # its fill ended 2025-06-30 anyway (no fill valid after 2025-06-30: none due)
    assert _queue(store, D(2025, 8, 20)) == [
        ("decision", C, None, D(2025, 7, 25)),
        ("decision", A, None, D(2025, 8, 15)),
        ("review", C, None, D(2025, 9, 1)),
    ]
    assert _queue(store, D(2025, 10, 20), office="UA100110") == []
    r.terminate(store, A, decision="EC-90", decided_on=D(2025, 8, 20), last_day=D(2025, 8, 31))
    assert [x[1] for x in _queue(store, D(2025, 8, 20))] == [C, C]  # A is gone


def test_the_queue_on_the_command_line(store: sa.Engine) -> None:
    url = store.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["review", "due", "--db", url, "--as-of", "2025-06-20"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "review queue on 2025-06-20: 4 items due by 2025-07-20"
    assert lines[1].split() == ["due", "status", "kind", "profile", "office", "name"]
    # 2025-05-01 .. 2025-06-20: 30 + 20 = 50 days overdue
    assert lines[2].split()[:6] == ["2025-05-01", "overdue", "50", "days", "review", A]
    assert lines[3] == (
        "    in force from 2025-02-01 + suggested 3 months (90 firings in 90 days 2025-02-01 .. "
        "2025-05-01: 30.0 per 30 days)"
    )
    # the suggestion for the next review: the last 90 days (2025-03-23 .. 2025-06-20)
    assert lines[4] == (
        "    suggested interval to the next review: 3 months (90 firings in 90 days 2025-03-23 "
        ".. 2025-06-20: 30.0 per 30 days)"
    )
    assert lines[5].split()[:7] == ["2025-06-30", "due", "in", "10", "days", "review", B]
    assert lines[6] == f"    review by 2025-06-30 in {B}-01 (set at approval, §9.2)"
    # B never fired: 0 per 30 days, the 12-month band
    assert lines[7] == (
        "    suggested interval to the next review: 12 months (0 firings in 90 days 2025-03-23 "
        ".. 2025-06-20: 0.0 per 30 days)"
    )
    assert lines[8].split()[:8] == [
        "2025-06-30", "due", "in", "10", "days", "fill", "expires", C
    ]  # fmt: skip
    assert lines[9] == (
        "    its last fill (order 131) is valid until 2025-06-30 (§11.3: at most 3 months); the "
        "profile stays in force after it"
    )
    assert lines[10].split()[:7] == ["2025-07-01", "due", "in", "11", "days", "monitoring", C]
    assert lines[11] == ("    3 months after its first fill came into force on 2025-04-01 (§11.5)")
    result = CliRunner().invoke(
        cli, ["review", "due", "--db", url, "--as-of", "2025-06-20", "--format", "json"]
    )
    doc = json.loads(result.stdout)
    assert (doc["as_of"], doc["until"], len(doc["items"])) == ("2025-06-20", "2025-07-20", 4)
    first = doc["items"][0]
    assert (first["profile"], first["days"], first["status"], first["suggested_months"]) == (
        A, -50, "overdue", 3
    )  # fmt: skip
    assert first["firings_per_30_days"] == 30.0
    result = CliRunner().invoke(
        cli, ["review", "due", "--db", url, "--as-of", "2025-03-01", "--within", "0"]
    )
    assert result.stdout == "review queue on 2025-03-01: nothing due by 2025-03-01\n"
    result = CliRunner().invoke(cli, ["review", "due", "--db", url, "--as-of", "March"])
    assert result.exit_code == 2 and "expected a date YYYY-MM-DD, got 'March'" in result.stderr


# --- reviews on time (the KPI) ---------------------------------------------------------------


def _reviewed(store: sa.Engine) -> None:
    r.review(store, B, decision="keep", decided_on=D(2025, 8, 12), next_review=D(2026, 2, 12))
    r.review(store, A, decision="terminate", decided_on=D(2025, 8, 15), next_review=None)
    r.review(store, C, decision="keep", decided_on=D(2025, 7, 25), next_review=D(2026, 3, 1))
    r.review(store, C, decision="keep", decided_on=D(2025, 6, 30), next_review=None,
             office="UA100110")  # fmt: skip


def test_reviews_on_time_worked_by_hand(store: sa.Engine) -> None:
    _reviewed(store)
    year = reporting_year(2025)
    # due in 2025: A 2025-05-01 (decided 2025-08-15: late), B 2025-06-30 (2025-08-12: late),
    # C 2026-02-01 is not in 2025 (its review of 2025-07-25 answered a due date of 2026);
    # UA100110's monitoring 2025-07-01 (done 2025-06-30: on time); its next, 2025-09-30, is
    # not due: no fill valid after 2025-06-30. All: 1 of 3; the commission's: 0 of 2.
    with store.connect() as c:
        m = compute_metric(c, TABLES, "reviews_on_time", {}, year)
        commission = compute_metric(c, TABLES, "reviews_on_time", {"reviews": "commission"}, year)
        office = compute_metric(c, TABLES, "reviews_on_time", {}, year, "UA100110")
        each = compute_metric_each(c, TABLES, "reviews_on_time", {}, year)
        other = compute_metric(c, TABLES, "reviews_on_time", {}, year, "UA500000")
        y2026 = on_time(c, D(2026, 1, 1), D(2026, 12, 31), as_of=D(2026, 2, 5))
    assert (m.numerator, m.denominator, round(m.value or 0, 2)) == (1, 3, 33.33)
    assert (commission.numerator, commission.denominator, commission.value) == (0, 2, 0.0)
    assert (office.numerator, office.denominator, office.value) == (1, 1, 100.0)
    assert each == {"UA100110": office}
    assert other == EMPTY
    # 2026 as of 2026-02-05: C due 2026-02-01 (answered early, 2025-07-25: on time); B due
    # 2026-02-12 and C's next, 2026-03-01, are after 2026-02-05 and not recorded: not counted
    assert y2026 == {None: (1, 1)}


def test_reviews_on_time_with_no_registry_has_no_data(store: sa.Engine) -> None:
    with store.connect() as c:
        m = compute_metric(c, TABLES, "reviews_on_time", {}, reporting_year(2024))
    assert m == EMPTY  # nothing was due in 2024: no value, not 0 %
