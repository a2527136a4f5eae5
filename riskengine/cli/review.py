"""``riskengine review``: the effectiveness review of risk profiles (seed 003 §9;
``docs/effectiveness.md``).

``review report NUMBER --from D --to D [--html FILE] [--rules FILE] [--profile FILE]``: the
results of application of one profile over a period, the seed's three questions answered with
evidence, and the recommendation of the rules (keep, widen, narrow, amend, terminate).

Subcommands are added to :data:`review` with ``@review.command(...)``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import click

from riskengine.cli.common import atomic_write, iso_date, store_url_option
from riskengine.cli.review_due import due

__all__ = ["review"]


@click.group()
def review() -> None:
    """Effectiveness review of risk profiles (seed 003 §9): the queue of what is due, and
    reports with recommendations."""


@review.command("report")
@click.argument("number")
@click.option("--from", "start", callback=iso_date, required=True, metavar="YYYY-MM-DD",
              help="First day of the period (declaration dates).")  # fmt: skip
@click.option("--to", "end", callback=iso_date, required=True, metavar="YYYY-MM-DD",
              help="Last day of the period (inclusive).")  # fmt: skip
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Also write the report as a self-contained HTML page.",
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Recommendation rules (TOML; default: the shipped riskengine/data/review_rules.toml).",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(exists=True),
    help="The profile's file (or a folder of profiles): per-indicator firing from a backtest "
    "of its text over the period (the decision log does not record indicators).",
)
@store_url_option
def report(
    number: str,
    start: dt.date,
    end: dt.date,
    html_path: str | None,
    rules_path: str | None,
    profile_path: str | None,
    url: str | None,
) -> None:
    """The review report of profile NUMBER over a period: fired, controls ordered and carried
    out, violations, hit rate against random controls, revenue, detection share, overlap, trend;
    the three questions of seed 003 §9.3 and a recommendation.

    NUMBER is an edition number (2A/08/2013/00117-04), a profile number without the edition
    (all its editions), or a draft's name.
    """
    from riskengine.cli.common import open_store
    from riskengine.effectiveness import (
        compute_results,
        evaluate,
        load_rules,
        report_html,
        report_text,
        with_registry,
    )
    from riskengine.effectiveness.results import EffectivenessError
    from riskengine.store.schema import build_tables

    if end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}", param_hint="'--to'")
    if not number.strip():
        raise EffectivenessError("the profile number is empty")
    rules = load_rules(rules_path)
    engine, catalogue = open_store(url)
    try:
        with engine.connect() as conn:
            tables = build_tables(catalogue)
            results = compute_results(conn, tables, number, start, end)
            results = with_registry(conn, results)
            if profile_path is not None:
                from riskengine.effectiveness.indicators import indicator_firing

                firing = indicator_firing(conn, tables, profile_path, number, start, end)
                results = attrs.evolve(results, firing=firing, name=results.name or firing.name)
    finally:
        engine.dispose()
    result = evaluate(results, rules)
    click.echo(report_text(result), nl=False)
    if html_path:
        atomic_write(Path(html_path), report_html(result))
        click.echo(f"wrote {html_path}")


review.add_command(due)
