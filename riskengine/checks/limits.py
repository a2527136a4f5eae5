"""Limits every backend needs (RE601, RE603-RE605): checks of the parsed model.

The parser already refuses an expression nested too deeply on its own, a number literal with
too many digits and a history window or prefix beyond its limit (it must: what it builds is read
by code that recurses or converts). What needs names resolved is checked here: the depth and the
size of expressions with the indicators they use written in place (as the SQL of a backtest
writes them), and the history weights. The limits and the reasons for them are in
``riskengine.semantics.limits``; nothing here recurses, whatever the depth or the number of
indicators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from riskengine import model as m
from riskengine.checks.context import Reporter, head, header_span, tail
from riskengine.diagnostics import Span
from riskengine.semantics.limits import (
    MAX_EXPRESSION_DEPTH,
    MAX_HISTORY_DAYS,
    MAX_HISTORY_PREFIX,
    MAX_HISTORY_WEIGHT,
    MAX_HISTORY_WEIGHT_DECIMALS,
    MAX_NUMBER_FRACTION_DIGITS,
    MAX_NUMBER_INTEGER_DIGITS,
    MAX_PROFILE_SIZE,
    decimal_digits,
    scan,
    with_names,
)
from riskengine.syntax.build import NUMBER_HELP

_SATURATED = 10**12  # sizes are counted up to here (they can grow exponentially)


#: What a root expression is (see :func:`_roots`): the condition or the `unless` of an
#: indicator, the condition of an exception, the degree, the condition of a control.
_CONDITION, _UNLESS, _EXCEPTION, _DEGREE, _CONTROL = range(5)

#: A root expression: the expression, what it is, and its statement (the indicator, exception
#: or control; the profile for the degree). What to call it and where to report it are only
#: worked out for a problem (:func:`_where`).
Root = tuple[m.Expr, int, Any]


class _Measured:
    """The expressions of one profile (``controls`` in place of its own), scanned once each:
    depth and size with the indicators they use written in place, computed in dependency order
    (no recursion: a chain of thousands of indicators is fine). A cycle (RE214) counts its
    closing name as a value. Also every number literal, for RE602."""

    def __init__(self, p: m.Profile, lists: Mapping[str, m.ListDef], controls: Sequence[m.Control]):
        self.lists = lists
        self.by_name: dict[str, m.Indicator] = {}
        for ind in p.indicators:
            self.by_name.setdefault(ind.name, ind)
        self.roots = _roots(p, controls)
        list_size = self._list_size
        self.scans = {id(expr): scan(expr, list_size) for expr, _k, _s in self.roots}
        self.numbers = [n for found in self.scans.values() for n in found.numbers]
        self.depth: dict[str, int] = {}
        self.size: dict[str, int] = {}
        self._of: dict[int, tuple[int, int]] = {}
        for name in self._order():
            ind = self.by_name[name]
            d, n = self.of(ind.condition)
            if ind.unless is not None:
                ud, un = self.of(ind.unless)
                # `C unless U` is C and not U: one level for the conjunction, one for the `not`
                d, n = 1 + max(d, 1 + ud), n + un + 2
            self.depth[name], self.size[name] = d, min(_SATURATED, n)

    def _uses(self, name: str) -> list[str]:
        ind = self.by_name[name]
        exprs = (ind.condition,) if ind.unless is None else (ind.condition, ind.unless)
        return [n for e in exprs for n in self.scans[id(e)].names if n in self.by_name]

    def _order(self) -> list[str]:
        """Every indicator after those it uses (iterative depth-first search)."""
        order: list[str] = []
        state: dict[str, int] = {}  # 1: on the path, 2: done
        for root in self.by_name:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(self._uses(root)))]
            while stack:
                name, todo = stack[-1]
                nxt = next(todo, None)
                if nxt is None:
                    stack.pop()
                    state[name] = 2
                    order.append(name)
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(self._uses(nxt))))
        return order

    def _known(self, name: str) -> tuple[int, int] | None:
        depth = self.depth.get(name)
        return None if depth is None else (depth, self.size[name])

    def _list_size(self, name: str) -> int:
        ld = self.lists.get(name)
        return 1 + len(ld.values.items) if ld is not None else 1

    def of(self, expr: m.Expr) -> tuple[int, int]:
        """Depth and size of ``expr`` (a root) with indicators in place (size saturated), once
        the indicators it uses are measured."""
        done = self._of.get(id(expr))
        if done is None:
            found = self.scans[id(expr)]
            if found.names:
                depth, size = with_names(found, self._known)
            else:
                depth, size = found.depth, found.size
            done = self._of[id(expr)] = (depth, min(_SATURATED, size))
        return done

    def deepest_use(self, expr: m.Expr) -> tuple[str, int] | None:
        """The indicator used by ``expr`` that nests deepest, with its depth."""
        used = sorted(set(self.scans[id(expr)].names) & self.depth.keys())
        if not used:
            return None
        name = max(used, key=self.depth.__getitem__)
        return name, self.depth[name]


def _roots(p: m.Profile, controls: Sequence[m.Control]) -> list[Root]:
    """Every expression of a profile (with ``controls`` for its controls)."""
    out: list[Root] = []
    for ind in p.indicators:
        out.append((ind.condition, _CONDITION, ind))
        if ind.unless is not None:
            out.append((ind.unless, _UNLESS, ind))
    for exc in p.exceptions:
        out.append((exc.condition, _EXCEPTION, exc))
    if p.degree is not None:
        out.append((p.degree, _DEGREE, p))
    out.extend(_control_roots(controls))
    return out


def _control_roots(controls: Sequence[m.Control]) -> list[Root]:
    return [(ctl.condition, _CONTROL, ctl) for ctl in controls if ctl.condition is not None]


def _where(expr: m.Expr, kind: int, stmt: Any) -> tuple[str, Span]:
    """What a root expression is, for a message, and where to report it (the name or code of
    its statement; the degree itself)."""
    if kind == _CONDITION:
        return f"the condition of indicator `{stmt.name}`", head(stmt.span, len(stmt.name))
    if kind == _UNLESS:
        return f"the `unless` of indicator `{stmt.name}`", head(stmt.span, len(stmt.name))
    if kind == _EXCEPTION:
        return f"the condition of exception `{stmt.name}`", head(stmt.span, len(stmt.name))
    if kind == _DEGREE:
        return "the degree", expr.span
    return f"the condition of control {stmt.code}", head(stmt.span, len(stmt.code))


def _lists(p: m.Profile, file_lists: Mapping[str, m.ListDef]) -> dict[str, m.ListDef]:
    lists = dict(file_lists)
    lists.update({ld.name: ld for ld in p.lists})
    return lists


def check_numbers(nodes: Iterable[m.Expr | m.ListLit], report: Reporter) -> None:
    """Number literals (of expressions and lists) with at most MAX_NUMBER_INTEGER_DIGITS digits
    before the decimal point and MAX_NUMBER_FRACTION_DIGITS after it (RE602); the parser
    reported longer ones."""
    _report_numbers([n for node in nodes for n in scan(node).numbers], report)


def _report_numbers(numbers: Iterable[m.NumberLit], report: Reporter) -> None:
    for n in numbers:
        whole, fraction = decimal_digits(n.value)
        if whole > MAX_NUMBER_INTEGER_DIGITS:
            where, count, limit = "before", whole, MAX_NUMBER_INTEGER_DIGITS
        elif fraction > MAX_NUMBER_FRACTION_DIGITS:
            where, count, limit = "after", fraction, MAX_NUMBER_FRACTION_DIGITS
        else:
            continue
        report(
            "RE602",
            f"the number `{_written(abs(n.value))}` has {count} digits {where} the decimal "
            f"point; at most {limit} are allowed",
            n.span,
            NUMBER_HELP,
        )


def check_limits(p: m.Profile, file_lists: Mapping[str, m.ListDef], report: Reporter) -> None:
    """Numbers (RE602), depth with indicators in place (RE601), size (RE603), history limits
    (RE604, RE605)."""
    check_numbers([ld.values for ld in p.lists], report)
    measured = _Measured(p, _lists(p, file_lists), p.controls)
    _report_numbers(measured.numbers, report)
    _check_depths(measured.roots, measured, report)
    _check_size(measured, report, header_span(p), "this profile")
    if p.history is not None:
        check_history_limits(p.history, report)


def check_fill_limits(
    f: m.Fill,
    target: m.Profile,
    file_lists: Mapping[str, m.ListDef],
    report: Reporter,
) -> None:
    """A fill's control conditions use the profile's indicators: their depth (RE601) and the
    size of the profile with the fill's controls in place of its own (RE603)."""
    if not f.controls:
        return
    measured = _Measured(target, _lists(target, file_lists), f.controls)
    fill_roots = _control_roots(f.controls)
    _report_numbers([n for e, _k, _s in fill_roots for n in measured.scans[id(e)].numbers], report)
    _check_depths(fill_roots, measured, report)
    _check_size(measured, report, header_span(f), "the profile with this fill")


