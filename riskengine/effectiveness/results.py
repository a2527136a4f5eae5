"""Results of application of one profile over a period (seed 003 §9.3), from the decision log and
the control results.

Where each figure comes from (``docs/effectiveness.md`` says the same for the risk unit):

* the **period** is ``from`` .. ``to``, both inclusive; a decision counts on its declaration's
  date (``decision_log.declaration_date``, or the date it was scored on when the declaration had
  none), a control result on its declaration's date (``declarations.date``), as in the KPIs;
* a declaration counts once, however many bundle revisions scored it: the profile **fired** on it
  when any logged decision in the period fired it (its number, or its key for a draft);
* controls **ordered**: the profile's own control forms in the log's ``fired`` entry; **carried
  out**: a row of ``control_results`` whose ``profile_key`` is the profile, not a random control;
* a **controlled** declaration is one with a control carried out at the profile's order; it is a
  **hit** (a violation found) when any of those controls found one; the **hit rate** is hits /
  controlled declarations, with its Wilson 95 % interval;
* the **random sample** is every declaration the decision log marks ``random_selected`` and every
  declaration with a control result marked ``random_control``; its **hit rate** is the share of
  its controlled declarations where any control found a violation;
* **revenue**: the additional charges (``control_results.revenue``) of the profile's controls;
* **detection share**: the profile's hits / every declaration where any control found a
  violation;
* **overlap**: the share of the declarations it fired on where another profile fired too;
* **missed by its forms**: declarations it fired on whose own controls found nothing while another
  control of the same declaration found a violation.

The decision log holds, per fired profile, its number, degree, control forms and the goods items
it fired on; it does **not** hold which indicators were true (:data:`INDICATOR_NOTE`). All SQL is
SQLAlchemy Core with bound parameters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.diagnostics import RiskEngineError
from riskengine.kpi.metrics import percent, wilson
from riskengine.store.schema import StoreTables

__all__ = [
    "INDICATOR_NOTE",
    "EffectivenessError",
    "FormFigures",
    "IndicatorFiring",
    "Rate",
    "Results",
    "Slice",
    "compute_results",
    "months_of",
    "with_registry",
]

INDICATOR_NOTE = (
    "per-indicator firing cannot be computed: the decision log records, per fired profile, its "
    "number, degree, control forms and goods items, not which indicators were true; the degrees "
    "below are what the log allows (a degree is the sum of the true indicators' weights), and "
    "--profile FILE adds the indicators' counts from a backtest of the profile's text"
)


class EffectivenessError(RiskEngineError):
    """Results that cannot be computed (no decision log in the store, a bad period)."""


@attrs.frozen
class Rate:
    """``hits`` of ``n``; ``value`` and ``interval`` (Wilson 95 %) in per cent, ``None`` for
    n = 0."""

    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return percent(self.hits, self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        found = wilson(self.hits, self.n)
        return None if found is None else (100.0 * found[0], 100.0 * found[1])


@attrs.frozen
class Slice:
    """The figures of one group: the whole period, an office, or a month."""

    label: str
    decisions: int  # declarations scored (decision log)
    fired: int  # ... on which the profile fired
    ordered: int  # ... of which the profile ordered at least one control form
    carried_out: int  # ... of which a control ordered by the profile was carried out
    controlled: int  # declarations with a control carried out at the profile's order
    violations: int  # ... of which one of those controls found a violation
    revenue: float  # additional charges assessed by the profile's controls
    detections: int  # declarations where any control found a violation
    random: Rate  # the random sample: controlled, with a violation found

    @property
    def hit_rate(self) -> Rate:
        return Rate(self.violations, self.controlled)

    @property
    def selectivity(self) -> float | None:
        """Per cent of the declarations scored on which the profile fired."""
        return percent(self.fired, self.decisions)

    @property
    def carried_out_share(self) -> float | None:
        """Per cent of the declarations it ordered controls on where one was carried out."""
        return percent(self.carried_out, self.ordered)

    @property
    def detection_share(self) -> float | None:
        """Per cent of all detections that the profile's controls made."""
        return percent(self.violations, self.detections)


@attrs.frozen
class FormFigures:
    """One control form of the profile: declarations it was ordered on, and carried out on."""

    code: str
    kind: str
    ordered: int
    carried_out: int


@attrs.frozen
class IndicatorFiring:
    """The backtest of the profile's text over the period (:mod:`~riskengine.effectiveness.
    indicators`): the declarations it selects, and per indicator the declarations (and goods
    items) on which it was true."""

    source: str
    key: str
    name: str
    considered: int
    selected: int
    counts: tuple[tuple[str, int, int], ...]  # name, declarations, items


