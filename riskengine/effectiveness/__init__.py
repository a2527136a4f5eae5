"""Effectiveness control of risk profiles (seed 003 §9): the results of application of a profile
over a period from the decision log and the control results, recommendation rules (keep, widen,
narrow, amend, terminate) and the seed's three questions answered (``docs/effectiveness.md``).

    with engine.connect() as conn:
        results = compute_results(conn, build_tables(), "2A/08/2013/00117-04", start, end)
    review = evaluate(results, load_rules())
    print(report_text(review))
"""

from riskengine.effectiveness.render import report_html, report_text
from riskengine.effectiveness.results import (
    INDICATOR_NOTE,
    EffectivenessError,
    FormFigures,
    IndicatorFiring,
    Rate,
    Results,
    Slice,
    compute_results,
    with_registry,
)
from riskengine.effectiveness.rules import (
    CAUSES,
    RECOMMENDATIONS,
    VARIABLES,
    Review,
    Rule,
    RulesError,
    default_rules_path,
    evaluate,
    load_rules,
    parse_rules,
    variables,
)

__all__ = [
    "CAUSES",
    "INDICATOR_NOTE",
    "RECOMMENDATIONS",
    "VARIABLES",
    "EffectivenessError",
    "FormFigures",
    "IndicatorFiring",
    "Rate",
    "Results",
    "Review",
    "Rule",
    "RulesError",
    "Slice",
    "compute_results",
    "default_rules_path",
    "evaluate",
    "load_rules",
    "parse_rules",
    "report_html",
    "report_text",
    "variables",
    "with_registry",
]
