"""History: the provider protocol, the values and records it returns, and the one exact formula.

A profile's ``history per SUBJECT over N days { negative ... positive ... }`` block asks, for a
subject (the values of the ``per`` fields) and an as-of date, for two numbers
(docs/semantics.md#history):

* ``negative_history`` = min(max, per_case × Σ c) over the subject's non-completed clearances
  dated in the window, c being the highest coefficient among the clearance's reason codes that
  the profile lists (0 when it lists none of them);
* ``positive_history`` = min(max, step × the number of the subject's clean controls -- controls
  that found no violation -- dated in the window).

The window is ``[as_of - window_days, as_of)``: only events strictly before the as-of date count.
A subject with a missing value gives 0 and 0.

**One formula, exact.** Every provider -- the in-memory one (``riskengine.evaluator.history``),
the store's single lookup and the set-based SQL of backtests (``riskengine.store.history``) --
computes through :class:`HistoryTerms`: each listed coefficient is scaled to an integer number of
*units* (``0.1`` → 1 with scale 10), a clearance counts the units of its highest listed
coefficient, and the window's units are summed as integers. The value is then the rational
``min(max, num × units / den)`` (a :class:`Weight`: ``num / den`` = per_case / scale), computed
exactly, and turned into the evaluator's ``float`` **once**, correctly rounded. Three clearances at
0.1 give exactly 0.3 everywhere (a float sum gave 0.30000000000000004). Positive history is
``min(max, num × clean_controls / den)`` with ``num / den`` = step.

SQL mirrors it bit for bit: the database sums integer units, compares them with the integer
:attr:`Weight.cap_count` for the cap and otherwise divides ``CAST(units AS DOUBLE) × num`` by
``den``. Both operands are integers below 2**53, exact as doubles, and IEEE division is correctly
rounded, so the one rounding gives the same double as Python's ``int / int``. That holds while
``max × den`` stays below 2**53 -- for the weights ``check`` accepts (at most 1,000, at most 6
decimal places) it is at most 10**15 -- and :attr:`HistoryTerms.sql_exact` says so for a block.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
import sqlalchemy as sa

from riskengine import model as m

__all__ = [
    "NO_HISTORY",
    "Clearance",
    "ControlResult",
    "EmptyHistoryProvider",
    "HistoryProvider",
    "HistoryRecord",
    "HistoryTerms",
    "HistoryValue",
    "TermsCache",
    "Weight",
    "history_block",
    "history_value",
    "subject_of",
    "weight_sql",
]

#: Integers up to this bound are exact as IEEE doubles (the SQL mirror relies on it).
EXACT_DOUBLE_INTEGER = 2**53


# --- what a provider returns ------------------------------------------------------------------


@attrs.frozen
class HistoryRecord:
    """One event behind a history value.

    ``kind`` is ``"clearance"`` (a non-completed clearance, for negative history) or ``"control"``
    (a control that found no violation, for positive history). ``value`` is what the event added
    before the cap: per_case × coefficient for a clearance (0 when none of its reasons is listed
    by the profile), the step for a clean control -- each the float of the exact value.
    ``coefficient`` is that highest listed coefficient of a clearance's reasons (0 when none is
    listed; ``None`` for a control), for explanations; it takes no part in equality.
    """

    kind: Literal["clearance", "control"]
    date: dt.date
    value: float
    declaration_id: str | None = None
    reasons: tuple[str, ...] = ()
    coefficient: float | None = attrs.field(default=None, eq=False)


class HistoryValue:
    """The two history values of one subject on one date (already capped) and their records.

    A provider on the scoring path may give the records as a function (:meth:`lazy`): the
    evaluator's fast path reads only the two values, so the records -- one object per event --
    are made when something reads :attr:`records` (an explanation), once. Equal values compare
    equal however their records were given.
    """

    __slots__ = ("_make", "_records", "negative", "positive")

    negative: float
    positive: float

    def __init__(
        self, negative: float = 0.0, positive: float = 0.0, records: Iterable[HistoryRecord] = ()
    ) -> None:
        self.negative = negative
        self.positive = positive
        self._records: tuple[HistoryRecord, ...] | None = tuple(records)
        self._make: Callable[[], Iterable[HistoryRecord]] | None = None

    @classmethod
    def lazy(
        cls, negative: float, positive: float, make: Callable[[], Iterable[HistoryRecord]]
    ) -> HistoryValue:
        """The values now, the records from ``make()`` when first read."""
        value = cls.__new__(cls)
        value.negative = negative
        value.positive = positive
        value._records = None
        value._make = make
        return value

    @property
    def records(self) -> tuple[HistoryRecord, ...]:
        """The events behind the values, in date order."""
        found = self._records
        if found is None:
            make = self._make
            assert make is not None
            found = self._records = tuple(make())
            self._make = None
        return found

    def _key(self) -> tuple[float, float, tuple[HistoryRecord, ...]]:
        return (self.negative, self.positive, self.records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HistoryValue):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"HistoryValue(negative={self.negative!r}, positive={self.positive!r}, "
            f"records={self.records!r})"
        )


#: No history: both values 0, no records.
NO_HISTORY = HistoryValue()


@runtime_checkable
class HistoryProvider(Protocol):
    """Where the evaluator gets history from. Implementations must be safe to call from several
    threads at once and must count only events strictly before ``as_of`` inside the window."""

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """The history values of ``subject`` for ``profile`` (a model ``Profile`` or a
        ``CompiledProfile``; read its history block with :func:`history_block`) on ``as_of``."""
        ...


def history_block(profile: Any) -> m.History | None:
    """The ``history`` block of a model ``Profile`` or of a ``CompiledProfile``."""
    if isinstance(profile, m.Profile):
        return profile.history
    model = getattr(profile, "profile", None)
    if isinstance(model, m.Profile):
        return model.history
    raise TypeError(f"expected a Profile or a CompiledProfile, got {type(profile).__name__}")


def subject_of(block: m.History, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The subject of a history block given field values by full path (``declaration.x.y`` /
    ``item.x``); ``None`` when a subject field is missing. ``[:N]`` keeps the first N characters."""
    out = []
    for subj in block.subjects:
        value = values.get(subj.field.path)
        if value is None:
            return None
        if subj.prefix is not None and isinstance(value, str):
            value = value[: subj.prefix]
        out.append(value)
    return tuple(out)


