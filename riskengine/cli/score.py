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
from riskengine.cli.common import checked_catalogue, note_drafts, use_color
from riskengine.declaration import DeclarationError, JsonInputError, load_json
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import (
    Engine,
    EvaluationError,
    HistoryProvider,
    LaneConfig,
    RandomSelection,
    RandomSelectionError,
    ScoreResult,
)
from riskengine.regional import NOT_APPLIED
from riskengine.render.terminal import terminal_console

__all__ = ["rejected_record", "score"]

#: A DECLARATION file with one of these suffixes is a batch (JSON Lines), like standard input.
BATCH_SUFFIXES = (".jsonl", ".ndjson")
#: ``ScoreResult.to_json()``'s encoder, made once.
_RESULT_JSON = json.JSONEncoder(ensure_ascii=False)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _lanes(ctx: click.Context, param: click.Parameter, value: str | None) -> LaneConfig | None:
    """Callback of ``--lanes``: the file is read with the options, so a lane file that cannot be
    read or holds a bad setting is a bad option value (status 2), as ``--catalogue`` is."""
    if value is None:
        return None
    try:
        return LaneConfig.from_toml(value)
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise click.BadParameter(f"{value}: not UTF-8 text ({where})") from None
    except RiskEngineError as exc:
        message = str(exc)
        if not message.startswith(f"{value}:"):
            message = f"{value}: {message}"
        raise click.BadParameter(message) from None


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
        f"lane {result.lane}" + (" (chosen for a random control)" if result.random_selected else "")
    )
    if result.bundle_revision is not None:
        head += f" (bundle revision {result.bundle_revision})"
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
        #: per set of profiles in force: its regional profiles and their offices with a fill
        self._regional: dict[int, list[tuple[str, Any]]] = {}

    def add(self, declaration: Any, day: dt.date) -> None:
        active = self.engine.profiles.active(day)
        self.day = day
        regional = self._regional.get(id(active))
        if regional is None:
            regional = [
                (cp.key, offices)
                for cp, offices in zip(active.profiles, active.offices, strict=True)
                if offices is not None
            ]
            self._regional[id(active)] = regional
        if not regional:
            return
        office = declaration.header.get("office")
        for key, offices in regional:
            if not isinstance(office, str) or office not in offices:
                where = office if isinstance(office, str) else "(none)"
                self.counts[key, where] = self.counts.get((key, where), 0) + 1

    def report(self, batch: bool) -> None:
        for (key, office), n in sorted(self.counts.items()):
            many = f" ({n:,} declaration{'' if n == 1 else 's'})" if batch else f" on {self.day}"
            click.echo(
                f"note: regional profile {key} {NOT_APPLIED} for office {office}{many}", err=True
            )


def _line_ident(raw: Any) -> Any:
    """The id of a line's declaration for its rejected record: text or a plain integer."""
    ident = raw.get("id")
    if (
        not isinstance(ident, str | int)
        or isinstance(ident, bool)
        or (isinstance(ident, int) and not -(10**20) < ident < 10**20)
    ):
        return None
    return ident


def _score_line(
    engine: Engine,
    number: int,
    line: str | bytes | UnicodeDecodeError,
    as_of: dt.date | None,
    explain: bool,
    history: HistoryProvider | None,
    unfilled: _NotApplied | None = None,
) -> ScoreResult | dict[str, Any]:
    """One line of a batch: its score, or its rejected record (never an exception for the
    line's content). The line is read by the profile set's compiled reader (only the fields
    the profiles read); a line it refuses is decoded again by the standard library for the
    rejected record, so that the record is what it always was."""
    if isinstance(line, UnicodeDecodeError):
        reason = f"not valid UTF-8 text: {line.reason} (byte {line.start + 1})"
        return rejected_record(number, None, None, None, reason)
    try:
        decl = engine.profiles.reader.read_json(line)
    except JsonInputError as exc:
        return rejected_record(number, None, None, None, str(exc))
    except DeclarationError as exc:
        raw = load_json(line)  # the reader decoded it, so this does too
        if not isinstance(raw, dict):
            return rejected_record(number, None, None, None, "not a JSON object")
        return rejected_record(number, _line_ident(raw), exc.field, exc.item, exc.reason)
    try:
        day = as_of or decl.header.get("date")
        if not isinstance(day, dt.date):
            return rejected_record(
                number, _line_ident(decl.raw), "declaration.date", None,
                "no as-of date: give --as-of or a declaration date",
            )  # fmt: skip
        result = engine.score(decl, day, explain=explain, history=history)
        if unfilled is not None:
            unfilled.add(decl, day)
        return result
    except DeclarationError as exc:
        return rejected_record(number, _line_ident(decl.raw), exc.field, exc.item, exc.reason)
    except EvaluationError as exc:
        return rejected_record(number, _line_ident(decl.raw), None, None, str(exc))


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
    # each result is written and flushed as click.echo would (a clearance system reading the
    # pipe line by line gets each answer at once), without echo's per-call terminal checks
    out = sys.stdout
    encode = _RESULT_JSON.encode
    for number, line in _lines(stream):
        outcome = _score_line(engine, number, line, as_of, explain, history, unfilled)
        if isinstance(outcome, ScoreResult):
            if fmt == "table" and console is not None:
                _print_table(outcome, console, explain=explain)
                console.print()
            else:  # the text of outcome.to_json(explanations=explain)
                out.write(encode(outcome.to_dict(explanations=explain)) + "\n")
                out.flush()
            continue
        rejected += 1
        if fmt == "table":
            where = f"item {outcome['item']}, " if outcome["item"] is not None else ""
            field = f"{outcome['field']}: " if outcome["field"] else ""
            click.echo(f"line {number}: rejected: {where}{field}{outcome['reason']}", err=True)
        else:
            click.echo(json.dumps(outcome, ensure_ascii=False))
    return rejected


