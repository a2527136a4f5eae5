"""Backtest results for people and machines: terminal tables, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from riskengine.backtest.metrics import ProfileMetrics
from riskengine.backtest.run import BacktestResult

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
         "low", "controls_any"]
    )  # fmt: skip
    for key, breakdown, group, mtr in _rows(result):
        applied = ";".join(f"{code}={n}" for code, n in mtr.controls_applied.items())
        values = ["" if getattr(mtr, m) is None else getattr(mtr, m) for m, _ in COLUMNS]
        writer.writerow(
            [key, breakdown, group, *values, applied, int(mtr.high_selectivity),
             int(mtr.low_selectivity), mtr.controls_any]
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


def print_tables(result: BacktestResult, console: Console) -> None:
    """The terminal view: a summary, control forms, each breakdown and comparison."""
    opts = result.options
    console.print(
        f"Backtest {opts.date_from} .. {opts.date_to} on {result.engine}: "
        f"{result.considered:,} declarations, {len(result.profiles)} profiles, "
        f"{result.seconds:.2f} s" + (f", run #{result.run_id}" if result.run_id else "")
    )
    summary = Table(title="Profiles")
    summary.add_column("Profile", no_wrap=True)
    for _, heading in SUMMARY:
        summary.add_column(heading, justify="right", no_wrap=True)
    for p in result.profiles:
        mtr = p.total
        flag = flag_markup(mtr)
        summary.add_row(f"{p.key}{flag}", *(cell(m, getattr(mtr, m)) for m, _ in SUMMARY))
    console.print(summary)
    random = result.profiles[0].total.random_hit_rate if result.profiles else None
    console.print(
        f"random-control baseline hit rate: {cell('random_hit_rate', random)} %; "
        f"HIGH = selectivity ≥ {opts.thresholds.high_selectivity:g} %"
        + (
            f", LOW = selectivity < {opts.thresholds.low_selectivity:g} %"
            if opts.thresholds.low_selectivity is not None
            else ""
        )
        + ("; controls of any procedure counted (--any-control)" if opts.any_control else "")
    )
    forms = Table(title="Control forms applied (declarations)")
    forms.add_column("Profile", no_wrap=True)
    forms.add_column("Procedure", no_wrap=True)
    forms.add_column("Declarations", justify="right")
    for p in result.profiles:
        for code, n in p.total.controls_applied.items():
            forms.add_row(p.key, code, f"{n:,}")
    console.print(forms)
    for key in opts.by:
        table = Table(title=f"By {key}")
        table.add_column("Profile", no_wrap=True)
        table.add_column(key.capitalize(), no_wrap=True)
        shown = (("considered", "Declarations"), *SUMMARY[:5])
        for _, heading in shown:
            table.add_column(heading, justify="right", no_wrap=True)
        for p in result.profiles:
            for value, mtr in p.breakdowns.get(key, ()):
                table.add_row(
                    p.key,
                    "—" if value is None else str(value),
                    *(
                        cell(m, getattr(mtr, m))
                        for m in ("considered", *(m for m, _ in SUMMARY[:5]))
                    ),
                )
        console.print(table)
    for cmp in result.comparisons:
        table = Table(title=f"{cmp.a} compared with {cmp.b}")
        table.add_column("Metric")
        table.add_column("A", justify="right")
        table.add_column("B", justify="right")
        table.add_column("A − B", justify="right")
        for metric, (va, vb, delta) in cmp.deltas.items():
            table.add_row(metric, cell(metric, va), cell(metric, vb), cell(metric, delta))
        console.print(table)
        console.print(
            f"newly selected by A: {cmp.newly_selected:,}"
            + (f" (e.g. {', '.join(cmp.examples_new)})" if cmp.examples_new else "")
            + f"; no longer selected: {cmp.no_longer_selected:,}"
            + (f" (e.g. {', '.join(cmp.examples_gone)})" if cmp.examples_gone else "")
            + (
                "; every one: --changes FILE"
                if cmp.newly_selected or cmp.no_longer_selected
                else ""
            )
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
