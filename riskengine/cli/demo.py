"""``riskengine demo``: the whole pipeline on generated data, in one command; and
``riskengine demo-data``: only the demo data, into a store or as export files.

``demo`` creates an SQLite store in a folder, fills it with reproducible demo declarations, loads
the sample profiles, scores one declaration with its explanation, backtests every sample profile
over the demo period and writes the HTML report.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from riskengine.cli.common import (
    elapsed_status,
    iso_date,
    note_drafts,
    progress_bar,
    shown_url,
    store_url_option,
    use_color,
)
from riskengine.render.terminal import terminal_console
from riskengine.render.words import duration, plural

#: The demo data's seed, the same for ``riskengine demo`` and ``riskengine demo-data``: the
#: figures of the docs come from it.
DEFAULT_SEED = 1

__all__ = ["demo", "demo_data", "sample_profiles_dir"]


def sample_profiles_dir() -> Path:
    """The sample profiles: ``profiles/`` in the working folder, else the copy shipped inside
    the package (a wheel), else the source tree's (an editable install)."""
    here = Path("profiles")
    if here.is_dir() and any(here.rglob("*.rp")):
        return here
    packaged = Path(__file__).resolve().parents[1] / "sample_profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "profiles"


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False),
    default="riskengine-demo",
    show_default=True,
    help="Where the store, the report and the JSON results go.",
)
@click.option("--declarations", type=click.IntRange(100), default=10_000, show_default=True)
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Same seed, same data."
)
@click.option(
    "--profiles",
    "profiles_path",
    type=click.Path(exists=True),
    help="Profiles to use (default: the sample profiles).",
)
def demo(folder: str, declarations: int, seed: int, profiles_path: str | None) -> None:
    """Generate demo data, score a declaration with its explanation, backtest, write a report."""
    from riskengine.backtest.output import print_tables, to_json
    from riskengine.backtest.report import write_html
    from riskengine.backtest.run import BacktestOptions, planned_from, run_backtest
    from riskengine.checks import load_checked
    from riskengine.cli.common import expand_paths
    from riskengine.demo import (
        DEFAULT_END,
        DEFAULT_START,
        generate,
        raw_declaration,
        write_demo,
    )
    from riskengine.demo.lifecycle import DRAFT_NAME, draft_to_bundle
    from riskengine.evaluator import Engine
    from riskengine.sql.compile import register_functions
    from riskengine.store.engine import connect
    from riskengine.store.history import SqlHistoryProvider
    from riskengine.store.schema import build_tables
    from riskengine.store.source import native_source

    started = time.perf_counter()
    out = terminal_console(color=use_color(), default_width=110)
    err = Console(stderr=True, no_color=not use_color(sys.stderr))
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    db_path = root / "riskengine.db"
    url = f"sqlite:///{db_path}"
    profiles = Path(profiles_path) if profiles_path else sample_profiles_dir()

    out.rule("1. Demo data")
    engine = connect(url)
    register_functions(engine)
    with Progress(
        TextColumn("storing declarations"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not use_color(sys.stderr),
    ) as progress:
        task = progress.add_task("store", total=declarations)
        summary = write_demo(
            engine, declarations, seed, progress=lambda n: progress.advance(task, n)
        )
    if summary.declarations:
        from riskengine.store.maintenance import analyze

        analyze(engine)
    out.print(
        f"{url}: {plural(summary.declarations, 'new declaration')} "
        f"({plural(summary.items, 'goods item')}), {summary.not_completed:,} not completed, "
        f"{plural(summary.controls, 'control result')}, "
        f"{plural(summary.violations, 'planted violation')}; period {DEFAULT_START} .. "
        f"{DEFAULT_END}" + ("" if summary.declarations else " (already there: reused)")
    )

    out.rule("2. Profiles")
    checked = load_checked(expand_paths([profiles]))
    out.print(
        f"{profiles}: {plural(len(checked.profiles), 'profile')} and "
        f"{plural(len(checked.fills), 'regional fill')}, checked: "
        f"{plural(len(checked.warnings), 'warning')}"
    )

    out.rule("3. Scoring one declaration, with the explanation")
    scorer = Engine.load([profiles], allow_drafts=True)  # a demo folder may hold drafts
    note_drafts(scorer.profiles)
    history = SqlHistoryProvider(engine)
    sample = None
    result = None
    records = list(generate(declarations, seed))  # steps 3, 5 and 6 read them
    for record in records:
        if record.violation is None:
            continue
        raw = raw_declaration(record)
        as_of = record.declaration.header["date"]
        scored = scorer.score(raw, as_of, history=history)
        if scored.fired:
            sample, result = raw, scorer.score(raw, as_of, explain=True, history=history)
            break
    if sample is None or result is None:
        out.print("no demo declaration fired any profile (try another --seed)")
    else:
        out.print(
            f"declaration {sample.get('id')} of {result.as_of}: lane {result.lane}, controls "
            + ", ".join(f"{c.code} ({c.kind.value})" for c in result.controls)
        )
        for fired in result.fired:
            out.print(f"  {fired.key}: degree {fired.degree:g}, items {list(fired.items)}")
            out.print(f"    message: {fired.message}")
        if result.explanations:
            top = max(result.fired, key=lambda f: f.degree)
            for explanation in result.explanations:
                if getattr(explanation, "key", None) == top.key:
                    out.print(explanation.render(), markup=False, highlight=False)
                    break

    out.rule("4. Backtest of every profile over the demo period")
    options = BacktestOptions(DEFAULT_START, DEFAULT_END, by=("office", "regime"))
    with engine.connect() as conn:
        source = native_source(build_tables())
        with err.status("backtesting (one SQL pass for all profiles)", spinner="dots"):
            backtest = run_backtest(conn, source, planned_from(checked), options)
    print_tables(backtest, out)
    html = root / "backtest.html"
    write_html(backtest, checked, html)
    (root / "backtest.json").write_text(to_json(backtest), encoding="utf-8")

    out.rule("5. From draft to the approved-set bundle (docs/registry.md, docs/bundle.md)")
    with err.status("backtest, submit, approve, build and sign the bundle", spinner="dots"):
        life = draft_to_bundle(
            engine,
            root / "lifecycle",
            lambda: (raw_declaration(record) for record in records),
        )
    out.print(
        f'draft "{DRAFT_NAME}" ({life.draft}): unit tests pass, backtest run '
        f"{life.run_id} selects {life.selected:,} of {life.considered:,}",
        markup=False,
    )
    if life.submission is not None:
        out.print(
            f"submission {life.submission} approved by the commission: {life.number}",
            markup=False,
        )
    else:
        out.print(f"approved by an earlier demo run: {life.number}", markup=False)
    out.print(
        f"bundle revision {life.revision} ({plural(life.editions, 'approved edition')}), "
        f"signed by {life.key_id}: {life.bundle}",
        markup=False,
    )
    if life.scored is not None:
        out.print(
            f"scored from the bundle: {life.scored}, lane {life.lane}, fired "
            + ", ".join(life.fired),
            markup=False,
        )

    out.rule("6. Production scoring into the decision log (docs/production.md)")
    from riskengine.demo.review import REVIEW_END, REVIEW_START, REVIEWED, log_decisions

    with err.status("scoring the review year into the decision log", spinner="dots"):
        logged = log_decisions(
            engine,
            scorer,
            (record.declaration for record in records),
            root / "decisions.spool.jsonl",
        )
    out.print(
        f"{plural(logged.scored, 'declaration')} of {REVIEW_START} .. {REVIEW_END} scored with "
        f"the sample profiles: {logged.fired:,} fired a profile; {logged.written:,} decisions "
        f"recorded" + (f", {logged.duplicates:,} already there" if logged.duplicates else ""),
        markup=False,
        soft_wrap=True,
    )

    out.rule("7. Effectiveness review and KPI report (docs/effectiveness.md, docs/kpi.md)")
    review_html, kpi_html = root / "review.html", root / "kpi.html"
    summary_lines = _review_and_kpis(engine, REVIEWED, REVIEW_START, REVIEW_END, review_html,
                                     kpi_html)  # fmt: skip
    for line in summary_lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)

    out.rule("Done")
    out.print(
        f"report: {html}   results: {root / 'backtest.json'}   store: {db_path}\n"
        f"the review in full: riskengine review report {REVIEWED} --from {REVIEW_START} --to "
        f"{REVIEW_END} --db {db_path}\n"
        f"next: riskengine show {profiles}/undervaluation_footwear_textiles.rp | less; "
        f"riskengine backtest PROFILE.rp --db {url} --from {DEFAULT_START} --to {DEFAULT_END}\n"
        f"finished in {duration(time.perf_counter() - started)} ({dt.date.today()})"
    )


