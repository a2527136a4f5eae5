"""Ingest throughput: a one-row-per-item CSV export into SQLite and PostgreSQL (and DuckDB).

Prints rows/s of ``riskengine ingest`` (parse, convert, group, check, store, in batches with the
progress record) and, as the baseline measured in the same run, the time of a bare bulk insert
of the same rows already converted (the backend's fastest path: executemany / COPY).

    python benchmarks/bench_ingest.py                      # 100,000 rows, SQLite + PostgreSQL
    python benchmarks/bench_ingest.py --rows 1000000       # the 1 M-row figure of the docs
    python benchmarks/bench_ingest.py --backend duckdb --rows 200000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskengine.store import demo, migrate  # noqa: E402
from riskengine.store.engine import connect  # noqa: E402
from riskengine.store.ingest import ingest_file  # noqa: E402
from riskengine.store.mapping import load_ingest_mapping  # noqa: E402
from riskengine.store.schema import TABLES  # noqa: E402
from riskengine.store.writer import insert_rows  # noqa: E402

MAPPING = ROOT / "riskengine" / "store" / "examples" / "demo_export.toml"
NARROW = ("DECL_ID", "DECL_DATE", "OFFICE", "REGIME", "DECLARANT", "IMPORTER", "DISPATCH",
          "ITEM_NO", "HS", "ORIGIN", "GROSS", "NET", "CUSTOMS_VALUE", "DUTY", "SUPP_QTY",
          "SUPP_UNIT")  # fmt: skip
PG_URL = os.environ.get(
    "RISKENGINE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def fresh_store(backend: str, folder: str) -> Iterator[sa.Engine]:
    """An empty, initialised store; dropped afterwards."""
    if backend in ("sqlite", "duckdb"):
        suffix = "db" if backend == "sqlite" else "duckdb"
        path = os.path.join(folder, f"bench-{uuid.uuid4().hex[:8]}.{suffix}")
        url = f"{backend}:///{path}"
        migrate.init(url)
        engine = connect(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    text = url.render_as_string(hide_password=False)
    try:
        migrate.init(text)
        engine = connect(text)
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def layout_columns(layout: str) -> list[tuple[str, str, str]]:
    """The export columns of a layout."""
    if layout == "full":
        return list(demo.EXPORT_COLUMNS)
    return [c for c in demo.EXPORT_COLUMNS if c[0] in NARROW]


def write_export(records: list[demo.DemoRecord], path: str, layout: str) -> tuple[int, str]:
    """Write the export; returns its row count and the text of its ingest mapping."""
    if layout == "full":
        return demo.export_csv(records, path), MAPPING.read_text(encoding="utf-8")
    import csv

    keep = [i for i, c in enumerate(demo.EXPORT_COLUMNS) if c[0] in NARROW]
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow([demo.EXPORT_COLUMNS[i][0] for i in keep])
        for row in demo.export_rows(records):
            writer.writerow([row[i] for i in keep])
            count += 1
    lines = [
        '[source]\nformat = "csv"\ndelimiter = ";"\ngroup_by = "DECL_ID"',
        '[defaults]\ndate_format = "%d.%m.%Y"\ndecimal_comma = true',
        "[fields]",
        *[f'"{p}" = "{c}"' for c, p, _ in layout_columns(layout)],
    ]
    return count, "\n".join(lines) + "\n"


def prepared_rows(
    records: list[demo.DemoRecord], layout: str
) -> tuple[list[str], list[tuple[object, ...]], list[str], list[tuple[object, ...]]]:
    """The rows the ingest stores, already converted: (header columns, rows, item columns, rows)."""
    columns = layout_columns(layout)
    header_paths = [p for _, p, _ in columns if p.startswith("declaration.")]
    item_paths = [p for _, p, _ in columns if p.startswith("item.")]
    header_columns = [TABLES.field_columns[p] for p in header_paths]
    item_columns = [TABLES.field_columns[p] for p in item_paths]
    header_names = [p.partition(".")[2] for p in header_paths]
    item_names = [p.partition(".")[2] for p in item_paths]
    headers = []
    items = []
    for pk, record in enumerate(records, start=1):
        d = record.declaration
        headers.append((pk, *[d.header.get(n) for n in header_names], None))
        for number, item in enumerate(d.items, start=1):
            items.append((pk, number, *[item.get(n) for n in item_names], None))
    return (
        ["pk", *header_columns, "ingest_batch"],
        headers,
        ["decl_pk", "item_no", *item_columns, "ingest_batch"],
        items,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="CSV item rows (approx.)")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "duckdb"])
    parser.add_argument("--batch-rows", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--layout",
        choices=["full", "narrow"],
        default="full",
        help="full: the 50-column demo export; narrow: 16 columns (ids, dates, goods, values)",
    )
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    declarations = max(1, round(args.rows / 2.11))
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        records = list(demo.generate(declarations, seed=args.seed))
        csv_path = os.path.join(folder, "export.csv")
        rows, mapping_text = write_export(records, csv_path, args.layout)
        mapping_path = os.path.join(folder, "mapping.toml")
        Path(mapping_path).write_text(mapping_text, encoding="utf-8")
        size = os.path.getsize(csv_path) / 1e6
        print(
            f"export: {rows:,} item rows of {declarations:,} declarations, {size:.0f} MB, "
            f"{len(layout_columns(args.layout))} columns "
            f"(made in {time.perf_counter() - began:.1f} s)"
        )
        mapping = load_ingest_mapping(mapping_path)
        header_cols, headers, item_cols, items = prepared_rows(records, args.layout)
        del records
        for backend in backends:
            with fresh_store(backend, folder) as engine:
                began = time.perf_counter()
                result = ingest_file(
                    engine, csv_path, mapping, batch_rows=args.batch_rows, rejects_path=None
                )
                ingest_seconds = time.perf_counter() - began
                assert result.rows == rows and result.rows_rejected == 0, result
            with fresh_store(backend, folder) as engine:
                began = time.perf_counter()
                chunk = 20_000
                for start in range(0, len(headers), chunk):
                    with engine.begin() as c:
                        insert_rows(
                            c, TABLES.declarations, header_cols, headers[start : start + chunk]
                        )
                for start in range(0, len(items), chunk):
                    with engine.begin() as c:
                        insert_rows(c, TABLES.items, item_cols, items[start : start + chunk])
                bare_seconds = time.perf_counter() - began
            print(
                f"{backend:10} ingest {rows / ingest_seconds:>9,.0f} rows/s "
                f"({ingest_seconds:6.1f} s)"
                f"   bare bulk insert of the same rows {rows / bare_seconds:>9,.0f} rows/s "
                f"({bare_seconds:6.1f} s)   ingest/bare time {ingest_seconds / bare_seconds:4.1f}x"
            )


if __name__ == "__main__":
    main()
