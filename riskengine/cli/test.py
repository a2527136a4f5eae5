"""``riskengine test``: run the ``*.test.toml`` profile tests and report their coverage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attrs
import click
from rich.console import Console
from rich.table import Table

from riskengine.catalogue import catalogue_with
from riskengine.cli.common import (
    catalogue_option_no_store,
    note_drafts,
    plural,
    use_color,
    user_error,
)
from riskengine.diagnostics import ProfileError, RiskEngineError
from riskengine.evaluator import Engine
from riskengine.profiletest import (
    RunResult,
    Status,
    TestFile,
    TestFileError,
    find_test_files,
    parse_test_file,
    run_tests,
)
from riskengine.render.terminal import terminal_console

__all__ = ["test"]


def _profiles_dir(paths: tuple[str, ...]) -> Path:
    """The default profile folder: the first path if it is a folder with ``*.rp`` files, else the
    folder holding the first test file's ``tests/`` folder (or the test file's folder)."""
    first = Path(paths[0])
    if first.is_dir():
        if any(first.glob("*.rp")):
            return first
        return first.parent if first.name == "tests" else first
    folder = first.parent
    return folder.parent if folder.name == "tests" else folder


def _title(key: str, name: str) -> str:
    """A profile as the coverage report names it: number and name, or a draft's name once."""
    return name if key == name or not name else f"{key} {name}"


def _percent(value: float) -> str:
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _json(run: RunResult) -> str:
    data: dict[str, Any] = {
        "passed": run.passed,
        "failed": run.failed,
        "cases": [
            {
                "file": r.case.file,
                "name": r.case.name,
                "profile": r.profile,
                "status": r.status.value,
                "diffs": [
                    {"field": d.field, "expected": d.expected, "actual": d.actual} for d in r.diffs
                ],
                "error": r.error,
            }
            for r in run.results
        ],
        "coverage": {
            "percent": round(run.percent, 2),
            "covered": run.covered,
            "total": run.total,
            "profiles": [
                {
                    "key": c.key,
                    "name": c.name,
                    "cases": c.cases,
                    "percent": round(c.percent, 2),
                    "points": [
                        {"kind": p.kind, "name": p.name, "true": p.true_seen, "false": p.false_seen}
                        for p in c.points
                    ],
                }
                for c in run.coverage
            ],
        },
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


def _text(run: RunResult, console: Console) -> None:
    current = None
    for r in run.results:
        if r.case.file != current:
            current = r.case.file
            console.print(f"{current}", style="bold", markup=False, soft_wrap=True)
        style = {"PASS": "green", "FAIL": "bold red", "ERROR": "bold red"}[r.status.value]
        label = f" [{r.profile}]" if r.profile else ""
        console.print(f"  {r.status.value:<5}", style=style, end="", markup=False, soft_wrap=True)
        console.print(f" {r.case.name}{label}", markup=False, soft_wrap=True)
        if r.error:
            console.print(f"        error: {r.error}", markup=False, soft_wrap=True)
        for d in r.diffs:
            console.print(f"        {d.field}:", markup=False, soft_wrap=True)
            console.print(
                f"          expected: {d.expected}", style="green", markup=False, soft_wrap=True
            )
            console.print(
                f"          actual:   {d.actual}", style="red", markup=False, soft_wrap=True
            )
    console.print()
    untested = [c for c in run.coverage if not c.cases]
    for c in run.coverage:
        if not c.cases:
            continue
        console.print(
            f"{_title(c.key, c.name)}: {_percent(c.percent)} % ({plural(c.cases, 'case')})",
            style="bold",
            markup=False,
            soft_wrap=True,
        )
        table = Table()
        table.add_column("indicator / control")
        table.add_column("true seen")
        table.add_column("false seen")
        for p in c.points:
            table.add_row(
                f"{p.kind} {p.name}",
                "yes" if p.true_seen else "[red]no[/red]",
                "yes" if p.false_seen else "[red]no[/red]",
            )
        console.print(table)
    for c in untested:
        console.print(
            f"{_title(c.key, c.name)}: no tests, 0 % of {plural(c.total, 'point')}",
            style="red",
            markup=False,
            soft_wrap=True,
        )
    console.print(
        f"{plural(run.passed, 'case')} passed, {run.failed} failed; coverage "
        f"{_percent(run.percent)} % ({run.covered}/{run.total})",
        markup=False,
    )


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--profiles",
    "profiles_dir",
    type=click.Path(exists=True),
    help="Profile files or folder (default: the folder of the tests, see docs/profile-tests.md).",
)
@click.option("--min-coverage", type=click.FloatRange(0, 100), help="Fail below N % coverage.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--tested-only",
    is_flag=True,
    help="Measure coverage only over the profiles that have cases (default: every profile).",
)
@catalogue_option_no_store
def test(
    paths: tuple[str, ...],
    profiles_dir: str | None,
    min_coverage: float | None,
    fmt: str,
    tested_only: bool,
    catalogue_path: str | None,
) -> None:
    """Run the profile tests (*.test.toml) in PATHS and report PASS/FAIL and coverage.

    Exit status 0 when every case passed (and coverage reached --min-coverage), 1 otherwise.
    """
    files = find_test_files(list(paths))
    if not files:
        raise click.UsageError(f"no *.test.toml files found in {', '.join(paths)}")
    parsed: list[TestFile] = []
    bad: list[TestFileError] = []
    for f in files:
        try:
            parsed.append(parse_test_file(f))
        except TestFileError as exc:
            bad.append(exc)
    if bad:
        for problem in bad[:-1]:
            user_error(str(problem))
        raise bad[-1]  # the last one is reported by the command line, exit status 1
    folder = Path(profiles_dir) if profiles_dir else _profiles_dir(paths)
    try:
        # unit tests are development: drafts are tested too, and the note says so
        engine = Engine.load(folder, catalogue=catalogue_with(catalogue_path), allow_drafts=True)
    except ProfileError as exc:
        raise RiskEngineError(f"the profiles in {folder} have errors:\n{exc}") from None
    note_drafts(engine.profiles)
    if not len(engine.profiles):
        raise click.UsageError(f"no profiles found in {folder}")
    run = run_tests(engine, parsed)
    if tested_only:
        run = attrs.evolve(run, coverage=tuple(c for c in run.coverage if c.cases))
    if fmt == "json":
        click.echo(_json(run))
    else:
        _text(run, terminal_console(color=use_color(), default_width=100))
    low = min_coverage is not None and run.percent + 1e-9 < min_coverage
    if low and fmt == "text":
        click.echo(
            f"error: coverage {_percent(run.percent)} % is below --min-coverage "
            f"{_percent(float(min_coverage or 0))} %",
            err=True,
        )
    if run.failed or low or any(r.status is Status.ERROR for r in run.results):
        sys.exit(1)