def _check_depths(roots: Iterable[Root], measured: _Measured, report: Reporter) -> None:
    for expr, kind, stmt in roots:
        depth = measured.of(expr)[0]
        if depth <= MAX_EXPRESSION_DEPTH:
            continue
        what, at = _where(expr, kind, stmt)
        deepest = measured.deepest_use(expr)
        if deepest is not None and deepest[1] > MAX_EXPRESSION_DEPTH:
            continue  # the indicator it uses is reported: one error where the depth comes from
        if deepest is None or measured.scans[id(expr)].depth > MAX_EXPRESSION_DEPTH:
            message = f"{what} is nested {depth:,} levels deep"
        else:
            message = (
                f"{what} is nested {depth:,} levels deep with the indicators it uses written "
                f"in place (`{deepest[0]}` is {deepest[1]:,} levels deep)"
            )
        report(
            "RE601",
            f"{message}; at most {MAX_EXPRESSION_DEPTH} levels are allowed",
            at,
            "the SQL of a backtest writes an indicator's condition where the indicator is "
            "used: nest fewer indicators in one another, or give parts their own indicators",
        )


def _check_size(measured: _Measured, report: Reporter, span: Span, what: str) -> None:
    total = sum(measured.size.values())
    indicator_exprs = {
        id(e) for ind in measured.by_name.values() for e in (ind.condition, ind.unless)
    }
    for expr, _kind, _stmt in measured.roots:
        if id(expr) not in indicator_exprs:
            total += measured.of(expr)[1]
    if total <= MAX_PROFILE_SIZE:
        return
    count = f"{total:,}" if total < _SATURATED else f"more than {_SATURATED - 1:,}"
    report(
        "RE603",
        f"the expressions of {what} have {count} operations and values, counting indicators "
        f"and named lists at every place they are used; at most {MAX_PROFILE_SIZE:,} are "
        "allowed",
        span,
        "the SQL of a backtest writes every use out: split the profile, or use long lists and "
        "large indicators in fewer places",
    )


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _shown(value: Decimal) -> str:
    text = _written(value)
    return text if len(text) <= 24 else f"a number of {len(text.replace('.', '')):,} digits"


