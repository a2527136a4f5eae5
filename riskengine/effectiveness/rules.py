"""Recommendation rules over the results of application (keep, widen, narrow, amend, terminate),
and the seed's three questions (003 §9.3) answered with evidence.

Rules are a TOML file (the shipped default: ``riskengine/data/review_rules.toml``)::

    [[rule]]
    id = "never-fired"
    recommendation = "terminate"
    when = ["fired == 0"]
    reason = "never fired in {days} days over {decisions} declarations"

Every condition of ``when`` must hold (an empty ``when`` always holds); a condition is
``NAME OP VALUE`` with ``OP`` one of ``< <= > >= == !=`` and ``VALUE`` a number or another name
(:data:`VARIABLES`). A condition on a value that is missing (a hit rate without controls) does
not hold. Rules are tried in the file's order: the first that holds gives the recommendation,
every one that holds is reported with its reason. ``cause`` ties a rule to one of the seed's
reasons for unsatisfactory results (:data:`CAUSES`).
"""

from __future__ import annotations

import operator
import re
import string
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from riskengine.diagnostics import RiskEngineError
from riskengine.effectiveness.results import Results
from riskengine.kpi.metrics import percent
from riskengine.render.words import plural

__all__ = [
    "CAUSES",
    "RECOMMENDATIONS",
    "VARIABLES",
    "Answer",
    "Condition",
    "Review",
    "Rule",
    "RulesError",
    "default_rules_path",
    "evaluate",
    "load_rules",
    "parse_rules",
    "variables",
]

RECOMMENDATIONS = ("keep", "widen", "narrow", "amend", "terminate")

#: The seed's reasons why a profile did not bring the expected results (003 §9.3, 3).
CAUSES: Mapping[str, str] = {
    "imprecise": "the indicators were too imprecise",
    "forms_inadequate": "the control forms were not adequate to the indicators",
    "forms_not_applied": "the control units could not apply the control forms in practice",
    "period_too_short": "the period was too short",
}

#: The names a condition or a reason may use, with what they mean (percentages in per cent).
VARIABLES: Mapping[str, str] = {
    "days": "days in the period",
    "months": "months the period touches",
    "decisions": "declarations scored in the period (decision log)",
    "fired": "declarations the profile fired on",
    "selectivity": "fired / decisions, %",
    "ordered": "declarations it fired on with a control form of its own ordered",
    "carried_out": "of those, declarations where a control it ordered was carried out",
    "carried_out_share": "carried_out / ordered, %",
    "controlled": "declarations controlled at its order (control results)",
    "violations": "of those, declarations where its control found a violation",
    "hit_rate": "violations / controlled, %",
    "hit_rate_low": "the hit rate's Wilson 95 % lower bound, %",
    "hit_rate_high": "the hit rate's Wilson 95 % upper bound, %",
    "random_controlled": "controlled declarations of the random sample",
    "random_hit_rate": "the random sample's hit rate, %",
    "random_low": "its Wilson 95 % lower bound, %",
    "random_high": "its Wilson 95 % upper bound, %",
    "above_random": "1 when hit_rate_low > random_high (significantly above random), else 0",
    "below_random": "1 when hit_rate_high < random_low (significantly below random), else 0",
    "lift": "hit_rate / random_hit_rate",
    "revenue": "additional charges assessed by its controls, UAH",
    "revenue_per_control": "revenue / controlled, UAH",
    "detections": "declarations where any control found a violation in the period",
    "detection_share": "violations / detections, %",
    "overlap_share": "share of the declarations it fired on where another profile fired too, %",
    "missed": "declarations it fired on where its controls found nothing and another did",
    "missed_share": "missed / (violations + missed), %",
    "unlogged": "declarations controlled at its order on which the log shows no firing of it",
    "months_fired": "months in which it fired at least once",
    "fired_last_month": "declarations it fired on in the period's last month",
    "violations_last_month": "violations its controls found in the period's last month",
}


