"""The profile model: frozen attrs classes built from the parse tree, read by checks and backends.

Every node carries its source span with ``eq=False``, so two models compare equal when they say
the same thing, wherever it was written. Numbers are ``Decimal`` (exact, as written).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import TypeAlias

import attrs

from riskengine.diagnostics import NO_SPAN, Span


def _span() -> Span:
    return attrs.field(default=NO_SPAN, eq=False, repr=False, kw_only=True)


# ------------------------------------------------------------------------------------ expressions


@attrs.frozen
class NumberLit:
    value: Decimal
    span: Span = _span()


@attrs.frozen
class StringLit:
    value: str
    span: Span = _span()


@attrs.frozen
class DateLit:
    value: dt.date
    span: Span = _span()


@attrs.frozen
class BoolLit:
    value: bool
    span: Span = _span()


Literal: TypeAlias = NumberLit | StringLit | DateLit | BoolLit


@attrs.frozen
class FieldRef:
    """A declaration field (``declaration.declarant.id``, ``item.hs_code``) or a regional
    parameter (``region.max_price``). ``path`` is the full dotted path."""

    path: str
    span: Span = _span()

    @property
    def scope(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.path.split(".", 1)[1]


@attrs.frozen
class Ref:
    """A name: an indicator (in conditions and the degree) or a named list (after ``in``)."""

    name: str
    span: Span = _span()


class HistoryKind(enum.Enum):
    NEGATIVE = "negative_history"
    POSITIVE = "positive_history"


@attrs.frozen
class HistoryRef:
    kind: HistoryKind
    span: Span = _span()


@attrs.frozen
class Neg:
    operand: Expr
    span: Span = _span()


@attrs.frozen
class Arith:
    """``left op right`` with op one of ``+ - * /``. Division by zero gives a missing value."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@attrs.frozen
