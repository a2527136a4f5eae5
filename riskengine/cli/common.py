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
from typing import IO

import attrs
import click
from rich.console import Console
from rich.text import Text

from riskengine.checks import find_profile_files
from riskengine.diagnostics import Diagnostic, Severity

__all__ = [
    "DEBUG_ENV",
    "EXIT_INTERNAL",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "PROFILE_SUFFIX",
    "Settings",
    "atomic_write",
    "catalogue_option",
    "echo_diagnostics",
    "expand_paths",
    "internal_error",
    "iso_date",
    "plural",
    "printable",
    "progress_bar",
    "settings",
    "shown_url",
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


def catalogue_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--catalogue FILE``: a user catalogue extending the built-in fields."""
    return click.option(
        "--catalogue",
        "catalogue_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="A user catalogue (TOML, [[field]] tables) extending the built-in fields.",
    )(func)


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