class RulesError(RiskEngineError):
    """A rules file that cannot be used (file, rule and key named)."""


def default_rules_path() -> Path:
    """The rules shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "data" / "review_rules.toml"


_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_CONDITION = re.compile(r"\s*([a-z_]+)\s*(<=|>=|==|!=|<|>)\s*([a-z_]+|-?\d+(?:\.\d+)?)\s*\Z")


@attrs.frozen
class Condition:
    """``name op value``: ``value`` a number or another variable's name."""

    name: str
    op: str
    value: float | str
    text: str

    def holds(self, values: Mapping[str, float | None]) -> bool:
        left = values[self.name]
        right = values[self.value] if isinstance(self.value, str) else self.value
        if left is None or right is None:
            return False
        return _OPS[self.op](left, right)


@attrs.frozen
class Rule:
    id: str
    recommendation: str
    when: tuple[Condition, ...]
    reason: str
    cause: str | None = None

    def holds(self, values: Mapping[str, float | None]) -> bool:
        return all(c.holds(values) for c in self.when)


def _condition(text: Any, where: str) -> Condition:
    if not isinstance(text, str):
        raise RulesError(f'{where}: a condition must be a string such as "fired == 0"')
    found = _CONDITION.match(text)
    if found is None:
        raise RulesError(
            f"{where}: cannot read the condition {text!r}: write NAME OP VALUE, OP one of "
            "< <= > >= == !=, VALUE a number or a name"
        )
    name, op, raw = found.groups()
    value: float | str = raw if raw[0].isalpha() or raw[0] == "_" else float(raw)
    for used in (name, value):
        if isinstance(used, str) and used not in VARIABLES:
            raise RulesError(
                f"{where}: unknown name {used!r} in {text!r} (known: {', '.join(VARIABLES)})"
            )
    return Condition(name, op, value, text.strip())


def _reason_fields(reason: str, where: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(reason) if f is not None]
    except ValueError as exc:
        raise RulesError(f"{where}: the reason cannot be read: {exc}") from None
    for name in fields:
        if name not in VARIABLES:
            raise RulesError(
                f"{where}: the reason uses {{{name}}}, which is not a known name (known: "
                f"{', '.join(VARIABLES)})"
            )


def parse_rules(data: Mapping[str, Any], source: str = "rules") -> tuple[Rule, ...]:
    """Rules from the TOML data (``[[rule]]`` tables)."""
    unknown = set(data) - {"rule"}
    if unknown:
        raise RulesError(f"{source}: unknown key {sorted(unknown)[0]!r} (expected [[rule]] tables)")
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise RulesError(f"{source}: no rules ([[rule]] tables)")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, 1):
        where = f"{source}: rule {index}"
        if not isinstance(entry, dict):
            raise RulesError(f"{where}: must be a table")
        ident = entry.get("id")
        if not isinstance(ident, str) or not ident.strip():
            raise RulesError(f"{where}: needs an id (a string)")
        where = f"{source}: rule {ident!r}"
        if ident in seen:
            raise RulesError(f"{where}: the id is used twice")
        seen.add(ident)
        extra = set(entry) - {"id", "recommendation", "when", "reason", "cause"}
        if extra:
            raise RulesError(f"{where}: unknown key {sorted(extra)[0]!r}")
        recommendation = entry.get("recommendation")
        if recommendation not in RECOMMENDATIONS:
            raise RulesError(
                f"{where}: recommendation must be one of {', '.join(RECOMMENDATIONS)}, not "
                f"{recommendation!r}"
            )
        when = entry.get("when", [])
        if not isinstance(when, list):
            raise RulesError(f"{where}: when must be a list of conditions")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise RulesError(f"{where}: needs a reason (a string)")
        _reason_fields(reason, where)
        cause = entry.get("cause")
        if cause is not None and cause not in CAUSES:
            raise RulesError(f"{where}: cause must be one of {', '.join(CAUSES)}, not {cause!r}")
        rules.append(
            Rule(ident, recommendation, tuple(_condition(c, where) for c in when), reason, cause)
        )
    return tuple(rules)


