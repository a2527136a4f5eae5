"""The backtest as one self-contained HTML page for the expert commission: tables and charts."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskengine import model as m
from riskengine.backtest.metrics import ProfileMetrics
from riskengine.backtest.output import cell
from riskengine.backtest.run import BacktestError, BacktestResult, Comparison, ProfileResult
from riskengine.regional import office_note
from riskengine.render.passport import Code, Field, Line, Table, Value, label, passport_blocks
from riskengine.render.words import duration, plural

if TYPE_CHECKING:
    from riskengine.checks import CheckResult

__all__ = ["render_html", "svg_line_chart", "write_html"]

NONE = "—"

# ------------------------------------------------------------------------------------ helpers


def _h(value: object) -> str:
    return html.escape(str(value), quote=True)


def _version() -> str:
    try:
        return metadata.version("riskengine")
    except metadata.PackageNotFoundError:  # pragma: no cover - an unpacked tree
        return "unknown"


def _td(metric: str, value: Any) -> str:
    return f'<td class="num">{_h(cell(metric, value))}</td>'


def _key(key: str) -> str:
    """A profile number, kept on one line (never broken inside the number)."""
    return f'<span class="key">{_h(key)}</span>'


def _box(table: str) -> str:
    """A table in its own box: it scrolls there, never the page, when the screen is narrow."""
    return f'<div class="table-box">{table}</div>'


def _signed(metric: str, value: Any) -> str:
    text = cell(metric, value)
    return f"+{text}" if isinstance(value, int | float | Decimal) and value > 0 else text


#: Columns of the summary and of the breakdown tables: (metric, heading).
_TABLE: tuple[tuple[str, str], ...] = (
    ("selected", "Selected"),
    ("selectivity", "Selectivity %"),
    ("controls_carried", "Controls carried out"),
    ("hits", "Hits"),
    ("hit_rate", "Hit rate %"),
    ("revenue", "Revenue"),
    ("detection_share", "Detection share %"),
)

#: Every metric of a profile's total, as the profile's section lists them.
_TOTALS: tuple[tuple[str, str], ...] = (
    ("considered", "Declarations considered"),
    ("selected", "Declarations selected"),
    ("selectivity", "Selectivity, %"),
    ("controls_carried", "Controls carried out on the selection"),
    ("hits", "Hits (controls that found a violation)"),
    ("hit_rate", "Hit rate, %"),
    ("revenue", "Revenue assessed"),
    ("revenue_per_control", "Revenue per control"),
    ("detection_share", "Detection share, %"),
    ("random_hit_rate", "Random-control hit rate, %"),
)

_DELTA_LABELS: Mapping[str, str] = {
    "selected": "Declarations selected",
    "selectivity": "Selectivity, %",
    "controls_carried": "Controls carried out",
    "hits": "Hits",
    "hit_rate": "Hit rate, %",
    "revenue": "Revenue",
    "detection_share": "Detection share, %",
}

_CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #111; background: #fff;
  max-width: 80rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.4; font-size: 15px; }
h1 { font-size: 1.5rem; border-bottom: 2px solid #333; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2.5rem; border-bottom: 1px solid #999;
  overflow-wrap: break-word; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
.lede { font-size: 1.05em; }
.table-box { max-width: 100%; overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; margin: 0; }
th, td { border: 1px solid #888; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, .key, .flag, .nowrap { white-space: nowrap; }
th.num { white-space: normal; overflow-wrap: normal; min-width: 4.5em; }
td.name { overflow-wrap: break-word; min-width: 12rem; }
table#summary, table.breakdown { width: 100%; }
table#summary td.name { width: 32%; }
td.flag-cell { text-align: center; width: 1%; }
table.meta th { background: none; font-weight: normal; color: #444; }
tr.high td { background: #fde8e8; }
.flag { display: inline-block; padding: 0 .35rem; border-radius: 3px; background: #b00020;
  color: #fff; font-weight: bold; font-size: .85em; line-height: 1.5; }
.flag.low { background: #8a6d00; }
.note { color: #444; font-size: .92em; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: .9em;
  white-space: break-spaces; overflow-wrap: anywhere; }
.passport { border-left: 3px solid #ccc; padding: .1rem 0 .1rem .8rem; margin: .6rem 0; }
.passport .field { margin: .2rem 0; }
.passport .label { font-weight: bold; }
.passport ul { margin: .1rem 0 .1rem 1.4rem; padding: 0; }
.passport table { font-size: .92em; }
.charts { display: flex; flex-wrap: wrap; gap: .8rem; }
.profile-top { display: flex; flex-wrap: wrap; gap: 0 2rem; align-items: flex-start; }
.profile-top > div { min-width: 0; max-width: 100%; }
figure { margin: 0; max-width: 100%; }
figcaption { font-size: .85em; color: #444; max-width: 360px; }
svg.chart { max-width: 100%; height: auto; font-family: inherit; }
svg.chart .axis { stroke: #333; stroke-width: 1; }
svg.chart .grid { stroke: #ddd; stroke-width: 1; }
svg.chart .line { fill: none; stroke: #1f5fa8; stroke-width: 2; }
svg.chart .pt { fill: #1f5fa8; stroke: #fff; stroke-width: 1; }
svg.chart .pt.none { fill: #fff; stroke: #999; stroke-width: 1.2; }
svg.chart .ref { stroke-width: 1.3; stroke-dasharray: 5 4; }
svg.chart .ref.high { stroke: #b00020; }
svg.chart .ref.random { stroke: #666; }
svg.chart text { font-size: 11px; fill: #333; }
svg.chart text.ref-label { paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.chart text.title { font-size: 13px; font-weight: bold; fill: #111; }
a { color: #1f5fa8; }
@page { size: A4 landscape; margin: 12mm 12mm 14mm; }
@media print {
  body { margin: 0; padding: 0; max-width: none; font-size: 8pt; line-height: 1.25; }
  h1 { font-size: 15pt; margin: 0 0 .4rem; }
  h2 { font-size: 12pt; margin: 1rem 0 .4rem; }
  h3 { font-size: 10pt; margin: .7rem 0 .3rem; }
  section.profile, section.comparisons { break-before: auto; margin-top: 1.2rem; }
  section.profile > h2, section.comparisons > h2 { margin-top: .4rem; }
  .profile-head { break-inside: avoid; }
  h1, h2, h3 { break-inside: avoid; }
  .passport .field, .passport ul { margin-top: .05rem; margin-bottom: .05rem; }
  .table-box { overflow: visible; margin: .3rem 0 .6rem; }
  th, td { padding: .1rem .35rem; }
  tr, figure, .passport .field, table.meta, table.totals, table.forms, table.deltas,
  .charts { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: none; }
  tr.high td { background: none; font-weight: bold; }
  .flag { background: none; color: #000; border: 1px solid #000; }
  .profile-top { flex-wrap: nowrap; gap: 0 1.2rem; }
  .charts { gap: .6rem; flex-wrap: nowrap; }
  svg.chart { width: 290px; }
  figcaption { max-width: 290px; font-size: 7.5pt; }
  .passport { column-count: 2; column-gap: 1.5rem; column-rule: 1px solid #ddd; }
  .passport .table-box { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .noprint { display: none; }
}
""".strip()

