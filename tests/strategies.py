"""Hypothesis strategies for random, syntactically valid profile models (every construct)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal

from hypothesis import strategies as st

from riskengine import model as m

# ------------------------------------------------------------------------------------ names


@functools.cache
def _reserved() -> tuple[re.Pattern[str], ...]:
    """Every terminal of the grammar but NAME: a name that one of them matches (a keyword such
    as `in`, a scope such as `item`, a note section, a code such as `A1`) is not a plain name."""
    from riskengine.syntax.parser import parser

    out = []
    for term in parser().terminals:
        if term.name in ("NAME", "WS", "COMMENT"):
            continue
        out.append(re.compile(term.pattern.to_regexp(), re.UNICODE))
    return tuple(out)


def is_plain_name(text: str) -> bool:
    """A NAME of the grammar that no other terminal (keyword, scope, code) also matches."""
    if not re.fullmatch(r"[^\W\d]\w*", text):
        return False
    return not any(p.fullmatch(text) for p in _reserved())


_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_абвгґдеєжзиіїйклмнопрстуфхцчшщьюяЖІЇ"
_REST = _FIRST + "0123456789"

names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_FIRST),
    st.text(alphabet=_REST, max_size=8),
).filter(is_plain_name)

field_paths = st.builds(
    lambda scope, parts: scope + "." + ".".join(parts),
    st.sampled_from(("item", "declaration", "region")),
    st.lists(names, min_size=1, max_size=3),
)

# ------------------------------------------------------------------------------------ literals

# Text with everything a string must escape or keep: quotes (also three in a row), backslashes,
# new lines, tabs, braces, leading spaces, Cyrillic.
_SPECIAL = st.sampled_from(['"', '"""', "\\", "\n", "\t", " ", "  ", "{", "}", "#", "\r", "'"])
texts = st.lists(
    st.one_of(
        _SPECIAL,
        st.text(alphabet="abc XYZ їжак Митна вартість", min_size=1, max_size=6),
        st.characters(codec="utf-8"),
    ),
    max_size=8,
).map("".join)

dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31))

# Exact decimals as a parser builds them, and also with exponents (1E+2 must print as 100).
unsigned_numbers = st.builds(
    lambda digits, shift: Decimal(digits).scaleb(shift),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=-4, max_value=2),
)
whole_numbers = st.integers(min_value=0, max_value=10_000)

_DIGITS = "0123456789"
codes = st.one_of(st.text(_DIGITS, min_size=1, max_size=6), st.sampled_from(["UA100000", "A1"]))

_signed = st.builds(lambda n: -n if n else Decimal("-1"), unsigned_numbers)
list_literals = st.one_of(
    st.builds(m.NumberLit, st.one_of(unsigned_numbers, _signed)),
    st.builds(m.StringLit, texts),
    st.builds(m.DateLit, dates),
    st.builds(m.BoolLit, st.booleans()),
)
list_lits = st.builds(m.ListLit, st.lists(list_literals, max_size=4).map(tuple))

# ------------------------------------------------------------------------------------ expressions

_leaves: st.SearchStrategy[m.Expr] = st.one_of(
    st.builds(m.NumberLit, st.one_of(unsigned_numbers, _signed)),
    st.builds(m.StringLit, texts),
    st.builds(m.DateLit, dates),
    st.builds(m.BoolLit, st.booleans()),
    st.builds(m.FieldRef, field_paths),
    st.builds(m.Ref, names),
    st.builds(m.HistoryRef, st.sampled_from(m.HistoryKind)),
)

list_values = st.one_of(list_lits, st.builds(m.Ref, names), st.builds(m.FieldRef, field_paths))
patterns = st.one_of(
    st.sampled_from([r"[A-Z]{2}\d+", r"\d{4}", "(a|b)*", r"\"x\"", "[\\\\/]"]),
    texts.map(re.escape),
)


