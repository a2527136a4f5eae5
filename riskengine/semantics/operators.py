"""The one table of the language's operators and functions.

Every backend reads an operator's rules from its :class:`Operator` entry here: how many operands
it takes, their types and the result's, what a missing operand does, and how it computes in
Python (``python``: the callable the reference paths use, on runtime values with ``None`` for
missing; ``emit``: the expression the code generator writes). The SQL construction of each
entry is named by ``sql``: a key of :data:`riskengine.semantics.sql.SQL_OPERATORS`.

Adding a function to the language is one entry in :data:`OPERATORS` plus its tests: the checks
take the arity from it, the annotation pass (:mod:`riskengine.semantics.types`) the result type,
the code generator the Python code, the SQL compiler the SQL construction.

The names, stable (backends and tests key on them):

=================  ==================================  ===================================
name               written                             missing operand →
=================  ==================================  ===================================
``add``            ``a + b``                           missing
``sub``            ``a - b`` (numbers)                 missing
``mul``            ``a * b``                           missing
``div``            ``a / b``                           missing (and when ``b`` is 0)
``neg``            ``-a``                              missing
``date_diff``      ``a - b`` (two dates: days)         missing
``eq`` ``ne``      ``==`` ``!=``                       false
``lt`` ``le``      ``<`` ``<=``                        false
``gt`` ``ge``      ``>`` ``>=``                        false
``in``             ``a in (…)``                        false
``not_in``         ``a not in (…)``                    false
``starts_with``    ``a starts with (…)``               false
``between``        ``a between lo and hi``             false
``matches``        ``a matches "regex"``               false
``is_missing``     ``a is missing``                    true (it tests presence)
``is_not_missing`` ``a is not missing``                false (it tests presence)
``min`` ``max``    ``min(a, b, …)`` ``max(a, b, …)``   missing
``abs``            ``abs(a)``                          missing
``round``          ``round(a)`` ``round(a, digits)``   missing
``if``             ``if c then a else b``              ``c`` missing → ``b``
``and`` ``or``     ``c and d`` ``c or d``              (conditions are never missing)
``not``            ``not c``                           (conditions are never missing)
``as_number``      a condition used as a number        (1 when true, 0 when false)
=================  ==================================  ===================================

The numeric rule (:mod:`riskengine.semantics.numbers`): an arithmetic result that is not a
finite number (overflow) is missing; entries with ``finite=True`` apply it.
"""

from __future__ import annotations

import enum
import operator as _op
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from riskengine import model as m
from riskengine.semantics.numbers import days_between, finite, round_half_away
from riskengine.semantics.types import BOOLEAN, DATE, NUMBER, STRING, ValueType

__all__ = [
    "ARITHMETIC",
    "COMPARISONS",
    "FUNCTIONS",
    "OPERATORS",
    "Missing",
    "Operator",
    "by_name",
    "function",
    "helpers",
    "operator_of",
]


class Missing(enum.Enum):
    """What an operator gives when an operand is missing."""

    PROPAGATE = "missing"  # the result is missing
    FALSE = "false"  # the predicate is false
    PRESENCE = "presence"  # it tests presence: `is missing` / `is not missing`
    NEVER = "never"  # its operands are conditions, which are never missing
    BRANCH = "branch"  # `if`: a missing test takes the `else` branch


_NUMERIC = (NUMBER, BOOLEAN)  # a condition counts 1 / 0 in arithmetic
_ANY = (NUMBER, STRING, DATE, BOOLEAN)


