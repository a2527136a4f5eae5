"""The recommendation rules shipped in riskengine/data/review_rules.toml: each one on results where
it holds and on results where it does not; the rules file's errors; the three questions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from riskengine.effectiveness import (
    RulesError,
    evaluate,
    load_rules,
    parse_rules,
    variables,
)
from riskengine.effectiveness.results import Rate, Results, Slice

RULES = load_rules()


def made(
    *,
    days: int = 365,
    decisions: int = 5000,
    fired: int = 100,
    ordered: int = 100,
    carried_out: int = 90,
    controlled: int = 90,
    violations: int = 30,
    random: tuple[int, int] = (5, 100),
    detections: int = 100,
    missed: int = 0,
    last_month_violations: int = 2,
) -> Results:
    """Results with these totals (one month, the last, holding ``last_month_violations``)."""
    start = dt.date(2025, 1, 1)
    total = Slice("all", decisions, fired, ordered, carried_out, controlled, violations, 0.0,
                  detections, Rate(*random))  # fmt: skip
    last = Slice("2025-12", 0, 0, 0, 0, 0, last_month_violations, 0.0, 0, Rate(0, 0))
    return Results(
        number="1A/01/2025/00001-01", start=start, end=start + dt.timedelta(days=days - 1),
        total=total, offices=(), months=(last,), forms=(), overlap=0, overlap_with=(),
        missed=missed, unlogged=0, degrees=(), revisions=(),
    )  # fmt: skip


def held(results: Results) -> list[str]:
    return [rule.id for rule, _ in evaluate(results, RULES).matched]


# results on which each rule holds, and similar ones on which it does not; the arithmetic:
# 30 / 90 = 33.3 % [24.5-43.6] against 5 / 100 = 5 % [2.2-11.2]: significantly above random;
# 9 / 90 = 10 % [5.3-17.9] against 10 / 100 = 10 % [5.5-17.4]: not
ABOVE: dict[str, Any] = {}
NOT_ABOVE: dict[str, Any] = {"violations": 9, "random": (10, 100)}
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # never fired in 89 days: too short (90 days is not)
    ("too-short-to-fire", {"fired": 0, "days": 89}, {"fired": 0, "days": 90}),
    # never fired over 999 declarations: too few (1,000 is not)
    ("too-few-declarations", {"fired": 0, "decisions": 999}, {"fired": 0, "decisions": 1000}),
    # never fired: 0 of 5,000 declarations; fired once: not
    ("never-fired", {"fired": 0}, {"fired": 1}),
    # ordered on 10, carried out on 4 (40 % < 50 %); on 5 (50 %) is not
    ("forms-not-applied", {"ordered": 10, "carried_out": 4}, {"ordered": 10, "carried_out": 5}),
    # 19 controlled declarations are too few; 20 are not
    ("too-few-controls", {"controlled": 19, "violations": 5},
     {"controlled": 20, "violations": 5}),
    # 19 controlled random declarations are too few; 20 are not
    ("no-random-sample", {"random": (1, 19)}, {"random": (1, 20)}),
    # missed 3, found 9: 3 / 12 = 25 %; found 10: 3 / 13 = 23 %
    ("forms-inadequate", {"missed": 3, "violations": 9}, {"missed": 3, "violations": 10}),
    # above random, lift 33.3 / 5 = 6.7, selectivity 49 / 5,000 = 0.98 % (< 1); 50 is 1 %
    ("widen", {"fired": 49, "ordered": 49, "carried_out": 49},
     {"fired": 50, "ordered": 50, "carried_out": 50}),
    # not above random, selectivity 250 / 5,000 = 5 %; 249 is 4.98 %
    ("narrow", {**NOT_ABOVE, "fired": 250}, {**NOT_ABOVE, "fired": 249}),
    # not above random (10 % against 10 %); above random is not imprecise
    ("imprecise", NOT_ABOVE, ABOVE),
    # above random; not above is not kept by this rule
    ("keep", ABOVE, NOT_ABOVE),
]  # fmt: skip


@pytest.mark.parametrize("rule, holds, fails", CASES, ids=[c[0] for c in CASES])
def test_each_rule_holds_and_does_not(rule: str, holds: dict[str, Any],
                                      fails: dict[str, Any]) -> None:  # fmt: skip
    assert rule in held(made(**holds))
    assert rule not in held(made(**fails))


def test_every_shipped_rule_is_tested() -> None:
    assert sorted(r.id for r in RULES) == sorted(c[0] for c in CASES)


def test_the_first_rule_that_holds_recommends() -> None:
    # never fired over 5,000 declarations in a year: terminate
    review = evaluate(made(fired=0, ordered=0, carried_out=0, controlled=0, violations=0), RULES)
    assert review.recommendation == "terminate"
    assert review.matched[0][1] == (
        "it never fired in 365 days over 5,000 declarations scored: the risk it describes did "
        "not appear"
    )
    # a good profile: 33.3 % [24.5-43.6] against 5 % [2.2-11.2]; Wilson for 30 / 90: centre
    # (1/3 + 1.96² / 180) / (1 + 1.96² / 90) = 0.3402, half-width
    # 1.96 √(2/9 / 90 + 1.96² / 32400) / 1.0427 = 0.0956
    good = evaluate(made(), RULES)
    assert good.recommendation == "keep"
    assert [r.id for r, _ in good.matched] == ["keep"]
    assert good.matched[0][1] == (
        "its hit rate 33.3 % [24.5–43.6] is significantly above random controls' 5 % "
        "[2.2–11.2]: the expected results were reached"
    )
    # controls carried out on 4 of 10 ordered: amend, whatever its hit rate
    review = evaluate(made(ordered=10, carried_out=4), RULES)
    assert (review.recommendation, review.matched[0][0].id) == ("amend", "forms-not-applied")


def test_a_missing_value_never_satisfies_a_condition() -> None:
    # no random control: no comparison, so neither keep nor imprecise holds
    ids = held(made(random=(0, 0)))
    assert "keep" not in ids and "imprecise" not in ids
    assert variables(made(random=(0, 0)))["above_random"] is None


def test_the_three_questions() -> None:
    good = evaluate(made(), RULES).answers
    assert good[0].answer.startswith("yes: the hit rate is significantly above")
    assert good[1].answer == "yes; keep the same scope"
    assert "the risk remains: 2 violations found in the period's last month (2025-12)" in (
        good[1].evidence
    )
    assert good[2].answer == "not applicable: the results are satisfactory"
    bad = evaluate(made(**NOT_ABOVE, fired=250), RULES).answers
    assert bad[0].answer.startswith("no: the hit rate is not significantly above")
    assert bad[1].answer == "no"
    assert bad[2].answer == "the indicators were too imprecise"
    assert bad[2].evidence[0].startswith("the indicators were too imprecise: indicated: it "
                                         "selects 5 % of the declarations")  # fmt: skip
    assert (
        bad[2]
        .evidence[2]
        .startswith(
            "the control units could not apply the control forms in practice: not indicated"
        )
    )
    early = evaluate(made(controlled=10, violations=5), RULES).answers
    assert early[0].answer.startswith("cannot tell yet: only 10 declarations were controlled")
    assert early[2].answer == "the period was too short"


def test_a_rules_file_of_ones_own(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rule]]\nid = "busy"\nrecommendation = "narrow"\nwhen = ["selectivity > 1.5"]\n'
        'reason = "selects {selectivity} %"\n',
        encoding="utf-8",
    )
    (rule,) = load_rules(path)
    review = evaluate(made(fired=100), (rule,))  # 100 / 5,000 = 2 %
    assert (review.recommendation, review.matched[0][1]) == ("narrow", "selects 2 %")
    assert evaluate(made(fired=50), (rule,)).recommendation is None  # 1 %


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"recommendation": "keep", "reason": "r"}, "needs an id"),
        ({"id": "x", "recommendation": "wait", "reason": "r"}, "recommendation must be one of"),
        ({"id": "x", "recommendation": "keep", "reason": "r", "when": ["hits > 3"]},
         "unknown name 'hits'"),
        ({"id": "x", "recommendation": "keep", "reason": "r", "when": ["fired = 3"]},
         "cannot read the condition 'fired = 3'"),
        ({"id": "x", "recommendation": "keep", "reason": "r", "when": "fired > 3"},
         "when must be a list"),
        ({"id": "x", "recommendation": "keep", "reason": "{nope}"}, "uses {nope}"),
        ({"id": "x", "recommendation": "keep", "reason": "r", "cause": "bad luck"},
         "cause must be one of"),
        ({"id": "x", "recommendation": "keep", "reason": "r", "colour": "red"},
         "unknown key 'colour'"),
    ],
)  # fmt: skip
def test_rules_errors(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RulesError, match=message):
        parse_rules({"rule": [rule]}, "mine.toml")


def test_rules_file_errors(tmp_path: Path) -> None:
    twice = {"id": "a", "recommendation": "keep", "reason": "r"}
    with pytest.raises(RulesError, match="the id is used twice"):
        parse_rules({"rule": [twice, twice]})
    with pytest.raises(RulesError, match="no rules"):
        parse_rules({})
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"bad\.toml: not valid TOML"):
        load_rules(bad)
    with pytest.raises(RulesError, match="cannot read the rules"):
        load_rules(tmp_path / "missing.toml")