def load_rules(path: str | Path | None = None) -> tuple[Rule, ...]:
    """The rules of a TOML file (default: the shipped ones)."""
    file = Path(path) if path is not None else default_rules_path()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{file}: cannot read the rules: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{file}: not valid TOML: {exc}") from None
    return parse_rules(data, str(file))


def variables(results: Results) -> dict[str, float | None]:
    """The values rules read (:data:`VARIABLES`) for these results."""
    t = results.total
    hit, random = t.hit_rate, t.random
    hit_ci, random_ci = hit.interval, random.interval
    above = below = None
    if hit_ci is not None and random_ci is not None:
        above = 1.0 if hit_ci[0] > random_ci[1] else 0.0
        below = 1.0 if hit_ci[1] < random_ci[0] else 0.0
    lift = None
    if hit.value is not None and random.value:
        lift = hit.value / random.value
    last = results.last_month
    values: dict[str, float | None] = {
        "days": results.days,
        "months": len(results.months),
        "decisions": t.decisions,
        "fired": t.fired,
        "selectivity": t.selectivity,
        "ordered": t.ordered,
        "carried_out": t.carried_out,
        "carried_out_share": t.carried_out_share,
        "controlled": t.controlled,
        "violations": t.violations,
        "hit_rate": hit.value,
        "hit_rate_low": None if hit_ci is None else hit_ci[0],
        "hit_rate_high": None if hit_ci is None else hit_ci[1],
        "random_controlled": random.n,
        "random_hit_rate": random.value,
        "random_low": None if random_ci is None else random_ci[0],
        "random_high": None if random_ci is None else random_ci[1],
        "above_random": above,
        "below_random": below,
        "lift": lift,
        "revenue": t.revenue,
        "revenue_per_control": t.revenue / t.controlled if t.controlled else None,
        "detections": t.detections,
        "detection_share": t.detection_share,
        "overlap_share": results.overlap_share,
        "missed": results.missed,
        "missed_share": percent(results.missed, t.violations + results.missed),
        "unlogged": results.unlogged,
        "months_fired": sum(1 for m in results.months if m.fired),
        "fired_last_month": None if last is None else last.fired,
        "violations_last_month": None if last is None else last.violations,
    }
    assert values.keys() == VARIABLES.keys()
    return {k: None if v is None else float(v) for k, v in values.items()}


def shown(value: float | None) -> str:
    """A value as a reason shows it: whole numbers without decimals, others with one (two
    below 1), ``n/a`` when missing."""
    if value is None:
        return "n/a"
    if abs(value - round(value)) < 1e-9:
        value = float(round(value))
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) < 1 else f"{value:,.1f}"


@attrs.frozen
class Answer:
    """One of the seed's questions: the short answer and the evidence behind it."""

    question: str
    answer: str
    evidence: tuple[str, ...]


@attrs.frozen
class Review:
    """The rules applied to the results: the recommendation (``None``: no rule held), every rule
    that held with its reason, and the three questions answered."""

    results: Results
    values: Mapping[str, float | None]
    recommendation: str | None
    matched: tuple[tuple[Rule, str], ...]
    answers: tuple[Answer, ...]


def evaluate(results: Results, rules: Sequence[Rule]) -> Review:
    """Apply ``rules`` to ``results``."""
    values = variables(results)
    texts = {k: shown(v) for k, v in values.items()}
    matched = tuple((r, r.reason.format_map(texts)) for r in rules if r.holds(values))
    recommendation = matched[0][0].recommendation if matched else None
    return Review(
        results, values, recommendation, matched, _answers(results, values, texts, matched)
    )