@attrs.frozen
class Operator:
    """One operator or function of the language."""

    #: Stable name (see the module docstring).
    name: str
    #: How it is written: ``+``, ``starts with``, ``round``.
    spelling: str
    #: Smallest and largest number of operands (``None``: no upper bound).
    arity: tuple[int, int | None]
    #: The accepted types of each operand (the last one repeats for n-ary functions).
    operands: tuple[tuple[ValueType, ...], ...]
    #: The result type; ``None``: the type of the value operands (``if``).
    result: ValueType | None
    missing: Missing
    #: The reference implementation on runtime values (``None`` = missing).
    python: Callable[..., Any]
    #: The Python expression the code generator writes once the operands are known not to be
    #: missing: ``{0}``, ``{1}`` are the operands, ``{args}`` all of them comma-separated.
    #: ``None``: the generator builds it itself (lists, patterns, conditions).
    emit: str | None = None
    #: The name the code generator binds ``python`` to in generated modules, when ``emit``
    #: calls it (``_round``).
    helper: str | None = None
    #: The result goes through the non-finite rule (overflow → missing).
    finite: bool = False
    #: The result is missing when the last operand is 0 (division).
    zero_divisor: bool = False
    #: How the checks describe the arity in a message ("two or more arguments").
    arity_text: str = ""
    #: The SQL construction: a key of :data:`riskengine.semantics.sql.SQL_OPERATORS`, or one the
    #: SQL compiler writes itself (see :data:`SQL_CONSTRUCTIONS`).
    sql: str | None = None
    doc: str = ""

    def operand_types(self, k: int) -> tuple[ValueType, ...]:
        """The accepted types of operand ``k`` (0-based)."""
        return self.operands[min(k, len(self.operands) - 1)]

    def emit_src(self, *operands: str) -> str:
        """The Python expression of this operator applied to operand sources."""
        assert self.emit is not None, self.name
        return self.emit.format(*operands, args=", ".join(operands))

    def accepts(self, n: int) -> bool:
        """Whether ``n`` operands is a valid arity."""
        low, high = self.arity
        return n >= low and (high is None or n <= high)


# ------------------------------------------------------------------------------ reference callables


def _propagating(fn: Callable[..., Any], check_finite: bool) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        result = fn(*args)
        return finite(result) if check_finite else result

    call.__name__ = getattr(fn, "__name__", "call")
    return call


def _false_if_missing(fn: Callable[..., bool]) -> Callable[..., bool]:
    def call(*args: Any) -> bool:
        if any(a is None for a in args):
            return False
        return bool(fn(*args))

    call.__name__ = getattr(fn, "__name__", "call")
    return call


def _divide(a: Any, b: Any) -> Any:
    if a is None or b is None or b == 0:
        return None
    return finite(a / b)


def _in(value: Any, values: Any) -> bool:
    return value in values


def _not_in(value: Any, values: Any) -> bool:
    return value not in values


def _starts_with(value: Any, prefixes: Any) -> bool:
    return bool(value.startswith(tuple(prefixes)))


def _between(value: Any, low: Any, high: Any) -> bool:
    return bool(low <= value <= high)


def _matches(value: Any, pattern: str) -> bool:
    from riskengine.semantics.regex import compile_pattern

    return compile_pattern(pattern).match(value)


def _choose(test: Any, then: Any, otherwise: Any) -> Any:
    return then if test is True else otherwise


def _and(a: Any, b: Any) -> bool:
    return a is True and b is True


def _or(a: Any, b: Any) -> bool:
    return a is True or b is True


def _not(a: Any) -> bool:
    return a is not True


def _as_number(a: Any) -> float:
    return 1.0 if a is True else 0.0


def _min(*args: Any) -> Any:
    return min(args)


def _max(*args: Any) -> Any:
    return max(args)


def _arith(name: str, spelling: str, fn: Callable[[Any, Any], Any], doc: str) -> Operator:
    return Operator(
        name, spelling, (2, 2), (_NUMERIC, _NUMERIC), NUMBER, Missing.PROPAGATE,
        _propagating(fn, True), emit=f"{{0}} {spelling} {{1}}", finite=True, doc=doc,
    )  # fmt: skip


def _compare(name: str, spelling: str, fn: Callable[[Any, Any], bool]) -> Operator:
    return Operator(
        name, spelling, (2, 2), (_ANY, _ANY), BOOLEAN, Missing.FALSE, _false_if_missing(fn),
        emit=f"{{0}} {spelling} {{1}}", doc=f"`{spelling}`: false when either side is missing",
    )  # fmt: skip


