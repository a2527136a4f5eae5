"""The review report shown: plain text for the terminal, and a self-contained HTML page (inline
SVG chart of the monthly trend, no script, no external resource, every text escaped)."""

from __future__ import annotations

import datetime as dt
import html

from riskengine.effectiveness.results import Rate, Results, Slice
from riskengine.effectiveness.rules import Review
from riskengine.kpi.render import number
from riskengine.render.words import plural

__all__ = ["report_html", "report_text", "slice_cells"]

SLICE_COLUMNS = ("", "scored", "fired", "ordered", "carried out", "controlled", "violations",
                 "hit rate", "random controls", "revenue UAH", "detection %")  # fmt: skip


def rate(r: Rate) -> str:
    """``12.7 % [9.7–16.4] (8/63)``; ``—`` without any case."""
    if r.value is None or r.interval is None:
        return "—"
    low, high = r.interval
    return f"{number(r.value)} % [{number(low)}–{number(high)}] ({r.hits}/{r.n})"


def _share(value: float | None) -> str:
    return "—" if value is None else number(value)


def slice_cells(s: Slice) -> tuple[str, ...]:
    """One row of the results table."""
    return (
        s.label,
        f"{s.decisions:,}",
        f"{s.fired:,}",
        f"{s.ordered:,}",
        f"{s.carried_out:,}",
        f"{s.controlled:,}",
        f"{s.violations:,}",
        rate(s.hit_rate),
        rate(s.random),
        number(s.revenue),
        _share(s.detection_share),
    )