class Compare:
    """``left op right`` with op one of ``== != < <= > >=``; false when either side is missing."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@attrs.frozen
class And:
    left: Expr
    right: Expr
    span: Span = _span()


@attrs.frozen
class Or:
    left: Expr
    right: Expr
    span: Span = _span()


@attrs.frozen
class Not:
    operand: Expr
    span: Span = _span()


@attrs.frozen
class ListLit:
    items: tuple[Literal, ...]
    span: Span = _span()


ListValue: TypeAlias = ListLit | Ref | FieldRef  # literal list, named list, regional list parameter


@attrs.frozen
class InList:
    """``operand in (...)`` (or ``not in`` when ``negated``); false when the operand is missing."""

    operand: Expr
    values: ListValue
    negated: bool = False
    span: Span = _span()


@attrs.frozen
class StartsWith:
    """``operand starts with (...)``: the operand begins with one of the prefixes (HS codes)."""

    operand: Expr
    prefixes: ListValue
    span: Span = _span()


@attrs.frozen
class Between:
    """``operand between low and high``, both ends inclusive."""

    operand: Expr
    low: Expr
    high: Expr
    span: Span = _span()


@attrs.frozen
class Matches:
    """``operand matches "regex"``: the whole value matches the pattern."""

    operand: Expr
    pattern: str
    span: Span = _span()


@attrs.frozen
class IsMissing:
    """``operand is missing`` (or ``is not missing`` when ``negated``); never itself missing."""

    operand: Expr
    negated: bool = False
    span: Span = _span()


@attrs.frozen
class Call:
    """A built-in function: ``min``, ``max``, ``abs``, ``round``."""

    func: str
    args: tuple[Expr, ...]
    span: Span = _span()


@attrs.frozen
class Cond:
    """``if test then then else otherwise``."""

    test: Expr
    then: Expr
    otherwise: Expr
    span: Span = _span()


Expr: TypeAlias = (
    NumberLit
    | StringLit
    | DateLit
    | BoolLit
    | FieldRef
    | Ref
    | HistoryRef
    | Neg
    | Arith
    | Compare
    | And
    | Or
    | Not
    | InList
    | StartsWith
    | Between
    | Matches
    | IsMissing
    | Call
    | Cond
)

FUNCTIONS = ("min", "max", "abs", "round")


def children(expr: Expr | ListLit) -> tuple[Expr | ListLit, ...]:
    """The direct sub-expressions of a node, in source order."""
    match expr:
        case Neg(operand=o) | Not(operand=o) | IsMissing(operand=o) | Matches(operand=o):
            return (o,)
        case (
            Arith(left=a, right=b)
            | Compare(left=a, right=b)
            | And(left=a, right=b)
            | Or(left=a, right=b)
        ):
            return (a, b)
        case InList(operand=o, values=v):
            return (o, v)
        case StartsWith(operand=o, prefixes=p):
            return (o, p)
        case Between(operand=o, low=lo, high=hi):
            return (o, lo, hi)
        case Call(args=args):
            return args
        case Cond(test=t, then=a, otherwise=b):
            return (t, a, b)
        case ListLit(items=items):
            return items
        case _:
            return ()


def walk(expr: Expr | ListLit) -> list[Expr | ListLit]:
    """Every node of an expression, pre-order."""
    out: list[Expr | ListLit] = []
    stack: list[Expr | ListLit] = [expr]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(children(node)))
    return out


# ------------------------------------------------------------------------------------ passport


@attrs.frozen
class ProfileNumber:
    """``WW/XX/YYYY/ZZZZZ-VV``: criteria group, initiating unit, year, sequence, edition."""

    group: str
    unit: str
    year: str
    sequence: str
    edition: str
    span: Span = _span()

    def __str__(self) -> str:
        return f"{self.group}/{self.unit}/{self.year}/{self.sequence}-{self.edition}"

    @property
    def base(self) -> str:
        """The number without the edition: the same for every edition of one profile."""
        return f"{self.group}/{self.unit}/{self.year}/{self.sequence}"

    @classmethod
    def parse(cls, text: str, span: Span = NO_SPAN) -> ProfileNumber:
        head, edition = text.rsplit("-", 1)
        group, unit, year, sequence = head.split("/")
        return cls(group, unit, year, sequence, edition, span=span)


class FillingMethod(enum.Enum):
    CENTRAL = "central"
    REGIONAL = "regional"


@attrs.frozen
class Filling:
    method: FillingMethod
    unit: str | None = None  # central: the unit involved; regional: the filling unit
    coordinators: tuple[str, ...] = ()  # regional: the coordinating units
    span: Span = _span()


MODULES = {
    "declaration": (
        "Declaration processing (incl. electronic declarations)",
        "Оформлення митних декларацій (у т.ч. електронних)",
    ),
    "road_checkpoint": ("Road checkpoint journal", "Журнал автомобільного пункту пропуску"),
    "passenger_checkpoint": ("Passenger checkpoint", "Пасажирський пункт пропуску"),
    "rail_checkpoint": ("Rail checkpoint", "Залізничний пункт пропуску"),
    "sea_checkpoint": ("Sea checkpoint", "Морський пункт пропуску"),
    "other": ("Other module", "Інший модуль"),
}


@attrs.frozen
class Module:
    name: str  # one of MODULES
    text: str | None = None  # for ``other``: which module; for documentary use: the condition
    span: Span = _span()


@attrs.frozen
class Validity:
    """An inclusive date range; ``end`` None means open-ended."""

    start: dt.date
    end: dt.date | None = None
    span: Span = _span()

    def contains(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@attrs.frozen
class Contact:
    person: str
    phone: str | None = None
    fax: str | None = None
    mailbox: str | None = None
    span: Span = _span()


@attrs.frozen
class Updates:
    """How indicator values are updated periodically, and by whom (passport algorithm field)."""

    how: str
    by: str | None = None
    span: Span = _span()


@attrs.frozen
class ListDef:
    name: str
    values: ListLit
    span: Span = _span()


PARAM_TYPES = ("number", "string", "code", "date", "boolean")


@attrs.frozen
class Param:
    """A parameter filled by each regional office (``region.NAME`` in expressions)."""

    name: str
    type: str  # one of PARAM_TYPES
    is_list: bool = False
    title: str | None = None
    span: Span = _span()


@attrs.frozen
class Indicator:
    name: str
    title: str | None
    condition: Expr
    unless: Expr | None = None  # the per-indicator exception: when true, the indicator is false
    span: Span = _span()


@attrs.frozen
class ProfileException:
    """A profile-level exception: when its condition holds, the profile does not apply."""

    name: str
    title: str | None
    condition: Expr
    span: Span = _span()


@attrs.frozen
class Message:
    """The inspector message; ``{item.hs_code}`` style placeholders are parsed into ``parts``:
    literal text, a field or regional parameter, or ``Ref("degree")`` / a history name."""

    text: str
    parts: tuple[str | FieldRef | Ref | HistoryRef, ...] = ()
    span: Span = _span()


class ControlKind(enum.Enum):
    MANDATORY = "mandatory"
    CONDITIONAL = "mandatory when"  # mandatory under a condition
    IF_NECESSARY = "if necessary"

    @property
    def strength(self) -> int:
        """Mandatory beats mandatory-under-a-condition beats if-necessary."""
        return {"mandatory": 3, "mandatory when": 2, "if necessary": 1}[self.value]


@attrs.frozen
class Control:
    """A control form: procedure code and name, kind, degree threshold, optional condition."""

    code: str
    name: str
    kind: ControlKind
    threshold: Decimal
    condition: Expr | None = None
    span: Span = _span()


@attrs.frozen
class ReasonCoefficient:
    """A non-completion reason (appendix 3) with its significance coefficient for this profile."""

    code: str
    coefficient: Decimal
    span: Span = _span()


@attrs.frozen
class NegativeHistory:
    """negative_history = min(max, per_case × Σ coefficient of each non-completed clearance)."""

    max: Decimal
    reasons: tuple[ReasonCoefficient, ...]
    per_case: Decimal = Decimal(1)
    span: Span = _span()


@attrs.frozen
class PositiveHistory:
    """positive_history = min(max, step × number of clean controls)."""

    max: Decimal
    step: Decimal
    span: Span = _span()


@attrs.frozen
class HistorySubject:
    """Whose history: a field, optionally only its first ``prefix`` characters (HS heading)."""

    field: FieldRef
    prefix: int | None = None
    span: Span = _span()


@attrs.frozen
class History:
    subjects: tuple[HistorySubject, ...]
    window_days: int
    negative: NegativeHistory | None = None
    positive: PositiveHistory | None = None
    span: Span = _span()


NOTE_SECTIONS = ("threat", "basis", "causes", "damage", "measures")


@attrs.frozen
class Note:
    """The analytical note (appendix 2): threat, basis documents, causes, damage, measures."""

    threat: str | None = None
    basis: tuple[str, ...] = ()
    causes: str | None = None
    damage: str | None = None
    measures: str | None = None
    span: Span = _span()


@attrs.frozen
class Profile:
    """One risk-profile passport. ``number`` is None for a draft not yet approved."""

    number: ProfileNumber | None
    name: str
    approved: dt.date | None = None
    edition_approved: dt.date | None = None
    in_force: Validity | None = None
    edition_in_force: dt.date | None = None
    filling: Filling | None = None
    module: Module | None = None
    spheres: tuple[str, ...] = ()
    review: dt.date | None = None
    contact: Contact | None = None
    updates: Updates | None = None
    lists: tuple[ListDef, ...] = ()
    params: tuple[Param, ...] = ()
    indicators: tuple[Indicator, ...] = ()
    exceptions: tuple[ProfileException, ...] = ()
    degree: Expr | None = None
    message: Message | None = None
    controls: tuple[Control, ...] = ()
    history: History | None = None
    note: Note | None = None
    span: Span = _span()
    # Spans of single-valued passport fields by statement name ("approved", "in_force", ...).
    spans: dict[str, Span] = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)

    @property
    def key(self) -> str:
        """The number when there is one, else the name: how users and reports name a profile."""
        return str(self.number) if self.number else self.name

    @property
    def is_regional(self) -> bool:
        return self.filling is not None and self.filling.method is FillingMethod.REGIONAL

    def indicator(self, name: str) -> Indicator | None:
        for ind in self.indicators:
            if ind.name == name:
                return ind
        return None


@attrs.frozen
class Order:
    """The regional office's order approving a fill."""

    number: str
    date: dt.date
    span: Span = _span()


@attrs.frozen
class ParamValue:
    name: str
    value: Literal | ListLit
    span: Span = _span()


@attrs.frozen
class Fill:
    """One regional office's values for a regional profile, valid at most 3 months."""

    profile: ProfileNumber
    office: str | None = None
    office_name: str | None = None
    order: Order | None = None
    valid: Validity | None = None
    values: tuple[ParamValue, ...] = ()
    message: Message | None = None
    controls: tuple[Control, ...] = ()
    span: Span = _span()
    spans: dict[str, Span] = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)


@attrs.frozen
class Comment:
    text: str  # with the leading '#'
    span: Span


@attrs.frozen
class SourceFile:
    """One parsed file: its profiles, fills and file-level named lists, in source order."""

    path: str
    profiles: tuple[Profile, ...] = ()
    fills: tuple[Fill, ...] = ()
    lists: tuple[ListDef, ...] = ()
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False, repr=False)
    # Top-level items in source order, for the formatter.
    items: tuple[Profile | Fill | ListDef, ...] = attrs.field(default=(), eq=False, repr=False)
