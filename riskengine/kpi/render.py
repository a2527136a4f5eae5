"""The KPI report shown: a table per group in the terminal (rich), and a self-contained HTML page
with inline SVG charts (no script, no external resource; every text escaped)."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from riskengine.kpi.passport import Passport
from riskengine.kpi.report import KpiReport, KpiRow
from riskengine.kpi.targets import Total
from riskengine.render.terminal import print_table

__all__ = ["cells", "print_report", "report_html", "total_text"]

COLUMNS = ("KPI", "Indicator", "Baseline", "Target", "Actual", "Unit", "Source", "Periodicity",
           "Score")  # fmt: skip


def number(value: float | None) -> str:
    """A value as shown: thousands separated, one decimal (none from 1,000 on, nor for whole
    numbers from 100 on)."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 1000 or (float(value).is_integer() and abs(value) >= 100):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _group_name(group: str | None) -> str:
    return "all offices" if group is None else f"office {group}"


def cells(row: KpiRow, *, method: bool = True) -> tuple[str, ...]:
    """The seeds' table row: KPI, indicator, baseline, target (with its method unless
    ``method`` is false), actual, unit, source, periodicity, score."""
    p = row.passport
    baseline = f"{p.baseline_year}: {number(row.baseline)}"
    target = number(row.target)
    if method:
        target += f" ({p.target.method.value.replace('_', ' ')})"
    if row.actual is None or row.actual.value is None:
        actual = "n/a"
    else:
        actual = number(row.actual.value)
        if row.actual.interval is not None:
            low, high = row.actual.interval
            actual += f" [{number(low)}–{number(high)}]"
    arrow = "↑" if p.direction.value == "higher" else "↓"
    if row.score is not None:
        score = f"{row.score.points} ({row.score.ratio:.2f})" if not math.isinf(
            row.score.ratio) else f"{row.score.points} (∞)"  # fmt: skip
    else:
        score = "—"
    return (
        p.name,
        f"{p.indicator} {arrow}",
        baseline,
        target,
        actual,
        p.unit,
        p.source.describe(),
        p.periodicity,
        score,
    )


def total_text(report: KpiReport, group: str | None) -> str:
    """``total: 17 / (5 × 5) = 0.68 (68 %)`` and the KPIs left out."""
    result: Total = report.totals[group]
    rows = report.group_rows(group)
    left = len(rows) - result.n
    text = f"total ({_group_name(group)}): {result.points} / (5 × {result.n}) = " + (
        f"{result.value:.2f} ({100 * result.value:.0f} %)" if result.value is not None else "—"
    )
    if left:
        text += f"; {left} of {len(rows)} KPIs not scored"
    return text


def notes(report: KpiReport, group: str | None) -> list[str]:
    """Why a KPI was not scored, how a target was computed, what the period is."""
    lines: list[str] = []
    for row in report.group_rows(group):
        if row.problem:
            lines.append(f"{row.passport.id}: not scored: {row.problem}")
        elif row.target_note:
            lines.append(f"{row.passport.id}: target: {row.target_note}")
    return lines


#: Text columns wrap down to these widths (numbers never wrap).
_MIN_WIDTHS = {"KPI": 12, "Indicator": 16, "Unit": 4, "Source": 12, "Periodicity": 9}


def print_report(report: KpiReport, console: Console) -> None:
    """The terminal view: the period(s), one table per group, its total and notes."""
    periods = sorted({row.period.label for row in report.rows})
    console.print(
        f"KPI report {report.year}: {len(report.group_rows(None))} KPIs, "
        f"period {', '.join(periods)}; score 1-5 against the target (ratio actual/target, "
        "inverted when lower is better), total = Σ scores / (5 × n)",
        markup=False,
        highlight=False,
    )
    for group in report.groups:
        table = Table(title=f"KPIs {report.year}, {_group_name(group)}", title_justify="left")
        for heading in COLUMNS:
            numeric = heading in ("Baseline", "Target", "Actual", "Score")
            table.add_column(heading, justify="right" if numeric else "left", no_wrap=numeric,
                             min_width=_MIN_WIDTHS.get(heading),
                             overflow="ellipsis" if numeric else "fold")  # fmt: skip
        for row in report.group_rows(group):
            table.add_row(*(escape(c) for c in cells(row, method=False)))
        print_table(console, table)
        console.print(total_text(report, group), markup=False, highlight=False)
        for line in notes(report, group):
            console.print("  " + line, markup=False, highlight=False)


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 1200px;
       color: #222; box-sizing: border-box; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
