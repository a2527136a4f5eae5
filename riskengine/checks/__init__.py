"""Checks: every problem of a set of profile and fill files, as diagnostics with stable codes.

``check_sources`` / ``check_paths`` parse each file, run every check on every file that parsed
(also when another file has syntax errors) and return a :class:`CheckResult`. The codes are
listed in ``riskengine.checks.codes`` and documented in ``docs/diagnostics.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue, default_catalogue
from riskengine.checks.codes import CODES, CodeInfo
from riskengine.checks.context import Reporter
from riskengine.checks.controls import check_controls, check_history
from riskengine.checks.expressions import (
    Usage,
    check_definitions,
    check_expressions,
    check_list_literal,
    check_message,
    check_unused,
    name_span,
)
from riskengine.checks.fills import (
    check_fill_coverage,
    check_fill_scope,
    check_fill_statements,
    check_fill_values,
    check_overlaps,
    last_valid_day,
)
from riskengine.checks.intervals import Interval, degree_interval, degree_range, expr_range
from riskengine.checks.limits import check_fill_limits, check_limits, check_numbers
from riskengine.checks.passport import check_passport
from riskengine.checks.sets import check_profile_set, resolve_fill
from riskengine.checks.types import ExprChecker, Scope
from riskengine.diagnostics import (
    Diagnostic,
    ProfileError,
    Severity,
    Span,
    error,
    sort_diagnostics,
)
from riskengine.semantics.types import ValueType
from riskengine.syntax import parse_source, read_source

__all__ = [
    "CODES",
    "CheckResult",
    "CodeInfo",
    "Interval",
    "ValueType",
    "check_models",
    "check_paths",
    "check_sources",
    "degree_range",
    "expr_range",
    "expr_type",
    "find_profile_files",
    "last_valid_day",
    "load_checked",
]


def _freeze(sources: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sources))


@attrs.frozen
class CheckResult:
    """Every file that parsed, every problem found (sorted by file, line, column) and the source
    texts (to render the problems with their lines)."""

    files: tuple[m.SourceFile, ...]
    diagnostics: tuple[Diagnostic, ...]
    sources: Mapping[str, str] = attrs.field(converter=_freeze, eq=False)

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings are allowed)."""
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def profiles(self) -> list[m.Profile]:
        """The profiles of every file that parsed, in file order."""
        return [p for f in self.files for p in f.profiles]

    @property
    def fills(self) -> list[m.Fill]:
        """The regional fills of every file that parsed, in file order."""
        return [x for f in self.files for x in f.fills]

    def render(self) -> str:
        """Every diagnostic like a compiler prints it (with its source line and a caret), then
        a summary line: ``2 errors, 1 warning in 3 files``."""
        texts = dict(self.sources)
        blocks = [d.render(texts) for d in self.diagnostics]
        blocks.append(self.summary())
        return "\n\n".join(blocks)

    def summary(self) -> str:
        n_err, n_warn, n_files = len(self.errors), len(self.warnings), len(self.sources)
        return (
            f"{n_err} {_plural(n_err, 'error')}, {n_warn} {_plural(n_warn, 'warning')} "
            f"in {n_files} {_plural(n_files, 'file')}"
        )


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def check_sources(sources: Mapping[str, str], catalogue: Catalogue | None = None) -> CheckResult:
    """Parse and check files given as ``{file name: text}``."""
    return _check(sources, catalogue, [])


def _check(
    sources: Mapping[str, str], catalogue: Catalogue | None, extra: list[Diagnostic]
) -> CheckResult:
    diagnostics = list(extra)
    files: list[m.SourceFile] = []
    complete = not extra
    for name, text in sources.items():
        parsed = parse_source(text, name)
        diagnostics.extend(parsed.diagnostics)
        if parsed.source is None:
            complete = False
        else:
            files.append(parsed.source)
    found = check_models(files, sources, catalogue, complete=complete)
    diagnostics.extend(_without_stand_in_warnings(files, diagnostics, found))
    return CheckResult(tuple(files), tuple(sort_diagnostics(diagnostics)), sources)


def _within(inner: Span, outer: Span) -> bool:
    return (
        inner.file == outer.file
        and (outer.line, outer.column) <= (inner.line, inner.column)
        and (inner.line, inner.column) <= (outer.end_line, outer.end_column)
    )


def _without_stand_in_warnings(
    files: Sequence[m.SourceFile], parsed: list[Diagnostic], found: list[Diagnostic]
) -> list[Diagnostic]:
    """``found`` without the warnings about a profile in which the parser replaced an expression
    nested too deeply (RE601) by a stand-in (false, or a degree of 0): "can never fire" and the
    like would be about the stand-in. They come back once the expression is fixed."""
    deep = [d.span for d in parsed if d.code == "RE601"]
    if not deep:
        return found
    spans = [p.span for f in files for p in f.profiles if any(_within(s, p.span) for s in deep)]
    return [d for d in found if d.is_error or not any(_within(d.span, s) for s in spans)]


def find_profile_files(paths: Iterable[str | Path]) -> tuple[list[str], list[Diagnostic]]:
    """Files as given and every ``*.rp`` file under each directory (sorted, recursive), each
    once in the order given; a missing path becomes an RE006 diagnostic."""
    found: list[str] = []
    problems: list[Diagnostic] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            found.append(str(p))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for child in sorted(p.rglob("*.rp"), key=str):
                if child.is_file():
                    add(child)
        elif p.exists():
            add(p)
        else:
            problems.append(
                error(
                    "RE006",
                    f"no such file or directory: {raw}",
                    Span(str(raw), 0, 0, 0, 0),
                    "check the path",
                )
            )
    return found, problems


