"""Shared pieces of the command line: settings, colour, file discovery, diagnostics, errors, and
the options of the store commands (``--url``, ``--catalogue``, a progress bar)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import click
from rich.console import Console
from rich.text import Text

from riskengine.checks import find_profile_files
from riskengine.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from riskengine.catalogue import Catalogue

__all__ = [
    "DEBUG_ENV",
    "EXIT_INTERNAL",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "PROFILE_SUFFIX",
    "Settings",
    "atomic_write",
    "catalogue_option",
    "catalogue_option_no_store",
    "catalogue_option_recorded",
    "checked_catalogue",
    "echo_diagnostics",
    "elapsed_status",
    "expand_paths",
    "internal_error",
    "iso_date",
    "open_store",
    "plural",
    "printable",
    "progress_bar",
    "settings",
    "shown_url",
    "store_catalogue",
    "store_url_option",
    "use_color",
    "user_error",
]

#: Set to ``1`` to let internal errors show their Python traceback.
DEBUG_ENV = "RISKENGINE_DEBUG"
#: Exit status when problems were found (errors in files, a missing profile, ...).
EXIT_PROBLEMS = 1
#: Exit status of bad usage (click's own, for unknown options and bad arguments).
EXIT_USAGE = 2
#: Exit status of an internal error (EX_SOFTWARE of sysexits.h).
EXIT_INTERNAL = 70
#: Profile files are found in directories by this suffix.
PROFILE_SUFFIX = ".rp"

_STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.NOTE: "bold cyan",
}


@attrs.frozen
class Settings:
    """Options of the ``riskengine`` group that every command sees."""

    no_color: bool = False


def settings() -> Settings:
    """The settings of the running command (defaults outside a command line run)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Settings) if ctx is not None else None
    return obj if obj is not None else Settings()


def use_color(stream: IO[str] | None = None) -> bool:
    """Colour only on a terminal, unless ``--no-color`` or ``NO_COLOR`` says otherwise."""
    stream = stream if stream is not None else sys.stdout
    if settings().no_color or os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def user_error(message: str) -> None:
    """Print ``error: message`` on stderr (in red on a terminal)."""
    if use_color(sys.stderr):
        console = Console(file=sys.stderr, highlight=False, markup=False, soft_wrap=True)
        console.print(Text.assemble(("error", "bold red"), f": {message}"))
    else:
        click.echo(f"error: {message}", err=True)


def internal_error(exc: BaseException) -> None:
    """Report an unexpected exception in two lines instead of a traceback."""
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" (at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
    click.echo(
        f"internal error: {type(exc).__name__}: {exc}{where}, please report it.\n"
        f"hint: run again with {DEBUG_ENV}=1 to see the Python traceback, and include it and "
        "the input in the report.",
        err=True,
    )


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and every ``*.rp`` file under each directory (sorted, recursive).

    Each file appears once, in the order given. Raises :class:`click.UsageError` when nothing is
    left to read.
    """
    found, _missing = find_profile_files(paths)  # missing paths: click checks them first
    if not found:
        shown = ", ".join(str(p) for p in paths)
        raise click.UsageError(f"no {PROFILE_SUFFIX} files found in {shown}")
    return [Path(f) for f in found]


def _styled(diagnostic: Diagnostic, rendered: str) -> Text:
    style = _STYLES.get(diagnostic.severity, "bold")
    text = Text()
    lines = rendered.split("\n")
    head = lines[0]
    marker = f"{diagnostic.severity}[{diagnostic.code}]"
    at = head.find(marker)
    if at >= 0:
        text.append(head[:at], "bold")
        text.append(marker, style)
        text.append(head[at + len(marker) :], "bold")
    else:  # pragma: no cover - Diagnostic.render always writes the marker
        text.append(head, style)
    for line in lines[1:]:
        text.append("\n")
        stripped = line.lstrip()
        if stripped.startswith("= help:"):
            text.append(line, "cyan")
        elif stripped.startswith("|") and "^" in line:
            bar = line.index("|") + 1
            text.append(line[:bar], "blue")
            text.append(line[bar:], style)
        elif "|" in line:
            bar = line.index("|") + 1
            text.append(line[:bar], "blue")
            text.append(line[bar:])
        else:
            text.append(line)
    return text


# Control characters from a file would garble (or drive) the terminal: show them as the
# one-column Unicode "control pictures" (NUL → ␀, ESC → ␛), which keeps the caret aligned.
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(32) if chr(c) not in "\t\n"} | {0x7F: 0x2421}


def printable(text: str) -> str:
    """``text`` with control characters (other than tab and newline) made visible."""
    return text.translate(_CONTROL_PICTURES)


def echo_diagnostics(
    diagnostics: Sequence[Diagnostic], sources: dict[str, str], *, err: bool = False
) -> None:
    """Print each diagnostic with its source line and caret; coloured on a terminal."""
    if not diagnostics:
        return
    stream = sys.stderr if err else sys.stdout
    if use_color(stream):
        console = Console(file=stream, highlight=False, markup=False, soft_wrap=True, emoji=False)
        for d in diagnostics:
            console.print(_styled(d, printable(d.render(sources))))
            console.print()
    else:
        for d in diagnostics:
            click.echo(printable(d.render(sources)), err=err)
            click.echo(err=err)


def plural(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def note_drafts(profiles: Iterable[Any]) -> None:
    """The development commands (score, test, demo) load drafts (``allow_drafts=True``) and
    say so on standard error when the set holds any."""
    n = sum(1 for cp in profiles if getattr(cp, "number", None) is None)
    if n:
        click.echo(
            f"note: {plural(n, 'draft')} loaded for development (allow_drafts); the clearance "
            "software loads only approved editions, from a signed bundle",
            err=True,
        )


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one step: a temporary file, then os.replace.

    The file keeps its permission bits; a crash never leaves it half written.
    """
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        with contextlib.suppress(OSError):  # a new file keeps mkstemp's 0o600
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- options of the store commands ------------------------------------------------------------