# ------------------------------------------------------------------------------------ charts

_W, _H = 360, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 12, 30, 30


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ that is at least ``raw``."""
    exp = math.floor(math.log10(raw))
    base = 10.0**exp
    for nice in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= nice * base * (1 + 1e-9):
            return nice * base
    return 10.0 * base  # pragma: no cover - unreachable


def _ticks(top: float) -> tuple[list[float], int]:
    """Ticks from 0 to at least ``top`` (about five), and the decimals their labels need.

    The scale never shrinks below 0.01: the tables show two decimals, so smaller values read
    as 0.00 there and lie on the axis here.
    """
    if not top > 0:
        top = 1.0
    top = max(top, 0.01)
    step = _nice_step(top / 4)
    count = math.ceil(top / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step * 10**decimals) - step * 10**decimals) > 1e-6:
        decimals += 1
    return [round(k * step, 12) for k in range(count + 1)], decimals


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def svg_line_chart(
    points: Sequence[tuple[str, float | None, str]],
    *,
    title: str,
    fixed_top: float | None = None,
    references: Sequence[tuple[float, str, str]] = (),
) -> str:
    """A line chart as inline SVG: one marker per category with a ``<title>`` tooltip.

    ``points`` are (x label, y value or None, tooltip). A point without a value is drawn as a
    hollow marker on the axis and breaks the line. ``fixed_top`` fixes the y scale (100 for
    per cent rates); otherwise it fits the data. ``references`` are dashed horizontal lines
    (value, label, CSS class), drawn only when inside the scale.
    """
    values = [v for _, v, _ in points if v is not None]
    top = fixed_top if fixed_top is not None else max(values, default=0.0)
    ticks, decimals = _ticks(top)
    y_max = ticks[-1]
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    x0, y0 = _LEFT, _TOP + plot_h  # origin

    def y(value: float) -> float:
        return y0 - plot_h * min(max(value, 0.0), y_max) / y_max

    n = max(len(points), 1)

    def x(i: int) -> float:
        return x0 + plot_w * (i + 0.5) / n

    out = [
        f'<svg class="chart" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{_h(title)}">',
        f'<text class="title" x="{_LEFT}" y="16">{_h(title)}</text>',
    ]
    # y axis: grid lines and labels
    for t in ticks:
        ty = round(y(t), 1)
        out.append(f'<line class="grid" x1="{x0}" y1="{ty}" x2="{x0 + plot_w}" y2="{ty}"/>')
        out.append(f'<text x="{x0 - 5}" y="{ty + 4}" text-anchor="end">{_fmt(t, decimals)}</text>')
    out.append(f'<line class="axis y-axis" x1="{x0}" y1="{_TOP}" x2="{x0}" y2="{y0}"/>')
    out.append(f'<line class="axis x-axis" x1="{x0}" y1="{y0}" x2="{x0 + plot_w}" y2="{y0}"/>')
    # x axis: a tick per category, a label on every k-th so that labels do not overlap
    every = max(1, math.ceil(len(points) / 5))
    for i, (name, _, _) in enumerate(points):
        tx = round(x(i), 1)
        out.append(f'<line class="axis tick" x1="{tx}" y1="{y0}" x2="{tx}" y2="{y0 + 4}"/>')
        if i % every == 0:
            out.append(f'<text x="{tx}" y="{y0 + 17}" text-anchor="middle">{_h(name)}</text>')
    # reference lines
    for ref, text, css in references:
        if 0 <= ref <= y_max:
            ry = round(y(ref), 1)
            out.append(
                f'<line class="ref {_h(css)}" x1="{x0}" y1="{ry}" x2="{x0 + plot_w}" y2="{ry}">'
                f"<title>{_h(text)}</title></line>"
            )
            out.append(f'<text class="ref-label" x="{x0 + 4}" y="{ry - 4}">{_h(text)}</text>')
    # the line, broken where a value is missing
    run: list[str] = []
    for i, (_, at, _) in enumerate([*points, ("", None, "")]):
        if at is not None:
            run.append(f"{round(x(i), 1)},{round(y(at), 1)}")
            continue
        if len(run) > 1:
            out.append(f'<polyline class="line" points="{" ".join(run)}"/>')
        run = []
    # the markers, each with its tooltip
    for i, (_, value, tip) in enumerate(points):
        px = round(x(i), 1)
        if value is None:
            out.append(
                f'<circle class="pt none" cx="{px}" cy="{y0}" r="3.5"><title>{_h(tip)}</title>'
                "</circle>"
            )
        else:
            out.append(
                f'<circle class="pt" cx="{px}" cy="{round(y(value), 1)}" r="3.5">'
                f"<title>{_h(tip)}</title></circle>"
            )
    out.append("</svg>")
    return "\n".join(out)


#: Beyond this many calendar months the chart shows only the months that have declarations.
_MAX_MONTHS = 600


def _months(start: dt.date, end: dt.date) -> list[str]:
    if (end.year - start.year) * 12 + end.month - start.month >= _MAX_MONTHS:
        return []
    out = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _series(result: BacktestResult, p: ProfileResult) -> list[tuple[str, ProfileMetrics | None]]:
    """Every month of the period (months without declarations have no metrics)."""
    by_month = dict(p.series)
    months = set(_months(result.options.date_from, result.options.date_to)) | set(by_month)
    return [(month, by_month.get(month)) for month in sorted(months)]


def _charts(result: BacktestResult, p: ProfileResult) -> str:
    series = _series(result, p)
    high = result.options.thresholds.high_selectivity
    sel_points: list[tuple[str, float | None, str]] = []
    hit_points: list[tuple[str, float | None, str]] = []
    for month, mtr in series:
        if mtr is None:
            sel_points.append((month, None, f"{month}: selectivity {NONE} (no declarations)"))
            hit_points.append((month, None, f"{month}: hit rate {NONE} (no declarations)"))
            continue
        sel = mtr.selectivity
        sel_points.append(
            (
                month,
                sel,
                f"{month}: selectivity {cell('selectivity', sel)} % — {mtr.selected:,} of "
                f"{plural(mtr.considered, 'declaration')} selected"
                + (" (HIGH)" if mtr.high_selectivity else ""),
            )
        )
        rate = mtr.hit_rate
        hit_points.append(
            (
                month,
                None if rate is None else 100 * rate,
                f"{month}: hit rate {cell('hit_rate', rate)} % — {plural(mtr.hits, 'hit')} in "
                f"{plural(mtr.controls_carried, 'control')} carried out",
            )
        )
    random = p.total.random_hit_rate
    sel_svg = svg_line_chart(
        sel_points,
        title="Selectivity by month, %",
        references=[(high, f"HIGH ≥ {high:g} %", "high")],
    )
    hit_svg = svg_line_chart(
        hit_points,
        title="Hit rate by month, %",
        fixed_top=100.0,
        references=[]
        if random is None
        else [(100 * random, f"random controls {cell('random_hit_rate', random)} %", "random")],
    )
    values = [v for _, v, _ in sel_points if v is not None]
    top = _ticks(max(values, default=0.0))[0][-1]
    sel_note = (
        f"Declarations selected / declarations considered each month. The HIGH threshold "
        f"({high:g} %) is {'the dashed red line' if high <= top else 'above the scale'}."
    )
    hit_note = (
        "Hits / controls carried out on the month's selections; a hollow marker on the axis: "
        "no control was carried out. "
        + (
            f"Dashed grey: hit rate of random controls over the period "
            f"({cell('random_hit_rate', random)} %)."
            if random is not None
            else "No random control in the period."
        )
    )
    return (
        '<div class="charts">\n'
        f"<figure>{sel_svg}<figcaption>{_h(sel_note)}</figcaption></figure>\n"
        f"<figure>{hit_svg}<figcaption>{_h(hit_note)}</figcaption></figure>\n"
        "</div>"
    )


# ------------------------------------------------------------------------------------ passport

#: Passport fields shown in the report's compact summary (label keys of the renderer).
_PASSPORT_FIELDS: tuple[str, ...] = (
    "number",
    "name",
    "in_force_from",
    "in_force_to",
    "filling",
    "spheres",
    "indicators",
    "exceptions",
    "lists",
    "algorithm",
    "controls",
    "max_negative",
    "max_positive",
    "reasons",
    "history_subject",
    "history_window",
    "per_case",
    "per_clean",
)


def _line(line: Line) -> str:
    return "".join(f"<code>{_h(p.text)}</code>" if isinstance(p, Code) else _h(p) for p in line)


def _value(value: Value) -> str:
    return "<br>".join(_line(line) for line in value)


def _find(checked: CheckResult | None, key: str) -> tuple[m.Profile, m.SourceFile] | None:
    if checked is None:
        return None
    for source in checked.files:
        for profile in source.profiles:
            if profile.key == key:
                return profile, source
    return None


def _passport(profile: m.Profile, source: m.SourceFile) -> str:
    """The passport's main fields, as the passport renderer words them."""
    wanted = {label(k) for k in _PASSPORT_FIELDS}
    out = ['<div class="passport">']
    for block in passport_blocks(profile, "en", source):
        if isinstance(block, Field) and block.label in wanted:
            head = f'<span class="label">{_h(block.label)}:</span>'
            if block.bullets:
                items = "".join(f"<li>{_line(x)}</li>" for x in block.value)
                out.append(f'<div class="field">{head}<ul>{items}</ul></div>')
            elif block.label == label("number"):  # the number on one line, never broken
                number = f'<span class="key">{_value(block.value)}</span>'
                out.append(f'<div class="field">{head} {number}</div>')
            else:
                out.append(f'<div class="field">{head} {_value(block.value)}</div>')
        elif isinstance(block, Table) and block.label in wanted:
            heads = "".join(f"<th>{_h(x)}</th>" for x in block.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_value(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            out.append(
                f'<div class="field"><span class="label">{_h(block.label)}:</span></div>'
                + _box(f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>")
            )
    out.append("</div>")
    return "\n".join(out)


def _fills(profile: m.Profile, fills: Iterable[m.Fill], start: dt.date, end: dt.date) -> str:
    """The offices whose fills a regional profile was evaluated with, and when they are valid."""
    if not profile.is_regional:
        return ""
    base = profile.number.base if profile.number is not None else None
    mine = sorted((f for f in fills if f.profile.base == base), key=_fill_order)
    parts = []
    for f in mine:
        text = f"{f.office or NONE} ({_valid(f.valid)})"
        if f.valid is not None and (
            f.valid.start > end or (f.valid.end is not None and f.valid.end < start)
        ):
            text += " — outside the period"
        parts.append(text)
    text = "; ".join(parts) or f"{NONE}: without a fill the profile selects nothing"
    return (
        '<p class="fills"><strong>Regional fills evaluated</strong> (the profile applies only '
        f"to an office's declarations dated within its fill): {_h(text)}</p>"
    )


def _valid(valid: m.Validity | None) -> str:
    if valid is None:
        return "no dates"
    end = valid.end.isoformat() if valid.end else "no end"
    return f"{valid.start.isoformat()} .. {end}"


def _fill_order(f: m.Fill) -> tuple[str, dt.date]:
    return (f.office or "", f.valid.start if f.valid else dt.date.min)


# ------------------------------------------------------------------------------------ sections


def _header(result: BacktestResult) -> str:
    """The title and one line saying what was run; the summary follows at once."""
    opts = result.options
    lede = (
        f"{opts.date_from.isoformat()} .. {opts.date_to.isoformat()}: "
        f"{plural(result.considered, 'declaration')} on {result.engine}, "
        f"{plural(len(result.profiles), 'profile')}; the run's details follow the summary."
    )
    return (
        f'<header>\n<h1>Backtest of risk profiles</h1>\n<p class="lede">{_h(lede)}</p>\n</header>'
    )


def _run(result: BacktestResult, generated: dt.datetime) -> str:
    opts = result.options
    run = (
        f"#{result.run_id} (recorded in the store's backtest_runs table)"
        if result.run_id is not None
        else "not recorded"
    )
    by = ", ".join(opts.by) or NONE
    rows = [
        ("Period", f"{opts.date_from.isoformat()} .. {opts.date_to.isoformat()} (inclusive)"),
        ("Engine", result.engine),
        ("Declarations considered", f"{result.considered:,}"),
        ("Profiles", f"{len(result.profiles):,}"),
        ("Breakdowns", by),
        ("Negative / positive history", "counted" if opts.history else "not counted (0)"),
        ("HIGH selectivity threshold", f"≥ {opts.thresholds.high_selectivity:g} %"),
        *_low_rows(result),
        ("Run", run),
        ("Computed in", duration(result.seconds)),
        ("Report generated", generated.strftime("%Y-%m-%d %H:%M")),
        ("riskengine version", _version()),
    ]
    body = "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in rows)
    return (
        '<section class="run">\n<h2>Run</h2>\n'
        + _box(f'<table class="meta" id="run">{body}</table>')
        + '\n<p class="note">Each profile is evaluated on every declaration of the period as if it '
        "were in force throughout (its own in-force dates are not applied); a regional profile "
        "only where an office's fill is valid on the declaration's date. A declaration is "
        "selected when at least one of the profile's control forms applies to it.</p>\n"
        "</section>"
    )


def _low_rows(result: BacktestResult) -> list[tuple[str, str]]:
    """Header rows of the LOW threshold and of how controls are counted (when not default)."""
    rows = []
    low = result.options.thresholds.low_selectivity
    if low is not None:
        rows.append(("LOW selectivity threshold", f"< {low:g} %"))
    if result.options.any_control:
        rows.append(("Controls counted", "every control result on a selected declaration"))
    return rows


def _flag(mtr: ProfileMetrics) -> str:
    if mtr.high_selectivity:
        return '<span class="flag">HIGH</span>'
    if mtr.low_selectivity:
        return '<span class="flag low">LOW</span>'
    return ""


def _summary(result: BacktestResult) -> str:
    heads = "".join(f'<th class="num">{_h(h)}</th>' for _, h in _TABLE)
    rows = []
    for n, p in enumerate(result.profiles):
        mtr = p.total
        css = ' class="high"' if mtr.high_selectivity else ""
        rows.append(
            f'<tr{css} data-profile="{_h(p.key)}">'
            f'<td><a class="key" href="#p{n}">{_h(p.key)}</a></td>'
            f'<td class="name">{_h(p.name)}</td>'
            + "".join(_td(metric, getattr(mtr, metric)) for metric, _ in _TABLE)
            + f'<td class="flag-cell">{_flag(mtr)}</td></tr>'
        )
    if not rows:
        rows.append(f'<tr><td colspan="{len(_TABLE) + 3}">No profile was run.</td></tr>')
    random = result.profiles[0].total.random_hit_rate if result.profiles else None
    baseline = (
        f"{cell('random_hit_rate', random)} %"
        if random is not None
        else f"{NONE} (no random control in the period)"
    )
    return (
        '<section class="summary">\n<h2>Summary</h2>\n'
        + _box(
            '<table id="summary"><thead><tr><th>Profile</th><th>Name</th>'
            f"{heads}<th>Flag</th></tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
        )
        + "\n"
        f'<p id="baseline"><strong>Random-control baseline:</strong> hit rate of random controls '
        f"over the period: {_h(baseline)}. A profile's hit rate above this baseline means its "
        "selections find violations more often than chance.</p>\n"
        '<p class="note">Selectivity = declarations selected / declarations considered. Hit rate '
        "= hits / controls carried out on the profile's selections. Detection share = the "
        "profile's hits / every control that found a violation in the period. "
        f"{NONE} = undefined (nothing to divide by). HIGH = selectivity at or above "
        f"{result.options.thresholds.high_selectivity:g} %.</p>\n</section>"
    )


def _totals(p: ProfileResult) -> str:
    rows = "".join(
        f"<tr><th>{_h(heading)}</th>{_td(metric, getattr(p.total, metric))}</tr>"
        for metric, heading in _TOTALS
    )
    return _box(f'<table class="meta totals">{rows}</table>')


def _no_note(value: Any) -> str | None:
    return None


def _office_notes(p: ProfileResult, result: BacktestResult) -> Callable[[Any], str | None]:
    """A regional profile's note for each office row (where no fill was valid)."""
    start, end = result.options.date_from, result.options.date_to
    return lambda office: office_note(p.fills_valid, office, start, end)


def _breakdown(
    key: str,
    groups: Sequence[tuple[Any, ProfileMetrics]],
    note: Callable[[Any], str | None] = _no_note,
) -> str:
    heads = "".join(f'<th class="num">{_h(h)}</th>' for _, h in _TABLE)
    rows = []
    for value, mtr in groups:
        css = ' class="high"' if mtr.high_selectivity else ""
        shown = NONE if value is None else str(value)
        said = note(value)
        rows.append(
            f'<tr{css}><td class="name">{_h(shown)}</td>'
            + _td("considered", mtr.considered)
            + "".join(_td(metric, getattr(mtr, metric)) for metric, _ in _TABLE)
            + f'<td class="flag-cell">{_flag(mtr)}'
            + (f' <span class="note">{_h(said)}</span>' if said else "")
            + "</td></tr>"
        )
    if not rows:
        rows.append(f'<tr><td colspan="{len(_TABLE) + 3}">No declarations.</td></tr>')
    return f"<h3>By {_h(key)}</h3>\n" + _box(
        f'<table class="breakdown" data-breakdown="{_h(key)}"><thead><tr>'
        f'<th>{_h(key.capitalize())}</th><th class="num">Declarations</th>{heads}'
        "<th>Flag</th></tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )


def _procedure_names(
    found: tuple[m.Profile, m.SourceFile] | None, fills: Iterable[m.Fill]
) -> dict[str, str]:
    if found is None:
        return {}
    profile = found[0]
    names: dict[str, str] = {}
    controls = list(profile.controls)
    if profile.number is not None:
        controls += [c for f in fills if f.profile.base == profile.number.base for c in f.controls]
    for c in controls:
        names.setdefault(c.code, c.name)
    return names


def _forms(p: ProfileResult, names: Mapping[str, str]) -> str:
    rows = []
    for code, n in p.total.controls_applied.items():
        share = None if p.total.selected == 0 else 100 * n / p.total.selected
        rows.append(
            f'<tr><td>{_h(code)}</td><td class="name">{_h(names.get(code, NONE))}</td>'
            f"{_td('selected', n)}{_td('selectivity', share)}</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="4">The profile has no control form.</td></tr>')
    return (
        "<h3>Control forms applied</h3>\n"
        + _box(
            '<table class="forms"><thead><tr><th>Procedure</th><th>Name</th>'
            '<th class="num">Declarations</th><th class="num">% of selected</th></tr></thead>\n'
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
        )
        + "\n"
        '<p class="note">Declarations on which the control form applied (degree at or above its '
        "threshold and its condition true on at least one goods item).</p>"
    )


def _profile_section(
    n: int, result: BacktestResult, p: ProfileResult, checked: CheckResult | None
) -> str:
    from riskengine.backtest import report_analyst as analyst

    found = _find(checked, p.key)
    fills: list[m.Fill] = list(checked.fills) if checked is not None else []
    title = _key(p.key) if p.name == p.key else f"{_key(p.key)} — {_h(p.name)}"
    parts = [
        f'<section class="profile" id="p{n}">',
        '<div class="profile-head">',
        f"<h2>{title}{' ' + _flag(p.total) if p.total.high_selectivity else ''}</h2>",
    ]
    how = "SQL, in the database" if p.path == "sql" else "Python"
    if p.reason:
        how += f" ({p.reason})"
    parts.append(
        f'<p class="note">Evaluated in {_h(how)}; profile text sha256 <code>{_h(p.sha256)}'
        "</code>.</p>"
    )
    if p.total.selected == 0:
        parts.append(
            '<p class="note"><strong>The profile selected no declaration in the period.</strong>'
            + (" It is regional and no office's fill is valid in the period." if p.fills_valid
               == {} else "")
            + "</p>"
        )  # fmt: skip
    # the numbers first (totals beside the charts), then the breakdowns, then the passport
    parts.append(
        '<div class="profile-top">'
        f'<div class="totals-box"><h3>Totals</h3>{_totals(p)}</div>'
        f'<div class="charts-box"><h3>Over time</h3>{_charts(result, p)}</div></div>'
    )
    parts.append("</div>")  # the heading never ends a page without the numbers below it
    for key in result.options.by:
        note = _office_notes(p, result) if key == "office" else _no_note
        parts.append(_breakdown(key, p.breakdowns.get(key, ()), note))
    parts.append(_forms(p, _procedure_names(found, fills)))
    parts += analyst.diagnostics(result, p)
    parts.append("<h3>Passport</h3>")
    if found is None:
        parts.append(
            '<p class="note">The passport is not available in this report (the profile was '
            "not among the checked files given to the report).</p>"
        )
    else:
        parts.append(_passport(found[0], found[1]))
        opts = result.options
        parts.append(_fills(found[0], fills, opts.date_from, opts.date_to))
    parts.append('<p class="noprint"><a href="#summary">Back to the summary</a></p>')
    parts.append("</section>")
    return "\n".join(parts)


def _comparison(cmp: Comparison, anchors: Mapping[str, int]) -> str:
    def link(key: str) -> str:
        if key in anchors:
            return f'<a class="key" href="#p{anchors[key]}">{_h(key)}</a>'
        return _key(key)

    rows = "".join(
        f"<tr><td>{_h(_DELTA_LABELS.get(metric, metric))}</td>"
        f"{_td(metric, va)}{_td(metric, vb)}"
        f'<td class="num">{_h(_signed(metric, delta))}</td></tr>'
        for metric, (va, vb, delta) in cmp.deltas.items()
    )

    def ids(examples: Sequence[str]) -> str:
        if not examples:
            return ""
        return " — e.g. " + ", ".join(f"<code>{_h(x)}</code>" for x in examples)

    return (
        f"<h3>A = {link(cmp.a)} compared with B = {link(cmp.b)}</h3>\n"
        + _box(
            '<table class="deltas"><thead><tr><th>Metric</th><th class="num">A</th>'
            '<th class="num">B</th><th class="num">A − B</th></tr></thead>\n'
            f"<tbody>{rows}</tbody></table>"
        )
        + "\n"
        f'<ul class="changes"><li>Newly selected by A (not by B): '
        f"<strong>{cmp.newly_selected:,}</strong>{ids(cmp.examples_new)}</li>\n"
        f"<li>No longer selected (by B, not by A): <strong>{cmp.no_longer_selected:,}</strong>"
        f"{ids(cmp.examples_gone)}</li></ul>"
    )


def _comparisons(result: BacktestResult) -> str:
    if not result.comparisons:
        return ""
    anchors = {p.key: n for n, p in enumerate(result.profiles)}
    body = "\n".join(_comparison(c, anchors) for c in result.comparisons)
    return (
        f'<section class="comparisons" id="comparisons">\n<h2>Comparisons</h2>\n{body}\n</section>'
    )


# ------------------------------------------------------------------------------------ entry points


def render_html(
    result: BacktestResult, checked: CheckResult | None, *, generated: dt.datetime | None = None
) -> str:
    """The backtest report as one HTML page: inline CSS and SVG, no script, nothing fetched.

    ``checked`` (a :class:`~riskengine.checks.CheckResult`) supplies the passports of the
    profiles; a profile it does not hold is reported without its passport. ``generated`` is
    the time shown in the header (default: now).
    """
    from riskengine.backtest import report_analyst as analyst

    when = generated if generated is not None else dt.datetime.now().replace(microsecond=0)
    opts = result.options
    sections = [_header(result), _summary(result), analyst.warnings(result), _run(result, when)]
    sections += [_profile_section(n, result, p, checked) for n, p in enumerate(result.profiles)]
    sections.append(_comparisons(result))
    title = f"Backtest {opts.date_from.isoformat()} .. {opts.date_to.isoformat()}"
    body = "\n".join(s for s in sections if s)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="riskengine {_h(_version())}">\n'
        f"<title>{_h(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_html(result: BacktestResult, checked: CheckResult | None, path: Path) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8)."""
    text = render_html(result, checked)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BacktestError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