class EmptyHistoryProvider:
    """A provider with no events: every history value is 0."""

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """Always :data:`NO_HISTORY`."""
        return NO_HISTORY


# --- the events a provider reads ---------------------------------------------------------------


@attrs.frozen
class Clearance:
    """A past clearance: its date, the subject fields of the declaration (full paths such as
    ``declaration.declarant.id``, ``item.hs_code``), whether it was completed, and if not, the
    non-completion reason codes (appendix 3, ``"0201"``)."""

    date: dt.date
    fields: Mapping[str, Any]
    completed: bool = True
    reasons: tuple[str, ...] = ()
    declaration_id: str | None = None


@attrs.frozen
class ControlResult:
    """A past control form carried out: its date, the subject fields of the declaration, and
    whether it found a violation (a control without a violation is a clean control)."""

    date: dt.date
    fields: Mapping[str, Any]
    violation: bool
    declaration_id: str | None = None


# --- the formula ------------------------------------------------------------------------------


@attrs.frozen
class Weight:
    """``value(n) = min(cap, num × n / den)`` for a count ``n`` of integer units, exactly.

    ``num`` and ``den`` are coprime integers (``den`` > 0, ``num`` ≥ 0); ``cap_count`` is the
    smallest ``n`` whose value reaches the cap (``None``: never reached), so the cap is an
    integer comparison in Python and in SQL alike.
    """

    num: int
    den: int
    cap: Fraction
    cap_count: int | None

    @classmethod
    def of(cls, factor: Fraction, cap: Fraction) -> Weight:
        """The weight ``min(cap, factor × n)`` (``factor`` and ``cap`` not negative)."""
        if cap <= 0:
            cap_count: int | None = 0
        elif factor == 0:
            cap_count = None
        else:
            cap_count = math.ceil(cap / factor)
        return cls(factor.numerator, factor.denominator, cap, cap_count)

    def exact(self, count: int) -> Fraction:
        """The exact value for ``count`` units."""
        if self.cap_count is not None and count >= self.cap_count:
            return self.cap
        return Fraction(self.num * count, self.den)

    def value(self, count: int) -> float:
        """The value as the evaluator's float: the exact value, rounded once (Python's
        ``int / int`` is correctly rounded, like the IEEE division SQL makes)."""
        if self.cap_count is not None and count >= self.cap_count:
            return self.cap.numerator / self.cap.denominator
        return (self.num * count) / self.den

    @property
    def sql_exact(self) -> bool:
        """Whether the SQL mirror (doubles) is exact: below the cap, ``num × count`` and ``den``
        are integers under 2**53 (above it SQL binds the float of the cap, like Python)."""
        largest = 0 if self.cap_count is None else self.num * max(self.cap_count - 1, 0)
        return largest < EXACT_DOUBLE_INTEGER and self.den < EXACT_DOUBLE_INTEGER


