"""``riskengine backtest``: selectivity, hit rate and revenue of profiles over the store."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import click
import sqlalchemy as sa
from rich.console import Console

from riskengine import model as m
from riskengine.backtest.metrics import ThresholdError, Thresholds
from riskengine.backtest.output import print_diagnostics, print_tables, to_csv, to_json
from riskengine.backtest.pushdown import BREAKDOWNS, PlannedProfile
from riskengine.backtest.run import BacktestOptions, planned_from, run_backtest
from riskengine.backtest.selected import CHANGES, SELECTED, Lists, RowWriter
from riskengine.checks import load_checked
from riskengine.cli.common import (
    catalogue_option,
    elapsed_status,
    expand_paths,
    open_store,
    plural,
    use_color,
)
from riskengine.render.terminal import terminal_console
from riskengine.render.words import plural as counted

__all__ = ["backtest"]


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _breakdowns(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    for key in keys:
        if key not in BREAKDOWNS:
            raise click.BadParameter(f"{key!r}: use any of {', '.join(BREAKDOWNS)}")
    return keys


def _key_line(text: str, key: str) -> int | None:
    """The line of ``key = ...`` inside the ``[backtest]`` table of a TOML text (1-based)."""
    table = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped.strip("[] \t")
            continue
        name = stripped.partition("=")[0].strip().strip("\"'")
        if table == "backtest" and "=" in stripped and name == key:
            return number
    return None


def _thresholds(path: str | None, high: float | None, low: float | None) -> Thresholds:
    """The thresholds of ``--config`` (its ``[backtest]`` table), overridden by the options; an
    unknown key or a bad value is an error located in the file."""
    data: dict[str, object] = {}
    text = ""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
            document = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise click.BadParameter(f"{path}: {exc}", param_hint="--config") from None
        if "backtest" not in document:
            # thresholds at the top level or under a misspelt table would be silently ignored
            found = ", ".join(
                f"[{k}]" if isinstance(v, dict) else repr(k) for k, v in document.items()
            )
            raise click.BadParameter(
                f"{path}: no [backtest] table ({'found ' + found if found else 'the file is empty'}"
                "): the thresholds go under [backtest], e.g. [backtest] high_selectivity = 5.0",
                param_hint="--config",
            )
        table = document["backtest"]
        if not isinstance(table, dict):
            raise click.BadParameter(f"{path}: [backtest] must be a table", param_hint="--config")
        data = dict(table)
    from_options = {"high_selectivity": high, "low_selectivity": low}
    data.update({k: v for k, v in from_options.items() if v is not None})
    try:
        return Thresholds.from_mapping(data)
    except ThresholdError as exc:
        if exc.key is not None and from_options.get(exc.key) is not None:
            option = "--" + exc.key.replace("_", "-")
            raise click.BadParameter(str(exc), param_hint=option) from None
        line = _key_line(text, exc.key) if exc.key is not None else None
        where = f"{path}:{line}" if line is not None else str(path)
        raise click.BadParameter(f"{where}: {exc}", param_hint="--config") from None


def _list_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A list file's path: its suffix says the format (checked before the backtest runs)."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() not in RowWriter.SUFFIXES:
        raise click.BadParameter(f"{value!r}: name a .csv or .jsonl file (the format written)")
    if not path.parent.is_dir():
        raise click.BadParameter(f"{value!r}: the folder {str(path.parent)!r} does not exist")
    return path


def _output_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--html`` / ``--output``: the folder must exist, checked before the backtest runs (not
    found after it, or as an internal error)."""
    if value is not None and not Path(value).parent.is_dir():
        raise click.BadParameter(
            f"{value!r}: the folder {str(Path(value).parent)!r} does not exist"
        )
    return value


def _list_writers(
    selected: Path | None, changes: Path | None
) -> tuple[contextlib.ExitStack, dict[str, RowWriter]]:
    """The writers of ``--selected`` and ``--changes`` (by :class:`Lists` field), opened in a
    stack that renames each file into place when it closes without an error."""
    files = contextlib.ExitStack()
    writers = {}
    for name, path, columns in (("selected", selected, SELECTED), ("changed", changes, CHANGES)):
        if path is not None:
            writers[name] = files.enter_context(RowWriter(path, columns))
    return files, writers


