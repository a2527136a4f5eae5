"""Backtest results for people and machines: terminal tables, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from riskengine.backtest.metrics import ProfileMetrics
from riskengine.backtest.run import BacktestResult
from riskengine.regional import coverage_summary, office_note
from riskengine.render.terminal import number_column_width, print_table
from riskengine.render.words import duration, plural

#: Columns of the CSV export and of the terminal table (metric, heading).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("considered", "Declarations"),
    ("selected", "Selected"),
    ("selectivity", "Selectivity %"),
    ("controls_carried", "Controls done"),
    ("hits", "Hits"),
    ("hit_rate", "Hit rate %"),
    ("revenue", "Revenue"),
    ("revenue_per_control", "Revenue/control"),
    ("detection_share", "Detection %"),
    ("random_hit_rate", "Random hit %"),
)
_PERCENT = {"hit_rate", "detection_share", "random_hit_rate"}


def cell(metric: str, value: Any) -> str:
    """How a metric reads in a table: percentages with two decimals, money with two."""
    if value is None:
        return "—"
    if metric in _PERCENT:
        return f"{100 * value:.2f}"
    if metric == "selectivity":
        return f"{value:.2f}"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}"
    return f"{value:,}"


def _rows(result: BacktestResult) -> Iterator[tuple[str, str, str, ProfileMetrics]]:
    """(profile key, breakdown, group value, metrics): the total first, then each breakdown."""
    for p in result.profiles:
        yield p.key, "total", "", p.total
        for key, groups in p.breakdowns.items():
            for value, mtr in groups:
                yield p.key, key, "" if value is None else str(value), mtr


def to_json(result: BacktestResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False, indent=2, sort_keys=False)


def to_csv(result: BacktestResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["profile", "breakdown", "group", *(m for m, _ in COLUMNS), "controls_applied", "high",
         "low", "controls_any", "note"]
    )  # fmt: skip
    opts = result.options
    coverage = {p.key: p.fills_valid for p in result.profiles}
    for key, breakdown, group, mtr in _rows(result):
        applied = ";".join(f"{code}={n}" for code, n in mtr.controls_applied.items())
        values = ["" if getattr(mtr, m) is None else getattr(mtr, m) for m, _ in COLUMNS]
        note = None
        if breakdown == "office":
            note = office_note(coverage[key], group or None, opts.date_from, opts.date_to)
        writer.writerow(
            [key, breakdown, group, *values, applied, int(mtr.high_selectivity),
             int(mtr.low_selectivity), mtr.controls_any, note or ""]
        )  # fmt: skip
    return out.getvalue()


#: The summary table's columns: what the commission reads first.
SUMMARY: tuple[tuple[str, str], ...] = (
    ("selected", "Selected"),
    ("selectivity", "Sel. %"),
    ("controls_carried", "Controls"),
    ("hits", "Hits"),
    ("hit_rate", "Hit %"),
    ("revenue", "Revenue"),
    ("detection_share", "Detect. %"),
)


def flag_markup(mtr: ProfileMetrics) -> str:
    """The terminal's flag after a profile key: HIGH or LOW selectivity (or nothing)."""
    if mtr.high_selectivity:
        return " [bold red]HIGH[/]"
    if mtr.low_selectivity:
        return " [bold yellow]LOW[/]"
    return ""