def _review_and_kpis(
    engine: Any, number: str, start: dt.date, end: dt.date, review_html: Path, kpi_html: Path
) -> list[str]:
    """The review report of ``number`` and the KPI report of ``end``'s year, written as HTML;
    the lines the demo prints about them."""
    from riskengine.effectiveness import (
        compute_results,
        evaluate,
        load_rules,
        report_html,
        with_registry,
    )
    from riskengine.effectiveness.render import rate
    from riskengine.kpi.passport import default_passports_dir, load_passports
    from riskengine.kpi.render import report_html as kpi_page
    from riskengine.kpi.render import total_text
    from riskengine.kpi.report import build_report
    from riskengine.store.schema import build_tables

    tables = build_tables()
    with engine.connect() as conn:
        results = with_registry(conn, compute_results(conn, tables, number, start, end))
    review = evaluate(results, load_rules())
    review_html.write_text(report_html(review), encoding="utf-8")
    t = results.total
    first = review.matched[0] if review.matched else None
    lines = [
        f"review of {number}, {start} .. {end}: fired on {t.fired:,} of {t.decisions:,} "
        f"declarations scored; controls ordered on {t.ordered:,}, carried out on "
        f"{t.carried_out:,}",
        f"controlled at its order: {plural(t.controlled, 'declaration')}, {t.violations:,} with a "
        f"violation: hit rate {rate(t.hit_rate)} against random controls {rate(t.random)}",
        *(f"{a.question} {a.answer}" for a in review.answers),
        "recommendation: "
        + (f"{first[0].recommendation} ({first[0].id}: {first[1]})" if first else "none"),
    ]
    kpis = build_report(engine, tables, load_passports([default_passports_dir()]), end.year)
    kpi_html.write_text(kpi_page(kpis), encoding="utf-8")
    lines.append(f"KPI report {end.year}: {total_text(kpis, None)}")
    lines.append(f"written: {review_html}, {kpi_html}")
    return lines