def _as_paths(paths: Iterable[str | Path] | str | Path) -> Iterable[str | Path]:
    return [paths] if isinstance(paths, str | Path) else paths


def check_paths(
    paths: Iterable[str | Path] | str | Path, catalogue: Catalogue | None = None
) -> CheckResult:
    """Check files and directories: a directory means every ``*.rp`` file below it, sorted. A
    path that does not exist or cannot be read is a diagnostic (RE006, RE005), not an
    exception."""
    names, problems = find_profile_files(_as_paths(paths))
    texts: dict[str, str] = {}
    for name in names:
        try:
            texts[name] = read_source(name)
        except ProfileError as exc:
            problems.extend(exc.diagnostics)
    return _check(texts, catalogue, problems)


def load_checked(
    paths: Iterable[str | Path] | str | Path | Mapping[str, str],
    catalogue: Catalogue | None = None,
) -> CheckResult:
    """Check files (paths, or ``{name: text}``); raise :class:`ProfileError` with every error
    when any is found. The evaluator loads profiles through this."""
    if isinstance(paths, Mapping):
        result = check_sources(paths, catalogue)
    else:
        result = check_paths(paths, catalogue)
    if not result.ok:
        raise ProfileError(result.errors, dict(result.sources))
    return result


def expr_type(
    expr: m.Expr,
    profile: m.Profile,
    catalogue: Catalogue | None = None,
    lists: Iterable[m.ListDef] | Mapping[str, m.ListDef] = (),
) -> ValueType:
    """The static type of an expression of ``profile`` (``lists``: the file-level lists).
    ``ValueType.UNKNOWN`` when it has an error (unknown name, mismatched types)."""
    scope = Scope.of(profile, catalogue or default_catalogue(), lists)
    return ExprChecker(scope).infer(expr)


def check_models(
    files: Sequence[m.SourceFile],
    texts: Mapping[str, str] | None = None,
    catalogue: Catalogue | None = None,
    *,
    complete: bool = True,
) -> list[Diagnostic]:
    """Run every check on parsed files (unsorted diagnostics). ``texts`` lets diagnostics point
    at tokens inside statements; ``complete`` False (some file failed to parse) silences
    "fill for a profile that is not loaded" (RE409)."""
    cat = catalogue or default_catalogue()
    report = Reporter(texts or {})
    scopes: dict[int, tuple[Scope, Interval | None, Usage]] = {}
    lists_of: dict[int, dict[str, m.ListDef]] = {}
    profiles: list[m.Profile] = []
    for sf in files:
        file_lists: dict[str, m.ListDef] = {}
        for ld in sf.lists:
            first = file_lists.get(ld.name)
            if first is not None:
                report(
                    "RE212",
                    f"list `{ld.name}` is defined twice (first at line {first.span.line})",
                    name_span(report, ld.span, ld.name),
                    "rename one of them",
                )
            else:
                file_lists[ld.name] = ld
            check_list_literal(ld, report)
        check_numbers([ld.values for ld in sf.lists], report)
        for p in sf.profiles:
            profiles.append(p)
            lists_of[id(p)] = file_lists
            scopes[id(p)] = _check_profile(p, file_lists, cat, report)
    check_profile_set(profiles, report)

    by_number: dict[str, m.Profile] = {}
    by_base: dict[str, list[m.Profile]] = {}
    for p in profiles:
        if p.number is not None:
            by_number.setdefault(str(p.number), p)
            by_base.setdefault(p.number.base, []).append(p)
    fills = [f for sf in files for f in sf.fills]
    fills_for: dict[int, list[m.Fill]] = {}
    for f in fills:
        check_fill_statements(f, report)
        check_numbers([v.value for v in f.values], report)
        target = resolve_fill(f, by_number, by_base, report, complete)
        if target is None:
            continue
        fills_for.setdefault(id(target), []).append(f)
        check_fill_values(f, target, report)
        check_fill_limits(f, target, lists_of[id(target)], report)
        scope, degree, usage = scopes[id(target)]
        used = check_fill_scope(f, target, scope, degree, report, check_controls, check_message)
        usage.indicators |= used.indicators
        usage.params |= used.params
    check_overlaps(fills, report)
    # where a regional profile has no valid fill: once the fills are sound (no error so far)
    coverage = complete and not any(d.severity is Severity.ERROR for d in report.diagnostics)
    for p in profiles:
        check_unused(p, scopes[id(p)][2], report)
        if coverage:
            check_fill_coverage(p, fills_for.get(id(p), ()), report)
    return report.diagnostics


def _check_profile(
    p: m.Profile, file_lists: dict[str, m.ListDef], catalogue: Catalogue, report: Reporter
) -> tuple[Scope, Interval | None, Usage]:
    check_passport(p, report)
    check_limits(p, file_lists, report)
    check_definitions(p, file_lists, report)
    scope = Scope.of(p, catalogue, file_lists)
    usage = check_expressions(p, scope, report)
    degree = degree_interval(p, catalogue) if p.degree is not None else None
    owner = f"profile {p.number}" if p.number is not None else f'draft "{p.name}"'
    check_controls(p.controls, degree, report, p.spans.get("degree"), owner)
    check_history(p, usage.history, report, catalogue.reasons)
    return scope, degree, usage
