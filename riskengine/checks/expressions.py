"""Name and type checks of one profile (RE2xx): definitions, every expression, the message."""

from __future__ import annotations

import re

import attrs

from riskengine import model as m
from riskengine.checks.context import (
    Capture,
    Reporter,
    closest,
    did_you_mean,
    head,
    token_span,
    where,
)
from riskengine.checks.types import (
    PARAM_TYPES,
    ExprChecker,
    Scope,
    list_literal_type,
    literal_type,
)
from riskengine.diagnostics import Span
from riskengine.semantics.indicators import definitions, indicator_order
from riskengine.semantics.types import STRING, UNKNOWN

_MESSAGE_NAMES = ("degree", "negative_history", "positive_history")


@attrs.define
class Usage:
    """What the expressions of a profile use: indicators, parameters, history values."""

    indicators: set[str] = attrs.field(factory=set)
    params: set[str] = attrs.field(factory=set)
    history: set[m.HistoryKind] = attrs.field(factory=set)


def name_span(report: Reporter, span: Span, name: str) -> Span:
    """The span of the defined ``name`` in a definition (``list NAME = …``)."""
    return head(token_span(report, span, name), len(name))


def check_definitions(p: m.Profile, file_lists: dict[str, m.ListDef], report: Reporter) -> None:
    """Duplicate names (RE212), indicators named like lists (RE213), filling vs parameters
    (RE204, RE205), parameter types (RE206), mixed-type lists (RE224)."""
    seen_lists: dict[str, m.ListDef] = {}
    for ld in p.lists:
        first = seen_lists.get(ld.name)
        if first is not None:
            report(
                "RE212",
                f"list `{ld.name}` is defined twice (first at {where(first.span, ld.span)})",
                name_span(report, ld.span, ld.name),
                "rename one of them",
            )
        else:
            seen_lists[ld.name] = ld
        check_list_literal(ld, report)
    _duplicates(p.indicators, "indicator", report)
    _duplicates(p.exceptions, "exception", report)
    _duplicates(p.params, "regional parameter", report)
    indicator_names = {ind.name for ind in p.indicators}
    for exc in p.exceptions:
        if exc.name in indicator_names:
            report(
                "RE212",
                f"exception `{exc.name}` has the name of an indicator",
                head(exc.span, len(exc.name)),
                "explanations name both indicators and exceptions: rename one of them",
            )
    for ind in p.indicators:
        if ind.name in seen_lists or ind.name in file_lists:
            ld = seen_lists.get(ind.name) or file_lists[ind.name]
            report(
                "RE213",
                f"indicator `{ind.name}` has the name of the list at {where(ld.span, ind.span)}",
                head(ind.span, len(ind.name)),
                "rename the indicator or the list: a name means one thing",
            )
    block = p.spans.get("params")
    if p.is_regional and block is None:
        report(
            "RE204",
            "a regional profile without a `regional { }` block: offices have nothing to fill",
            p.filling.span if p.filling is not None else p.span,
            'declare the parameters: `regional { max_price: number "Price limit" }`',
        )
    if not p.is_regional and block is not None:
        report(
            "RE205",
            'only a regional profile (`filling regional by "…"`) can declare regional parameters',
            head(p.params[0].span, len(p.params[0].name)) if p.params else block,
            "make the profile regional, or write the values into the conditions",
        )
    for param in p.params:
        if param.type not in PARAM_TYPES:
            hint = did_you_mean(closest(param.type, PARAM_TYPES))
            report(
                "RE206",
                f"unknown parameter type `{param.type}`",
                report.find(param.span, rf":\s*(?:list\s+of\s+)?({re.escape(param.type)})\b"),
                hint or "the types are " + ", ".join(PARAM_TYPES),
            )


def check_list_literal(ld: m.ListDef, report: Reporter) -> None:
    """A named list holds values of one type (RE224)."""
    _, bad = list_literal_type(ld.values)
    if bad is not None:
        first = ld.values.items[0]
        report(
            "RE224",
            f"list `{ld.name}` mixes {_type_of(first)} with {_type_of(bad)}",
            bad.span,
            "a list holds values of one type",
        )


def _type_of(lit: m.Literal) -> str:
    return literal_type(lit).described


def _duplicates(
    items: tuple[m.Indicator, ...] | tuple[m.ProfileException, ...] | tuple[m.Param, ...],
    kind: str,
    report: Reporter,
) -> None:
    seen: dict[str, Span] = {}
    for item in items:
        first = seen.get(item.name)
        if first is not None:
            report(
                "RE212",
                f"{kind} `{item.name}` is defined twice (first at {where(first, item.span)})",
                head(item.span, len(item.name)),
                "rename one of them",
            )
        else:
            seen[item.name] = item.span


def check_expressions(p: m.Profile, scope: Scope, report: Reporter) -> Usage:
    """Types and names of every expression; indicator cycles (RE214); the message."""
    checker = ExprChecker(scope, report)
    usage = Usage()
    defined: set[str] = set()
    for ind in p.indicators:
        checker.used = set()
        checker.condition(ind.condition, "an indicator condition")
        if ind.unless is not None:
            checker.condition(ind.unless, "an `unless` condition")
        if ind.name in defined:
            continue  # a duplicate (RE212): the first definition is the one used
        defined.add(ind.name)
        usage.indicators |= checker.used - {ind.name}
    checker.used = usage.indicators
    for exc in p.exceptions:
        checker.condition(exc.condition, "an exception condition")
    if p.degree is not None:
        checker.degree(p.degree)
    for ctl in p.controls:
        if ctl.condition is not None:
            checker.condition(ctl.condition, "a control condition")
    if p.history is not None:
        check_subjects(p.history, checker, report)
    if p.message is not None:
        check_message(p.message, scope, checker, report)
    usage.params = checker.used_params
    usage.history = checker.used_history
    _cycles(p, report)
    return usage


