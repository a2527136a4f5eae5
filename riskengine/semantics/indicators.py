"""Indicator resolution and order: which indicators an expression refers to, and the order in
which a profile's indicators are evaluated. Read by the evaluator (``topo_indicators``), the
interval analysis and the checks (RE214 reports :attr:`IndicatorOrder.cycles`).

The rules (docs/semantics.md#indicators-and-exceptions):

- a name defined twice means its first definition (the second is RE212);
- a bare name refers to an indicator, except where a list is expected (``in NAME``,
  ``starts with NAME``): there it names a list, even when an indicator has the same name
  (RE213);
- an indicator is evaluated after every indicator its condition or its ``unless`` refers to.
  The order is the depth-first post-order over the definitions, each indicator's references
  taken in definition order: independent indicators keep their order of definition;
- a cycle (``a → b → a``) is an error; each cycle is reported once, as the path found first.
"""

from __future__ import annotations

import attrs

from riskengine import model as m
from riskengine.diagnostics import Span


class IndicatorCycleError(Exception):
    """Indicators that refer to each other in a cycle (the checks report it as RE214)."""

    def __init__(self, message: str, span: Span | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


@attrs.frozen
class IndicatorOrder:
    """A profile's indicators in evaluation order, and the cycles among them."""

    #: every indicator (first definitions only), each after those it refers to (except along
    #: a cycle)
    order: tuple[m.Indicator, ...]
    #: each cycle once, as a path of names that starts and ends with the same one
    cycles: tuple[tuple[str, ...], ...]

    def cycle_text(self, cycle: tuple[str, ...]) -> str:
        return "indicators depend on each other in a cycle: " + " → ".join(cycle)


def definitions(profile: m.Profile) -> dict[str, m.Indicator]:
    """Name → indicator, the first definition of each name, in definition order."""
    out: dict[str, m.Indicator] = {}
    for ind in profile.indicators:
        out.setdefault(ind.name, ind)
    return out


#: The sub-expressions a name can hide in, per node type (lists of literals hold none; the list
#: of ``in`` / ``starts with`` is looked at apart: a bare name there is a list).
_CHILDREN: dict[type, tuple[str, ...]] = {
    m.Neg: ("operand",),
    m.Not: ("operand",),
    m.IsMissing: ("operand",),
    m.Matches: ("operand",),
    m.Arith: ("left", "right"),
    m.Compare: ("left", "right"),
    m.And: ("left", "right"),
    m.Or: ("left", "right"),
    m.Between: ("operand", "low", "high"),
    m.Cond: ("test", "then", "otherwise"),
}


def refs(expr: m.Expr | m.ListLit | None) -> list[m.Ref]:
    """The bare names an expression reads as values (indicators, or unknown names), in source
    order; a name in a list position (``in NAME``, ``starts with NAME``) names a list and is
    left out."""
    out: list[m.Ref] = []
    stack: list[object] = [expr]
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls is m.Ref:
            out.append(node)  # type: ignore[arg-type]
            continue
        names = _CHILDREN.get(cls)
        if names is not None:
            stack.extend(getattr(node, n) for n in reversed(names))
        elif cls is m.Call:
            stack.extend(reversed(node.args))  # type: ignore[attr-defined]
        elif cls is m.InList or cls is m.StartsWith:
            stack.append(node.operand)  # type: ignore[attr-defined]
    return out


def dependencies(profile: m.Profile) -> dict[str, list[str]]:
    """Name → the indicators it refers to (in its condition or its ``unless``), each once, in
    definition order; for the first definition of every name, in definition order."""
    defined = definitions(profile)
    position = {name: k for k, name in enumerate(defined)}
    out: dict[str, list[str]] = {}
    for name, ind in defined.items():
        found = {r.name for e in (ind.condition, ind.unless) for r in refs(e) if r.name in defined}
        out[name] = sorted(found, key=position.__getitem__)
    return out


#: ``id(profile)`` → (profile, its order): the checks, the index planner, the interval analysis
#: and the code generator all ask for the same profile's order. The profile is kept with its
#: entry (so its id cannot be reused while the entry lives); the oldest entries go first.
_ORDERS: dict[int, tuple[m.Profile, IndicatorOrder]] = {}
_ORDERS_KEPT = 4096


def forget_orders() -> None:
    """Drop the memo of :func:`indicator_order`: it keeps every profile it has seen alive (a
    loaded set of 1,000 profiles is ~400,000 objects the garbage collector would walk on every
    later collection). Loading calls this when it ends."""
    _ORDERS.clear()


def indicator_order(profile: m.Profile) -> IndicatorOrder:
    """The evaluation order of ``profile``'s indicators and the cycles among them (iterative:
    long chains of indicators need no deep recursion); memoised per profile object."""
    hit = _ORDERS.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    found = _indicator_order(profile)
    if len(_ORDERS) >= _ORDERS_KEPT:
        del _ORDERS[next(iter(_ORDERS))]
    _ORDERS[id(profile)] = (profile, found)
    return found


def _indicator_order(profile: m.Profile) -> IndicatorOrder:
    defined = definitions(profile)
    graph = dependencies(profile)
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    order: list[m.Indicator] = []
    cycles: list[tuple[str, ...]] = []
    reported: set[str] = set()
    for root in graph:
        if color[root] != white:
            continue
        stack: list[tuple[str, list[str]]] = [(root, list(graph[root]))]
        path = [root]
        color[root] = grey
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                color[node] = black
                order.append(defined[node])
                continue
            nxt = todo.pop(0)
            if color[nxt] == grey:
                cycle = (*path[path.index(nxt) :], nxt)
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    cycles.append(cycle)
            elif color[nxt] == white:
                color[nxt] = grey
                path.append(nxt)
                stack.append((nxt, list(graph[nxt])))
    return IndicatorOrder(tuple(order), tuple(cycles))


def topo_indicators(profile: m.Profile) -> list[m.Indicator]:
    """The indicators in evaluation order; :class:`IndicatorCycleError` (at the first
    indicator of the first cycle) when some refer to each other in a cycle."""
    found = indicator_order(profile)
    if found.cycles:
        cycle = found.cycles[0]
        start = definitions(profile)[cycle[0]]
        raise IndicatorCycleError(found.cycle_text(cycle), start.span)
    return list(found.order)