def _table(rows: list[tuple[str, ...]], heading: tuple[str, ...]) -> list[str]:
    widths = [max(len(r[i]) for r in [heading, *rows]) for i in range(len(heading))]
    out = []
    for row in [heading, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _title(results: Results) -> str:
    name = f' "{results.name}"' if results.name else ""
    return (
        f"Effectiveness review of {results.number}{name}, {results.start} .. {results.end} "
        f"({results.days} days)"
    )


def _overview(review: Review) -> list[str]:
    r = review.results
    t = r.total
    lines = [
        f"fired on {t.fired:,} of {plural(t.decisions, 'declaration')} scored "
        f"({_share(t.selectivity)} %); bundle revisions: {', '.join(r.revisions) or '—'}",
        f"controls ordered on {t.ordered:,} of them, carried out on {t.carried_out:,} "
        f"({_share(t.carried_out_share)} %)",
        f"controlled at its order: {plural(t.controlled, 'declaration')}, {t.violations:,} with a "
        f"violation: hit rate {rate(t.hit_rate)}",
        f"random controls: hit rate {rate(t.random)}",
        f"revenue: {number(t.revenue)} UAH; detection share: {_share(t.detection_share)} % of "
        f"{plural(t.detections, 'declaration')} where a violation was found",
        f"overlap: {r.overlap:,} of its {t.fired:,} selections ({_share(r.overlap_share)} %) "
        "were also selected by "
        + (", ".join(f"{k} ({n})" for k, n in r.overlap_with) or "no other profile"),
        f"missed by its forms: {r.missed:,}; controlled at its order without a logged firing: "
        f"{r.unlogged:,}",
    ]
    if r.registry_note:
        lines.insert(0, r.registry_note)
    return lines


FIRING_COLUMNS = ("indicator", "declarations", "goods items")


def _firing_title(r: Results) -> str:
    f = r.firing
    assert f is not None
    return (
        f"a backtest of {f.key} ({f.source}) over the period selects {f.selected:,} of "
        f"{f.considered:,} stored declarations (the log: fired on {r.total.fired:,}); its "
        "indicators were true on:"
    )


def _firing_rows(r: Results) -> list[tuple[str, ...]]:
    assert r.firing is not None
    return [(name, f"{d:,}", f"{i:,}") for name, d, i in r.firing.counts]


def report_text(review: Review) -> str:
    """The report as plain text."""
    r = review.results
    out = [_title(r), ""]
    out += _overview(review)
    out += ["", "Control forms (declarations)"]
    out += _table(
        [(f.code, f.kind, f"{f.ordered:,}", f"{f.carried_out:,}") for f in r.forms]
        or [("—", "", "0", "0")],
        ("form", "kind", "ordered", "carried out"),
    )
    out += ["", "By office"]
    out += _table([slice_cells(s) for s in (r.total, *r.offices)], SLICE_COLUMNS)
    out += ["", "By month (trend)"]
    out += _table([slice_cells(s) for s in r.months], SLICE_COLUMNS)
    out += ["", "Per indicator: " + r.indicator_note]
    out.append(
        "degrees: " + (", ".join(f"{d:g} × {n}" for d, n in r.degrees) or "— (it never fired)")
    )
    if r.firing is not None:
        out.append(_firing_title(r))
        out += _table(_firing_rows(r), FIRING_COLUMNS)
    out += ["", "The three questions (seed 003 §9.3)"]
    for answer in review.answers:
        out.append(f"{answer.question} {answer.answer}")
        out += [f"   - {e}" for e in answer.evidence]
    out += ["", "Rules that hold (the first gives the recommendation)"]
    if review.matched:
        out += [f"   {rule.id} → {rule.recommendation}: {text}" for rule, text in review.matched]
    else:
        out.append("   none")
    out.append("")
    out.append(
        "Recommendation: "
        + (review.recommendation or "none (no rule holds: the commission decides)")
    )
    return "\n".join(out) + "\n"


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 1200px;
       color: #222; box-sizing: border-box; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
h1, h2, p, li, dd, figcaption { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .45rem; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; white-space: nowrap; }
.recommendation { font-size: 1.2rem; font-weight: 600; }
.notes { color: #555; font-size: .9rem; }
figure { margin: 1rem 0; max-width: 100%; }
svg { display: block; width: 100%; height: auto; max-width: 100%; }
figcaption { font-size: .9rem; color: #555; }
"""


def _h(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(heading: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in heading)
    body = "".join(
        "<tr>" + f"<td>{_h(row[0])}</td>"
        + "".join(f'<td class="num">{_h(c)}</td>' for c in row[1:]) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}' \
           "</tbody></table></div>"  # fmt: skip


def _trend_chart(months: tuple[Slice, ...]) -> str:
    """Bars: declarations fired on per month; dots: the hit rate (right scale, 0–100 %)."""
    if not months:
        return ""
    width, height, left, bottom = 720, 240, 44, 200
    step = (width - left - 44) / len(months)
    top = max((m.fired for m in months), default=0) or 1
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" '
             'aria-label="declarations fired on and hit rate per month">']  # fmt: skip
    for frac in (0, 0.5, 1):
        y = bottom - 170 * frac
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 44}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{top * frac:.0f}</text>"
            f'<text x="{width - 40}" y="{y + 4:.1f}" font-size="11">{100 * frac:.0f}%</text>'
        )
    for i, m in enumerate(months):
        x = left + i * step
        h = 170 * m.fired / top
        parts.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{bottom - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h:.1f}" fill="#3b6fb6"><title>{_h(m.label)}: fired {m.fired}</title>'
            "</rect>"
        )
        value = m.hit_rate.value
        if value is not None:
            parts.append(
                f'<circle cx="{x + step / 2:.1f}" cy="{bottom - 170 * value / 100:.1f}" r="4" '
                f'fill="#c0392b"><title>{_h(m.label)}: hit rate {number(value)} %</title>'
                "</circle>"
            )
        if len(months) <= 12 or i % 3 == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{bottom + 16}" font-size="10" '
                         f'text-anchor="middle">{_h(m.label)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def report_html(review: Review, *, generated: dt.datetime | None = None) -> str:
    """The report as one self-contained HTML page."""
    r = review.results
    when = (generated or dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    title = _title(r)
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_h(title)}</h1>",
        f'<p class="recommendation" id="recommendation">Recommendation: '
        f"{_h(review.recommendation or 'none (no rule holds: the commission decides)')}</p>",
        f'<p class="notes">Generated {_h(when)}. Rates are per cent with their Wilson 95 % '
        "interval and (hits/controlled declarations).</p>",
        "<h2>Results of application</h2><ul>",
        *(f"<li>{_h(line)}</li>" for line in _overview(review)),
        "</ul><h2>The three questions (seed 003 §9.3)</h2>",
    ]
    for answer in review.answers:
        out.append(f"<h3>{_h(answer.question)}</h3><p>{_h(answer.answer)}</p>")
        if answer.evidence:
            out.append("<ul>" + "".join(f"<li>{_h(e)}</li>" for e in answer.evidence) + "</ul>")
    out.append("<h2>Rules that hold</h2>")
    if review.matched:
        out.append('<ol id="rules">' + "".join(
            f"<li><b>{_h(rule.id)}</b> → {_h(rule.recommendation)}: {_h(text)}</li>"
            for rule, text in review.matched) + "</ol>")  # fmt: skip
    else:
        out.append("<p>None.</p>")
    out.append("<h2>Control forms</h2>")
    out.append(_html_table(("form", "kind", "ordered", "carried out"),
                           [(f.code, f.kind, f"{f.ordered:,}", f"{f.carried_out:,}")
                            for f in r.forms]))  # fmt: skip
    out.append("<h2>By office</h2>")
    out.append(_html_table(SLICE_COLUMNS, [slice_cells(s) for s in (r.total, *r.offices)]))
    out.append("<h2>By month (trend)</h2><figure>" + _trend_chart(r.months) +
               "<figcaption>Bars: declarations it fired on per month (left scale); dots: the "
               "hit rate of its controls (right scale).</figcaption></figure>")  # fmt: skip
    out.append(_html_table(SLICE_COLUMNS, [slice_cells(s) for s in r.months]))
    out.append(f'<h2>Per indicator</h2><p class="notes">{_h(r.indicator_note)}</p>')
    out.append(_html_table(("degree", "declarations"),
                           [(f"{d:g}", f"{n:,}") for d, n in r.degrees]))  # fmt: skip
    if r.firing is not None:
        out.append(f"<p>{_h(_firing_title(r))}</p>")
        out.append(_html_table(FIRING_COLUMNS, _firing_rows(r)))
    out.append("</body></html>")
    return "\n".join(out)