@attrs.frozen
class HistoryTerms:
    """A history block's numbers in the form every provider and the SQL use.

    ``units`` maps each listed reason code to its coefficient × ``scale`` (an exact integer;
    a code listed twice keeps its highest coefficient). ``negative`` turns the sum of a window's
    units into negative history (per_case / scale per unit), ``positive`` the number of clean
    controls into positive history (step per control); ``None`` when the block has no such part.
    """

    subjects: tuple[tuple[str, int | None], ...]
    window_days: int
    units: Mapping[str, int]
    scale: int
    negative: Weight | None
    positive: Weight | None

    @classmethod
    def of(cls, block: m.History) -> HistoryTerms:
        """The terms of a model ``History`` block."""
        reasons = block.negative.reasons if block.negative is not None else ()
        places = max((max(0, -_exponent(r.coefficient)) for r in reasons), default=0)
        scale = 10**places
        units: dict[str, int] = {}
        for reason in reasons:
            value = int(Fraction(reason.coefficient) * scale)  # exact: scale clears the places
            # a code listed twice keeps its highest coefficient, like max() over the reasons
            units[reason.code] = max(value, units.get(reason.code, value))
        negative = positive = None
        if block.negative is not None:
            factor = Fraction(block.negative.per_case) / scale
            negative = Weight.of(factor, Fraction(block.negative.max))
        if block.positive is not None:
            positive = Weight.of(Fraction(block.positive.step), Fraction(block.positive.max))
        return cls(
            subjects=tuple((s.field.path, s.prefix) for s in block.subjects),
            window_days=block.window_days,
            units=dict(sorted(units.items())),
            scale=scale,
            negative=negative,
            positive=positive,
        )

    def clearance_units(self, reasons: Iterable[str]) -> int:
        """The units one non-completed clearance with ``reasons`` counts: those of its highest
        listed coefficient, 0 when the profile lists none of its reasons."""
        return max((self.units[r] for r in reasons if r in self.units), default=0)

    def negative_value(self, units: int) -> float:
        """negative_history from the window's sum of units (0 without a negative part)."""
        return 0.0 if self.negative is None else self.negative.value(units)

    def positive_value(self, clean_controls: int) -> float:
        """positive_history from the window's number of clean controls."""
        return 0.0 if self.positive is None else self.positive.value(clean_controls)

    @property
    def counts_negative(self) -> bool:
        """Whether any clearance can count: a negative part listing reasons, a window."""
        return self.negative is not None and bool(self.units) and self.window_days > 0

    @property
    def counts_positive(self) -> bool:
        """Whether any clean control can count: a positive part, a window."""
        return self.positive is not None and self.window_days > 0

    @property
    def item_subjects(self) -> bool:
        """Whether a subject field is a goods item's (history per goods item)."""
        return any(path.startswith("item.") for path, _ in self.subjects)

    @property
    def sql_exact(self) -> bool:
        """Whether the SQL mirror gives the same doubles as Python (see the module docs)."""
        return all(w is None or w.sql_exact for w in (self.negative, self.positive))