def _pairs(main: list[PlannedProfile], other: list[PlannedProfile]) -> list[tuple[str, str]]:
    """Pair each profile with the other edition of the same number; one profile against one
    other is compared whatever their numbers."""
    if len(main) == 1 and len(other) == 1:
        return [(main[0].key, other[0].key)]
    pairs = []
    for a in main:
        if a.profile.number is None:
            continue
        for b in other:
            if b.profile.number is not None and b.profile.number.base == a.profile.number.base:
                pairs.append((a.key, b.key))
    if not pairs:
        raise click.UsageError(
            "--compare found no profile with the same number (WW/XX/YYYY/ZZZZZ) to compare; "
            "give one profile on each side to compare any two"
        )
    return pairs


def _rekeyed(
    other: list[PlannedProfile], files: Sequence[m.SourceFile], taken: set[str]
) -> tuple[list[PlannedProfile], tuple[m.SourceFile, ...]]:
    """The ``--compare`` side with every key that the main side already uses made distinct by
    its file: a profile compared with its own previous version (a copy, ``git show
    HEAD:first.rp > old.rp``) has the same name or number, and becomes ``KEY (old.rp)``. A
    renamed draft is renamed in the files too, so the HTML report finds its passport; the
    profile itself (and its hash) is unchanged."""
    path_of = {id(p): sf.path for sf in files for p in sf.profiles}
    used = set(taken)
    out: list[PlannedProfile] = []
    renamed: dict[int, str] = {}
    for pp in other:
        key = pp.key
        if key in used:
            key = f"{pp.key} ({path_of.get(id(pp.profile), 'compared')})"
            n = 2
            while key in used:
                key, n = f"{pp.key} (compared {n})", n + 1
            if pp.profile.number is None:
                renamed[id(pp.profile)] = key
        used.add(key)
        out.append(attrs.evolve(pp, key=key))
    shown = tuple(
        attrs.evolve(
            sf,
            profiles=tuple(
                attrs.evolve(p, name=renamed[id(p)]) if id(p) in renamed else p for p in sf.profiles
            ),
        )
        if any(id(p) in renamed for p in sf.profiles)
        else sf
        for sf in files
    )
    return out, shown


def _connect(url: str | None, memory_limit: str | None, catalogue_path: str | None) -> Any:
    """The store's engine and its catalogue (:func:`open_store`: it must be initialised); on
    DuckDB with ``memory_limit``, capped and spilling to disk."""
    from riskengine.store.engine import resolve_url

    if memory_limit is None:
        return open_store(url, catalogue_path)
    parsed = sa.make_url(resolve_url(url))
    if parsed.get_backend_name() != "duckdb":
        raise click.UsageError("--memory-limit applies to DuckDB stores only")
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", memory_limit, re.I):
        raise click.BadParameter(
            f"{memory_limit!r} is not a size such as 450MB or 2GB", param_hint="--memory-limit"
        )
    config = {"memory_limit": memory_limit, "preserve_insertion_order": False}
    if parsed.database not in (None, "", ":memory:"):
        config["temp_directory"] = f"{parsed.database}.tmp"
    return open_store(url, catalogue_path, connect_args={"config": config})


