"""One logged decision: what the scorer decided for a declaration, as the store and the spool
keep it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from riskengine.declaration import Declaration
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator.engine import ScoreResult

__all__ = [
    "COLUMNS",
    "DecisionRecord",
    "Entry",
    "RecordError",
    "Row",
    "RowBuilder",
    "build_row",
    "entry_from_result",
    "row_from_json",
    "row_to_json",
]

#: The columns of ``decision_log`` in the order rows are written (COPY and executemany).
COLUMNS: tuple[str, ...] = (
    "declaration_id",
    "bundle_revision",
    "declaration_date",
    "as_of",
    "office",
    "regime",
    "selected",
    "lane",
    "random_selected",
    "fired",
    "controls",
    "scored_at",
)


class RecordError(RiskEngineError):
    """A decision that cannot be logged (no declaration id, no bundle revision)."""


#: A record as the writer handles it: the values of :data:`COLUMNS` in order, in the form
#: SQLite stores and PostgreSQL's COPY reads: dates as ISO text, ``scored_at`` as
#: ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as 0 / 1, ``fired`` and ``controls`` as JSON text.
Row = tuple[
    str, str, "str | None", str, "str | None", "str | None", int, str, "int | None", str, str,
    str,
]  # fmt: skip

_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@attrs.frozen
class DecisionRecord:
    """A row of ``decision_log``, as read back (:meth:`DecisionLog.read`, a spool's lines).

    ``fired``: one entry per fired profile, ``{"key", "number", "degree", "controls":
    [{"code", "kind"}], "items"}``; ``controls``: the combined controls ``[{"code", "kind"}]``.
    ``scored_at``: when it was recorded (UTC, naive as every time in the store).
    """

    declaration_id: str
    bundle_revision: str
    declaration_date: dt.date | None
    as_of: dt.date
    office: str | None
    regime: str | None
    selected: bool
    lane: str
    random_selected: bool | None
    fired: list[dict[str, Any]]
    controls: list[dict[str, str]]
    scored_at: dt.datetime

    @property
    def key(self) -> tuple[str, str]:
        """What makes a record unique: (declaration id, bundle revision)."""
        return (self.declaration_id, self.bundle_revision)

    def row(self) -> Row:
        """The record as the writer's row."""
        day = self.declaration_date
        chosen = self.random_selected
        return (
            self.declaration_id, self.bundle_revision, None if day is None else day.isoformat(),
            self.as_of.isoformat(), self.office, self.regime, int(self.selected), self.lane,
            None if chosen is None else int(chosen), _DUMP(self.fired), _DUMP(self.controls),
            self.scored_at.isoformat(" ", "microseconds"),
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: Row | Sequence[Any]) -> DecisionRecord:
        """From a writer's row or a row read from the table."""
        (ident, revision, day, as_of, office, regime, selected, lane, chosen, fired, controls,
         at) = row  # fmt: skip
        return cls(
            ident, revision, _date(day), _as_date(as_of), office, regime, bool(selected), lane,
            None if chosen is None else bool(chosen),
            json.loads(fired) if isinstance(fired, str) else fired,
            json.loads(controls) if isinstance(controls, str) else controls,
            at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at),
        )  # fmt: skip


def typed_row(row: Row) -> tuple[Any, ...]:
    """A row with Python values (dates, booleans, datetime; JSON still text)."""
    chosen = row[8]
    return (
        row[0], row[1], _date(row[2]), _as_date(row[3]), row[4], row[5], bool(row[6]), row[7],
        None if chosen is None else bool(chosen), row[9], row[10],
        dt.datetime.fromisoformat(row[11]),
    )  # fmt: skip


def row_to_json(row: Row) -> str:
    """One line of the spool file (no newline)."""
    return _DUMP(row)


def row_from_json(line: str) -> Row:
    """A row from a spool line (:class:`ValueError` when it is not one)."""
    data = json.loads(line)
    if not isinstance(data, list) or len(data) != len(COLUMNS):
        raise ValueError("not a decision record")
    if not all(isinstance(data[k], str) for k in (0, 1, 3, 7, 9, 10, 11)) or not isinstance(
        data[6], int
    ):
        raise ValueError("not a decision record")
    return tuple(data)


def _as_date(value: object) -> dt.date:
    found = _date(value)
    if found is None:
        raise ValueError(f"not a date: {value!r}")
    return found


def _date(value: object) -> dt.date | None:
    if value.__class__ is dt.date:
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


#: What the scoring thread hands the writer: the result, its revision, office, regime, the
#: declaration's date and the time it was recorded (nanoseconds since the epoch,
#: ``time.time_ns()``).
Entry = tuple[ScoreResult, str, object, object, object, int]


