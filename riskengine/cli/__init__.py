"""The ``riskengine`` command line: the click group, its extensions and the guarded entry point.

Commands live in one module per family and are attached to :data:`cli` here. A module listed in
:data:`EXTENSIONS` is imported when the command line starts; when it is not there (not written
yet, or its optional dependencies are not installed) the command line works without it.

An extension module either defines ``register(group: click.Group) -> None`` or simply defines
click commands at module level (a group's subcommands are attached through their group).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType
from typing import Any

import click

from riskengine.cli.common import DEBUG_ENV, EXIT_INTERNAL, Settings, internal_error, user_error
from riskengine.diagnostics import RiskEngineError

__all__ = ["EXTENSIONS", "cli", "main"]

#: Modules providing commands, in the order their commands are offered. The first module to
#: define a command name keeps it.
EXTENSIONS: tuple[str, ...] = (
    "riskengine.cli.lang",  # check, fmt, show
    "riskengine.store.cli",  # db, ingest, demo-data
    "riskengine.cli.score",  # score
    "riskengine.cli.test",  # test
    "riskengine.cli.backtest",  # backtest
    "riskengine.cli.demo",  # demo
)


def _version() -> str:
    try:
        return metadata.version("riskengine")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an unpacked tree
        return "unknown"


class RiskEngineGroup(click.Group):
    """A group that turns our errors into messages and any other exception into a short report
    instead of a traceback (set ``RISKENGINE_DEBUG=1`` to see the traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except RiskEngineError as exc:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            user_error(str(exc))
            ctx.exit(1)
        except BrokenPipeError:  # `riskengine show x.rp | head`
            _silence_stdout()
            ctx.exit(1)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            internal_error(exc)
            ctx.exit(EXIT_INTERNAL)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a descriptor (tests)
        pass


@click.group(
    cls=RiskEngineGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(_version(), "--version", "-V", prog_name="riskengine")
@click.option(
    "--no-color",
    is_flag=True,
    help="Plain output without colours (also when NO_COLOR is set or output is not a terminal).",
)
@click.pass_context
def cli(ctx: click.Context, no_color: bool) -> None:
    """riskengine: executable customs risk-profile passports.

    Check, format and show profile files, and more: see the commands below.

    Exit status: 0 success, 1 problems found, 2 bad usage, 70 internal error
    (set RISKENGINE_DEBUG=1 to see its Python traceback).
    """
    ctx.obj = Settings(no_color=no_color)


def _own_commands(module: ModuleType) -> list[click.Command]:
    """The click commands defined at the top level of ``module`` that no group there owns."""
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, click.Command)
        and getattr(obj.callback, "__module__", module.__name__) == module.__name__
    ]
    owned = {
        id(sub) for obj in found if isinstance(obj, click.Group) for sub in obj.commands.values()
    }
    return [c for c in found if id(c) not in owned]


def _is_missing(exc: ModuleNotFoundError, name: str) -> bool:
    """Whether ``exc`` says that the module ``name`` itself (or a parent package) is absent."""
    missing = exc.name or ""
    return missing == name or name.startswith(missing + ".")


def load_extensions(group: click.Group, modules: Sequence[str] = EXTENSIONS) -> list[str]:
    """Attach the commands of each module in ``modules``; return the modules that were loaded.

    A module that does not exist is skipped quietly. A module that fails to import (a missing
    optional dependency, a bug) is skipped with a one-line warning on stderr, so the other
    commands keep working; ``RISKENGINE_DEBUG=1`` adds the traceback.
    """
    loaded: list[str] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not _is_missing(exc, name):
                _debug_skip(name, exc)
            continue
        except Exception as exc:  # an extension must never break the whole command line
            _debug_skip(name, exc)
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register(group)
        else:
            for command in _own_commands(module):
                if command.name and command.name not in group.commands:
                    group.add_command(command)
        loaded.append(name)
    return loaded


def _debug_skip(name: str, exc: BaseException) -> None:
    click.echo(
        f"riskengine: warning: the commands of {name} are unavailable: "
        f"{type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for details)",
        err=True,
    )
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc, file=sys.stderr)


load_extensions(cli)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``riskengine`` console script: run the command line and exit with its status.

    Exit status: 0 success, 1 problems found or a user error, 2 bad usage, 70 internal error.
    """
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="riskengine")
    except SystemExit:
        raise
    except KeyboardInterrupt:  # pragma: no cover - interactive
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # pragma: no cover - the group already catches command errors
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        internal_error(exc)
        sys.exit(EXIT_INTERNAL)