@attrs.frozen
class Results:
    """The results of application of one profile over a period."""

    number: str
    start: dt.date
    end: dt.date
    total: Slice
    offices: tuple[Slice, ...]
    months: tuple[Slice, ...]
    forms: tuple[FormFigures, ...]
    overlap: int  # declarations it fired on where another profile fired too
    overlap_with: tuple[tuple[str, int], ...]  # the other profiles, most shared first
    missed: int  # its controls found nothing, another control on the declaration did
    unlogged: int  # its controlled declarations on which the log shows no firing of it
    degrees: tuple[tuple[float, int], ...]  # degree → declarations, ascending
    revisions: tuple[str, ...]  # bundle revisions that fired it
    name: str | None = None  # from the registry, when it knows the profile
    registry_note: str = ""
    indicator_note: str = INDICATOR_NOTE
    firing: IndicatorFiring | None = None  # per indicator, from a backtest of its text

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def overlap_share(self) -> float | None:
        return percent(self.overlap, self.total.fired)

    @property
    def last_month(self) -> Slice | None:
        return self.months[-1] if self.months else None


def months_of(start: dt.date, end: dt.date) -> list[str]:
    """The months ``YYYY-MM`` the period touches, in order."""
    out: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def matcher(number: str) -> tuple[str, bool]:
    """(the number as given, whether it names every edition): ``2A/08/2013/00117`` (no edition
    suffix ``-VV``) matches all its editions, ``2A/08/2013/00117-04`` that edition only."""
    text = number.strip()
    if not text:
        raise EffectivenessError("the profile number is empty")
    base, _, edition = text.rpartition("-")
    whole = not (base and edition.isdigit() and text.count("/") == 3)
    return text, whole and text.count("/") == 3


def _matches(value: object, number: str, every_edition: bool) -> bool:
    if not isinstance(value, str):
        return False
    return value == number or (every_edition and value.startswith(number + "-"))


def _key_condition(column: Any, number: str, every_edition: bool) -> Any:
    if every_edition:
        return sa.or_(column == number, column.startswith(number + "-", autoescape=True))
    return column == number