@click.command()
@click.argument("profiles", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--db", "--url", "url", metavar="URL", help="Store URL (default: riskengine.db).")
@click.option("--from", "date_from", required=True, callback=_date, help="First day, YYYY-MM-DD.")
@click.option("--to", "date_to", required=True, callback=_date, help="Last day, YYYY-MM-DD.")
@click.option("--by", callback=_breakdowns, help="Breakdowns: month,office,regime.")
@click.option(
    "--compare",
    "compare_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Profiles to compare with (e.g. the edition in force).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    callback=_output_path,
    help="Write an HTML report.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    callback=_output_path,
    help="Write JSON/CSV here.",
)
@click.option("--config", type=click.Path(exists=True, dir_okay=False), help="TOML thresholds.")
@click.option(
    "--indicators", is_flag=True, help="Count where each indicator was true (one more pass)."
)
@click.option(
    "--sweep",
    is_flag=True,
    help="Selectivity, hit rate and revenue at each degree threshold 0, 5, …, 100 (one more pass).",
)
@click.option(
    "--selected",
    "selected_path",
    type=click.Path(dir_okay=False),
    callback=_list_path,
    help="Write every selected declaration (profile, declaration, date, office, degree, "
    "controls, hit) to FILE.csv or FILE.jsonl.",
)
@click.option(
    "--changes",
    "changes_path",
    type=click.Path(dir_okay=False),
    callback=_list_path,
    help="With --compare: write every newly selected / no longer selected declaration to "
    "FILE.csv or FILE.jsonl.",
)
@click.option("--high-selectivity", type=float, help="Flag profiles selecting ≥ this % .")
@click.option("--low-selectivity", type=float, help="Flag profiles selecting < this % (LOW).")
@click.option(
    "--any-control",
    is_flag=True,
    help="Count every control result on a selected declaration, whatever its procedure.",
)
@catalogue_option
@click.option("--no-history", is_flag=True, help="Treat negative/positive history as 0.")
@click.option("--no-record", is_flag=True, help="Do not record the run in the store.")
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="DuckDB only: cap the engine's memory (e.g. 450MB, 2GB); what does not fit spills to "
    "a temporary folder beside the store. Default: DuckDB's own (80 % of RAM).",
)
def backtest(
    profiles: tuple[str, ...],
    url: str | None,
    date_from: dt.date,
    date_to: dt.date,
    by: tuple[str, ...],
    compare_paths: tuple[str, ...],
    fmt: str,
    html_path: str | None,
    output: str | None,
    config: str | None,
    indicators: bool,
    sweep: bool,
    selected_path: Path | None,
    changes_path: Path | None,
    high_selectivity: float | None,
    low_selectivity: float | None,
    any_control: bool,
    catalogue_path: str | None,
    no_history: bool,
    no_record: bool,
    memory_limit: str | None,
) -> None:
    """Backtest PROFILES over the declarations in the store, pushed down to SQL."""
    from riskengine.sql.compile import register_functions
    from riskengine.store.engine import database_errors
    from riskengine.store.schema import build_tables
    from riskengine.store.source import native_source

    if date_to < date_from:  # a bad option value: status 2, before the store is opened
        raise click.BadParameter(
            f"--to {date_to} is before --from {date_from}", param_hint="'--to'"
        )
    thresholds = _thresholds(config, high_selectivity, low_selectivity)  # also before the store
    engine, catalogue = _connect(url, memory_limit, catalogue_path)
    checked = load_checked(expand_paths(profiles), catalogue)
    main = planned_from(checked)
    if not main:
        raise click.UsageError("no profile found in the given files")
    other: list[PlannedProfile] = []
    shown = checked  # every profile whose passport the HTML report summarises
    if compare_paths:
        checked_other = load_checked(expand_paths(compare_paths), catalogue)
        other, other_files = _rekeyed(
            planned_from(checked_other), checked_other.files, {p.key for p in main}
        )
        shown = attrs.evolve(
            checked,
            files=checked.files + other_files,
            sources={**checked.sources, **checked_other.sources},
        )
    options = BacktestOptions(
        date_from,
        date_to,
        by=by,
        compare=tuple(_pairs(main, other)) if other else (),
        thresholds=thresholds,
        history=not no_history,
        any_control=any_control,
        indicators=indicators,
        sweep=sweep,
    )
    if changes_path is not None and not options.compare:
        raise click.UsageError("--changes needs --compare (the profiles to compare with)")
    register_functions(engine)
    err = Console(stderr=True, no_color=not use_color(sys.stderr))
    files, writers = _list_writers(selected_path, changes_path)
    lists = Lists(**{name: w.write for name, w in writers.items()}) if writers else None
    try:
        with files, database_errors(engine), engine.connect() as conn:
            source = native_source(build_tables(catalogue))
            with elapsed_status(
                f"backtesting {plural(len(main) + len(other), 'profile')} over "
                f"{date_from} .. {date_to}"
            ):
                result = run_backtest(
                    conn, source, [*main, *other], options, record=not no_record,
                    catalogue=catalogue, lists=lists,
                )  # fmt: skip
    finally:
        engine.dispose()  # DuckDB: let the next open in this process choose its own settings
    for name, writer in writers.items():
        what = (
            counted(writer.count, "selected declaration")
            if name == "selected"
            else counted(writer.count, "change") + " of selection"
        )
        err.print(f"{what} written to {writer.path}", highlight=False, soft_wrap=True)
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if html_path is not None:
        from riskengine.backtest.report import write_html

        write_html(result, shown, Path(html_path))
        err.print(f"report written to {html_path}")
    if fmt == "table":
        console = terminal_console(color=use_color())
        changes = writers.get("changed")
        print_tables(result, console, None if changes is None else str(changes.path))
        print_diagnostics(result, console)
        return
    text = to_json(result) if fmt == "json" else to_csv(result)
    if output:
        from riskengine.diagnostics import RiskEngineError

        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:  # the folder was checked; a write can still be refused
            raise RiskEngineError(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        click.echo(text, nl=False)
