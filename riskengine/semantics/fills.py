"""Which regional fill applies to a declaration: the one rule every backend follows.

A regional profile takes its ``region.…`` values from the fill of the declaration's office valid
on the as-of date (docs/semantics.md#regional-profiles):

1. a fill belongs to the profile whose number it names, edition included (:func:`fills_of`);
2. it *applies* to ``(office, date)`` when its office equals the declaration's office (a
   missing office matches no fill) and its inclusive ``valid`` range contains the date
   (:func:`applies`);
3. when several apply -- overlapping fills of one office, which ``check`` rejects (RE411), but
   which an API caller or an unchecked run may still pass -- the one **starting last** wins,
   and among equal starts the one **given last** (:func:`precedence`): a later fill stands for
   a later order of the office, which supersedes the earlier one.

The evaluator (:class:`FillChooser`, read by ``CompiledProfile``), :func:`riskengine.regional.
fill_for` and the SQL backtest (:func:`sql_choices`, one guard per fill in precedence order,
each excluding the ones before it) all derive their choice from these three functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from riskengine import model as m

#: A boolean SQL expression.
SqlBool = sa.ColumnElement[bool]


def fills_of(profile: m.Profile, fills: Iterable[m.Fill]) -> tuple[m.Fill, ...]:
    """The fills that belong to ``profile``: those naming its number, edition included (a
    profile without a number has none)."""
    if profile.number is None:
        return ()
    number = str(profile.number)
    return tuple(f for f in fills if str(f.profile) == number)


def applies(fill: m.Fill, office: Any, as_of: dt.date) -> bool:
    """Whether ``fill`` applies to a declaration of ``office`` on ``as_of``: same office (a
    missing office matches none) and ``as_of`` within its inclusive valid range."""
    return (
        office is not None
        and fill.office is not None
        and fill.office == office
        and fill.valid is not None
        and fill.valid.contains(as_of)
    )


def precedence(fills: Sequence[m.Fill]) -> tuple[int, ...]:
    """The indices of the fills that can apply at all (an office and a valid range), in the
    order the rule tries them: the latest start first; among equal starts, the one given last
    first. The first of them that applies to a declaration is its fill."""
    usable = [k for k, f in enumerate(fills) if f.office is not None and f.valid is not None]
    return tuple(sorted(usable, key=lambda k: (_start(fills[k]), k), reverse=True))


def choose(fills: Sequence[m.Fill], office: Any, as_of: dt.date) -> int | None:
    """The index of the fill of ``office`` that applies on ``as_of``, or ``None``."""
    for k in precedence(fills):
        if applies(fills[k], office, as_of):
            return k
    return None


class FillChooser:
    """:func:`choose` with the precedence worked out once per office, for the evaluator's
    per-declaration look-ups. Immutable; safe to share between threads."""

    def __init__(self, fills: Sequence[m.Fill]) -> None:
        self.fills = tuple(fills)
        by_office: dict[str, list[int]] = {}
        for k in precedence(self.fills):
            office = self.fills[k].office
            assert office is not None  # precedence keeps only fills with an office
            by_office.setdefault(office, []).append(k)
        self._by_office: Mapping[str, tuple[int, ...]] = {
            office: tuple(ks) for office, ks in by_office.items()
        }

    def choose(self, office: Any, as_of: dt.date) -> int | None:
        """The index of the fill of ``office`` that applies on ``as_of``, or ``None``."""
        if not isinstance(office, str):
            return None  # a fill's office is text: nothing else equals it
        for k in self._by_office.get(office, ()):
            if applies(self.fills[k], office, as_of):
                return k
        return None

    def offices_on(self, as_of: dt.date) -> dict[str, int]:
        """Office → index of its fill, for every office with a fill that applies on
        ``as_of``."""
        out: dict[str, int] = {}
        for office in self._by_office:
            k = self.choose(office, as_of)
            if k is not None:
                out[office] = k
        return out


def sql_applies(
    fill: m.Fill, office: sa.ColumnElement[Any], date: sa.ColumnElement[Any]
) -> SqlBool:
    """:func:`applies` in SQL, over a row's office and date columns (NULL when either is; the
    caller wraps it where NULL must read as false)."""
    if fill.office is None or fill.valid is None:
        return sa.false()
    terms = [office == fill.office, date >= fill.valid.start]
    if fill.valid.end is not None:
        terms.append(date <= fill.valid.end)
    return sa.and_(*terms)


def sql_choices(
    fills: Sequence[m.Fill], office: sa.ColumnElement[Any], date: sa.ColumnElement[Any]
) -> list[tuple[int, SqlBool]]:
    """Per fill that can apply, in :func:`precedence` order, the SQL condition under which it
    is the row's fill: it applies and none before it does. At most one holds on any row, and
    one does exactly where :func:`choose` finds a fill; never NULL."""
    out: list[tuple[int, SqlBool]] = []
    before: list[tuple[int, SqlBool]] = []
    for k in precedence(fills):
        hit = sql_applies(fills[k], office, date)
        # only a fill that can apply together with this one (same office, overlapping days)
        # can take precedence over it: the others need no test (linear, not quadratic, in the
        # usual set of one fill per office and quarter)
        rivals = [b for j, b in before if _can_overlap(fills[j], fills[k])]
        chosen = sa.and_(hit, *[sa.not_(b) for b in rivals]) if rivals else hit
        out.append((k, _not_null(chosen)))
        before.append((k, _not_null(hit)))
    return out


def _can_overlap(a: m.Fill, b: m.Fill) -> bool:
    """Whether some (office, date) has both fills applying (fills of :func:`precedence` only:
    each has an office and a valid range)."""
    assert a.valid is not None and b.valid is not None
    if a.office != b.office:
        return False
    a_end, b_end = a.valid.end or dt.date.max, b.valid.end or dt.date.max
    return a.valid.start <= b_end and b.valid.start <= a_end


def _not_null(pred: SqlBool) -> SqlBool:
    return sa.func.coalesce(pred, sa.false())


def _start(fill: m.Fill) -> dt.date:
    return fill.valid.start if fill.valid is not None else dt.date.min
