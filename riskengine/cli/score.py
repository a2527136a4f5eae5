"""``riskengine score``: score declarations (a JSON file, or JSON Lines on stdin) with profiles."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.table import Table

from riskengine.catalogue import Catalogue, catalogue_with
from riskengine.cli.common import use_color
from riskengine.declaration import DeclarationError, normalise_declaration
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import Engine, HistoryProvider, LaneConfig, ScoreResult
from riskengine.regional import NOT_APPLIED
from riskengine.render.terminal import terminal_console

__all__ = ["rejected_record", "result_record", "score"]


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def result_record(result: ScoreResult, *, explain: bool = False) -> dict[str, Any]:
    """A score as a JSON-ready dict: id, as-of date, lane, combined controls, fired profiles."""
    record: dict[str, Any] = {
        "id": result.declaration_id,
        "as_of": result.as_of.isoformat(),
        "selected": result.selected,
        "lane": str(result.lane),
        "controls": [
            {"code": c.code, "name": c.name, "kind": c.kind.value} for c in result.controls
        ],
        "fired": [
            {
                "key": f.key,
                "number": f.number,
                "name": f.name,
                "degree": f.degree,
                "controls": [
                    {"code": c.code, "name": c.name, "kind": c.kind.value} for c in f.controls
                ],
                "message": f.message,
                "items": list(f.items),
            }
            for f in result.fired
        ],
    }
    if explain:
        record["explanations"] = [
            {"key": e.key, "applies": e.applies, "fired": e.fired, "text": e.render()}
            for e in result.explanations
        ]
    return record


def rejected_record(
    line: int | None, ident: Any, field: str | None, item: int | None, reason: str
) -> dict[str, Any]:
    """A declaration that could not be scored, as a JSON-ready dict."""
    return {
        "rejected": True,
        "line": line,
        "id": None if ident is None else str(ident),
        "field": field,
        "item": item,
        "reason": reason,
    }


def _print_table(result: ScoreResult, console: Console, *, explain: bool) -> None:
    head = (
        f"declaration {result.declaration_id or '(no id)'} on {result.as_of.isoformat()}: "
        f"lane {result.lane}"
    )
    console.print(head, style="bold", markup=False)
    if not result.fired:
        console.print("no profile fired", markup=False)
    else:
        table = Table()
        for col in ("profile", "degree", "controls", "items", "message"):
            table.add_column(col, overflow="fold")
        for f in result.fired:
            table.add_row(
                f"{f.key}\n{f.name}",
                f"{f.degree:g}",
                "\n".join(f"{c.code} {c.kind.value}" for c in f.controls),
                ", ".join(map(str, f.items)) or "—",
                f.message or "",
            )
        console.print(table)
        controls = ", ".join(f"{c.code} ({c.kind.value})" for c in result.controls)
        console.print(f"controls: {controls}", markup=False)
    if explain:
        for e in result.explanations:
            console.print()
            console.print(e.render(), markup=False, highlight=False)


def _read_single(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RiskEngineError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RiskEngineError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, 1):
        if line.strip():
            yield number, line


class _NotApplied:
    """Regional profiles in force that did not apply to a declaration because no fill of its
    office is valid on the date: counted per (profile, office), said on standard error at the
    end, so that a regional profile never selects nothing in silence."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: dict[tuple[str, str], int] = {}
        self.day: dt.date | None = None

    def add(self, declaration: Any, day: dt.date) -> None:
        active = self.engine.profiles.active(day)
        self.day = day
        office = declaration.header.get("office")
        for cp, offices in zip(active.profiles, active.offices, strict=True):
            if offices is not None and (not isinstance(office, str) or office not in offices):
                where = office if isinstance(office, str) else "(none)"
                self.counts[cp.key, where] = self.counts.get((cp.key, where), 0) + 1

    def report(self, batch: bool) -> None:
        for (key, office), n in sorted(self.counts.items()):
            many = f" ({n:,} declaration{'' if n == 1 else 's'})" if batch else f" on {self.day}"
            click.echo(
                f"note: regional profile {key} {NOT_APPLIED} for office {office}{many}", err=True
            )


