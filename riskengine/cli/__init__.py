"""The ``riskengine`` command line: the click group, its commands and the guarded entry point.

Commands live in one module per family; each is imported here and added to :data:`cli`
explicitly (:data:`COMMANDS`). A module that fails to import is an error like any other: there
is no optional command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from riskengine import __version__
from riskengine.cli import (
    backtest,
    bundle,
    db,
    demo,
    fields,
    ingest,
    kpi,
    lang,
    registry,
    review,
    score,
    serve,
    sql,
    test,
)
from riskengine.cli.common import DEBUG_ENV, EXIT_INTERNAL, Settings, internal_error, user_error
from riskengine.diagnostics import RiskEngineError

__all__ = ["COMMANDS", "cli", "main"]


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
@click.version_option(__version__, "--version", "-V", prog_name="riskengine")
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


#: Every command of ``riskengine``, by family. ``riskengine --help`` lists them by name.
COMMANDS: tuple[click.Command, ...] = (
    lang.check,
    lang.fmt,
    lang.show,
    db.db,
    ingest.ingest,
    demo.demo_data,
    score.score,
    test.test,
    backtest.backtest,
    demo.demo,
    sql.sql,
    fields.fields,
    registry.registry,
    kpi.kpi,
    review.review,
    bundle.bundle,
    serve.serve,
)
for _command in COMMANDS:
    cli.add_command(_command)


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
