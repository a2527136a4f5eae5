"""Demo data out: as input JSON, into the store (:func:`write_demo`), and as a customs-service-
style CSV export with its outcomes and controls, or JSON Lines (see ``docs/ingest.md``).

``riskengine/demo/examples/`` holds the ingest mappings of the exports.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.declaration import Declaration
from riskengine.demo.generate import DEFAULT_END, DEFAULT_START, DemoRecord, generate
from riskengine.store.schema import TABLES, StoreTables
from riskengine.store.writer import write_controls, write_declarations, write_outcomes

__all__ = [
    "EXPORT_COLUMNS",
    "DemoSummary",
    "export_csv",
    "export_jsonl",
    "export_outcomes_csv",
    "export_rows",
    "raw_declaration",
    "write_demo",
]


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *groups, last = name.split(".")
        node = out
        for group in groups:
            node = node.setdefault(group, {})
        node[last] = value.isoformat() if isinstance(value, dt.date) else value
    return out


def raw_declaration(record: DemoRecord | Declaration) -> dict[str, Any]:
    """The declaration as input JSON data (nested objects, ISO dates, ``items`` list)."""
    declaration = record.declaration if isinstance(record, DemoRecord) else record
    raw = _nest(dict(declaration.header))
    raw["items"] = [_nest(dict(item)) for item in declaration.items]
    return raw


@attrs.frozen
class DemoSummary:
    """What :func:`write_demo` stored."""

    declarations: int
    items: int
    outcomes: int
    not_completed: int
    controls: int
    violations: int


def _batches(records: Iterable[DemoRecord], size: int) -> Iterator[list[DemoRecord]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def write_demo(
    engine: sa.Engine,
    n: int,
    seed: int = 0,
    start: dt.date = DEFAULT_START,
    end: dt.date = DEFAULT_END,
    *,
    tables: StoreTables = TABLES,
    batch_size: int = 10_000,
    progress: Any = None,
) -> DemoSummary:
    """Generate ``n`` declarations and store them with their outcomes and controls.

    Each batch is one transaction. Declarations already in the store (same seed, same ids) are
    skipped, so running it twice adds nothing. ``progress(count)`` is called after each batch.
    """
    from riskengine.store.engine import database_errors
    from riskengine.store.migrate import ensure_schema

    counts = dict.fromkeys(
        ("declarations", "items", "outcomes", "not_completed", "controls", "violations"), 0
    )
    with database_errors(engine):
        with engine.begin() as connection:
            ensure_schema(connection, tables.catalogue)
        for batch in _batches(generate(n, seed, start, end), batch_size):
            with engine.begin() as connection:
                added = write_declarations(connection, [r.declaration for r in batch], tables)
                outcomes = write_outcomes(connection, [r.outcome for r in batch], tables)
                controls = write_controls(
                    connection, [c for r in batch for c in r.controls], tables
                )
            skipped = set(added.skipped)
            fresh = [r for r in batch if r.declaration.header["id"] not in skipped]
            counts["declarations"] += added.added
            counts["items"] += sum(len(r.declaration.items) for r in fresh)
            counts["outcomes"] += outcomes.added
            counts["not_completed"] += sum(1 for r in fresh if not r.outcome.completed)
            counts["controls"] += controls.added
            counts["violations"] += sum(1 for r in fresh if r.violation is not None)
            if progress is not None:
                progress(len(batch))
    return DemoSummary(**counts)


#: Columns of the demo CSV export, in order: (CSV column, catalogue path, kind of conversion).
#: The export imitates a clearance system's: Ukrainian dates, decimal commas, one row per item.
EXPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("DECL_ID", "declaration.id", "text"),
    ("DECL_NO", "declaration.number", "text"),
    ("DECL_DATE", "declaration.date", "date"),
    ("OFFICE", "declaration.office", "text"),
    ("DIRECTION", "declaration.direction", "text"),
    ("REGIME", "declaration.regime", "text"),
    ("DECLARANT", "declaration.declarant.id", "text"),
    ("DECLARANT_NAME", "declaration.declarant.name", "text"),
    ("AEO", "declaration.declarant.aeo", "bool"),
    ("IMPORTER", "declaration.importer.id", "text"),
    ("IMPORTER_NAME", "declaration.importer.name", "text"),
    ("EXPORTER", "declaration.exporter.id", "text"),
    ("EXPORTER_NAME", "declaration.exporter.name", "text"),
    ("EXPORTER_COUNTRY", "declaration.exporter.country", "text"),
    ("BROKER", "declaration.broker.id", "text"),
    ("DISPATCH", "declaration.dispatch_country", "text"),
    ("DESTINATION", "declaration.destination_country", "text"),
    ("TRADING", "declaration.trading_country", "text"),
    ("TRANSPORT", "declaration.transport.mode", "text"),
    ("VEHICLE_COUNTRY", "declaration.transport.nationality", "text"),
    ("BORDER_OFFICE", "declaration.border_office", "text"),
    ("DEST_OFFICE", "declaration.destination_office", "text"),
    ("INCOTERMS", "declaration.delivery_terms", "text"),
    ("CURRENCY", "declaration.currency", "text"),
    ("INVOICE_TOTAL", "declaration.invoice_total", "number"),
    ("RATE", "declaration.exchange_rate", "number"),
    ("ITEMS", "declaration.items_count", "number"),
    ("TRANSIT_DEADLINE", "declaration.transit_deadline", "date"),
    ("ITEM_NO", "item.number", "number"),
    ("HS", "item.hs_code", "text"),
    ("DESCRIPTION", "item.description", "text"),
    ("BRAND", "item.brand", "text"),
    ("MANUFACTURER", "item.manufacturer", "text"),
    ("PACKAGES", "item.packages", "number"),
    ("CONTAINER", "item.container", "text"),
    ("ORIGIN", "item.origin", "text"),
    ("GROSS", "item.gross_mass", "number"),
    ("NET", "item.net_mass", "number"),
    ("PREFERENCE", "item.preference", "text"),
    ("PROCEDURE", "item.procedure", "text"),
    ("SUPP_QTY", "item.supplementary_quantity", "number"),
    ("SUPP_UNIT", "item.supplementary_unit", "text"),
    ("INVOICE_VALUE", "item.invoice_value", "number"),
    ("VALUATION", "item.valuation_method", "text"),
    ("CUSTOMS_VALUE", "item.customs_value", "number"),
    ("DUTY", "item.duty_rate", "number"),
    ("EXCISE", "item.excise_rate", "number"),
    ("LICENCE", "item.licence", "text"),
    ("IP", "item.ip_registered", "bool"),
    ("PRECURSOR", "item.precursor", "bool"),
)


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "date":
        return str(value.strftime("%d.%m.%Y"))
    if kind == "bool":
        return "1" if value else "0"
    if kind == "number":
        text = repr(value) if isinstance(value, float) else str(value)
        if text.endswith(".0"):
            text = text[:-2]
        return text.replace(".", ",")
    return str(value)


def export_rows(records: Iterable[DemoRecord]) -> Iterator[list[str]]:
    """CSV rows (without the header line) of :data:`EXPORT_COLUMNS`, one per goods item."""
    header_plan = [(p.partition(".")[2], k) for _, p, k in EXPORT_COLUMNS if p.startswith("d")]
    item_plan = [(p.partition(".")[2], k) for _, p, k in EXPORT_COLUMNS if p.startswith("i")]
    for record in records:
        declaration = record.declaration
        head = [_cell(declaration.header.get(name), kind) for name, kind in header_plan]
        for item in declaration.items or ({},):
            yield head + [_cell(item.get(name), kind) for name, kind in item_plan]


def export_csv(records: Iterable[DemoRecord], path: str | Path, *, delimiter: str = ";") -> int:
    """Write the declarations as a one-row-per-item CSV export; returns the number of rows.

    ``riskengine/demo/examples/demo_export.toml`` is the ingest mapping of this layout.
    """
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow([name for name, _, _ in EXPORT_COLUMNS])
        for row in export_rows(records):
            writer.writerow(row)
            count += 1
    return count


def export_jsonl(records: Iterable[DemoRecord], path: str | Path) -> int:
    """Write the declarations as JSON Lines in the input format (one declaration a line)."""
    import json

    count = 0
    with open(path, "w", encoding="utf-8") as stream:
        for record in records:
            stream.write(json.dumps(raw_declaration(record), ensure_ascii=False))
            stream.write("\n")
            count += 1
    return count


def export_outcomes_csv(records: Iterable[DemoRecord], path: str | Path) -> tuple[int, int]:
    """Write outcomes and controls as two CSV files: ``path`` (outcomes: one row per reason) and
    ``path`` with ``.controls`` before the suffix. Returns the two row counts."""
    path = Path(path)
    controls_path = path.with_name(path.stem + ".controls" + path.suffix)
    outcomes = controls = 0
    with (
        open(path, "w", encoding="utf-8", newline="") as out_stream,
        open(controls_path, "w", encoding="utf-8", newline="") as ctl_stream,
    ):
        out = csv.writer(out_stream, delimiter=";")
        ctl = csv.writer(ctl_stream, delimiter=";")
        out.writerow(["DECL_ID", "STATUS", "STATUS_DATE", "REASON", "LODGED_AT", "RELEASED_AT"])
        ctl.writerow(["DECL_ID", "PROCEDURE", "PROFILE", "RANDOM", "RESULT", "REVENUE", "DATE"])
        for record in records:
            o = record.outcome
            status = "COMPLETED" if o.completed else "NOT_COMPLETED"
            for reason in o.reasons or ("",):
                times = [t.isoformat(timespec="minutes") if t else "" for t in
                         (o.lodged_at, o.released_at)]  # fmt: skip
                out.writerow([o.declaration_id, status, o.date.strftime("%d.%m.%Y"), reason,
                              *times])  # fmt: skip
                outcomes += 1
            for c in record.controls:
                ctl.writerow(
                    [
                        c.declaration_id,
                        c.procedure,
                        c.profile_key or "",
                        "1" if c.random_control else "0",
                        "VIOLATION" if c.violation_found else "NO_VIOLATION",
                        "" if c.revenue is None else str(c.revenue).replace(".", ","),
                        c.date.strftime("%d.%m.%Y"),
                    ]
                )
                controls += 1
    return outcomes, controls