def _answers(
    results: Results,
    values: Mapping[str, float | None],
    v: Mapping[str, str],
    matched: Sequence[tuple[Rule, str]],
) -> tuple[Answer, ...]:
    t = results.total
    causes: dict[str, str] = {}
    for rule, text in matched:
        if rule.cause:
            causes.setdefault(rule.cause, text)  # the first rule of a cause says why
    too_short = "period_too_short" in causes
    above = values["above_random"]
    results_line = (
        f"fired on {v['fired']} of {v['decisions']} declarations scored ({v['selectivity']} %); "
        f"controls ordered on {v['ordered']}, carried out on {v['carried_out']} "
        f"({v['carried_out_share']} %)"
    )
    hits_line = (
        f"{v['controlled']} declarations controlled at its order, {v['violations']} with a "
        f"violation: hit rate {v['hit_rate']} % [{v['hit_rate_low']}–{v['hit_rate_high']}], "
        f"random controls {v['random_hit_rate']} % [{v['random_low']}–{v['random_high']}] "
        f"over {v['random_controlled']} declarations"
    )
    revenue_line = (
        f"revenue {v['revenue']} UAH ({v['revenue_per_control']} per controlled declaration); "
        f"{v['detection_share']} % of the {v['detections']} detections of the period"
    )
    if too_short:
        reached = "cannot tell yet: " + causes["period_too_short"]
    elif above == 1.0:
        reached = "yes: the hit rate is significantly above the random-control hit rate"
    elif above == 0.0:
        reached = "no: the hit rate is not significantly above the random-control hit rate"
    elif t.fired == 0:
        reached = "no: it never fired"
    else:
        reached = "cannot tell: no hit rate to compare (no controls at its order or no random "
        reached += "controls in the period)"
    q1 = Answer("1. Did applying the profile bring the expected results?", reached,
                (results_line, hits_line, revenue_line))  # fmt: skip

    recommendation = matched[0][0].recommendation if matched else None
    last = results.last_month
    if above == 1.0 and not too_short:
        remains = (
            f"the risk remains: {plural(last.violations, 'violation')} found in the "
            f"period's last month ({last.label})" if last is not None and last.violations
            else "the risk may be gone: no violation found in the period's last month"
            + (f" ({last.label})" if last is not None else "")
        )  # fmt: skip
        scope = {
            "keep": "keep the same scope",
            "widen": "widen the scope",
            "narrow": "narrow the scope",
        }.get(recommendation or "", "")
        if not scope:
            first = matched[0][0] if matched else None
            scope = (
                f"but the rules recommend to {first.recommendation} ({first.id})"
                if first is not None else "no rule holds"
            )  # fmt: skip
        q2 = Answer("2. Are the results satisfactory?", f"yes; {scope}",
                    (remains, f"{v['overlap_share']} % of its selections were also selected by "
                     "other profiles"))  # fmt: skip
    else:
        q2 = Answer("2. Are the results satisfactory?",
                    "no" if not too_short and (above == 0.0 or t.fired == 0)
                    else "cannot tell yet", ())  # fmt: skip
    why: list[str] = []
    evidence = {
        "imprecise": f"hit rate {v['hit_rate']} % against random {v['random_hit_rate']} %, "
        f"selectivity {v['selectivity']} %",
        "forms_inadequate": f"{plural(results.missed, 'declaration')} where its controls found "
        "nothing and another found a violation",
        "forms_not_applied": f"controls carried out on {v['carried_out']} of {v['ordered']} "
        "declarations ordered",
        "period_too_short": f"{v['days']} days, {v['decisions']} declarations scored, "
        f"{v['controlled']} controlled at its order",
    }
    for cause, label in CAUSES.items():
        if cause in causes:
            why.append(f"{label}: indicated: {causes[cause]}")
        else:
            why.append(f"{label}: not indicated ({evidence[cause]})")
    q3 = Answer(
        "3. If not satisfactory, why?",
        "not applicable: the results are satisfactory"
        if above == 1.0 and not causes
        else
        ", ".join(CAUSES[c] for c in CAUSES if c in causes) or "no cause indicated by the rules",
        tuple(why),
    )  # fmt: skip
    return (q1, q2, q3)
