"""``riskengine kpi``: KPI passports and the annual KPI report (``docs/kpi.md``).

``kpi check PASSPORTS...`` reads passports and says what is wrong (file, line, key);
``kpi report --year 2025 [--by office] [--passports DIR] [--html FILE]`` lays out the seeds' table
(KPI, indicator, baseline, target, actual, unit, source, periodicity, score) and the total.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from riskengine.cli.common import (
    EXIT_USAGE,
    atomic_write,
    plural,
    store_url_option,
    use_color,
    user_error,
)
from riskengine.render.terminal import terminal_console

if TYPE_CHECKING:
    from riskengine.kpi.passport import Passport

__all__ = ["kpi"]


def _passports(ctx: click.Context, paths: tuple[str, ...]) -> list[Passport]:
    from riskengine.kpi.passport import PassportError, default_passports_dir, load_passports

    try:
        return load_passports(list(paths) or [default_passports_dir()])
    except PassportError as exc:
        user_error(str(exc))
        ctx.exit(EXIT_USAGE)
    raise AssertionError  # pragma: no cover - ctx.exit raises


@click.group()
def kpi() -> None:
    """KPI passports and the annual KPI report (scores 1-5, total = Σ / (5 × n))."""


@kpi.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_context
def check(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Read KPI passports (files or folders of *.toml; default: the shipped demo passports)."""
    passports = _passports(ctx, paths)
    for p in passports:
        click.echo(
            f"{p.file}: {p.id}: {p.source.describe()}, target {p.target.method.value}, "
            f"{p.direction.value} is better"
        )
    click.echo(f"{plural(len(passports), 'passport')}, no errors")


@kpi.command("report")
@click.option(
    "--year",
    type=click.IntRange(1900, 2999),
    required=True,
    help="The reporting year (a passport's year_start_month may make it end in it).",
)
@click.option(
    "--by",
    type=click.Choice(["office"]),
    default=None,
    help="Also one table per office (declaration.office).",
)
@click.option("--passports", "paths", multiple=True, type=click.Path(exists=True),
              help="A passport file or a folder of them (repeatable; default: the shipped demo "
              "passports).")  # fmt: skip
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Also write the report as a self-contained HTML page with charts.",
)
@store_url_option
@click.pass_context
def report(
    ctx: click.Context,
    year: int,
    by: str | None,
    paths: tuple[str, ...],
    html_path: str | None,
    url: str | None,
) -> None:
    """The KPI report for one reporting year: baseline, target, actual and 1-5 score of each KPI,
    and the total Σ scores / (5 × n)."""
    from riskengine.cli.common import open_store
    from riskengine.kpi.render import print_report, report_html
    from riskengine.kpi.report import build_report
    from riskengine.store.schema import build_tables

    passports = _passports(ctx, paths)
    engine, catalogue = open_store(url)
    try:
        result = build_report(
            engine, build_tables(catalogue), passports, year, by_office=by == "office"
        )
    finally:
        engine.dispose()
    print_report(result, terminal_console(color=use_color()))
    if html_path:
        atomic_write(Path(html_path), report_html(result))
        click.echo(f"wrote {html_path}")