def _score_batch(
    engine: Engine,
    stream: IO[str],
    as_of: dt.date | None,
    explain: bool,
    history: HistoryProvider | None,
    fmt: str,
    console: Console | None,
    unfilled: _NotApplied,
) -> int:
    rejected = 0
    catalogue = engine.profiles.catalogue
    for number, line in _lines(stream):
        record: dict[str, Any]
        ident = None
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            record = rejected_record(number, None, None, None, f"not valid JSON: {exc.msg}")
        else:
            if not isinstance(raw, dict):
                record = rejected_record(number, None, None, None, "not a JSON object")
            else:
                ident = raw.get("id")
                try:
                    decl = normalise_declaration(raw, catalogue)
                    day = as_of or decl.header.get("date")
                    if not isinstance(day, dt.date):
                        record = rejected_record(
                            number, ident, "declaration.date", None,
                            "no as-of date: give --as-of or a declaration date",
                        )  # fmt: skip
                    else:
                        result = engine.score(decl, day, explain=explain, history=history)
                        unfilled.add(decl, day)
                        record = result_record(result, explain=explain)
                        if fmt == "table" and console is not None:
                            _print_table(result, console, explain=explain)
                            console.print()
                            continue
                except DeclarationError as exc:
                    record = rejected_record(number, ident, exc.field, exc.item, exc.reason)
        if record.get("rejected"):
            rejected += 1
            if fmt == "table":
                where = f"item {record['item']}, " if record["item"] is not None else ""
                field = f"{record['field']}: " if record["field"] else ""
                click.echo(f"line {number}: rejected: {where}{field}{record['reason']}", err=True)
                continue
        click.echo(json.dumps(record, ensure_ascii=False))
    return rejected


def _store_history(url: str, catalogue_path: str | None) -> tuple[HistoryProvider, Catalogue]:
    """History from the store at ``url`` (reachable and initialised) and its catalogue."""
    from riskengine.cli.common import open_store
    from riskengine.store.history import SqlHistoryProvider

    engine, catalogue = open_store(url, catalogue_path)
    return SqlHistoryProvider(engine), catalogue


@click.command()
@click.argument(
    "declaration",
    required=False,
    default="-",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
)
@click.option(
    "--profiles",
    "profiles",
    required=True,
    multiple=True,
    type=click.Path(exists=True),
    help="Profile files or folders (repeatable).",
)
@click.option("--as-of", callback=_date, help="Score on this date (default: the declaration's).")
@click.option("--explain", is_flag=True, help="Explain every profile in force (slow).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "table"]),
    default=None,
    help="json (default for batches and pipes) or table.",
)
@click.option("--db", "url", metavar="URL", help="Read history from the store at URL.")
@click.option("--lanes", type=click.Path(exists=True, dir_okay=False), help="Lane TOML file.")
@click.option(
    "--catalogue",
    "catalogue_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Your declaration fields (TOML); with --db, default: the store's catalogue.",
)
def score(
    declaration: str,
    profiles: tuple[str, ...],
    as_of: dt.date | None,
    explain: bool,
    fmt: str | None,
    url: str | None,
    lanes: str | None,
    catalogue_path: str | None,
) -> None:
    """Score DECLARATION (a JSON file) with the profiles in force on --as-of.

    With "-" or no DECLARATION, read JSON Lines on stdin and print one JSON result per line; a
    line that cannot be scored gives a rejected record (line, field, item, reason) and the batch
    goes on. Exit status 0 when everything was scored, 1 when some declarations were rejected.
    """
    lane_config = LaneConfig.from_toml(lanes) if lanes else None
    history: HistoryProvider | None = None
    if url is not None:
        history, catalogue = _store_history(url, catalogue_path)
    else:
        catalogue = catalogue_with(catalogue_path)
    engine = Engine.load(list(profiles), catalogue=catalogue, lanes=lane_config)
    if declaration == "-":
        chosen = fmt or "json"
        console = None
        if chosen == "table":
            console = terminal_console(color=use_color())
        unfilled = _NotApplied(engine)
        rejected = _score_batch(
            engine, sys.stdin, as_of, explain, history, chosen, console, unfilled
        )
        unfilled.report(batch=True)
        if rejected:
            sys.exit(1)
        return
    raw = _read_single(declaration)
    if not isinstance(raw, dict):
        raise RiskEngineError(f"{declaration}: expected a JSON object (one declaration)")
    try:
        decl = normalise_declaration(raw, engine.profiles.catalogue)
    except DeclarationError as exc:
        raise RiskEngineError(f"{declaration}: {exc}") from None
    day = as_of or decl.header.get("date")
    if not isinstance(day, dt.date):
        raise click.UsageError(
            f"{declaration} has no date: give --as-of YYYY-MM-DD to score it on a date"
        )
    result = engine.score(decl, day, explain=explain, history=history)
    unfilled = _NotApplied(engine)
    unfilled.add(decl, day)
    unfilled.report(batch=False)
    if (fmt or "json") == "json":
        click.echo(json.dumps(result_record(result, explain=explain), ensure_ascii=False, indent=2))
    else:
        _print_table(result, terminal_console(color=use_color()), explain=explain)
