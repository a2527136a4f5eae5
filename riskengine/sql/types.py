"""The types the SQL compiler reads: those of the field catalogue in force.

One function, :func:`field_types`, gives every field's type name (``string``, ``code``,
``number``, ``date``, ``boolean``) from the catalogue a backtest runs with (``--catalogue``)
or the built-in one; :func:`expr_type` types an expression the way the evaluator does. The
typed annotation pass of :mod:`riskengine.semantics` can replace both.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from riskengine import model as m
from riskengine.semantics.types import is_date as is_date

if TYPE_CHECKING:
    from riskengine.catalogue import Catalogue

#: Types whose values compare as text (by code point).
TEXT_TYPES = frozenset({"string", "code"})


@functools.cache
def _default_types() -> Mapping[str, str]:
    from riskengine.catalogue import default_catalogue

    return MappingProxyType({f.path: f.type.value for f in default_catalogue()})


def field_types(catalogue: Catalogue | None = None) -> Mapping[str, str]:
    """Each field path's type name in ``catalogue`` (the built-in catalogue when ``None``)."""
    if catalogue is None:
        return _default_types()
    return MappingProxyType({f.path: f.type.value for f in catalogue})


def expr_type(expr: m.Expr, types: Mapping[str, str]) -> str | None:
    """The type of an expression's value, as the evaluator reads it (``None``: unknown)."""
    match expr:
        case m.NumberLit() | m.Neg() | m.HistoryRef():
            return "number"
        case m.Arith():
            return "number"
        case m.Call(func=func, args=args):
            if func in ("min", "max") and args:
                return expr_type(args[0], types)
            return "number"
        case m.StringLit():
            return "string"
        case m.DateLit():
            return "date"
        case m.FieldRef(path=path):
            return types.get(path)
        case m.Cond(then=a):
            return expr_type(a, types)
        case _:
            return "boolean"
