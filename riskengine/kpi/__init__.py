"""KPIs of the risk unit: passports (TOML), actual values from built-in metrics or SQL over the
store, targets, the 1–5 score and the total (seeds 000, 001, 004; ``docs/kpi.md``)."""

from riskengine.kpi.metrics import METRICS, KpiError, Measure, MetricNotAvailable, wilson
from riskengine.kpi.passport import Passport, PassportError, load_passport, load_passports
from riskengine.kpi.periods import Period, reporting_year
from riskengine.kpi.report import KpiReport, KpiRow, build_report
from riskengine.kpi.targets import score, total, trimmed_mean

__all__ = [
    "METRICS",
    "KpiError",
    "KpiReport",
    "KpiRow",
    "Measure",
    "MetricNotAvailable",
    "Passport",
    "PassportError",
    "Period",
    "build_report",
    "load_passport",
    "load_passports",
    "reporting_year",
    "score",
    "total",
    "trimmed_mean",
    "wilson",
]