def check_history_limits(hist: m.History, report: Reporter) -> None:
    """History weights within 0..MAX_HISTORY_WEIGHT with at most MAX_HISTORY_WEIGHT_DECIMALS
    decimal places (RE604); the window and the prefixes within their limits (RE605; the parser
    reports those of more than 9 digits itself and leaves the limit in their place)."""
    # (what, value, where it is written: only looked up for a problem)
    weights: list[tuple[str, Decimal, Callable[[], Span]]] = []
    neg = hist.negative
    if neg is not None:
        nspan = neg.span
        weights.append(
            ("the negative history maximum", neg.max, lambda: _after(report, nspan, "max"))
        )
        weights.append(("the weight per case", neg.per_case, lambda: _after(report, nspan, "case")))
        for r in neg.reasons:
            weights.append(
                (
                    f"the coefficient of reason {r.code}",
                    r.coefficient,
                    lambda r=r: _tail(r.span, r.coefficient),  # type: ignore[misc]
                )
            )
    pos = hist.positive
    if pos is not None:
        pspan = pos.span
        weights.append(
            ("the positive history maximum", pos.max, lambda: _after(report, pspan, "max"))
        )
        weights.append(("the step per clean control", pos.step, lambda: _tail(pspan, pos.step)))
    for what, value, where in weights:
        if value > MAX_HISTORY_WEIGHT:
            report(
                "RE604",
                f"{what} is {_shown(value)}, above the limit of {MAX_HISTORY_WEIGHT}",
                where(),
                "history weights are small decimals (0.3, 0.8, 1.0) that move a degree of "
                f"0..100: 0 to {MAX_HISTORY_WEIGHT} is allowed",
            )
        elif _decimals(value) > MAX_HISTORY_WEIGHT_DECIMALS:
            report(
                "RE604",
                f"{what} is {_shown(value)}, with {_decimals(value)} decimal places; at most "
                f"{MAX_HISTORY_WEIGHT_DECIMALS} are allowed",
                where(),
                "history is summed exactly, in Python and in SQL: round the weight",
            )
    if hist.window_days > MAX_HISTORY_DAYS:
        report(
            "RE605",
            f"the history window of `{hist.window_days}` is longer than the limit of "
            f"{MAX_HISTORY_DAYS:,}",
            report.find(hist.span, r"\bover\s+([0-9.]+)\s+days\b"),
            "the window reaches back at most ten years (3,660 days)",
        )
    for subject in hist.subjects:
        if subject.prefix is not None and subject.prefix > MAX_HISTORY_PREFIX:
            report(
                "RE605",
                f"a prefix length of `{subject.prefix}` is longer than the limit of "
                f"{MAX_HISTORY_PREFIX}",
                report.find(subject.span, r"\[\s*:\s*([0-9.]+)"),
                "a prefix takes at most 100 characters of a text field",
            )


def _written(value: Decimal) -> str:
    """A weight as it was written (``0.0000001``, not ``1E-7``)."""
    return format(value, "f")


def _after(report: Reporter, span: Span, word: str) -> Span:
    """The number after ``word`` (``max``, ``case``) in ``span``."""
    return report.find(span, rf"\b{word}\s+([0-9.]+)")


def _tail(span: Span, value: Decimal) -> Span:
    return tail(span, len(_written(value)))
