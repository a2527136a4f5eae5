"""The candidate join of the one-pass backtest: which profiles can fire on a row.

Each profile is filed under the keys of its evaluator index plan (a text field's values, or
prefixes of one); the query looks each row up once per kind of key and evaluates only the
profiles found. Also the small SQL helpers the layers share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import sqlalchemy as sa

from riskengine.backtest.planned import PlannedProfile, profile_depth
from riskengine.evaluator.index import Atom, IndexPlan
from riskengine.sql.compile import Col, ExprCompiler, SqlScope, SqlUnsupported

#: Deeper profiles (a sum of hundreds of terms) are not indexed: planning their index costs
#: more than evaluating them on every row.
_INDEX_DEPTH = 64


def _index_plan(pp: PlannedProfile) -> IndexPlan | None:
    """The evaluator's index plan of a central profile (``None`` for a regional one, whose
    fills change what can fire, or when no plan can be made)."""
    if pp.profile.is_regional or profile_depth(pp.profile) > _INDEX_DEPTH:
        return None
    from riskengine.evaluator.index import plan_index

    lists = dict(pp.lists)
    lists.update({ld.name: ld.values for ld in pp.profile.lists})
    try:
        return plan_index(pp.profile, pp.profile.controls, lists)
    except Exception:  # no plan: the full expression decides, on every row
        return None


def _cannot_fire(
    pp: PlannedProfile, index: IndexPlan | None, field: Callable[[str], Col], dialect: str
) -> Col | None:
    """A condition under which the profile cannot fire on the row: none of the guards of its
    index plan (predicates on fields at least one of which holds wherever the profile can fire)
    holds. ``None`` when the profile has no guard."""
    if index is None or not index.guards:
        return None
    scope = SqlScope(field=field, dialect=dialect, lists=pp.lists, types=pp.types)
    comp = ExprCompiler(pp.profile, scope)
    try:
        held = [comp.boolean(g) for g in index.guards]
    except SqlUnsupported:
        return None
    return sa.not_(held[0] if len(held) == 1 else sa.or_(*held))


_ONE: Col = sa.literal_column("1")
_ZERO: Col = sa.literal_column("0")


def _flag(pred: Col) -> Col:
    return sa.case((pred, _ONE), else_=_ZERO)


def _int(k: int) -> Col:
    """An integer of the query's own making (a profile or kind number), written into the SQL."""
    return sa.literal_column(str(int(k)), sa.Integer())


def _atoms(pp: PlannedProfile, index: IndexPlan | None) -> tuple[Atom, ...] | None:
    """What a profile is filed under: its index plan's atoms (at least one holds on every row
    where it can fire), the offices of its fills for a regional profile; ``None`` when it must
    be evaluated on every row (no atoms, or an atom on a value that is not text)."""
    if pp.profile.is_regional:
        offices = [f.office for f in pp.fills if f.valid is not None and f.office is not None]
        if not all(isinstance(o, str) for o in offices):
            return None
        return (Atom("declaration.office", "eq", tuple(dict.fromkeys(offices))),)
    atoms = index.atoms if index is not None else ()
    if not atoms or any(not isinstance(k, str) for a in atoms for k in a.keys):
        return None
    return atoms


@attrs.frozen
class _Guards:
    """The candidate join: each row is looked up once per *kind* (a field, or a prefix length
    of one) in a table of ``(kind, key, n)``: profile ``n`` can fire only on rows where one of
    its keys matches. Kind ``-1`` (key ``''``) lists the profiles evaluated on every row."""

    kinds: tuple[tuple[str, int | None], ...]  # (path, prefix length or None for equality)
    rows: tuple[tuple[int, str, int], ...]
    always: frozenset[int]
    plans: tuple[IndexPlan | None, ...]  # each profile's index plan


_ALWAYS = -1


def _guards(pushed: Sequence[PlannedProfile], available: Callable[[str], bool]) -> _Guards:
    kinds: dict[tuple[str, int | None], int] = {}
    rows: list[tuple[int, str, int]] = []
    always: set[int] = set()
    plans = tuple(_index_plan(pp) for pp in pushed)
    for n, pp in enumerate(pushed):
        atoms = _atoms(pp, plans[n])
        if atoms is None:
            always.add(n)
            rows.append((_ALWAYS, "", n))
            continue
        for atom in atoms:
            if not available(atom.path):  # always missing: the atom never holds
                continue
            for key in atom.keys:
                kind = (atom.path, len(key) if atom.kind == "prefix" else None)
                k = kinds.setdefault(kind, len(kinds))
                rows.append((k, key, n))
    return _Guards(tuple(kinds), tuple(dict.fromkeys(rows)), frozenset(always), plans)


def _by_n(n: Col, branches: Sequence[tuple[int, Col]], default: Col) -> Col:
    """``branches[k][1]`` where ``n`` is ``branches[k][0]`` (sorted), else ``default``: a
    binary tree of CASEs, a handful of comparisons per row however many profiles there are."""
    if not branches:
        return default
    if len(branches) <= 8:
        return sa.case({_int(k): e for k, e in branches}, value=n, else_=default)
    mid = len(branches) // 2
    return sa.case(
        (n < _int(branches[mid][0]), _by_n(n, branches[:mid], default)),
        else_=_by_n(n, branches[mid:], default),
    )