def _day(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _json(value: object) -> list[dict[str, Any]]:
    data = json.loads(value) if isinstance(value, (str, bytes)) else value
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


@attrs.define
class _Fired:
    office: str | None
    day: dt.date
    ordered: dict[str, str] = attrs.Factory(dict)  # code -> kind
    others: set[str] = attrs.Factory(set)
    degree: float | None = None


@attrs.define
class _Controls:
    office: str | None
    day: dt.date
    own: list[tuple[str, bool, float]] = attrs.Factory(list)  # procedure, violation, revenue
    random: bool = False
    any_violation: bool = False
    other_violation: bool = False


def compute_results(
    conn: sa.Connection, tables: StoreTables, number: str, start: dt.date, end: dt.date
) -> Results:
    """The results of application of the profile ``number`` from ``start`` to ``end``."""
    if end < start:
        raise EffectivenessError(f"the period ends ({end}) before it starts ({start})")
    if not sa.inspect(conn).has_table(tables.decision_log.name):
        raise EffectivenessError(
            "the store has no decision log (schema revision r0007 or later: run `riskengine db "
            "upgrade`)"
        )
    wanted, every = matcher(number)
    dl = tables.decision_log
    day = sa.func.coalesce(dl.c.declaration_date, dl.c.as_of)
    in_period = sa.or_(
        dl.c.declaration_date.between(start, end),
        sa.and_(dl.c.declaration_date.is_(None), dl.c.as_of.between(start, end)),
    )
    # the JSON text of a fired entry starts with the number or key as the writer encodes it;
    # this narrows the rows read, and every row read is checked in Python
    encoded = json.dumps(wanted, ensure_ascii=False)[:-1]
    if not every:
        encoded += '"'
    mentions = sa.cast(dl.c.fired, sa.Text).contains(encoded, autoescape=True)

    # 1. declarations scored, per office and day
    volumes: dict[tuple[str | None, dt.date], int] = {}
    volume_query = (
        sa.select(dl.c.office, day.label("day"), sa.func.count(sa.distinct(dl.c.declaration_id)))
        .where(in_period)
        .group_by(dl.c.office, day)
    )
    for office, when, count in conn.execute(volume_query):
        key = (office, _day(when))
        volumes[key] = volumes.get(key, 0) + int(count)

    # 2. the decisions that fired the profile
    fired: dict[str, _Fired] = {}
    revisions: set[str] = set()
    degrees: Counter[float] = Counter()
    fired_query = sa.select(
        dl.c.declaration_id, dl.c.bundle_revision, dl.c.office, day.label("day"), dl.c.fired
    ).where(in_period, mentions)
    for ident, revision, office, when, entries in conn.execute(fired_query):
        parsed = _json(entries)
        own = [
            e for e in parsed
            if _matches(e.get("number"), wanted, every) or _matches(e.get("key"), wanted, every)
        ]  # fmt: skip
        if not own:
            continue
        revisions.add(str(revision))
        record = fired.get(ident)
        if record is None:
            record = fired[ident] = _Fired(office, _day(when))
        for entry in own:
            for form in entry.get("controls") or ():
                if isinstance(form, dict) and isinstance(form.get("code"), str):
                    record.ordered.setdefault(form["code"], str(form.get("kind", "")))
            degree = entry.get("degree")
            if isinstance(degree, (int, float)) and (
                record.degree is None or degree > record.degree
            ):
                record.degree = float(degree)
        for entry in parsed:
            if entry in own:
                continue
            other = entry.get("number") or entry.get("key")
            if isinstance(other, str):
                record.others.add(other)
    for record in fired.values():
        if record.degree is not None:
            degrees[record.degree] += 1

    # 3. the control results that matter: the profile's own, and every control result of the
    #    declarations it fired on and of the random sample
    d, cr = tables.declarations, tables.control_results
    ident_col = tables.column("declaration.id")
    date_col = tables.column("declaration.date")
    office_col = tables.column("declaration.office")
    random_ids = sa.select(dl.c.declaration_id).where(in_period, dl.c.random_selected.is_(True))
    own_key = _key_condition(cr.c.profile_key, wanted, every)
    chosen_at_random = {str(row[0]) for row in conn.execute(random_ids.distinct())}
    # the declarations with a control of its own or a random control, from control_results
    # alone (a control is never dated before its declaration: those since the period's start)
    pks = [
        row[0]
        for row in conn.execute(
            sa.select(cr.c.decl_pk)
            .where(cr.c.date >= start, sa.or_(own_key, cr.c.random_control.is_(True)))
            .distinct()
        )
    ]
    columns = (
        cr.c.pk, ident_col, office_col, date_col, cr.c.procedure, cr.c.profile_key,
        cr.c.random_control, cr.c.violation_found, cr.c.revenue,
    )  # fmt: skip
    joined = sa.select(*columns).select_from(cr.join(d, d.c.pk == cr.c.decl_pk))
    in_dates = date_col.between(start, end)
    # every control result of those, of the declarations it fired on and of those chosen at
    # random: looked up by key, a chunk of keys at a time
    statements = [joined.where(in_dates, d.c.pk.in_(chunk)) for chunk in _chunks(sorted(pks))]
    ids = sorted(fired.keys() | chosen_at_random)
    statements += [joined.where(in_dates, ident_col.in_(chunk)) for chunk in _chunks(ids)]
    controls: dict[str, _Controls] = {}
    seen: set[Any] = set()
    rows = (row for statement in statements for row in conn.execute(statement))
    for pk, ident, office, when, procedure, key, is_random, violation, revenue in rows:
        if pk in seen:
            continue
        seen.add(pk)
        held = controls.get(ident)
        if held is None:
            held = controls[ident] = _Controls(office, _day(when))
        found = bool(violation)
        held.any_violation |= found
        if is_random:
            held.random = True
        if not is_random and _matches(key, wanted, every):
            held.own.append((str(procedure), found, float(revenue or 0)))
        elif found:
            held.other_violation = True

    # 4. every detection, per office and day
    detections: dict[tuple[str | None, dt.date], int] = {}
    detection_query = (
        sa.select(office_col, date_col, sa.func.count(sa.distinct(d.c.pk)))
        .select_from(cr.join(d, d.c.pk == cr.c.decl_pk))
        .where(date_col.between(start, end), cr.c.violation_found.is_(True))
        .group_by(office_col, date_col)
    )
    for office, when, count in conn.execute(detection_query):
        key = (office, _day(when))
        detections[key] = detections.get(key, 0) + int(count)

    return _assemble(
        wanted, start, end, volumes, fired, controls, chosen_at_random, detections, degrees,
        revisions,
    )  # fmt: skip


#: Keys per statement when control results are looked up by key (well under every backend's
#: limit of bound parameters).
CHUNK = 1000


def _chunks(keys: Sequence[Any]) -> list[Sequence[Any]]:
    return [keys[i : i + CHUNK] for i in range(0, len(keys), CHUNK)]


def _slice(
    label: str,
    keep: Any,
    volumes: Mapping[tuple[str | None, dt.date], int],
    fired: Mapping[str, _Fired],
    controls: Mapping[str, _Controls],
    chosen: set[str],
    detections: Mapping[tuple[str | None, dt.date], int],
) -> Slice:
    """The figures of the declarations whose (office, day) ``keep`` accepts."""
    mine = {k: v for k, v in fired.items() if keep(v.office, v.day)}
    ordered = {k for k, v in mine.items() if v.ordered}
    own = {k: v for k, v in controls.items() if v.own and keep(v.office, v.day)}
    sample = [
        v for k, v in controls.items()
        if (v.random or k in chosen) and keep(v.office, v.day)
    ]  # fmt: skip
    return Slice(
        label=label,
        decisions=sum(n for (office, day), n in volumes.items() if keep(office, day)),
        fired=len(mine),
        ordered=len(ordered),
        carried_out=len(ordered & own.keys()),
        controlled=len(own),
        violations=sum(1 for v in own.values() if any(found for _, found, _ in v.own)),
        revenue=sum(r for v in own.values() for _, _, r in v.own),
        detections=sum(n for (office, day), n in detections.items() if keep(office, day)),
        random=Rate(sum(1 for v in sample if v.any_violation), len(sample)),
    )


def _assemble(
    number: str,
    start: dt.date,
    end: dt.date,
    volumes: dict[tuple[str | None, dt.date], int],
    fired: dict[str, _Fired],
    controls: dict[str, _Controls],
    chosen: set[str],
    detections: dict[tuple[str | None, dt.date], int],
    degrees: Counter[float],
    revisions: set[str],
) -> Results:
    def parts(label: str, keep: Any) -> Slice:
        return _slice(label, keep, volumes, fired, controls, chosen, detections)

    total = parts("all", lambda office, day: True)
    office_names: set[str] = {o for o, _ in volumes if o is not None}
    office_names |= {v.office for v in fired.values() if v.office is not None}
    office_names |= {v.office for v in controls.values() if v.own and v.office is not None}
    offices = tuple(
        parts(f"office {name}", lambda office, day, name=name: office == name)
        for name in sorted(office_names)
    )
    months = tuple(
        parts(month, lambda office, day, month=month: _month(day) == month)
        for month in months_of(start, end)
    )
    kinds: dict[str, str] = {}
    ordered: Counter[str] = Counter()
    carried: Counter[str] = Counter()
    for ident, record in fired.items():
        for code, kind in record.ordered.items():
            kinds.setdefault(code, kind)
            ordered[code] += 1
        entry = controls.get(ident)
        if entry is not None:
            for code in {procedure for procedure, _, _ in entry.own}:
                kinds.setdefault(code, "not ordered")
                carried[code] += 1
    forms = tuple(
        FormFigures(code, kinds[code], ordered[code], carried[code]) for code in sorted(kinds)
    )
    shared: Counter[str] = Counter()
    for record in fired.values():
        shared.update(record.others)
    missed = sum(
        1
        for ident in fired
        if (c := controls.get(ident)) is not None
        and c.own
        and not any(found for _, found, _ in c.own)
        and c.other_violation
    )
    unlogged = sum(1 for ident, c in controls.items() if c.own and ident not in fired)
    return Results(
        number=number,
        start=start,
        end=end,
        total=total,
        offices=offices,
        months=months,
        forms=forms,
        overlap=sum(1 for record in fired.values() if record.others),
        overlap_with=tuple(sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))),
        missed=missed,
        unlogged=unlogged,
        degrees=tuple(sorted(degrees.items())),
        revisions=tuple(sorted(revisions)),
    )


def with_registry(conn: sa.Connection, results: Results) -> Results:
    """The results with the profile's name and editions from the registry, when it knows it."""
    from riskengine.registry.casefile import read_case_file

    if not sa.inspect(conn).has_table("profiles"):
        return attrs.evolve(results, registry_note="the store has no registry")
    try:
        case = read_case_file(conn, results.number)
    except RiskEngineError:
        return attrs.evolve(results, registry_note="not in the registry")
    editions = _editions(case.editions, results.start, results.end)
    note = f"registry: {case.state}" + (f"; editions in force: {editions}" if editions else "")
    return attrs.evolve(results, name=case.name, registry_note=note)


def _editions(editions: Iterable[Any], start: dt.date, end: dt.date) -> str:
    shown = []
    for e in editions:
        last = e.in_force_to
        if e.withdrawn or e.in_force_from > end or (last is not None and last < start):
            continue
        shown.append(f"{e.number} ({e.in_force_from} .. {last or 'open'})")
    return ", ".join(shown)
