"""The declarations a backtest selected, one row each, for analysts: CSV or JSON Lines.

``riskengine backtest --selected FILE`` writes every (profile, declaration) the profiles
selected in the period; ``--changes FILE`` writes, for each ``--compare`` pair, every
declaration newly selected by the first profile or no longer selected. Both lists are computed
set-based in SQL for pushed-down profiles (the pushdown's own layers, see
:meth:`riskengine.backtest.pushdown.PushdownQuery.selected`) and from the evaluator's outcomes
for profiles on the Python fallback; the two give the same rows.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import attrs

from riskengine.backtest.metrics import money

__all__ = ["CHANGES", "SELECTED", "ChangeRow", "RowWriter", "SelectedRow", "row_from_sql"]

#: Columns of the selected list, in order.
SELECTED = (
    "profile",
    "declaration",
    "date",
    "office",
    "degree",
    "controls",
    "controls_carried",
    "hits",
    "hit",
    "revenue",
)
#: Columns of the changes list: the pair, the change, then the selecting profile's row.
CHANGES = ("a", "b", "change", *SELECTED)


@attrs.frozen
class SelectedRow:
    """One declaration a profile selected: its degree (the highest among the items that
    fired), the procedure codes applied, and the control results counted for the profile
    (``controls_carried``, ``hits``, ``revenue``; ``hit`` when one found a violation)."""

    profile: str
    declaration: str
    date: dt.date | None
    office: str | None
    degree: float | None
    controls: tuple[str, ...]
    controls_carried: int
    hits: int
    revenue: Decimal

    @property
    def hit(self) -> bool:
        return self.hits > 0

    def record(self) -> dict[str, Any]:
        """The row as JSON-ready values (money as a string with two decimals)."""
        return {
            "profile": self.profile,
            "declaration": self.declaration,
            "date": None if self.date is None else self.date.isoformat(),
            "office": self.office,
            "degree": self.degree,
            "controls": list(self.controls),
            "controls_carried": self.controls_carried,
            "hits": self.hits,
            "hit": self.hit,
            "revenue": str(self.revenue),
        }


@attrs.frozen
class ChangeRow:
    """A declaration selected by one profile of a compared pair and not by the other:
    ``change`` is ``newly_selected`` (by ``a``, not by ``b``; ``row`` is ``a``'s) or
    ``no_longer_selected`` (by ``b``, not by ``a``; ``row`` is ``b``'s)."""

    a: str
    b: str
    change: str
    row: SelectedRow

    def record(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "change": self.change, **self.row.record()}


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])  # SQLite may hand back text


def row_from_sql(
    profile: str, r: Mapping[str, Any], codes: Sequence[str], code_names: Mapping[str, str],
    any_control: bool,
) -> SelectedRow:  # fmt: skip
    """A row of :meth:`PushdownQuery.selected` as a :class:`SelectedRow` of ``profile``."""
    prefix = "any_" if any_control else ""
    best = r["best"]
    return SelectedRow(
        profile=profile,
        declaration=str(r["decl_id"]),
        date=_date(r["date"]),
        office=None if r["office"] is None else str(r["office"]),
        degree=None if best is None else float(best),
        controls=tuple(c for c in codes if r[code_names[c]]),
        controls_carried=int(r[f"{prefix}controls"] or 0),
        hits=int(r[f"{prefix}hits"] or 0),
        revenue=money(int(r[f"{prefix}revenue"] or 0)),
    )


class RowWriter:
    """Writes rows to ``path`` as CSV (``.csv``) or JSON Lines (``.jsonl``, ``.json``):
    ``columns`` in order; in CSV the controls are joined with ``;`` and ``hit`` is 1/0."""

    SUFFIXES = (".csv", ".jsonl", ".json")

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        if path.suffix.lower() not in self.SUFFIXES:
            raise ValueError(
                f"{path}: the file name must end in .csv or .jsonl (the format it is written in)"
            )
        self.path = path
        self.columns = tuple(columns)
        self.csv = path.suffix.lower() == ".csv"
        self.count = 0
        self._fh: IO[str] | None = None
        self._writer: Any = None
        self._tmp = ""

    def __enter__(self) -> RowWriter:
        # written beside the target and renamed when complete: a failed run leaves no half list
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        if self.csv:
            self._writer = csv.writer(self._fh, lineterminator="\n")
            self._writer.writerow(self.columns)
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        assert self._fh is not None
        self._fh.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)

    def write(self, row: SelectedRow | ChangeRow) -> None:
        assert self._fh is not None
        record = row.record()
        self.count += 1
        if not self.csv:
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        out = []
        for column in self.columns:
            value = record[column]
            if column == "controls":
                value = ";".join(value)
            elif column == "hit":
                value = int(value)
            out.append("" if value is None else value)
        self._writer.writerow(out)