h1, h2, h3, p, dd, li, figcaption { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .45rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f3f3; }
td.num { text-align: right; white-space: nowrap; }
.notes { color: #555; font-size: .9rem; overflow-wrap: anywhere; }
.total { font-weight: 600; }
figure { margin: 1rem 0; max-width: 100%; }
svg { display: block; width: 100%; height: auto; max-width: 100%; }
figcaption { font-size: .9rem; color: #555; }
@media print { .scroll { overflow: visible; } }
"""

_SCORE_COLOURS = {1: "#c0392b", 2: "#e67e22", 3: "#f1c40f", 4: "#7dbb42", 5: "#2e8b57"}


def _h(value: object) -> str:
    return html.escape(str(value), quote=True)


def _score_chart(report: KpiReport, group: str | None) -> str:
    """Horizontal bars: each KPI's score out of 5."""
    rows = report.group_rows(group)
    label_w, bar_w, row_h = 260, 420, 26
    height = row_h * len(rows) + 34
    width = label_w + bar_w + 60
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="scores, {_h(_group_name(group))}">'
    ]
    for tick in range(6):
        x = label_w + bar_w * tick / 5
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 24}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="11" '
                     f'text-anchor="middle">{tick}</text>')  # fmt: skip
    for i, row in enumerate(rows):
        y = 6 + i * row_h
        name = row.passport.name
        shown = name if len(name) <= 38 else name[:37] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" font-size="12" text-anchor="end">'
                     f"<title>{_h(name)}</title>{_h(shown)}</text>")  # fmt: skip
        if row.score is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 15}" font-size="12" fill="#777">'
                         "not scored</text>")  # fmt: skip
            continue
        points = row.score.points
        w = bar_w * points / 5
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{_SCORE_COLOURS[points]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">{points}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bullet(row: KpiRow) -> str:
    """A small chart: actual (bar) against target (black mark) and baseline (grey mark)."""
    values = [
        v for v in (row.actual.value if row.actual else None, row.target, row.baseline)
        if v is not None and math.isfinite(v) and v >= 0
    ]  # fmt: skip
    if not values:
        return ""
    top = max(values) * 1.1 or 1.0
    width, height = 300, 34

    def x(v: float) -> float:
        return 4 + (width - 8) * v / top

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="actual against target">',
             f'<rect x="4" y="10" width="{width - 8}" height="14" fill="#eee"/>']  # fmt: skip
    if row.actual is not None and row.actual.value is not None and row.actual.value >= 0:
        parts.append(f'<rect x="4" y="12" width="{x(row.actual.value) - 4:.1f}" height="10" '
                     'fill="#3b6fb6"><title>actual</title></rect>')  # fmt: skip
    if row.baseline is not None and row.baseline >= 0:
        parts.append(f'<rect x="{x(row.baseline) - 1:.1f}" y="6" width="2" height="22" '
                     'fill="#999"><title>baseline</title></rect>')  # fmt: skip
    if row.target is not None and row.target >= 0:
        parts.append(f'<rect x="{x(row.target) - 1.5:.1f}" y="3" width="3" height="28" '
                     'fill="#111"><title>target</title></rect>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _totals_chart(report: KpiReport) -> str:
    """Vertical bars: the total (0–100 %) of each group."""
    groups = report.groups
    bar, gap, height = 46, 18, 220
    width = max(360, 40 + len(groups) * (bar + gap))
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="totals by office">']
    for pct in (0, 50, 100):
        y = 180 - 160 * pct / 100
        parts.append(
            f'<line x1="34" y1="{y}" x2="{width}" y2="{y}" stroke="#ddd"/>'
            f'<text x="30" y="{y + 4}" font-size="11" text-anchor="end">{pct}%</text>'
        )
    for i, group in enumerate(groups):
        x = 40 + i * (bar + gap)
        value = report.totals[group].value
        label = "all" if group is None else group
        if value is not None:
            h = 160 * value
            parts.append(f'<rect x="{x}" y="{180 - h:.1f}" width="{bar}" height="{h:.1f}" '
                         f'fill="#3b6fb6"><title>{_h(label)}: {value:.2f}</title></rect>'
                         f'<text x="{x + bar / 2}" y="{176 - h:.1f}" font-size="11" '
                         f'text-anchor="middle">{100 * value:.0f}</text>')  # fmt: skip
        parts.append(f'<text x="{x + bar / 2}" y="196" font-size="10" text-anchor="middle">'
                     f"{_h(label)}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _table(report: KpiReport, group: str | None) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in COLUMNS) + "<th>Actual against target</th>"
    body = []
    for row in report.group_rows(group):
        tds = []
        for heading, text in zip(COLUMNS, cells(row), strict=True):
            numeric = heading in ("Baseline", "Target", "Actual", "Score")
            tds.append(f'<td class="num">{_h(text)}</td>' if numeric else f"<td>{_h(text)}</td>")
        tds.append(f"<td>{_bullet(row)}</td>")
        body.append(f'<tr id="kpi-{_h(row.passport.id)}-{_h(group or "all")}">{"".join(tds)}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}' \
           "</tbody></table></div>"  # fmt: skip


def report_html(report: KpiReport, *, generated: dt.datetime | None = None) -> str:
    """The report as one self-contained HTML page."""
    when = (generated or dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    periods = sorted({row.period.label for row in report.rows})
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>KPI report {report.year}</title><style>{_CSS}</style></head><body>",
        f"<h1>KPI report {report.year}</h1>",
        f"<p>Period {_h(', '.join(periods))}; generated {when}. Each KPI is scored 1–5 against "
        "its target by the attainment ratio (actual / target, target / actual when lower is "
        "better); total = Σ scores / (5 × n) over the n KPIs scored.</p>",
    ]
    if report.by_office:
        out.append("<h2>Totals by office</h2><figure>" + _totals_chart(report) +
                   "<figcaption>Total score (% of the maximum) of each office.</figcaption>"
                   "</figure>")  # fmt: skip
    for group in report.groups:
        title = "All offices" if group is None else f"Office {group}"
        out.append(f"<h2>{_h(title)}</h2>")
        out.append(_table(report, group))
        out.append(f'<p class="total">{_h(total_text(report, group))}</p>')
        out.append('<p class="notes">Actual against target: the bar is the actual value, the '
                   "black mark the target, the grey mark the baseline.</p>")  # fmt: skip
        lines = notes(report, group)
        if lines:
            out.append('<ul class="notes">' + "".join(f"<li>{_h(n)}</li>" for n in lines) +
                       "</ul>")  # fmt: skip
        out.append(
            "<figure>"
            + _score_chart(report, group)
            + f"<figcaption>Scores, {_h(_group_name(group))} (of 5).</figcaption></figure>"
        )
    out.append("<h2>Passports</h2>")
    for passport in _passports(report):
        out.append(
            f'<h3>{_h(passport.name)}</h3><dl class="notes">'
            + "".join(
                f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>"
                for k, v in (
                    ("goal", passport.goal),
                    ("responsible unit", passport.responsible),
                    ("direction", f"{passport.direction.value} is better"),
                    ("source", passport.source.sql or passport.source.describe()),
                    ("file", passport.file or ""),
                )
            )
            + "</dl>"
        )
    out.append("</body></html>")
    return "\n".join(out)


def _passports(report: KpiReport) -> Sequence[Passport]:
    seen: dict[str, Passport] = {}
    for row in report.rows:
        seen.setdefault(row.passport.id, row.passport)
    return list(seen.values())
