"""``riskengine score``: score declarations (a JSON file, or JSON Lines on stdin) with profiles."""

from __future__ import annotations

import contextlib
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
from riskengine.cli.common import checked_catalogue, use_color
from riskengine.declaration import (
    DeclarationError,
    JsonInputError,
    load_json,
    normalise_declaration,
)
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import (
    Engine,
    EvaluationError,
    HistoryProvider,
    LaneConfig,
    ScoreResult,
)
from riskengine.regional import NOT_APPLIED
from riskengine.render.terminal import terminal_console

__all__ = ["rejected_record", "score"]

#: A DECLARATION file with one of these suffixes is a batch (JSON Lines), like standard input.
BATCH_SUFFIXES = (".jsonl", ".ndjson")


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


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
        return load_json(text)
    except JsonInputError as exc:
        where = f"{path}:{exc.line}:{exc.column}" if exc.line is not None else path
        raise RiskEngineError(f"{where}: {exc}") from None


def _lines(stream: IO[str]) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """The non-blank lines of standard input with their numbers, each decoded as UTF-8 on its
    own: a line that is not UTF-8 comes as its decoding error, and the lines after it are read."""
    binary: IO[bytes] | None = getattr(stream, "buffer", None)
    if binary is None:  # a text stream without bytes underneath (a caller's StringIO)
        for number, line in enumerate(stream, 1):
            if line.strip():
                yield number, line
        return
    for number, raw in enumerate(binary, 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte order mark
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, exc
            continue
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


def _score_line(
    engine: Engine,
    number: int,
    line: str | UnicodeDecodeError,
    as_of: dt.date | None,
    explain: bool,
    history: HistoryProvider | None,
    unfilled: _NotApplied | None = None,
) -> ScoreResult | dict[str, Any]:
    """One line of a batch: its score, or its rejected record (never an exception for the
    line's content)."""
    if isinstance(line, UnicodeDecodeError):
        reason = f"not valid UTF-8 text: {line.reason} (byte {line.start + 1})"
        return rejected_record(number, None, None, None, reason)
    try:
        raw = load_json(line)
    except JsonInputError as exc:
        return rejected_record(number, None, None, None, str(exc))
    if not isinstance(raw, dict):
        return rejected_record(number, None, None, None, "not a JSON object")
    ident = raw.get("id")
    if (
        not isinstance(ident, str | int)
        or isinstance(ident, bool)
        or (isinstance(ident, int) and not -(10**20) < ident < 10**20)
    ):
        ident = None
    try:
        decl = normalise_declaration(raw, engine.profiles.catalogue)
        day = as_of or decl.header.get("date")
        if not isinstance(day, dt.date):
            return rejected_record(
                number, ident, "declaration.date", None,
                "no as-of date: give --as-of or a declaration date",
            )  # fmt: skip
        result = engine.score(decl, day, explain=explain, history=history)
        if unfilled is not None:
            unfilled.add(decl, day)
        return result
    except DeclarationError as exc:
        return rejected_record(number, ident, exc.field, exc.item, exc.reason)
    except EvaluationError as exc:
        return rejected_record(number, ident, None, None, str(exc))


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
    for number, line in _lines(stream):
        outcome = _score_line(engine, number, line, as_of, explain, history, unfilled)
        if isinstance(outcome, ScoreResult):
            if fmt == "table" and console is not None:
                _print_table(outcome, console, explain=explain)
                console.print()
            else:
                click.echo(outcome.to_json(explanations=explain))
            continue
        rejected += 1
        if fmt == "table":
            where = f"item {outcome['item']}, " if outcome["item"] is not None else ""
            field = f"{outcome['field']}: " if outcome["field"] else ""
            click.echo(f"line {number}: rejected: {where}{field}{outcome['reason']}", err=True)
        else:
            click.echo(json.dumps(outcome, ensure_ascii=False))
    return rejected


def _store_history(url: str, catalogue_path: str | None) -> tuple[HistoryProvider, Catalogue]:
    """History from the store at ``url`` (reachable and initialised) and its catalogue."""
    from riskengine.cli.common import open_store
    from riskengine.store.history import StoreHistoryProvider

    engine, catalogue = open_store(url, catalogue_path)
    # a subject's events are read once for the whole run (a batch asks about the same traders
    # again and again); the run writes nothing, so no notifications to listen to
    return StoreHistoryProvider(engine, cache=True, listen=False), catalogue


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
    callback=checked_catalogue,
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

    With "-" or no DECLARATION, read JSON Lines on stdin (or from a DECLARATION file named
    *.jsonl or *.ndjson) and print one JSON result per line; a
    line that cannot be scored (not UTF-8, not JSON, a wrong type, a number out of range) gives
    a rejected record (line, field, item, reason) and the batch goes on. Exit status 0 when
    everything was scored, 1 when some declarations were rejected.
    """
    lane_config = LaneConfig.from_toml(lanes) if lanes else None
    history: HistoryProvider | None = None
    if url is not None:
        history, catalogue = _store_history(url, catalogue_path)
    else:
        catalogue = catalogue_with(catalogue_path)
    engine = Engine.load(list(profiles), catalogue=catalogue, lanes=lane_config)
    if declaration == "-" or declaration.lower().endswith(BATCH_SUFFIXES):
        chosen = fmt or "json"
        console = None
        if chosen == "table":
            console = terminal_console(color=use_color())
        unfilled = _NotApplied(engine)
        with contextlib.ExitStack() as stack:
            # a .jsonl file is a batch, read as standard input is (each line decoded on its own)
            stream = (
                sys.stdin
                if declaration == "-"
                else stack.enter_context(open(declaration, encoding="utf-8"))
            )
            rejected = _score_batch(
                engine, stream, as_of, explain, history, chosen, console, unfilled
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
        click.echo(result.to_json(explanations=explain, indent=2))
    else:
        _print_table(result, terminal_console(color=use_color()), explain=explain)