OPERATORS: tuple[Operator, ...] = (
    _arith("add", "+", _op.add, "sum; an overflow is missing"),
    _arith("sub", "-", _op.sub, "difference of numbers; an overflow is missing"),
    _arith("mul", "*", _op.mul, "product; an overflow is missing"),
    Operator(
        "div",
        "/",
        (2, 2),
        (_NUMERIC, _NUMERIC),
        NUMBER,
        Missing.PROPAGATE,
        _divide,
        emit="{0} / {1}",
        finite=True,
        zero_divisor=True,
        doc="quotient; missing when the divisor is 0 or the result overflows",
    ),
    Operator(
        "neg",
        "-",
        (1, 1),
        (_NUMERIC,),
        NUMBER,
        Missing.PROPAGATE,
        _propagating(_op.neg, False),
        emit="-{0}",
        doc="unary minus",
    ),
    Operator(
        "date_diff",
        "-",
        (2, 2),
        ((DATE,), (DATE,)),
        NUMBER,
        Missing.PROPAGATE,
        days_between,
        emit="_sub({0}, {1})",
        helper="_sub",
        doc="the whole number of days from the right date to the left one",
    ),
    _compare("eq", "==", _op.eq),
    _compare("ne", "!=", _op.ne),
    _compare("lt", "<", _op.lt),
    _compare("le", "<=", _op.le),
    _compare("gt", ">", _op.gt),
    _compare("ge", ">=", _op.ge),
    Operator(
        "in",
        "in",
        (2, 2),
        (_ANY, _ANY),
        BOOLEAN,
        Missing.FALSE,
        _false_if_missing(_in),
        emit="{0} in {1}",
        doc="membership in a list; false when the value is missing",
    ),
    Operator(
        "not_in",
        "not in",
        (2, 2),
        (_ANY, _ANY),
        BOOLEAN,
        Missing.FALSE,
        _false_if_missing(_not_in),
        emit="{0} not in {1}",
        doc="not a member of the list; false when the value is missing",
    ),
    Operator(
        "starts_with",
        "starts with",
        (2, 2),
        ((STRING,), (STRING,)),
        BOOLEAN,
        Missing.FALSE,
        _false_if_missing(_starts_with),
        emit="{0}.startswith({1})",
        doc="a case-sensitive prefix test against a list of prefixes",
    ),
    Operator(
        "between",
        "between",
        (3, 3),
        (_ANY, _ANY, _ANY),
        BOOLEAN,
        Missing.FALSE,
        _false_if_missing(_between),
        emit="{1} <= {0} <= {2}",
        doc="both ends inclusive",
    ),
    Operator(
        "matches",
        "matches",
        (2, 2),
        ((STRING,), (STRING,)),
        BOOLEAN,
        Missing.FALSE,
        _false_if_missing(_matches),
        doc="the whole text matches the regular expression",
    ),
    Operator(
        "is_missing",
        "is missing",
        (1, 1),
        (_ANY,),
        BOOLEAN,
        Missing.PRESENCE,
        lambda a: a is None,
        emit="{0} is None",
        doc="tests presence",
    ),
    Operator(
        "is_not_missing",
        "is not missing",
        (1, 1),
        (_ANY,),
        BOOLEAN,
        Missing.PRESENCE,
        lambda a: a is not None,
        emit="{0} is not None",
        doc="tests presence",
    ),
    Operator(
        "min",
        "min",
        (2, None),
        (_NUMERIC,),
        NUMBER,
        Missing.PROPAGATE,
        _propagating(_min, False),
        emit="min({args})",
        arity_text="two or more arguments",
        doc="the smallest argument",
    ),
    Operator(
        "max",
        "max",
        (2, None),
        (_NUMERIC,),
        NUMBER,
        Missing.PROPAGATE,
        _propagating(_max, False),
        emit="max({args})",
        arity_text="two or more arguments",
        doc="the largest argument",
    ),
    Operator(
        "abs",
        "abs",
        (1, 1),
        (_NUMERIC,),
        NUMBER,
        Missing.PROPAGATE,
        _propagating(abs, False),
        emit="abs({0})",
        arity_text="one argument",
        doc="the absolute value",
    ),
    Operator(
        "round",
        "round",
        (1, 2),
        (_NUMERIC, _NUMERIC),
        NUMBER,
        Missing.PROPAGATE,
        round_half_away,
        emit="_round({args})",
        helper="_round",
        arity_text="one or two arguments (value, digits)",
        doc="half away from zero (2.5 → 3, -2.5 → -3) to `digits` decimal places (default 0)",
    ),
    Operator(
        "if",
        "if",
        (3, 3),
        ((BOOLEAN,), _ANY, _ANY),
        None,
        Missing.BRANCH,
        _choose,
        emit="{1} if {0} else {2}",
        doc="a missing or false test takes the else branch",
    ),
    Operator(
        "and",
        "and",
        (2, 2),
        ((BOOLEAN,), (BOOLEAN,)),
        BOOLEAN,
        Missing.NEVER,
        _and,
        emit="{0} and {1}",
        doc="both conditions hold",
    ),
    Operator(
        "or",
        "or",
        (2, 2),
        ((BOOLEAN,), (BOOLEAN,)),
        BOOLEAN,
        Missing.NEVER,
        _or,
        emit="{0} or {1}",
        doc="at least one condition holds",
    ),
    Operator(
        "not",
        "not",
        (1, 1),
        ((BOOLEAN,),),
        BOOLEAN,
        Missing.NEVER,
        _not,
        emit="not {0}",
        doc="negation (a predicate with a missing operand is already false, so `not` is true)",
    ),
    Operator(
        "as_number",
        "",
        (1, 1),
        ((BOOLEAN,),),
        NUMBER,
        Missing.NEVER,
        _as_number,
        emit="{0}",
        doc="a condition used as a number counts 1 when true, 0 when false",
    ),
)

