"""``riskengine fields``: the declaration fields a profile can read (the field catalogue)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from riskengine.catalogue import Catalogue, CatalogueError, Field, default_catalogue, load_catalogue
from riskengine.cli.common import use_color
from riskengine.render.terminal import print_table, terminal_console
from riskengine.render.words import plural

__all__ = ["fields"]


def _catalogue(path: Path | None) -> tuple[Catalogue, set[str]]:
    """The catalogue in force and the paths that the user catalogue added."""
    built_in = default_catalogue()
    if path is None:
        return built_in, set()
    try:
        user = load_catalogue(path)
        return built_in.extend(user), {f.path for f in user}
    except CatalogueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--catalogue'") from None


def _record(f: Field, added: set[str]) -> dict[str, str | None]:
    return {
        "path": f.path,
        "type": str(f.type),
        "box": f.box,
        "description": f.description,
        "description_uk": f.description_uk,
        "example": f.example,
        "source": "catalogue" if f.path in added else "built-in",
    }


@click.command()
@click.argument("patterns", nargs=-1, metavar="[PATTERN]...")
@click.option(
    "--catalogue",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML field catalogue adding your declaration fields to the built-in ones.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for machines.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "uk"]),
    default="en",
    show_default=True,
    help="Language of the descriptions.",
)
def fields(patterns: tuple[str, ...], catalogue: Path | None, fmt: str, lang: str) -> None:
    """List the declaration fields profiles can use: path, type, form box, description.

    PATTERN (shell-style, e.g. 'item.*' or '*origin*') keeps only the matching paths. With
    --catalogue the fields of your catalogue are listed too, marked as such.
    """
    cat, added = _catalogue(catalogue)
    chosen = [
        f for f in cat if not patterns or any(fnmatch.fnmatchcase(f.path, p) for p in patterns)
    ]
    if fmt == "json":
        click.echo(json.dumps([_record(f, added) for f in chosen], ensure_ascii=False, indent=2))
        return
    console = terminal_console(color=use_color())
    if not chosen:
        plain = [p for p in patterns if not any(c in p for c in "*?[")]
        hint = (
            f" (a pattern matches whole paths: '*{plain[0]}*' finds the paths containing it)"
            if plain
            else ""
        )
        click.echo(f"no field matches {' '.join(patterns)}{hint}")
        return
    table = Table(title=f"Declaration fields ({plural(len(chosen), 'field')})")
    table.add_column("Path", no_wrap=True, width=max(len(f.path) for f in chosen))
    table.add_column("Type", no_wrap=True)
    table.add_column("Box", no_wrap=True)
    table.add_column("Description", ratio=1, min_width=20)
    table.add_column("Example", overflow="fold", max_width=24)
    for f in chosen:
        text = escape(f.description_uk if lang == "uk" and f.description_uk else f.description)
        if f.path in added:
            text += f" [dim](from {escape(str(catalogue))})[/]"
        table.add_row(
            escape(f.path), str(f.type), escape(f.box or ""), text, escape(f.example or "")
        )
    print_table(console, table)