@click.command("demo-data")
@click.option(
    "--declarations", "-n", "count", type=click.IntRange(min=1), default=10_000, show_default=True
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="Same seed, same data (the default is riskengine demo's).",
)
@click.option("--start", callback=iso_date, default=None, help="First date (default 2024-01-01).")
@click.option("--end", callback=iso_date, default=None, help="Last date (default 2025-12-31).")
@store_url_option
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write a one-row-per-item CSV export (and FILE.outcomes.csv, FILE.outcomes.controls.csv)"
    " instead of storing; ingest it with riskengine/demo/examples/demo_export.toml.",
)
@click.option(
    "--jsonl",
    "jsonl_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write declarations as JSON Lines (the input format) instead of storing.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo_data(
    count: int,
    seed: int,
    start: dt.date | None,
    end: dt.date | None,
    url: str | None,
    csv_path: str | None,
    jsonl_path: str | None,
    quiet: bool,
) -> None:
    """Generate realistic demo declarations with planted violations, outcomes and controls.

    Repeat offenders make history matter; the same --seed always gives the same data.
    """
    from riskengine import demo
    from riskengine.store.engine import connect

    first = start or demo.DEFAULT_START
    last = end or demo.DEFAULT_END
    if last < first:
        raise click.BadParameter(f"--end {last} is before --start {first}")
    began = time.perf_counter()
    if csv_path or jsonl_path:
        records = list(demo.generate(count, seed, first, last))
        if csv_path:
            rows = demo.export_csv(records, csv_path)
            out = Path(csv_path)
            outcomes_path = out.with_name(out.stem + ".outcomes.csv")
            outcome_rows, control_rows = demo.export_outcomes_csv(records, outcomes_path)
            click.echo(
                f"wrote {plural(rows, 'item row')} of {plural(count, 'declaration')} to "
                f"{csv_path}, {plural(outcome_rows, 'outcome row')} to {outcomes_path}, "
                f"{plural(control_rows, 'control row')} to "
                f"{outcomes_path.with_name(outcomes_path.stem + '.controls.csv')}"
            )
        if jsonl_path:
            lines = demo.export_jsonl(records, jsonl_path)
            click.echo(f"wrote {plural(lines, 'declaration')} to {jsonl_path}")
        return
    engine = connect(url)
    try:
        with progress_bar(count, "demo declarations", quiet) as advance:
            summary = demo.write_demo(engine, count, seed, first, last, progress=advance)
        if summary.declarations:
            from riskengine.store.maintenance import analyze, gathers_statistics

            if gathers_statistics(engine):
                with elapsed_status("refreshing the planner statistics", quiet):
                    analyze(engine)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - began
    click.echo(
        f"stored {plural(summary.declarations, 'declaration')} "
        f"({plural(summary.items, 'goods item')}), {summary.not_completed:,} not completed, "
        f"{plural(summary.controls, 'control')}, "
        f"{plural(summary.violations, 'planted violation')} in {shown_url(url)} "
        f"({duration(seconds)})"
    )
    if summary.declarations < count:
        already = count - summary.declarations
        verb = "was" if already == 1 else "were"
        click.echo(f"{plural(already, 'declaration')} {verb} already in the store")
