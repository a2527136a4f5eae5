"""The typed annotation pass: the type of every expression of a profile, for every backend.

Run after the checks, with the field catalogue in force (the default one or a user catalogue
given with ``--catalogue``) and the named lists the profile sees::

    types = annotate(profile, catalogue, lists)
    types.of(expr)            # ValueType.NUMBER, .STRING (text and codes), .DATE, .BOOLEAN
    types.is_date(expr)       # a - b of two such operands is a number of days
    types.text_fields         # full paths of the text/code fields the profile reads
    types.date_fields         # full paths of the date fields the profile reads
    types.field_types         # full path → ValueType of every field it reads

Fields read: in the expressions (indicators, ``unless``, exceptions, degree, the controls'
conditions) and the history subject; regional parameters (``region.x``) included.

Like sqlglot's ``annotate_types``: the backends (the code generator, the SQL compiler) read the
types from here instead of re-deriving them. The inference itself is the checks' (one set of
rules, see :class:`riskengine.checks.types.ExprChecker`); this pass runs it quietly over every
expression of the profile and keeps the type of every node.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from riskengine import model as m

if TYPE_CHECKING:
    from riskengine.catalogue import Catalogue

__all__ = [
    "BOOLEAN",
    "DATE",
    "NUMBER",
    "STRING",
    "UNKNOWN",
    "Types",
    "ValueType",
    "annotate",
    "field_types",
    "profile_expressions",
]


class ValueType(enum.Enum):
    """The static type of an expression. Strings and codes are one kind (they compare)."""

    NUMBER = "number"
    STRING = "string"
    DATE = "date"
    BOOLEAN = "boolean"
    UNKNOWN = "unknown"  # after an error: compatible with everything, so errors do not cascade

    # Members are singletons: identity hashing is exact, and much faster than Enum's.
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value

    @property
    def described(self) -> str:
        """How a message names the type: "a number", "a text", "a date", "true/false"."""
        return _DESCRIBED[self]


_DESCRIBED = {
    ValueType.NUMBER: "a number",
    ValueType.STRING: "a text",
    ValueType.DATE: "a date",
    ValueType.BOOLEAN: "true/false",
    ValueType.UNKNOWN: "a value of unknown type",
}

NUMBER, STRING, DATE, BOOLEAN, UNKNOWN = (
    ValueType.NUMBER,
    ValueType.STRING,
    ValueType.DATE,
    ValueType.BOOLEAN,
    ValueType.UNKNOWN,
)


@functools.cache
def _default_type_names() -> Mapping[str, str]:
    from riskengine.catalogue import default_catalogue

    return MappingProxyType({f.path: f.type.value for f in default_catalogue()})


def field_types(catalogue: Catalogue | None = None) -> Mapping[str, str]:
    """Each field path's type name (``string``, ``code``, ``number``, ``date``, ``boolean``)
    in ``catalogue`` (the built-in catalogue when ``None``): the form in which a compiled
    profile, a planned backtest and :func:`annotate` carry the catalogue in force."""
    if catalogue is None:
        return _default_type_names()
    return MappingProxyType({f.path: f.type.value for f in catalogue})


def profile_expressions(
    profile: m.Profile, controls: Iterable[m.Control] | None = None
) -> Iterator[m.Expr]:
    """Every root expression of a profile: indicators (condition, unless), exceptions, the
    degree, the controls' conditions (``controls``: those in effect, e.g. a fill's)."""
    for ind in profile.indicators:
        yield ind.condition
        if ind.unless is not None:
            yield ind.unless
    for exc in profile.exceptions:
        yield exc.condition
    if profile.degree is not None:
        yield profile.degree
    for ctl in profile.controls if controls is None else controls:
        if ctl.condition is not None:
            yield ctl.condition


class Types:
    """The types of the expressions of one profile (see :func:`annotate`)."""

    def __init__(self, checker: Any, nodes: dict[int, tuple[Any, ValueType]]) -> None:
        self._checker = checker
        self._nodes = nodes  # id(node) → (node, type): the node kept alive, so its id stays valid
        self.text_fields: frozenset[str] = frozenset()
        self.date_fields: frozenset[str] = frozenset()
        self.field_types: Mapping[str, ValueType] = {}

    def of(self, expr: m.Expr) -> ValueType:
        """The type of an expression node (annotated on demand when it was not seen yet, e.g.
        the condition of a fill's control)."""
        hit = self._nodes.get(id(expr))
        if hit is not None and hit[0] is expr:
            return hit[1]
        self._checker.infer(expr)
        hit = self._nodes.get(id(expr))
        assert hit is not None
        return hit[1]

    def is_date(self, expr: m.Expr) -> bool:
        return self.of(expr) is DATE

    def is_text(self, expr: m.Expr) -> bool:
        return self.of(expr) is STRING

    def is_number(self, expr: m.Expr) -> bool:
        return self.of(expr) is NUMBER

    def is_boolean(self, expr: m.Expr) -> bool:
        return self.of(expr) is BOOLEAN


def annotate(
    profile: m.Profile,
    catalogue: Catalogue | Mapping[str, str] | None = None,
    lists: Mapping[str, m.ListLit | m.ListDef] | Iterable[m.ListDef] = (),
    controls: Iterable[m.Control] | None = None,
) -> Types:
    """Annotate every expression of ``profile`` with its type.

    ``catalogue``: the catalogue in force (``None``: the default), or a mapping of full field
    path → type name (``"number"``, ``"string"``, ``"code"``, ``"date"``, ``"boolean"``) as the
    evaluator keeps it. ``lists``: the file-level named lists (``ListDef`` or name → literal
    list). ``controls``: the controls in effect when a fill replaces the profile's.
    """
    from riskengine.checks.types import ExprChecker, Scope

    cat = _as_catalogue(catalogue)
    defs = _list_defs(lists)
    nodes: dict[int, tuple[Any, ValueType]] = {}
    checker = ExprChecker(Scope.of(profile, cat, defs), record=nodes)
    for expr in profile_expressions(profile, controls):
        checker.infer(expr)
    if profile.history is not None:  # the fields whose values make the history subject
        for subject in profile.history.subjects:
            checker.infer(subject.field)
    types = Types(checker, nodes)
    text: set[str] = set()
    dates: set[str] = set()
    fields: dict[str, ValueType] = {}
    for node, t in nodes.values():
        if isinstance(node, m.FieldRef):
            fields[node.path] = t
            if t is STRING:
                text.add(node.path)
            elif t is DATE:
                dates.add(node.path)
    types.text_fields = frozenset(text)
    types.date_fields = frozenset(dates)
    types.field_types = fields
    return types


def _list_defs(
    lists: Mapping[str, m.ListLit | m.ListDef] | Iterable[m.ListDef],
) -> list[m.ListDef]:
    if isinstance(lists, Mapping):
        return [v if isinstance(v, m.ListDef) else m.ListDef(name, v) for name, v in lists.items()]
    return list(lists)


def _as_catalogue(catalogue: Catalogue | Mapping[str, str] | None) -> Catalogue:
    from riskengine.catalogue import Catalogue, default_catalogue

    if catalogue is None:
        return default_catalogue()
    if isinstance(catalogue, Catalogue):
        return catalogue
    # every profile brings its own mapping (the catalogue's types and its regional
    # parameters): looked up by all its items first, built in C, then without the parameters
    items = frozenset(catalogue.items())
    found = _BY_ITEMS.get(items)
    if found is None:
        found = _catalogue_of(frozenset(x for x in items if x[0][:7] != "region."))
        if len(_BY_ITEMS) >= 256:
            _BY_ITEMS.clear()
        _BY_ITEMS[items] = found
    return found


#: ``frozenset(mapping.items())`` → its catalogue (see :func:`_as_catalogue`)
_BY_ITEMS: dict[frozenset[tuple[str, str]], Catalogue] = {}


@functools.lru_cache(maxsize=32)
def _catalogue_of(items: frozenset[tuple[str, str]]) -> Catalogue:
    """A catalogue from ``(path, type name)`` pairs (the evaluator's view of one)."""
    from riskengine.catalogue import Catalogue, Field, FieldType

    return Catalogue({path: Field(path, FieldType(kind)) for path, kind in sorted(items)})