def changes(
    a: str, b: str, rows_a: Sequence[SelectedRow], rows_b: Sequence[SelectedRow]
) -> Iterator[ChangeRow]:
    """The changes between two profiles' selected lists (for a pair measured partly in
    Python): ``a``'s rows that ``b`` does not select, then ``b``'s that ``a`` does not."""
    ids_a = {r.declaration for r in rows_a}
    ids_b = {r.declaration for r in rows_b}
    for r in sorted(rows_a, key=lambda r: r.declaration):
        if r.declaration not in ids_b:
            yield ChangeRow(a, b, "newly_selected", r)
    for r in sorted(rows_b, key=lambda r: r.declaration):
        if r.declaration not in ids_a:
            yield ChangeRow(a, b, "no_longer_selected", r)


def row_from_outcome(profile: str, outcome: Any, k: int, any_control: bool) -> SelectedRow:
    """Profile ``k``'s row of a declaration the Python fallback scored (a
    :class:`~riskengine.backtest.fallback.DeclarationOutcome` it selected)."""
    codes = tuple(sorted(outcome.codes[k]))
    if any_control:
        carried, hits, revenue = outcome.done_any
    else:
        carried = hits = revenue = 0
        for code in codes:
            c, h, r = outcome.done.get(code, (0, 0, 0))
            carried, hits, revenue = carried + c, hits + h, revenue + r
    return SelectedRow(
        profile=profile,
        declaration=str(outcome.decl_id),
        date=_date(outcome.date),
        office=None if outcome.office is None else str(outcome.office),
        degree=outcome.degree[k],
        controls=codes,
        controls_carried=carried,
        hits=hits,
        revenue=money(revenue),
    )


@attrs.frozen
class Lists:
    """Where a backtest sends its full lists (each optional): every selected declaration, and
    every change of selection between the profiles of each ``--compare`` pair."""

    selected: Any = None  # Callable[[SelectedRow], None]
    changed: Any = None  # Callable[[ChangeRow], None]


def emit_lists(
    connection: Any,
    lists: Lists,
    keys: Sequence[str],
    pushed_pos: Mapping[int, int],
    fallback_rows: Mapping[int, Sequence[SelectedRow]],
    pairs: Sequence[tuple[int, int]],
    detail: Any,
    any_control: bool,
) -> None:
    """Send the lists to ``lists``: profiles in plan order (``keys``), each one's rows by
    declaration id. ``detail`` is the pushdown query of the pushed-down profiles built with
    their degrees (or ``None`` when every profile ran in Python); ``fallback_rows`` holds the
    rows of the others, by plan position."""
    by_pushed = {k: n for n, k in pushed_pos.items()}

    def sql_rows(query: Any) -> Iterator[SelectedRow]:
        for r in connection.execute(query.execution_options(stream_results=True)):
            m = r._mapping
            k = int(m["n"])
            yield row_from_sql(
                keys[by_pushed[k]], m, detail.controls[k], detail.code_names, any_control
            )

    if lists.selected is not None:
        stream = iter(sql_rows(detail.selected())) if detail is not None else iter(())
        pending = next(stream, None)
        for n, key in enumerate(keys):
            if n not in pushed_pos:
                for row in fallback_rows.get(n, ()):
                    lists.selected(row)
                continue
            while pending is not None and pending.profile == key:
                lists.selected(pending)
                pending = next(stream, None)
    if lists.changed is None:
        return
    for a, b in pairs:
        if a in pushed_pos and b in pushed_pos:
            qa, qb = pushed_pos[a], pushed_pos[b]
            for row in list(sql_rows(detail.changes(qa, qb))):
                lists.changed(ChangeRow(keys[a], keys[b], "newly_selected", row))
            for row in list(sql_rows(detail.changes(qb, qa))):
                lists.changed(ChangeRow(keys[a], keys[b], "no_longer_selected", row))
            continue

        def rows_of(n: int) -> list[SelectedRow]:
            if n in pushed_pos:
                return list(sql_rows(detail.selected([pushed_pos[n]])))
            return list(fallback_rows.get(n, ()))

        for change in changes(keys[a], keys[b], rows_of(a), rows_of(b)):
            lists.changed(change)