#: The SQL construction of each entry: a key of :data:`riskengine.semantics.sql.SQL_OPERATORS`
#: (a ``FunctionElement`` compiled per dialect, or a plain SQLAlchemy construction), or, for the
#: connectives, ``if`` and ``matches``, the construction the SQL compiler writes itself:
#: ``and_`` / ``or_`` / ``not_`` / ``case`` (SQLAlchemy's) and ``regex``
#: (:func:`riskengine.semantics.regex_sql.sql_matches`). A test checks every entry has one.
SQL_CONSTRUCTIONS: Mapping[str, str] = {
    "add": "+", "sub": "-", "mul": "*", "div": "/", "neg": "neg", "date_diff": "days_between",
    "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
    "in": "in", "not_in": "not in", "starts_with": "starts_with", "between": "between",
    "matches": "regex", "is_missing": "is_missing", "is_not_missing": "is_not_missing",
    "min": "min", "max": "max", "abs": "abs", "round": "round",
    "if": "case", "and": "and_", "or": "or_", "not": "not_", "as_number": "case",
}  # fmt: skip
OPERATORS = tuple(attrs.evolve(op, sql=SQL_CONSTRUCTIONS[op.name]) for op in OPERATORS)

_BY_NAME: Mapping[str, Operator] = {op.name: op for op in OPERATORS}
#: ``+ - * /`` by spelling (``-`` of numbers; two dates take ``date_diff``).
ARITHMETIC: Mapping[str, Operator] = {
    op.spelling: op for op in OPERATORS if op.name in ("add", "sub", "mul", "div")
}
#: ``== != < <= > >=`` by spelling.
COMPARISONS: Mapping[str, Operator] = {
    op.spelling: op for op in OPERATORS if op.name in ("eq", "ne", "lt", "le", "gt", "ge")
}
#: The functions ``min max abs round`` by name.
FUNCTIONS: Mapping[str, Operator] = {
    op.name: op for op in OPERATORS if op.name in ("min", "max", "abs", "round")
}


def by_name(name: str) -> Operator:
    """The entry of a stable name (``KeyError`` for an unknown one)."""
    return _BY_NAME[name]


def function(name: str) -> Operator | None:
    """The entry of a function called by ``name`` in a profile, or ``None``."""
    return FUNCTIONS.get(name)


def helpers() -> dict[str, Callable[..., Any]]:
    """The names generated modules bind the entries' helpers to (``_round``, ``_sub``)."""
    return {op.helper: op.python for op in OPERATORS if op.helper is not None}


def operator_of(expr: m.Expr, is_date: Callable[[m.Expr], bool]) -> Operator | None:
    """The entry an expression node applies (``None`` for literals, fields, names and
    history). ``is_date`` says whether an operand is a date (from the annotation pass): ``a - b``
    of two dates is ``date_diff``."""
    match expr:
        case m.Arith(op="-", right=b) if is_date(b):
            return _BY_NAME["date_diff"]
        case m.Arith(op=op):
            return ARITHMETIC[op]
        case m.Neg():
            return _BY_NAME["neg"]
        case m.Compare(op=op):
            return COMPARISONS[op]
        case m.InList(negated=negated):
            return _BY_NAME["not_in" if negated else "in"]
        case m.StartsWith():
            return _BY_NAME["starts_with"]
        case m.Between():
            return _BY_NAME["between"]
        case m.Matches():
            return _BY_NAME["matches"]
        case m.IsMissing(negated=negated):
            return _BY_NAME["is_not_missing" if negated else "is_missing"]
        case m.Call(func=func):
            return FUNCTIONS.get(func)
        case m.Cond():
            return _BY_NAME["if"]
        case m.And():
            return _BY_NAME["and"]
        case m.Or():
            return _BY_NAME["or"]
        case m.Not():
            return _BY_NAME["not"]
    return None
