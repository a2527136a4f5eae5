"""Hypothesis strategies: random type-correct profiles (as models) and random declarations.

Literals and declaration values come from small shared pools, so equalities, boundaries (a value
equal to a literal, 0.0001 above or below), empty strings, Unicode and missing values are hit
often. Profiles use every expression form, ``unless``, exceptions, ``if``, min/max/abs/round,
history, controls with conditions, named lists, regional parameters with fills, and several
editions of one number.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.declaration import Declaration
from riskengine.evaluator import Clearance, ControlResult

NUMBER_FIELDS = (
    "item.net_mass",
    "item.customs_value",
    "item.packages",
    "declaration.invoice_total",
)
CODE_FIELDS = (
    "item.hs_code", "item.origin", "item.preference", "declaration.regime", "declaration.office",
    "declaration.declarant.id",
)  # fmt: skip
STRING_FIELDS = ("item.description",)
DATE_FIELDS = ("declaration.date", "declaration.transit_deadline")
BOOL_FIELDS = ("declaration.declarant.aeo", "item.ip_registered")

NUMBERS = (Decimal("0"), Decimal("1"), Decimal("2.5"), Decimal("12.50"), Decimal("100"),
           Decimal("3"), Decimal("0.1"), Decimal("-3"))  # fmt: skip
CODES = ("CN", "VN", "6403", "640399", "", "É", "é", "ü", "64", "UA100000", "40", "GSP")
DATES = (dt.date(2020, 1, 1), dt.date(2020, 6, 15), dt.date(2021, 1, 1))
PATTERNS = ("6[0-9]+", "(?i)boots?", ".*é.*", "")
OFFICES = ("UA100000", "UA200000")
AS_OF = (dt.date(2020, 1, 1), dt.date(2020, 6, 15), dt.date(2020, 12, 31), dt.date(2021, 1, 1))
REASONS = ("0201", "0302", "1301")
CONTROL_NAMES = {
    "102": "Documentary check",
    "201": "Physical inspection",
    "301": "Laboratory sample",
    "104": "Request for documents",
    "999": "Other",
}
THRESHOLDS = (Decimal("0"), Decimal("10"), Decimal("30"), Decimal("40"), Decimal("50"),
              Decimal("50.5"), Decimal("70"), Decimal("100"))  # fmt: skip


@attrs.frozen
class Ctx:
    """What an expression may refer to while it is being drawn."""

    indicators: tuple[str, ...]
    lists: tuple[str, ...]
    history: bool
    regional: bool


def _lit_number() -> st.SearchStrategy[m.Expr]:
    return st.sampled_from(NUMBERS).map(m.NumberLit)


def _lit_code() -> st.SearchStrategy[m.Expr]:
    return st.sampled_from(CODES).map(m.StringLit)


@functools.cache
def num_expr(ctx: Ctx, depth: int = 2) -> st.SearchStrategy[m.Expr]:
    leaves: list[st.SearchStrategy[m.Expr]] = [
        _lit_number(),
        st.sampled_from(NUMBER_FIELDS).map(m.FieldRef),
    ]
    if ctx.history:
        leaves.append(st.sampled_from(list(m.HistoryKind)).map(m.HistoryRef))
    if ctx.regional:
        leaves.append(st.just(m.FieldRef("region.limit")))
    if ctx.indicators:
        leaves.append(st.sampled_from(ctx.indicators).map(m.Ref))
    leaf = st.one_of(*leaves)
    if depth <= 0:
        return leaf
    sub = num_expr(ctx, depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.builds(m.Arith, st.sampled_from("+-*/"), sub, sub),
        st.builds(m.Neg, sub),
        st.builds(m.Call, st.sampled_from(("min", "max")), st.lists(sub, min_size=1, max_size=3)
                  .map(tuple)),
        st.builds(m.Call, st.just("abs"), st.tuples(sub)),
        st.builds(m.Call, st.just("round"), st.one_of(
            st.tuples(sub), st.tuples(sub, st.sampled_from((0, 1, 2)).map(
                lambda n: m.NumberLit(Decimal(n)))))),
        st.builds(m.Cond, bool_expr(ctx, depth - 1), sub, sub),
        st.builds(
            m.Arith, st.just("-"), st.sampled_from(DATE_FIELDS).map(m.FieldRef),
            st.sampled_from(DATES).map(m.DateLit),
        ),
    )  # fmt: skip


def _code_operand() -> st.SearchStrategy[m.Expr]:
    return st.sampled_from(CODE_FIELDS + STRING_FIELDS).map(m.FieldRef)


def _list_value(ctx: Ctx, literal: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.ListValue]:
    options: list[st.SearchStrategy[m.ListValue]] = [
        st.lists(literal, max_size=4).map(lambda xs: m.ListLit(tuple(xs)))  # type: ignore[arg-type]
    ]
    if ctx.lists and literal is not None:
        options.append(st.sampled_from(ctx.lists).map(m.Ref))
    if ctx.regional:
        options.append(st.just(m.FieldRef("region.codes")))
    return st.one_of(*options)


@functools.cache
def bool_expr(ctx: Ctx, depth: int = 2) -> st.SearchStrategy[m.Expr]:
    num = num_expr(ctx, min(depth, 1))
    ops = st.sampled_from(("==", "!=", "<", "<=", ">", ">="))
    leaves: list[st.SearchStrategy[m.Expr]] = [
        st.builds(m.BoolLit, st.booleans()),
        st.builds(m.Compare, ops, num, num),
        st.builds(m.Compare, st.sampled_from(("==", "!=", "<")), _code_operand(), _lit_code()),
        st.builds(m.Compare, st.sampled_from(("==", "<", ">=")),
                  st.sampled_from(DATE_FIELDS).map(m.FieldRef),
                  st.sampled_from(DATES).map(m.DateLit)),
        st.builds(m.InList, _code_operand(), _list_value(ctx, _lit_code()), st.booleans()),
        st.builds(m.InList, st.sampled_from(NUMBER_FIELDS).map(m.FieldRef),
                  st.lists(_lit_number(), max_size=3).map(lambda xs: m.ListLit(tuple(xs))),
                  st.booleans()),
        st.builds(m.StartsWith, _code_operand(), _list_value(ctx, _lit_code())),
        st.builds(m.Between, num, num, num),
        st.builds(m.Matches, st.sampled_from((*STRING_FIELDS, "item.hs_code")).map(m.FieldRef),
                  st.sampled_from(PATTERNS)),
        st.builds(m.IsMissing,
                  st.sampled_from(NUMBER_FIELDS + CODE_FIELDS + BOOL_FIELDS).map(m.FieldRef),
                  st.booleans()),
        st.sampled_from(BOOL_FIELDS).map(m.FieldRef),
        st.builds(m.Compare, st.sampled_from(("==", "!=")),
                  st.sampled_from(BOOL_FIELDS).map(m.FieldRef),
                  st.builds(m.BoolLit, st.booleans())),
    ]  # fmt: skip
    if ctx.indicators:
        leaves.append(st.sampled_from(ctx.indicators).map(m.Ref))
    leaf = st.one_of(*leaves)
    if depth <= 0:
        return leaf
    sub = bool_expr(ctx, depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.builds(m.And, sub, sub),
        st.builds(m.Or, sub, sub),
        st.builds(m.Not, sub),
    )


@functools.cache
def degree_expr(ctx: Ctx) -> st.SearchStrategy[m.Expr]:
    weights = st.sampled_from((Decimal(10), Decimal(30), Decimal(40), Decimal("12.5"), Decimal(50)))

    @st.composite
    def weighted_sum(draw: st.DrawFn) -> m.Expr:
        terms: list[m.Expr] = []
        for name in ctx.indicators:
            if draw(st.booleans()):
                terms.append(m.Arith("*", m.NumberLit(draw(weights)), m.Ref(name)))
        if draw(st.booleans()):
            terms.append(draw(num_expr(ctx, 1)))
        if not terms:
            terms.append(draw(_lit_number()))
        out = terms[0]
        for t in terms[1:]:
            out = m.Arith("+", out, t)
        if ctx.history:
            out = m.Arith(
                "-",
                m.Arith("+", out, m.HistoryRef(m.HistoryKind.NEGATIVE)),
                m.HistoryRef(m.HistoryKind.POSITIVE),
            )
        return out

    return st.one_of(weighted_sum(), num_expr(ctx, 2))


@st.composite
def profiles(
    draw: st.DrawFn, number: m.ProfileNumber | None = None, file_lists: tuple[str, ...] = ()
) -> m.Profile:
    """One random profile (regional when it draws so; then it declares ``limit`` and ``codes``)."""
    regional = draw(st.booleans()) and number is not None and draw(st.booleans())
    has_history = draw(st.booleans())
    own_lists = tuple(
        m.ListDef(f"pl{k}", m.ListLit(tuple(m.StringLit(c) for c in draw(
            st.lists(st.sampled_from(CODES), max_size=3)))))
        for k in range(draw(st.integers(0, 1)))
    )  # fmt: skip
    lists = file_lists + tuple(ld.name for ld in own_lists)
    names: list[str] = []
    indicators = []
    for k in range(draw(st.integers(0, 4))):
        ctx = Ctx(tuple(names), lists, has_history, regional)
        cond = draw(bool_expr(ctx))
        unless = draw(st.none() | bool_expr(ctx, 1))
        name = f"ind{k}" if k % 2 else f"ïnd{k}"  # a non-ASCII name every other one
        indicators.append(m.Indicator(name, draw(st.none() | st.just(f"Indicator {k}")), cond,
                                      unless))  # fmt: skip
        names.append(name)
    ctx = Ctx(tuple(names), lists, has_history, regional)
    exceptions = tuple(
        m.ProfileException(f"exc{k}", None, draw(bool_expr(ctx, 1)))
        for k in range(draw(st.sampled_from((0, 0, 1, 2))))
    )
    degree = draw(st.none() | degree_expr(ctx) | degree_expr(ctx))
    codes = draw(st.lists(st.sampled_from(sorted(CONTROL_NAMES)), min_size=0, max_size=3,
                          unique=True))  # fmt: skip
    controls = []
    for code in codes:
        cond = draw(st.none() | bool_expr(ctx, 1))
        kind = draw(st.sampled_from((m.ControlKind.MANDATORY, m.ControlKind.IF_NECESSARY)))
        if cond is not None and kind is m.ControlKind.MANDATORY:
            kind = m.ControlKind.CONDITIONAL
        controls.append(m.Control(code, CONTROL_NAMES[code], kind, draw(st.sampled_from(
            THRESHOLDS)), cond))  # fmt: skip
    history = None
    if has_history:
        subjects = draw(st.sampled_from((
            (m.HistorySubject(m.FieldRef("declaration.declarant.id")),),
            (m.HistorySubject(m.FieldRef("declaration.declarant.id")),
             m.HistorySubject(m.FieldRef("item.hs_code"), 4)),
            (m.HistorySubject(m.FieldRef("item.hs_code"), 2),),
        )))  # fmt: skip
        reasons = tuple(
            m.ReasonCoefficient(r, draw(st.sampled_from((Decimal("1.0"), Decimal("0.8"),
                                                         Decimal("0.3")))))
            for r in draw(st.lists(st.sampled_from(REASONS), max_size=3, unique=True))
        )  # fmt: skip
        negative = draw(st.none() | st.builds(
            m.NegativeHistory, st.sampled_from((Decimal(30), Decimal(5))), st.just(reasons),
            st.sampled_from((Decimal(1), Decimal(10)))))  # fmt: skip
        positive = draw(st.none() | st.builds(
            m.PositiveHistory, st.sampled_from((Decimal(20), Decimal(3))),
            st.sampled_from((Decimal(2), Decimal("0.5")))))  # fmt: skip
        history = m.History(subjects, draw(st.sampled_from((30, 365))), negative, positive)
    parts: list[str | m.FieldRef | m.Ref | m.HistoryRef] = ["Check "]
    for part in draw(st.lists(st.sampled_from(
        ("item.hs_code", "declaration.date", "item.net_mass", "degree", "negative_history",
         "item.ip_registered", "text", "region", "indicator")), max_size=4)):  # fmt: skip
        if part == "degree":
            parts.append(m.Ref("degree"))
        elif part == "negative_history":
            parts.append(m.HistoryRef(m.HistoryKind.NEGATIVE))
        elif part == "text":
            parts.append(" — é ")
        elif part == "region":
            if regional:
                parts.append(m.FieldRef("region.limit"))
        elif part == "indicator":
            if names:
                parts.append(m.Ref(names[0]))
        else:
            parts.append(m.FieldRef(part))
    message = draw(st.none() | st.just(m.Message("".join(p for p in parts if isinstance(p, str)),
                                                 tuple(parts))))  # fmt: skip
    in_force = draw(st.none() | st.sampled_from((
        m.Validity(dt.date(2020, 1, 1)), m.Validity(dt.date(2020, 1, 1), dt.date(2020, 6, 15)),
        m.Validity(dt.date(2020, 6, 16), dt.date(2021, 1, 1)),
    )))  # fmt: skip
    edition_in_force = draw(st.none() | st.sampled_from(AS_OF))
    params: tuple[m.Param, ...] = ()
    filling = None
    if regional:
        params = (m.Param("limit", "number"), m.Param("codes", "code", True))
        filling = m.Filling(m.FillingMethod.REGIONAL, "Regional unit")
    return m.Profile(
        number=number,
        name=f"Profile {number or draw(st.integers(0, 10**6))}",
        in_force=in_force,
        edition_in_force=edition_in_force,
        filling=filling,
        lists=own_lists,
        params=params,
        indicators=tuple(indicators),
        exceptions=exceptions,
        degree=degree,
        message=message,
        controls=tuple(controls),
        history=history,
    )


@st.composite
def fills_for(draw: st.DrawFn, profile: m.Profile) -> list[m.Fill]:
    assert profile.number is not None
    out = []
    for office in draw(st.lists(st.sampled_from(OFFICES), max_size=2, unique=True)):
        values = []
        if draw(st.booleans()):
            values.append(m.ParamValue("limit", m.NumberLit(draw(st.sampled_from(NUMBERS)))))
        if draw(st.booleans()):
            values.append(
                m.ParamValue(
                    "codes",
                    m.ListLit(
                        tuple(
                            m.StringLit(c)
                            for c in draw(st.lists(st.sampled_from(CODES), max_size=3))
                        )
                    ),
                )
            )
        valid = draw(st.sampled_from((
            m.Validity(dt.date(2020, 1, 1), dt.date(2020, 3, 31)),
            m.Validity(dt.date(2020, 6, 1), dt.date(2020, 8, 31)),
            m.Validity(dt.date(2020, 10, 2), dt.date(2020, 12, 31)),
        )))  # fmt: skip
        controls: tuple[m.Control, ...] = ()
        if draw(st.booleans()):
            controls = (m.Control("201", "Physical inspection (regional)", m.ControlKind.MANDATORY,
                                  draw(st.sampled_from(THRESHOLDS))),)  # fmt: skip
        message = draw(st.none() | st.just(m.Message("Regional {region.limit}", (
            "Regional ", m.FieldRef("region.limit")))))  # fmt: skip
        out.append(m.Fill(profile.number, office, None, m.Order("1", dt.date(2020, 1, 1)), valid,
                          tuple(values), message, controls))  # fmt: skip
    return out


@st.composite
def profile_files(draw: st.DrawFn, max_profiles: int = 3) -> list[m.SourceFile]:
    """One file with 1..max_profiles profiles (sometimes two editions of one number), file
    lists and fills for the regional ones."""
    file_lists = tuple(
        m.ListDef(f"fl{k}", m.ListLit(tuple(m.StringLit(c) for c in draw(
            st.lists(st.sampled_from(CODES), max_size=4)))))
        for k in range(draw(st.integers(0, 2)))
    )  # fmt: skip
    names = tuple(ld.name for ld in file_lists)
    profiles_: list[m.Profile] = []
    fills: list[m.Fill] = []
    for k in range(draw(st.integers(1, max_profiles))):
        number = None
        if draw(st.integers(0, 4)) > 0:
            edition = draw(st.sampled_from(("01", "02")))
            number = m.ProfileNumber("1A", "01", "2020", f"{k // 2:05d}", edition)
            if any(p.number == number for p in profiles_):
                number = m.ProfileNumber("1A", "01", "2020", f"{k:05d}", "09")
        p = draw(profiles(number, names))
        if number is None:
            p = attrs.evolve(p, name=f"Draft {k}")
        profiles_.append(p)
        if p.is_regional:
            fills += draw(fills_for(p))
    return [m.SourceFile("gen.rp", tuple(profiles_), tuple(fills), file_lists)]


def _number_value(draw: st.DrawFn) -> Any:
    base = float(draw(st.sampled_from(NUMBERS)))
    return draw(st.sampled_from((base, base + 0.0001, base - 0.0001, int(base), base * 10)))


def _code_value(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(CODES))
    return draw(st.sampled_from((base, base + "0", base[:-1], base + "é", base.upper())))


def _value(draw: st.DrawFn, path: str) -> Any:
    if path in NUMBER_FIELDS:
        return _number_value(draw)
    if path in DATE_FIELDS:
        return draw(st.sampled_from((*DATES, dt.date(2019, 12, 31), dt.date(2020, 1, 2))))
    if path in BOOL_FIELDS:
        return draw(st.booleans())
    if path == "declaration.office":
        return draw(st.sampled_from((*OFFICES, "UA300000")))
    if path in STRING_FIELDS:
        return draw(st.sampled_from(("boots", "Boot", "é", "", "6403 boots", "CN")))
    return _code_value(draw)


ALL_FIELDS = NUMBER_FIELDS + CODE_FIELDS + STRING_FIELDS + DATE_FIELDS + BOOL_FIELDS


def unchecked_declaration(raw: dict[str, Any]) -> Declaration:
    """A declaration straight from plain data, without the input rule: values beyond it (1e308,
    negative masses) reach the evaluator, whose own overflow rule the tests exercise with them
    (arithmetic of values within the input rule can overflow too). Nested header objects become
    dotted names; ``None`` is missing."""

    def flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            elif value is not None and key != "items":
                out[prefix + key] = value
        return out

    items = tuple(flat(item) for item in raw.get("items") or ())
    return Declaration(header=flat(raw), items=items, id=raw.get("id"))


@st.composite
def declarations(draw: st.DrawFn) -> Declaration:
    """A normalised declaration with 0..4 items; any field may be absent."""

    def record(scope: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path in ALL_FIELDS:
            if path.startswith(scope + ".") and draw(st.integers(0, 3)) > 0:
                out[path.partition(".")[2]] = _value(draw, path)
        return out

    header = record("declaration")
    items = tuple(record("item") for _ in range(draw(st.integers(0, 4))))
    return Declaration(header=header, items=items, id=draw(st.none() | st.just("D1")))


@st.composite
def history_events(draw: st.DrawFn, as_of: dt.date) -> tuple[list[Clearance], list[ControlResult]]:
    """Clearances and controls around ``as_of`` (on it, a day before, at the window's edges)."""
    offsets = (0, 1, 2, 29, 30, 31, 364, 365, 366, -1)
    declarants = ("31234567", "6403", "CN")
    hs = ("6403990000", "6404", "64", "É")
    clearances = []
    for _ in range(draw(st.integers(0, 5))):
        clearances.append(Clearance(
            as_of - dt.timedelta(days=draw(st.sampled_from(offsets))),
            {"declaration.declarant.id": draw(st.sampled_from(declarants)),
             "item.hs_code": draw(st.sampled_from(hs))},
            completed=draw(st.booleans()),
            reasons=tuple(draw(st.lists(st.sampled_from((*REASONS, "0105")), max_size=2))),
            declaration_id=f"C{len(clearances)}",
        ))  # fmt: skip
    controls = []
    for _ in range(draw(st.integers(0, 4))):
        controls.append(ControlResult(
            as_of - dt.timedelta(days=draw(st.sampled_from(offsets))),
            {"declaration.declarant.id": draw(st.sampled_from(declarants)),
             "item.hs_code": draw(st.sampled_from(hs))},
            violation=draw(st.booleans()), declaration_id=f"K{len(controls)}",
        ))  # fmt: skip
    return clearances, controls


@st.composite
def declarations_for_history(draw: st.DrawFn) -> Declaration:
    """A declaration whose declarant and HS codes match the history events' subjects often."""
    decl = draw(declarations())
    header = dict(decl.header)
    if draw(st.booleans()):
        header["declarant.id"] = draw(st.sampled_from(("31234567", "6403", "CN")))
    items = tuple(
        {**it, "hs_code": draw(st.sampled_from(("6403990000", "6404", "64", "É")))}
        if draw(st.booleans()) else it
        for it in decl.items
    )  # fmt: skip
    return Declaration(header=header, items=items, id=decl.id)
