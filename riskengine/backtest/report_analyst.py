"""Sections of the HTML report for what analysts ask of a backtest besides the metrics: the
run's warnings, the indicator firing counts and the threshold sweep (with its charts).

Kept apart from :mod:`riskengine.backtest.report` (layout and the main sections), which calls
:func:`warnings` after the summary and :func:`diagnostics` in each profile's section.
"""

from __future__ import annotations

from riskengine.backtest.output import cell
from riskengine.backtest.report import _h, _td, svg_line_chart
from riskengine.backtest.run import BacktestResult, ProfileResult
from riskengine.render.words import plural

__all__ = ["diagnostics", "warnings"]


def warnings(result: BacktestResult) -> str:
    """The run's warnings, right after the summary (they change how the figures read)."""
    if not result.warnings:
        return ""
    items = "".join(f"<li>{_h(w)}</li>" for w in result.warnings)
    return (
        f'<section class="warnings" id="warnings">\n<h2>Warnings</h2>\n<ul>{items}</ul>\n</section>'
    )


def diagnostics(result: BacktestResult, p: ProfileResult) -> list[str]:
    """The indicator firing counts and the threshold sweep of a profile (when computed)."""
    out = []
    if p.indicators:
        rows = []
        for ind in p.indicators:
            css = ' class="dead"' if ind.declarations == 0 else ""
            note = ' <span class="flag low">NEVER TRUE</span>' if ind.declarations == 0 else ""
            rows.append(
                f"<tr{css}><td><code>{_h(ind.name)}</code>{note}</td>"
                f"{_td('selected', ind.items)}{_td('selected', ind.declarations)}</tr>"
            )
        out.append(
            "<h3>Indicators</h3>\n"
            '<table class="indicators"><thead><tr><th>Indicator</th>'
            '<th class="num">Goods items</th><th class="num">Declarations</th></tr></thead>\n'
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
            '<p class="note">Where each indicator was true over the period, selected or not (a '
            "regional profile: where a fill applies). An indicator never true is worth a look: a "
            "threshold in the wrong unit, a code that does not occur.</p>"
        )
    if p.sweep:
        out.append(_sweep(result, p))
    return out


#: The sweep table's columns.
_SWEEP: tuple[tuple[str, str], ...] = (
    ("selected", "Selected"),
    ("selectivity", "Selectivity %"),
    ("controls_carried", "Controls carried out"),
    ("hits", "Hits"),
    ("hit_rate", "Hit rate %"),
    ("revenue", "Revenue"),
)


def _sweep(result: BacktestResult, p: ProfileResult) -> str:
    high = result.options.thresholds.high_selectivity
    own = sorted({c for c in p.total.controls_applied})
    rows = "".join(
        f'<tr><td class="num">{t.threshold:g}</td>'
        + "".join(_td(metric, getattr(t, metric)) for metric, _ in _SWEEP)
        + "</tr>"
        for t in p.sweep
    )
    heads = "".join(f'<th class="num">{_h(h)}</th>' for _, h in _SWEEP)
    sel = svg_line_chart(
        [
            (
                f"{t.threshold:g}",
                t.selectivity,
                f"degree ≥ {t.threshold:g}: selectivity {cell('selectivity', t.selectivity)} % "
                f"({plural(t.selected, 'declaration')})",
            )
            for t in p.sweep
        ],
        title="Selectivity by degree threshold, %",
        references=[(high, f"HIGH ≥ {high:g} %", "high")],
    )
    hit = svg_line_chart(
        [
            (
                f"{t.threshold:g}",
                None if t.hit_rate is None else 100 * t.hit_rate,
                f"degree ≥ {t.threshold:g}: hit rate {cell('hit_rate', t.hit_rate)} % "
                f"({plural(t.hits, 'hit')} in {plural(t.controls_carried, 'control')})",
            )
            for t in p.sweep
        ],
        title="Hit rate by degree threshold, %",
        fixed_top=100.0,
    )
    counted = (
        "every control result on the declaration"
        if result.options.any_control
        else "the control results of the procedures the profile can apply"
        + (f" ({', '.join(own)})" if own else "")
    )
    return (
        '<h3>Threshold sweep</h3>\n<div class="charts">\n'
        f"<figure>{sel}</figure>\n<figure>{hit}</figure>\n</div>\n"
        f'<table class="sweep"><thead><tr><th class="num">Degree ≥</th>{heads}</tr></thead>\n'
        f"<tbody>{rows}</tbody></table>\n"
        '<p class="note">What the profile would select if a declaration were selected when its '
        "degree (the highest among its goods items that no exception excludes) reaches the "
        f"threshold, whatever its control forms' own thresholds and conditions; controls: "
        f"{_h(counted)}.</p>"
    )