def _numbers(table: Table, headings: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Right-aligned number columns, each as wide as its widest number: never cut."""
    for i, heading in enumerate(headings):
        width = number_column_width(heading, [row[i] for row in rows])
        table.add_column(heading, justify="right", no_wrap=True, width=width)


def _summary(result: BacktestResult) -> Table:
    keys = [p.key for p in result.profiles]
    cells = [[cell(m, getattr(p.total, m)) for m, _ in SUMMARY] for p in result.profiles]
    table = Table(title="Profiles")
    table.add_column("Profile", no_wrap=True, width=max(map(len, keys), default=7))
    table.add_column("Name", overflow="fold", min_width=16, ratio=1)
    _numbers(table, [h for _, h in SUMMARY], cells)
    for p, row in zip(result.profiles, cells, strict=True):
        flag = flag_markup(p.total)
        key = escape(p.key) + ("\n" + flag.strip() if flag else "")
        name = "" if p.name == p.key else escape(p.name)
        table.add_row(key, name, *row)
    return table


def print_tables(result: BacktestResult, console: Console, changes_path: str | None = None) -> None:
    """The terminal view: a summary (numbers and names), control forms, each breakdown and
    comparison. A table wider than the console is printed at the width it needs, not cut."""
    opts = result.options
    console.print(
        f"Backtest {opts.date_from} .. {opts.date_to} on {result.engine}: "
        f"{plural(result.considered, 'declaration')}, {plural(len(result.profiles), 'profile')}, "
        f"{duration(result.seconds)}" + (f", run #{result.run_id}" if result.run_id else ""),
        markup=False,
        highlight=False,
    )
    print_table(console, _summary(result))
    random = result.profiles[0].total.random_hit_rate if result.profiles else None
    console.print(
        f"random-control baseline hit rate: {cell('random_hit_rate', random)} %; "
        f"HIGH = selectivity ≥ {opts.thresholds.high_selectivity:g} %"
        + (
            f", LOW = selectivity < {opts.thresholds.low_selectivity:g} %"
            if opts.thresholds.low_selectivity is not None
            else ""
        )
        + ("; controls of any procedure counted (--any-control)" if opts.any_control else ""),
        markup=False,
        highlight=False,
    )
    for p in result.profiles:
        if p.fills_valid is not None:
            console.print(coverage_summary(p.key, p.fills_valid, opts.date_from, opts.date_to))
    forms = Table(title="Control forms applied (declarations)")
    rows = [
        (p.key, code, f"{n:,}")
        for p in result.profiles
        for code, n in p.total.controls_applied.items()
    ]
    forms.add_column("Profile", no_wrap=True, width=max((len(r[0]) for r in rows), default=7))
    forms.add_column("Procedure", no_wrap=True)
    _numbers(forms, ["Declarations"], [r[2:] for r in rows])
    for key, code, n in rows:
        forms.add_row(escape(key), escape(code), n)
    if rows:  # no profile applied any form (a regional one without a valid fill): no empty table
        print_table(console, forms)
    shown = (("considered", "Declarations"), *SUMMARY[:5])
    for key in opts.by:
        table = Table(title=f"By {key}")
        notes = key == "office" and any(p.fills_valid is not None for p in result.profiles)
        lines = [
            (
                p.key,
                "—" if value is None else str(value),
                [cell(m, getattr(mtr, m)) for m, _ in shown],
                office_note(p.fills_valid, value, opts.date_from, opts.date_to) or "",
            )
            for p in result.profiles
            for value, mtr in p.breakdowns.get(key, ())
        ]
        table.add_column("Profile", no_wrap=True, width=max((len(x[0]) for x in lines), default=7))
        table.add_column(key.capitalize(), overflow="fold")
        _numbers(table, [h for _, h in shown], [x[2] for x in lines])
        if notes:  # by office, a regional profile's rows say where no fill was valid
            table.add_column("Note")
        for profile, value, numbers, note in lines:
            table.add_row(
                escape(profile), escape(value), *numbers, *((escape(note),) if notes else ())
            )
        print_table(console, table)
    names = {p.key: p.name for p in result.profiles}
    for cmp in result.comparisons:
        title = f"{cmp.a} compared with {cmp.b}"
        if names.get(cmp.a) not in (None, cmp.a):
            title += f" ({names[cmp.a]})"
        table = Table(title=escape(title))
        table.add_column("Metric", no_wrap=True)
        deltas = [
            [cell(metric, va), cell(metric, vb), cell(metric, delta)]
            for metric, (va, vb, delta) in cmp.deltas.items()
        ]
        _numbers(table, ["A", "B", "A − B"], deltas)
        for metric, row in zip(cmp.deltas, deltas, strict=True):
            table.add_row(metric, *row)
        print_table(console, table)
        console.print(
            f"newly selected by A: {cmp.newly_selected:,}"
            + (f" (e.g. {', '.join(cmp.examples_new)})" if cmp.examples_new else "")
            + f"; no longer selected: {cmp.no_longer_selected:,}"
            + (f" (e.g. {', '.join(cmp.examples_gone)})" if cmp.examples_gone else "")
            + (
                (
                    f"; every one in {changes_path}"
                    if changes_path is not None
                    else "; every one: --changes FILE"
                )
                if cmp.newly_selected or cmp.no_longer_selected
                else ""
            ),
            markup=False,
            highlight=False,
        )


def print_diagnostics(result: BacktestResult, console: Console) -> None:
    """The terminal's indicator firing counts and threshold sweep (when asked)."""
    if any(p.indicators for p in result.profiles):
        table = Table(title="Indicators: where each was true")
        table.add_column("Profile", no_wrap=True)
        table.add_column("Indicator", no_wrap=True)
        table.add_column("Goods items", justify="right")
        table.add_column("Declarations", justify="right")
        for p in result.profiles:
            for ind in p.indicators:
                dead = " [bold yellow]never[/]" if ind.declarations == 0 else ""
                table.add_row(p.key, f"{ind.name}{dead}", f"{ind.items:,}", f"{ind.declarations:,}")
        console.print(table)
    for p in result.profiles:
        if not p.sweep:
            continue
        table = Table(title=f"Threshold sweep: {p.key}")
        table.add_column("Degree ≥", justify="right", no_wrap=True)
        for _, heading in SWEEP:
            table.add_column(heading, justify="right", no_wrap=True)
        for point in p.sweep:
            table.add_row(f"{point.threshold:g}", *(cell(m, getattr(point, m)) for m, _ in SWEEP))
        console.print(table)


#: The sweep table's columns.
SWEEP: tuple[tuple[str, str], ...] = (
    ("selected", "Selected"),
    ("selectivity", "Sel. %"),
    ("controls_carried", "Controls"),
    ("hits", "Hits"),
    ("hit_rate", "Hit %"),
    ("revenue", "Revenue"),
)