class TermsCache:
    """The :class:`HistoryTerms` of the blocks a provider is asked about, computed once per block
    (looked up by identity: hashing a block on every call would cost more than the lookup).
    Safe to share between threads: a race computes the same terms twice."""

    def __init__(self) -> None:
        self._terms: dict[int, tuple[m.History, HistoryTerms]] = {}

    def get(self, block: m.History) -> HistoryTerms:
        """The terms of ``block``."""
        known = self._terms.get(id(block))
        if known is not None and known[0] is block:
            return known[1]
        terms = HistoryTerms.of(block)
        self._terms[id(block)] = (block, terms)  # the block kept alive: its id stays its own
        return terms


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def history_value(
    terms: HistoryTerms,
    clearances: Iterable[tuple[dt.date, str | None, Sequence[str]]],
    controls: Iterable[tuple[dt.date, str | None]],
) -> HistoryValue:
    """The history value of one subject from its events in the window, with the records behind
    it: ``clearances`` as (date, declaration id, reason codes) of non-completed clearances,
    ``controls`` as (date, declaration id) of clean controls, each in date order. Every
    provider computes its values here."""
    records: list[HistoryRecord] = []
    units = 0
    negative = terms.negative
    if negative is not None:
        listed = terms.units
        num, den = negative.num, negative.den
        scale = terms.scale
        for date, decl_id, reasons in clearances:
            counted = 0  # clearance_units(), written out: this loop is the providers' hot path
            for code in reasons:
                found = listed.get(code)
                if found is not None and found > counted:
                    counted = found
            units += counted
            value = (num * counted) / den  # before the cap
            records.append(
                HistoryRecord("clearance", date, value, decl_id, tuple(reasons), counted / scale)
            )
    clean = 0
    positive = terms.positive
    if positive is not None:
        step = positive.num / positive.den
        for date, decl_id in controls:
            clean += 1
            records.append(HistoryRecord("control", date, step, decl_id))
    return HistoryValue(
        negative=terms.negative_value(units),
        positive=terms.positive_value(clean),
        records=tuple(records),
    )


def weight_sql(weight: Weight | None, count: sa.ColumnElement[Any]) -> sa.ColumnElement[float]:
    """The SQL mirror of :meth:`Weight.value` for an integer ``count`` column (a window's sum of
    units, or its number of clean controls): a ``DOUBLE`` equal to the Python float, bit for bit,
    on SQLite, PostgreSQL and DuckDB -- the cap is an integer comparison, the value below it one
    IEEE division of two integers that doubles hold exactly (:attr:`Weight.sql_exact`)."""
    double: sa.Double[float] = sa.Double()
    if weight is None or (weight.num == 0 and weight.cap_count is None):
        return sa.literal(0.0, double)
    cap = sa.literal(weight.cap.numerator / weight.cap.denominator, double)
    if weight.cap_count == 0:
        return cap
    value: sa.ColumnElement[float] = sa.cast(count, double)
    if weight.num != 1:
        value = value * sa.literal(float(weight.num), double)
    if weight.den != 1:
        value = value / sa.literal(float(weight.den), double)
    if weight.cap_count is None:
        return value
    return sa.case((count >= sa.literal(weight.cap_count, sa.BigInteger()), cap), else_=value)
