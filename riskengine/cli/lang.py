"""Language commands: ``check`` (diagnostics), ``fmt`` (the formatter), ``show`` (the passport)."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import click

from riskengine import checks
from riskengine import model as m
from riskengine.catalogue import Catalogue, CatalogueError, catalogue_with
from riskengine.cli.common import (
    EXIT_PROBLEMS,
    atomic_write,
    echo_diagnostics,
    expand_paths,
    plural,
    use_color,
    user_error,
)
from riskengine.diagnostics import Diagnostic, ProfileError, Severity, Span, sort_diagnostics
from riskengine.format import format_text
from riskengine.render import FORMATS, LANGUAGES, render
from riskengine.syntax import parse_source, read_source

__all__ = ["check", "fmt", "show"]

_EXISTING = click.Path(exists=True, path_type=Path)

# ------------------------------------------------------------------------------------ check


def _load_catalogue(path: Path | None) -> Catalogue | None:
    if path is None:
        return None
    try:
        return catalogue_with(path)
    except CatalogueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--catalogue'") from None


@click.command()
@click.argument("paths", nargs=-1, required=True, type=_EXISTING, metavar="PATH...")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="text for people (source line and caret), json for machines, sarif (SARIF 2.1.0) for "
    "code-scanning annotations in CI.",
)
@click.option(
    "--catalogue",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML field catalogue adding your declaration fields to the built-in ones.",
)
@click.option(
    "--db",
    "url",
    metavar="URL",
    default=None,
    help="Check with the catalogue of the store at URL (the one `db init --catalogue` recorded).",
)
@click.option(
    "--warnings-as-errors",
    is_flag=True,
    help="Exit with status 1 when there are warnings, too.",
)
@click.pass_context
def check(
    ctx: click.Context,
    paths: Sequence[Path],
    output: str,
    catalogue: Path | None,
    url: str | None,
    warnings_as_errors: bool,
) -> None:
    """Check profile files: syntax, names, types, classifier codes, dates, thresholds.

    Each PATH is a profile file or a directory searched for *.rp files. Exit status: 0 when
    there are no errors, 1 when there are (or warnings, with --warnings-as-errors), 2 on bad
    usage.
    """
    names = [str(f) for f in expand_paths(paths)]
    fields = _load_catalogue(catalogue)
    if url is not None:
        from riskengine.cli.common import open_store

        _engine, fields = open_store(url, None if catalogue is None else str(catalogue))
    result = checks.check_paths(names, fields)
    diagnostics = sort_diagnostics([*result.diagnostics, *_empty_files(result)])
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = sum(1 for d in diagnostics if d.severity is Severity.WARNING)
    if output == "json":
        document = {
            "files": names,
            "diagnostics": [d.to_json() for d in diagnostics],
            "errors": errors,
            "warnings": warnings,
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif output == "sarif":
        click.echo(json.dumps(to_sarif(diagnostics, names), indent=2, ensure_ascii=False))
    else:
        echo_diagnostics(diagnostics, dict(result.sources))
        summary = (
            f"checked {plural(len(names), 'file')}: "
            f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
        )
        colour = "red" if errors else "yellow" if warnings else "green"
        click.secho(summary, fg=colour, bold=True, color=use_color())
    if errors or (warnings_as_errors and warnings):
        ctx.exit(EXIT_PROBLEMS)


def _empty_files(result: checks.CheckResult) -> list[Diagnostic]:
    """RE007 for each file that was read but holds no profile and no fill: an empty file, only
    comments, or only lists (which nothing outside the file can use)."""
    found = []
    for source in result.files:
        if source.profiles or source.fills:
            continue
        lists = len(source.lists)
        if lists:
            what = f"only {plural(lists, 'list')}"
        elif result.sources.get(source.path, "").strip():
            what = "nothing but comments"
        else:
            what = "the file is empty"
        found.append(
            Diagnostic(
                "RE007",
                Severity.WARNING,
                f"no profile or fill in the file ({what})",
                Span(source.path, 1, 1, 1, 1),
                "a profile file holds `profile … { … }` or `fill for … { … }`; is this the "
                "file you meant?",
            )
        )
    return found


#: SARIF's level for each severity.
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def to_sarif(diagnostics: Sequence[Diagnostic], files: Sequence[str]) -> dict[str, object]:
    """The diagnostics as a SARIF 2.1.0 log (one run), for code-scanning annotations in CI:
    a rule per code used (its registered title), a result per diagnostic with its region."""
    from riskengine import __version__
    from riskengine.checks.codes import CODES

    used = sorted({d.code for d in diagnostics})
    index = {code: n for n, code in enumerate(used)}
    rules = []
    for code in used:
        info = CODES.get(code)
        rule: dict[str, object] = {
            "id": code,
            "shortDescription": {"text": info.title if info else code},
            "help": {"text": f"See {code} in riskengine's docs/diagnostics.md."},
        }
        if info is not None:
            rule["defaultConfiguration"] = {"level": _SARIF_LEVEL[info.severity]}
        rules.append(rule)
    results = []
    for d in diagnostics:
        message = d.message + (f" (help: {d.suggestion})" if d.suggestion else "")
        location: dict[str, object] = {"artifactLocation": {"uri": _sarif_uri(d.span.file)}}
        if d.span.line >= 1:
            region: dict[str, int] = {"startLine": d.span.line}
            if d.span.column >= 1:
                region["startColumn"] = d.span.column
            if d.span.end_line >= d.span.line:
                region["endLine"] = d.span.end_line
                if d.span.end_column >= 1:
                    region["endColumn"] = d.span.end_column
            location["region"] = region
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": _SARIF_LEVEL[d.severity],
                "message": {"text": message},
                "locations": [{"physicalLocation": location}],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "riskengine",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "artifacts": [{"location": {"uri": _sarif_uri(f)}} for f in files],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _sarif_uri(name: str) -> str:
    """A file as a SARIF URI: relative paths stay relative (to the checkout), with '/'."""
    path = Path(name)
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix())


# ------------------------------------------------------------------------------------ fmt


def _diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


@click.command("fmt")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, allow_dash=True, path_type=Path),
    metavar="PATH...",
)
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 and list "
              "the files that would be reformatted.")  # fmt: skip
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print a unified diff "
              "of what would change and exit 1 when there is one.")  # fmt: skip
@click.pass_context
def fmt(ctx: click.Context, paths: Sequence[Path], check_only: bool, show_diff: bool) -> None:
    """Format profile files in place, the one canonical way.

    Each PATH is a file or a directory searched for *.rp files; `-` formats standard input to
    standard output. A file with syntax errors is reported and left untouched; the others are
    still formatted. Files are replaced atomically.
    """
    if any(str(p) == "-" for p in paths):
        if len(paths) > 1:
            raise click.UsageError("`-` (standard input) cannot be mixed with other paths")
        ctx.exit(_fmt_stdin(check_only, show_diff))
    report_err = show_diff  # keep stdout a clean diff
    changed = unchanged = failed = 0
    for path in expand_paths(paths):
        name = str(path)
        text = ""
        try:
            text = read_source(path)
            new = format_text(text, name)
        except ProfileError as exc:
            failed += 1
            echo_diagnostics(exc.diagnostics, {name: text, **exc.sources}, err=True)
            click.echo(f"not formatted: {name} has errors", err=True)
            continue
        if new == text:
            unchanged += 1
            continue
        changed += 1
        if show_diff:
            click.echo(_diff(text, new, name), nl=False)
        if check_only:
            click.echo(f"would reformat {name}", err=report_err)
        elif not show_diff:
            atomic_write(path, new)
            click.echo(f"reformatted {name}")
    verb = "would be reformatted" if (check_only or show_diff) else "reformatted"
    parts = []
    if changed:
        parts.append(f"{plural(changed, 'file')} {verb}")
    if unchanged:
        parts.append(f"{plural(unchanged, 'file')} already formatted")
    if failed:
        parts.append(f"{plural(failed, 'file')} with errors left untouched")
    click.echo(", ".join(parts), err=report_err)
    if failed or ((check_only or show_diff) and changed):
        ctx.exit(EXIT_PROBLEMS)


def _fmt_stdin(check_only: bool, show_diff: bool) -> int:
    name = "<stdin>"
    text = sys.stdin.read()
    try:
        new = format_text(text, name)
    except ProfileError as exc:
        echo_diagnostics(exc.diagnostics, {name: text, **exc.sources}, err=True)
        return EXIT_PROBLEMS
    if show_diff:
        click.echo(_diff(text, new, name), nl=False)
    if check_only or show_diff:
        return EXIT_PROBLEMS if new != text else 0
    click.echo(new, nl=False)
    return 0


# ------------------------------------------------------------------------------------ show


def _matches(item: m.Profile | m.Fill, selector: str) -> bool:
    number = item.number if isinstance(item, m.Profile) else item.profile
    if number is not None and selector in (str(number), number.base):
        return True
    if isinstance(item, m.Profile):
        return item.name == selector or item.name.casefold() == selector.casefold()
    return False


def _describe(item: m.Profile | m.Fill) -> str:
    if isinstance(item, m.Profile):
        return f"{item.number or 'draft'} {item.name!r}"
    return f"fill for {item.profile}" + (f" (office {item.office})" if item.office else "")


def select_items(source: m.SourceFile, selector: str | None) -> list[m.Profile | m.Fill]:
    """The profiles and fills of ``source`` that ``show`` renders, in file order.

    ``selector`` is a profile number (with or without its ``-VV`` edition) or a profile name;
    a selected profile brings along the fills for it in the same file.
    """
    items = [x for x in source.items if isinstance(x, m.Profile | m.Fill)]
    if selector is None:
        return items
    chosen = [x for x in items if _matches(x, selector)]
    numbers = {x.number for x in chosen if isinstance(x, m.Profile) and x.number}
    return [x for x in items if x in chosen or (isinstance(x, m.Fill) and x.profile in numbers)]


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--profile",
    "-p",
    "selector",
    metavar="NUMBER_OR_NAME",
    help="Show only this profile (number, number without -VV, or name) and its fills.",
)
@click.option(
    "--format",
    "fmt_name",
    type=click.Choice(FORMATS),
    default="markdown",
    show_default=True,
    help="markdown, or a self-contained printable html page.",
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the labels: en, or uk (the field names of the passport form).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the document to this file instead of standard output.",
)
@click.option(
    "--catalogue",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML catalogue whose [[reason]] tables name your own non-completion reasons.",
)
@click.pass_context
def show(
    ctx: click.Context,
    file: Path,
    selector: str | None,
    fmt_name: str,
    lang: str,
    output: Path | None,
    catalogue: Path | None,
) -> None:
    """Show the passport of the profiles (and regional fills) in FILE as a document.

    The fields follow the passport form of the procedure (appendix 1), then the table of
    region-filled parameters and the analytical note (appendix 2).
    """
    name = str(file)
    try:
        text = read_source(file)
    except ProfileError as exc:
        echo_diagnostics(exc.diagnostics, exc.sources, err=True)
        ctx.exit(EXIT_PROBLEMS)
    result = parse_source(text, name)
    if result.source is None or not result.ok:
        errors = [d for d in result.diagnostics if d.is_error]
        echo_diagnostics(sort_diagnostics(errors), {name: text}, err=True)
        user_error(f"{name} has errors; fix them to show its passport")
        ctx.exit(EXIT_PROBLEMS)
    items = select_items(result.source, selector)
    if not items:
        everything = select_items(result.source, None)
        if not everything:
            user_error(f"{name} has no profiles or fills")
            ctx.exit(EXIT_PROBLEMS)
        known = "; ".join(_describe(x) for x in everything)
        raise click.BadParameter(
            f"no profile {selector!r} in {name}; it has: {known}", param_hint="'--profile'"
        )
    loaded = _load_catalogue(catalogue)
    reasons = loaded.reasons if loaded is not None else None
    document = render(items, fmt=fmt_name, lang=lang, source=result.source, reasons=reasons)
    if output is None:
        click.echo(document, nl=False)
        return
    try:
        atomic_write(output, document)
    except OSError as exc:
        user_error(f"cannot write {output}: {exc.strerror or exc}")
        ctx.exit(EXIT_PROBLEMS)
    click.echo(f"wrote {output}", err=True)