def _random_selection(config: str | None, key_file: str | None) -> RandomSelection | None:
    """The random selection of ``--random-config``; a bad file or no key is a bad option
    value (status 2). The key is never part of a message."""
    if config is None:
        if key_file is not None:
            raise click.UsageError("--random-key-file needs --random-config")
        return None
    try:
        return RandomSelection.from_toml(config, key_file=key_file)
    except RandomSelectionError as exc:
        raise click.BadParameter(str(exc), param_hint="'--random-config'") from None


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
    multiple=True,
    type=click.Path(exists=True),
    help="Profile files or folders (repeatable), for development: drafts are scored too.",
)
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Score with the approved set of this signed bundle instead (needs --public-key).",
)
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False),
    help="The bundle's public key file (KEYFILE.pub).",
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
@click.option(
    "--lanes",
    "lane_config",
    type=click.Path(exists=True, dir_okay=False),
    callback=_lanes,
    help="Lane TOML file.",
)
@click.option(
    "--catalogue",
    "catalogue_path",
    type=click.Path(exists=True, dir_okay=False),
    callback=checked_catalogue,
    help="Your declaration fields (TOML); with --db, default: the store's catalogue.",
)
@click.option(
    "--random-config",
    type=click.Path(exists=True, dir_okay=False),
    help="Minimum random inspection rates per office and regime (TOML, [random]).",
)
@click.option(
    "--random-key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="The random selection's secret key (default: $RISKENGINE_RANDOM_KEY_FILE, "
    "$RISKENGINE_RANDOM_KEY, or key_file in the TOML).",
)
def score(
    declaration: str,
    profiles: tuple[str, ...],
    as_of: dt.date | None,
    explain: bool,
    fmt: str | None,
    url: str | None,
    lane_config: LaneConfig | None,
    catalogue_path: str | None,
    random_config: str | None,
    random_key_file: str | None,
    bundle_path: str | None,
    public_key: str | None,
) -> None:
    """Score DECLARATION (a JSON file) with the profiles in force on --as-of.

    With "-" or no DECLARATION, read JSON Lines on stdin (or from a DECLARATION file named
    *.jsonl or *.ndjson) and print one JSON result per line; a
    line that cannot be scored (not UTF-8, not JSON, a wrong type, a number out of range) gives
    a rejected record (line, field, item, reason) and the batch goes on. Exit status 0 when
    everything was scored, 1 when some declarations were rejected.

    With --random-config, declarations are also chosen for random control at the configured
    rate (a keyed hash of the id: the same choice on every run with the same key); each result
    then says "random_selected" and a chosen one's lane is raised (docs/production.md).

    The profiles come from --profiles (files or folders, for development: drafts are loaded
    and a note says so) or from a signed --bundle with its --public-key (the approved set; each
    result carries the bundle's revision).
    """
    if bool(profiles) == (bundle_path is not None):
        raise click.UsageError("give --profiles (files or folders) or --bundle, one of them")
    if (bundle_path is None) != (public_key is None):
        raise click.UsageError("--bundle and --public-key go together")
    if bundle_path is not None and catalogue_path is not None:
        raise click.UsageError("a bundle brings its own catalogue: leave out --catalogue")
    random = _random_selection(random_config, random_key_file)
    history: HistoryProvider | None = None
    if bundle_path is not None and public_key is not None:
        engine = Engine.from_bundle(bundle_path, public_key, lanes=lane_config, random=random)
        if url is not None:
            history, _ = _store_history(url, None)
    else:
        if url is not None:
            history, catalogue = _store_history(url, catalogue_path)
        else:
            catalogue = catalogue_with(catalogue_path)
        engine = Engine.load(
            list(profiles), catalogue=catalogue, lanes=lane_config, allow_drafts=True, random=random
        )
        note_drafts(engine.profiles)
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
        decl = engine.profiles.reader.read(raw)
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