def _extend(children: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.Expr]:
    # The parser folds `-` and a number into a negative literal, so Neg never holds a number.
    not_number = children.filter(lambda e: not isinstance(e, m.NumberLit))
    return st.one_of(
        st.builds(m.Neg, not_number),
        st.builds(m.Arith, st.sampled_from("+-*/"), children, children),
        st.builds(
            m.Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), children, children
        ),
        st.builds(m.And, children, children),
        st.builds(m.Or, children, children),
        st.builds(m.Not, children),
        st.builds(m.InList, children, list_values, st.booleans()),
        st.builds(m.StartsWith, children, list_values),
        st.builds(m.Between, children, children, children),
        st.builds(m.Matches, children, patterns),
        st.builds(m.IsMissing, children, st.booleans()),
        st.builds(
            m.Call,
            st.sampled_from(m.FUNCTIONS),
            st.lists(children, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(m.Cond, children, children, children),
    )


exprs: st.SearchStrategy[m.Expr] = st.recursive(_leaves, _extend, max_leaves=12)
# Smaller expressions for the statements of whole profiles (keeps generation fast).
small_exprs: st.SearchStrategy[m.Expr] = st.recursive(_leaves, _extend, max_leaves=4)
# Expressions too long for one line, so that the formatter must wrap them: many leaves with
# long names and paths.
_long_leaves: st.SearchStrategy[m.Expr] = st.one_of(
    st.builds(m.FieldRef, field_paths.map(lambda p: p + "_" + "x" * 12)),
    st.builds(m.Ref, names.map(lambda n: n + "_long_name")),
    _leaves,
)
_wide = st.recursive(_long_leaves, _extend, max_leaves=8)


@st.composite
def _chains(draw: st.DrawFn, op: str) -> m.Expr:
    """A left-nested chain of 3 to 7 random operands: ``a or b or c``, ``a and b``, a sum
    (``+``/``-``) or a product (``*``/``/``)."""
    operands = draw(st.lists(_wide, min_size=3, max_size=7))
    out = operands[0]
    for operand in operands[1:]:
        if op == "or":
            out = m.Or(out, operand)
        elif op == "and":
            out = m.And(out, operand)
        else:
            out = m.Arith(draw(st.sampled_from("+-" if op == "+" else "*/")), out, operand)
    return out


long_exprs: st.SearchStrategy[m.Expr] = st.one_of(
    _chains("or"),
    _chains("and"),
    _chains("+"),
    _chains("*"),
    st.builds(m.Not, _chains("or")),
    st.builds(m.Or, _chains("and"), _chains("and")),
    st.builds(m.Compare, st.sampled_from(["==", "<"]), _chains("+"), _chains("*")),
    st.builds(m.Cond, _wide, _chains("+"), _chains("and")),
    st.builds(
        m.Call, st.sampled_from(m.FUNCTIONS), st.lists(_wide, min_size=2, max_size=4).map(tuple)
    ),
    st.builds(
        m.InList,
        _wide,
        st.builds(m.ListLit, st.lists(list_literals, min_size=8, max_size=30).map(tuple)),
        st.booleans(),
    ),
    st.recursive(_long_leaves, _extend, max_leaves=24),
)


# ------------------------------------------------------------------------------------ passport


def _message(text: str) -> m.Message:
    """A message as the parser builds it (its placeholders split into parts)."""
    from riskengine.syntax import parse

    literal = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    message = parse(f'profile "m" {{ message {literal} }}').profiles[0].message
    assert message is not None
    return message


_placeholder = st.one_of(
    field_paths,
    names,
    st.sampled_from(["degree", "negative_history", "positive_history", " item.x "]),
).map(lambda name: "{" + name + "}")
messages = st.lists(
    st.one_of(texts.map(lambda t: t.replace("{", "{{").replace("}", "}}")), _placeholder),
    max_size=5,
).map(lambda parts: _message("".join(parts)))

profile_numbers = st.builds(
    m.ProfileNumber,
    st.text("0123456789ABZabzАЯІЇЄҐаяіїєґ", min_size=1, max_size=4),
    st.text(_DIGITS, min_size=1, max_size=3),
    st.text(_DIGITS, min_size=2, max_size=5),
    st.text(_DIGITS, min_size=1, max_size=6),
    st.text(_DIGITS, min_size=1, max_size=3),
)

optional_texts = st.none() | texts
fillings = st.one_of(
    st.builds(m.Filling, st.just(m.FillingMethod.CENTRAL), optional_texts),
    st.builds(
        m.Filling,
        st.just(m.FillingMethod.REGIONAL),
        texts,
        st.lists(texts, max_size=3).map(tuple),
    ),
)
modules = st.builds(m.Module, st.sampled_from(sorted(m.MODULES)), optional_texts)
validities = st.builds(m.Validity, dates, st.none() | dates)


@st.composite
def controls(draw: st.DrawFn) -> m.Control:
    kind = draw(st.sampled_from(m.ControlKind))
    if kind is m.ControlKind.MANDATORY:
        condition = None
    elif kind is m.ControlKind.CONDITIONAL:
        condition = draw(small_exprs)
    else:
        condition = draw(st.none() | small_exprs)
    return m.Control(draw(codes), draw(texts), kind, draw(unsigned_numbers), condition)


histories = st.builds(
    m.History,
    st.lists(
        st.builds(
            m.HistorySubject,
            st.builds(m.FieldRef, field_paths),
            st.none() | st.integers(min_value=0, max_value=10),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    whole_numbers,
    st.none()
    | st.builds(
        m.NegativeHistory,
        unsigned_numbers,
        st.lists(st.builds(m.ReasonCoefficient, codes, unsigned_numbers), max_size=4).map(tuple),
        unsigned_numbers,
    ),
    st.none() | st.builds(m.PositiveHistory, unsigned_numbers, unsigned_numbers),
)

notes = st.builds(
    m.Note,
    optional_texts,
    st.lists(texts, max_size=3).map(tuple),
    optional_texts,
    optional_texts,
    optional_texts,
)


def _some(strategy: st.SearchStrategy[object], size: int = 3) -> st.SearchStrategy[tuple]:
    return st.lists(strategy, max_size=size).map(tuple)


profiles = st.builds(
    m.Profile,
    st.none() | profile_numbers,
    texts,
    approved=st.none() | dates,
    edition_approved=st.none() | dates,
    in_force=st.none() | validities,
    edition_in_force=st.none() | dates,
    filling=st.none() | fillings,
    module=st.none() | modules,
    spheres=_some(st.text(_DIGITS, min_size=3, max_size=3)),
    review=st.none() | dates,
    contact=st.none() | st.builds(m.Contact, texts, optional_texts, optional_texts, optional_texts),
    updates=st.none() | st.builds(m.Updates, texts, optional_texts),
    lists=_some(st.builds(m.ListDef, names, list_lits), 2),
    params=_some(
        st.builds(m.Param, names, st.sampled_from(m.PARAM_TYPES), st.booleans(), optional_texts)
    ),
    indicators=_some(
        st.builds(m.Indicator, names, optional_texts, small_exprs, st.none() | small_exprs)
    ),
    exceptions=_some(st.builds(m.ProfileException, names, optional_texts, small_exprs), 2),
    degree=st.none() | small_exprs,
    message=st.none() | messages,
    controls=_some(controls()),
    history=st.none() | histories,
    note=st.none() | notes,
)


@st.composite
def fills(draw: st.DrawFn) -> m.Fill:
    office = draw(st.none() | codes)
    return m.Fill(
        draw(profile_numbers),
        office=office,
        # An office name is written after the office code, so it needs one.
        office_name=None if office is None else draw(optional_texts),
        order=draw(st.none() | st.builds(m.Order, texts, dates)),
        valid=draw(st.none() | st.builds(m.Validity, dates, dates)),
        values=draw(_some(st.builds(m.ParamValue, names, st.one_of(list_literals, list_lits)))),
        message=draw(st.none() | messages),
        controls=draw(_some(controls(), 2)),
    )


file_lists = st.builds(m.ListDef, names, list_lits)


@st.composite
def source_files(draw: st.DrawFn) -> m.SourceFile:
    """A file of profiles, fills and named lists in any order, as the parser would build it."""
    items = draw(st.lists(st.one_of(profiles, fills(), file_lists), max_size=3).map(tuple))
    return m.SourceFile(
        path="<string>",
        profiles=tuple(x for x in items if isinstance(x, m.Profile)),
        fills=tuple(x for x in items if isinstance(x, m.Fill)),
        lists=tuple(x for x in items if isinstance(x, m.ListDef)),
        items=items,
    )


# ------------------------------------------------------------------------------------ long lines

# Statements too long for one line, so that the formatter must wrap every kind of them.
long_texts = st.text(alphabet="abcdefXYZ їжак Митна вартість", min_size=20, max_size=60)
_long_words = st.one_of(
    st.text(alphabet="abc XYZ їжак", min_size=1, max_size=14),
    _SPECIAL.map(lambda t: t.replace("{", "{{").replace("}", "}}")),
    st.just("{{x y}}"),
    _placeholder,
)
long_messages = st.lists(_long_words, min_size=8, max_size=40).map(
    lambda parts: _message(" ".join(parts))
)
long_list_lits = st.builds(m.ListLit, st.lists(list_literals, min_size=6, max_size=30).map(tuple))


@st.composite
def long_controls(draw: st.DrawFn) -> m.Control:
    kind = draw(st.sampled_from([m.ControlKind.CONDITIONAL, m.ControlKind.IF_NECESSARY]))
    condition = draw(long_exprs | small_exprs)
    name = draw(texts | long_texts)
    return m.Control(draw(codes), name, kind, draw(unsigned_numbers), condition)


long_profiles = st.builds(
    m.Profile,
    st.none() | profile_numbers,
    texts | long_texts,
    filling=st.builds(
        m.Filling,
        st.just(m.FillingMethod.REGIONAL),
        long_texts,
        st.lists(long_texts, min_size=1, max_size=6).map(tuple),
    ),
    spheres=st.lists(st.text(_DIGITS, min_size=3, max_size=3), min_size=5, max_size=40).map(tuple),
    contact=st.builds(m.Contact, long_texts, optional_texts, long_texts, st.none() | long_texts),
    updates=st.builds(m.Updates, texts, long_texts),
    lists=_some(st.builds(m.ListDef, names, long_list_lits), 2),
    indicators=st.lists(
        st.builds(m.Indicator, names, st.none() | long_texts, long_exprs, st.none() | long_exprs),
        min_size=1,
        max_size=3,
    ).map(tuple),
    exceptions=_some(st.builds(m.ProfileException, names, optional_texts, long_exprs), 2),
    degree=long_exprs,
    message=long_messages,
    controls=st.lists(st.one_of(controls(), long_controls()), min_size=1, max_size=4).map(tuple),
)


@st.composite
def long_fills(draw: st.DrawFn) -> m.Fill:
    return m.Fill(
        draw(profile_numbers),
        office=draw(codes),
        office_name=draw(optional_texts),
        values=draw(_some(st.builds(m.ParamValue, names, long_list_lits))),
        message=draw(long_messages),
        controls=draw(st.lists(long_controls(), min_size=1, max_size=3).map(tuple)),
    )