def entry_from_result(
    result: ScoreResult,
    declaration: Declaration | Mapping[str, Any] | None,
    revision: str | None,
    when: int,
) -> Entry:
    """Check what the scoring thread must check (an id, a revision) and take the few header
    values the record needs; the rest is built by the writer thread (:func:`build_row`).
    ``when``: nanoseconds since the epoch."""
    try:
        ident = result.declaration_id
    except AttributeError:
        raise TypeError(
            f"record(result, declaration): the result is a ScoreResult, not a "
            f"{type(result).__name__} (the arguments the other way round?)"
        ) from None
    if ident is None:
        raise RecordError(
            "a decision without a declaration id cannot be logged (records are keyed by "
            "declaration id and bundle revision)"
        )
    own = result.bundle_revision  # an int: the signed bundle's revision (docs/bundle.md)
    rev = str(own) if own is not None else revision
    if not rev:
        raise RecordError(
            "no bundle revision for the decision log: give DecisionLog(revision=...) or score "
            "with a bundle that has one"
        )
    kind = declaration.__class__
    if kind is Declaration:  # the common cases first: no ABC check
        header: Mapping[str, Any] = declaration.header  # type: ignore[union-attr]
    elif kind is dict:
        header = declaration  # type: ignore[assignment]
    elif isinstance(declaration, Declaration):
        header = declaration.header
    elif isinstance(declaration, Mapping):
        header = declaration
    else:
        return (result, rev, None, None, None, when)
    get = header.get
    return (result, rev, get("office"), get("regime"), get("date"), when)


_EPOCH = dt.datetime(1970, 1, 1)
_NONE = "[]"
#: Cache sizes past which a cache is emptied (values seen again are few: dates, seconds).
_CACHE_LIMIT = 4096


def _control_list(forms: Sequence[Any]) -> list[dict[str, str]]:
    return [{"code": c.code, "kind": c.kind.value} for c in forms]


class RowBuilder:
    """Builds the rows of entries (in the writer thread), keeping the text of the values that
    repeat (dates, the second of ``scored_at``, lanes) so that a row costs little more than its
    tuple. Not thread-safe: one per writer."""

    def __init__(self) -> None:
        self._dates: dict[object, str | None] = {}
        self._seconds: dict[int, str] = {}
        self._lanes: dict[object, str] = {}

    def rows(self, entries: Sequence[Entry]) -> list[Row]:
        """The rows of ``entries``, in order."""
        dates = self._dates
        seconds = self._seconds
        lanes = self._lanes
        if len(dates) > _CACHE_LIMIT:
            dates.clear()
        if len(seconds) > _CACHE_LIMIT:
            seconds.clear()
        out: list[Row] = []
        append = out.append
        date_class = dt.date
        last_when = -1
        at_text = ""
        for result, revision, office, regime, day, when in entries:
            as_of = result.as_of
            as_of_text = dates.get(as_of)
            if as_of_text is None:
                as_of_text = dates[as_of] = as_of.isoformat()
            if day.__class__ is date_class or day.__class__ is str:
                try:
                    day_text = dates[day]
                except KeyError:
                    day_text = dates[day] = _iso_date(day)
            else:
                day_text = _iso_date(day)
            if when != last_when:  # a batch recorded at once (record_many) shares its time
                last_when = when
                micro = when // 1000
                second = micro // 1_000_000
                prefix = seconds.get(second)
                if prefix is None:
                    prefix = seconds[second] = (_EPOCH + dt.timedelta(seconds=second)).isoformat(
                        " "
                    )
                at_text = f"{prefix}.{micro % 1_000_000:06d}"
            lane = result.lane
            lane_text = lanes.get(lane)
            if lane_text is None:
                lane_text = lanes[lane] = lane.value
            chosen = result.random_selected
            fired = result.fired
            if fired:
                fired_text, controls_text = _fired_json(result)
            else:
                fired_text = controls_text = _NONE
            assert result.declaration_id is not None  # checked by entry_from_result
            append((
                result.declaration_id, revision, day_text, as_of_text,
                office if office.__class__ is str else None,
                regime if regime.__class__ is str else None,
                1 if fired else 0, lane_text, None if chosen is None else int(chosen),
                fired_text, controls_text, at_text,
            ))  # fmt: skip
        return out


def _fired_json(result: ScoreResult) -> tuple[str, str]:
    fired = _DUMP(
        [
            {
                "key": f.key,
                "number": f.number,
                "degree": f.degree,
                "controls": _control_list(f.controls),
                "items": list(f.items),
            }
            for f in result.fired
        ]
    )
    return fired, _DUMP(_control_list(result.controls))


def build_row(entry: Entry) -> Row:
    """The row of one entry (:class:`RowBuilder` builds a batch's rows for less)."""
    return RowBuilder().rows([entry])[0]


def _iso_date(value: object) -> str | None:
    if value.__class__ is dt.date:
        return value.isoformat()
    found = _date(value)
    return None if found is None else found.isoformat()
