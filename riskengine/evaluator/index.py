"""The profile index: evaluate a declaration only against the profiles that can fire on it.

For each profile we look for *necessary* conditions: predicates of the form ``field in (...)``,
``field == constant`` or ``field starts with (...)`` on a declaration or item field such that,
when all of them are false on an item, the profile cannot fire on that item. This is decided by
the language's interval analysis (:mod:`riskengine.semantics.intervals`, the one the checks use):
the chosen predicates are set to false, every other predicate is "unknown", numbers are intervals
(history values within [0, max], fields unbounded and possibly missing) and the highest reachable
degree (clamped to 0..100) is compared with each control's threshold, and each control's
condition with "can it be true". Starting from every indexable
predicate, predicates are dropped greedily (least selective first) while the rest still rule
firing out. The profile is then filed under the values (or prefixes) of what remains: exact values
in hash maps, prefixes in one hash map per prefix length. A profile without such a set goes to the
"always evaluate" list. A regional profile can also be filed under the offices that have a fill.

The index only filters: a candidate is still evaluated in full, so using it never changes a
result (the test suite checks this on generated profiles and declarations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from riskengine import model as m
from riskengine.evaluator.codegen import literal_value, nodes, prefix_text, resolve_list
from riskengine.evaluator.unit import _CHILDREN as CHILDREN
from riskengine.semantics.indicators import topo_indicators
from riskengine.semantics.intervals import Analysis, degree_bounds

__all__ = ["Atom", "IndexPlan", "ProfileIndex", "degree_bounds", "plan_index"]

INF = math.inf

#: Guessed share of declarations having one given value of a field (for choosing what to file
#: a profile under; only the order matters).
_SHARE = {
    "declaration.direction": 0.4,
    "declaration.regime": 0.15,
    "declaration.transport.mode": 0.25,
    "declaration.declarant.aeo": 0.5,
    "item.preference": 0.2,
    "item.valuation_method": 0.3,
}
_DEFAULT_SHARE = 1 / 30


@attrs.frozen
class Atom:
    """An indexable predicate: ``path`` (``declaration.x`` / ``item.x``) equals one of
    ``keys`` (kind ``"eq"``) or starts with one of them (kind ``"prefix"``)."""

    path: str
    kind: str
    keys: tuple[Any, ...]

    @property
    def share(self) -> float:
        """Estimated share of items on which the predicate holds."""
        if self.kind == "prefix":
            return min(1.0, sum(3.0 * 10.0 ** -len(k) for k in self.keys))
        return min(1.0, len(self.keys) * _SHARE.get(self.path, _DEFAULT_SHARE))


@attrs.frozen
class IndexPlan:
    """What to file a profile under: it can fire on an item only if one atom holds on it (or on
    the header). ``atoms`` empty means "always evaluate"."""

    atoms: tuple[Atom, ...] = ()
    #: Predicates at least one of which holds on an item where the profile can fire (those of
    #: the atoms, or a cheaper one): the generated code skips other items at once.
    guards: tuple[m.Expr, ...] = attrs.field(default=(), eq=False)

    @property
    def indexed(self) -> bool:
        return bool(self.atoms)

    @property
    def share(self) -> float:
        return min(1.0, sum(a.share for a in self.atoms)) if self.atoms else 1.0


# ------------------------------------------------------------------------------ atoms


def _atom_of(expr: m.Expr, lists: Mapping[str, m.ListLit]) -> Atom | None:
    """The atom an expression is, when it is an indexable predicate."""
    match expr:
        case m.InList(operand=m.FieldRef(path=path), values=lv, negated=False):
            target = _literal_list(lv, lists)
            if target is None or path.startswith("region."):
                return None
            keys = tuple(dict.fromkeys(literal_value(x) for x in target.items))
            return Atom(path, "eq", keys)
        case (
            m.Compare(op="==", left=m.FieldRef(path=path), right=lit)
            | m.Compare(op="==", left=lit, right=m.FieldRef(path=path))
        ) if isinstance(lit, m.NumberLit | m.StringLit | m.DateLit | m.BoolLit):
            if path.startswith("region."):
                return None
            return Atom(path, "eq", (literal_value(lit),))
        case m.StartsWith(operand=m.FieldRef(path=path), prefixes=lv):
            target = _literal_list(lv, lists)
            if target is None or path.startswith("region."):
                return None
            keys = tuple(dict.fromkeys(prefix_text(x) for x in target.items))
            return Atom(path, "prefix", keys)
    return None


def _literal_list(lv: m.ListValue, lists: Mapping[str, m.ListLit]) -> m.ListLit | None:
    try:
        target = resolve_list(lv, lists)
    except Exception:
        return None
    return target if isinstance(target, m.ListLit) else None


# ------------------------------------------------------------------------------ can it fire?


def _can_fire(
    profile: m.Profile,
    controls: Sequence[m.Control],
    order: Sequence[m.Indicator],
    false_ids: set[int],
) -> bool:
    """Whether the profile can fire on an item where the predicates ``false_ids`` are all
    false (the interval analysis of :mod:`riskengine.semantics.intervals`, trusting no
    types)."""
    return Analysis(profile, false=false_ids, order=order).can_fire(controls)


_PREDICATES = (m.Compare, m.InList, m.StartsWith, m.Between, m.Matches, m.IsMissing)


def _cost(node: m.Expr) -> int:
    """How expensive a predicate is to test on every item (for choosing guards)."""
    if isinstance(node, m.Matches):
        return 9
    inner = sum(1 for n in nodes(node) if isinstance(n, m.Arith | m.Call | m.Cond))
    return 2 + 2 * inner + (1 if isinstance(node, m.Between) else 0)


def _reads_indicators(expr: m.Expr) -> bool:
    """Whether an expression reads an indicator or a history value (the walk of
    :func:`~riskengine.evaluator.unit.nodes`, stopping at the first, remembering nothing)."""
    stack: list[Any] = [expr]
    children = CHILDREN
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls is m.Ref or cls is m.HistoryRef:
            return True
        names = children.get(cls)
        if names is not None:
            for name in names:
                stack.append(getattr(node, name))
        elif cls is m.Call:
            stack.extend(node.args)
        elif cls is m.ListLit:
            stack.extend(node.items)
    return False


def plan_index(
    profile: m.Profile, controls: Sequence[m.Control], lists: Mapping[str, m.ListLit]
) -> IndexPlan:
    """What to file a profile under and which predicates guard its items (see the module
    docstring). First a single predicate is looked for (the most selective indexable one, else
    the cheapest); failing that, indexable predicates are dropped greedily from the full set."""
    exprs: list[m.Expr | None] = [i.condition for i in profile.indicators]
    exprs += [i.unless for i in profile.indicators]
    exprs += [profile.degree] + [c.condition for c in controls]
    atoms: dict[m.Expr, Atom] = {}
    others: list[m.Expr] = []
    occurrences: dict[m.Expr, list[int]] = {}  # equal predicates give equal values on an item
    for e in exprs:
        for node in nodes(e):
            if not isinstance(node, _PREDICATES):
                continue
            seen = occurrences.get(node)
            if seen is not None:
                seen.append(id(node))
                continue
            occurrences[node] = [id(node)]
            atom = _atom_of(node, lists)
            if atom is not None:
                atoms[node] = atom
            elif not _reads_indicators(node):
                others.append(node)  # a guard reads fields only: it runs before indicators
    if not occurrences:
        return IndexPlan()
    try:
        order = topo_indicators(profile)
    except Exception:
        return IndexPlan()

    def can_fire(false_preds: Iterable[m.Expr]) -> bool:
        ids = {i for a in false_preds for i in occurrences[a]}
        return _can_fire(profile, controls, order, ids)

    if can_fire(occurrences):
        return IndexPlan()
    by_share = sorted(atoms, key=lambda n: atoms[n].share)
    for node in by_share:
        if not can_fire([node]):
            return IndexPlan((atoms[node],), (node,))
    guards: tuple[m.Expr, ...] = ()
    for node in sorted(others, key=_cost):
        if not can_fire([node]):
            guards = (node,)
            break
    if not atoms or can_fire(atoms):
        return IndexPlan((), guards)
    chosen = list(atoms)
    for node in reversed(by_share):
        rest = [n for n in chosen if n is not node]
        if rest and not can_fire(rest):
            chosen = rest
    if guards and _cost(guards[0]) <= 2 * len(chosen):
        return IndexPlan(tuple(dict.fromkeys(atoms[n] for n in chosen)), guards)
    return IndexPlan(tuple(dict.fromkeys(atoms[n] for n in chosen)), tuple(chosen))


# ------------------------------------------------------------------------------ the index


class ProfileIndex:
    """Profiles (by position) filed under header and item values. Immutable once built."""

    def __init__(
        self, plans: Sequence[tuple[int, IndexPlan | None]], offices: Mapping[int, Iterable[str]]
    ) -> None:
        """``plans``: position → plan (``None``: always evaluate); ``offices``: for regional
        profiles, the offices with a fill, used when that files the profile more narrowly."""
        always: list[int] = []
        header_eq: dict[str, dict[Any, list[int]]] = {}
        item_eq: dict[str, dict[Any, list[int]]] = {}
        header_pre: dict[str, dict[int, dict[str, list[int]]]] = {}
        item_pre: dict[str, dict[int, dict[str, list[int]]]] = {}
        for pos, plan in plans:
            office_keys = tuple(offices[pos]) if pos in offices else None
            atoms = plan.atoms if plan is not None else ()
            if office_keys is not None and (
                not atoms or len(office_keys) * _DEFAULT_SHARE < IndexPlan(atoms).share
            ):
                atoms = (Atom("declaration.office", "eq", office_keys),)
            if not atoms:
                always.append(pos)
                continue
            for atom in atoms:
                scope, _, name = atom.path.partition(".")
                if atom.kind == "eq":
                    table = (header_eq if scope == "declaration" else item_eq).setdefault(name, {})
                    for key in atom.keys:
                        _add(table.setdefault(key, []), pos)
                else:
                    by_len = (header_pre if scope == "declaration" else item_pre).setdefault(
                        name, {}
                    )
                    for key in atom.keys:
                        _add(by_len.setdefault(len(key), {}).setdefault(key, []), pos)
        self.always = tuple(always)
        self._header_eq = tuple((k, v) for k, v in header_eq.items())
        self._item_eq = tuple((k, v) for k, v in item_eq.items())
        self._header_pre = tuple((k, tuple(sorted(v.items()))) for k, v in header_pre.items())
        self._item_pre = tuple((k, tuple(sorted(v.items()))) for k, v in item_pre.items())
        self.size = len(plans)

    def candidates(self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> set[int]:
        """Positions of the profiles that can fire on a declaration."""
        found: set[int] = set(self.always)
        for name, eq_table in self._header_eq:
            v = header.get(name)
            if v is not None:
                hit = eq_table.get(v)
                if hit:
                    found.update(hit)
        for name, pre_tables in self._header_pre:
            v = header.get(name)
            if isinstance(v, str):
                for length, pre_table in pre_tables:
                    if length > len(v):
                        break
                    hit = pre_table.get(v[:length])
                    if hit:
                        found.update(hit)
        for item in items:
            for name, eq_table in self._item_eq:
                v = item.get(name)
                if v is not None:
                    hit = eq_table.get(v)
                    if hit:
                        found.update(hit)
            for name, pre_tables in self._item_pre:
                v = item.get(name)
                if isinstance(v, str):
                    for length, pre_table in pre_tables:
                        if length > len(v):
                            break
                        hit = pre_table.get(v[:length])
                        if hit:
                            found.update(hit)
        return found


def _add(bucket: list[int], pos: int) -> None:
    if not bucket or bucket[-1] != pos:
        bucket.append(pos)