def check_subjects(hist: m.History, checker: ExprChecker, report: Reporter) -> None:
    """Whose history: declaration or item fields (RE319, RE201), prefixes of texts (RE317)."""
    for subject in hist.subjects:
        f = subject.field
        if f.scope == "region":
            report(
                "RE319",
                f"`{f.path}` is a regional parameter; history is kept per declaration or item "
                "field",
                f.span,
                "e.g. `history per declaration.declarant.id over 365 days { … }`",
            )
            continue
        t = checker.field_type(f, as_list=False)
        if subject.prefix is not None:
            if subject.prefix < 1:
                report(
                    "RE317",
                    f"a prefix of {subject.prefix} characters selects nothing",
                    report.find(subject.span, r"\[\s*:\s*([0-9.]+)\s*\]"),
                    "use at least 1, e.g. `item.hs_code[:4]`",
                )
            elif t is not STRING and t is not UNKNOWN:
                report(
                    "RE319",
                    f"`[:{subject.prefix}]` takes the first characters of a text, but "
                    f"`{f.path}` is {t.described}",
                    subject.span,
                )


def check_message(msg: m.Message, scope: Scope, checker: ExprChecker, report: Reporter) -> None:
    """Placeholders: fields (RE201), regional parameters (RE202/RE203), `degree`, history
    values (RE240); history values the profile does not compute (RE241)."""
    for part in msg.parts:
        if isinstance(part, str):
            continue
        if isinstance(part, m.FieldRef):
            if part.scope in ("declaration", "item", "region"):
                # Checked quietly; the span of the placeholder is only looked up for a problem.
                capture = Capture()
                checker.report, saved = capture, checker.report
                try:
                    checker.field_type(part, as_list=False)
                finally:
                    checker.report = saved
                for code, message, _span, suggestion in capture.kept:
                    report(code, message, _placeholder_span(report, msg, part.path), suggestion)
            else:
                hint = did_you_mean(scope.catalogue.suggest(part.path))
                report(
                    "RE240",
                    f"unknown placeholder `{{{part.path}}}`",
                    _placeholder_span(report, msg, part.path),
                    hint or "placeholders start with `item.`, `declaration.` or `region.`",
                )
        elif isinstance(part, m.HistoryRef):
            checker.used_history.add(part.kind)
            hist = scope.history
            block = None
            if hist is not None:
                block = hist.negative if part.kind is m.HistoryKind.NEGATIVE else hist.positive
            if block is None:
                report(
                    "RE241",
                    f"the message shows `{part.kind.value}`, but the profile has no such "
                    "history: it is always 0",
                    _placeholder_span(report, msg, part.kind.value),
                )
        elif part.name != "degree":
            hint = did_you_mean(closest(part.name, _MESSAGE_NAMES))
            if hint is None and part.name in scope.indicators:
                hint = "a message cannot show an indicator; show the fields it tests"
            report(
                "RE240",
                f"unknown placeholder `{{{part.name}}}`",
                _placeholder_span(report, msg, part.name),
                hint
                or "a message can show fields (`{item.hs_code}`), regional parameters, "
                "`{degree}`, `{negative_history}` and `{positive_history}`",
            )


def _placeholder_span(report: Reporter, msg: m.Message, name: str) -> Span:
    if msg.span.line == 0:
        return msg.span
    pattern = r"(?<!\{)\{(\s*" + re.escape(name) + r"\s*)\}"
    found = report.find(msg.span, pattern)
    if found is msg.span:
        return found
    # widen to include the braces
    return Span(found.file, found.line, found.column - 1, found.end_line, found.end_column + 1)


def _cycles(p: m.Profile, report: Reporter) -> None:
    """Report each cycle among indicators once, as a path ``a → b → a`` (RE214), as
    :mod:`riskengine.semantics.indicators` finds them."""
    found = indicator_order(p)
    for cycle in found.cycles:
        start = definitions(p)[cycle[0]]
        report(
            "RE214",
            found.cycle_text(cycle),
            head(start.span, len(start.name)),
            "an indicator cannot depend on itself, directly or through others",
        )


def check_unused(p: m.Profile, usage: Usage, report: Reporter) -> None:
    """Indicators (RE306) and regional parameters (RE209) that nothing uses."""
    if p.degree is not None:
        seen: set[str] = set()
        for ind in p.indicators:
            if ind.name not in usage.indicators and ind.name not in seen:
                report(
                    "RE306",
                    f"indicator `{ind.name}` is not used by the degree, a control, an exception "
                    "or another indicator",
                    head(ind.span, len(ind.name)),
                    f"use it in the degree (e.g. `+ 20 * {ind.name}`) or remove it",
                )
            seen.add(ind.name)
    if p.is_regional:
        seen = set()
        for param in p.params:
            if param.name not in usage.params and param.name not in seen:
                report(
                    "RE209",
                    f"regional parameter `{param.name}` is never used",
                    head(param.span, len(param.name)),
                    f"use it as `region.{param.name}` or remove it",
                )
            seen.add(param.name)