def store_url_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--url``/``--db URL``: the store (default: $RISKENGINE_DB, else riskengine.db)."""
    return click.option(
        "--url",
        "--db",
        "url",
        metavar="URL",
        default=None,
        help="Store URL (sqlite:///file.db, postgresql://user@host/db, duckdb:///file.duckdb) "
        "or a .db/.duckdb path. Default: $RISKENGINE_DB, else sqlite:///riskengine.db.",
    )(func)


CATALOGUE_HELP = (
    "A user catalogue (TOML: [[field]] and [[reason]] tables) extending the built-in fields "
    "and reasons. Default: the catalogue the store was initialised with (db init "
    "--catalogue), else the built-in."
)
CATALOGUE_RECORDED_HELP = (
    "A user catalogue (TOML: [[field]] and [[reason]] tables) extending the built-in fields "
    "and reasons; the store records it, and later commands use it without --catalogue."
)
CATALOGUE_NO_STORE_HELP = (
    "A user catalogue (TOML: [[field]] and [[reason]] tables) extending the built-in fields "
    "and reasons (default: the built-in ones)."
)


def checked_catalogue(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of ``--catalogue``: the file is read when the options are, so a catalogue with
    errors is a bad option value (status 2) in every command, as in ``check``."""
    if value is None:
        return None
    from riskengine.catalogue import CatalogueError, catalogue_with

    try:
        catalogue_with(value)
    except CatalogueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def catalogue_option(
    func: click.decorators.FC, help_text: str = CATALOGUE_HELP
) -> click.decorators.FC:
    """``--catalogue FILE``: a user catalogue extending the built-in fields (``help_text``
    says where the default comes from: the store's catalogue, or none for a command that opens
    no store)."""
    return click.option(
        "--catalogue",
        "catalogue_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        callback=checked_catalogue,
        help=help_text,
    )(func)


def catalogue_option_recorded(func: click.decorators.FC) -> click.decorators.FC:
    """``--catalogue FILE`` of ``db init`` and ``db upgrade``: the catalogue the store records."""
    return catalogue_option(func, CATALOGUE_RECORDED_HELP)


def catalogue_option_no_store(func: click.decorators.FC) -> click.decorators.FC:
    """``--catalogue FILE`` of a command that reads no store (``sql``, ``test``)."""
    return catalogue_option(func, CATALOGUE_NO_STORE_HELP)


def _given_catalogue(catalogue_path: str | None) -> Catalogue | None:
    from riskengine.catalogue import catalogue_with

    return catalogue_with(catalogue_path) if catalogue_path else None


def open_store(
    url: str | None, catalogue_path: str | None = None, **engine_options: Any
) -> tuple[Engine, Catalogue]:
    """A command that reads the store: an engine on the initialised store at ``url`` and the
    catalogue in force (``--catalogue``, else the one recorded in the store).

    A store that was never initialised is an error ("has no riskengine tables: run `riskengine
    db init`") and nothing is created; a ``--catalogue`` that is not the store's is an error.
    The catalogue file is read before the store is opened.
    """
    from riskengine.store.access import open_existing, store_catalogue

    given = _given_catalogue(catalogue_path)
    engine = open_existing(url, **engine_options)
    try:
        return engine, store_catalogue(engine, given, catalogue_path)
    finally:
        engine.dispose()  # pooled connections closed; the engine opens new ones when used


def store_catalogue(url: str | None, catalogue_path: str | None = None) -> Catalogue:
    """A command that writes the store (and creates it when needed): the catalogue in force for
    the store at ``url``, creating nothing; a new store gets the given or the built-in one."""
    from riskengine.store.access import file_is_absent
    from riskengine.store.access import store_catalogue as in_force
    from riskengine.store.engine import connect

    given = _given_catalogue(catalogue_path)
    if file_is_absent(url):
        return in_force(None, given, catalogue_path)
    engine = connect(url)
    try:
        return in_force(engine, given, catalogue_path)
    finally:
        engine.dispose()


def shown_url(url: str | None) -> str:
    """The store's URL as shown to the user (password hidden)."""
    from sqlalchemy.engine import make_url

    from riskengine.store.engine import resolve_url

    return make_url(resolve_url(url)).render_as_string(hide_password=True)


def iso_date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    """A click callback: ``YYYY-MM-DD`` to a date (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}") from None


@contextmanager
def elapsed_status(description: str, quiet: bool = False) -> Iterator[None]:
    """A spinner with the elapsed time on standard error while a long step runs, then
    ``description: done in 12.3 s`` (or ``37 ms``, ``3 min 05 s``) there; only when standard
    error is a terminal (JSON, CSV and tables on standard output stay clean, and nothing is
    written when it is redirected)."""
    import time

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, no_color=not use_color(sys.stderr), highlight=False)
    if quiet or not console.is_terminal:
        yield
        return
    started = time.perf_counter()
    with Progress(
        SpinnerColumn("dots"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task(description, total=None)
        yield
    from riskengine.render.words import duration

    console.print(f"{description}: done in {duration(time.perf_counter() - started)}", markup=False)


@contextmanager
def progress_bar(
    total: int | None, description: str, quiet: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (not with --quiet); yields ``advance(n)``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    enabled = not quiet and console.is_terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(count: int) -> None:
            progress.advance(task, count)

        yield advance
