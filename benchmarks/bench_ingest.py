"""Ingest throughput: a one-row-per-item CSV export into SQLite and PostgreSQL (and DuckDB).

Prints rows/s of ``riskengine ingest`` (parse, convert, group, check, store, in batches with the
progress record) and, as the baseline measured in the same run, the time of a bare bulk insert
of the same rows already converted (by the ingest's own reader, before the clock starts) with
the backend's fastest path: SQLite executemany of tuples, PostgreSQL binary COPY, DuckDB COPY
from CSV. Also the ratio and the load average before and after each backend's pair of runs
(the machine may be shared: compare the two figures of one line, not lines of other runs).

    python benchmarks/bench_ingest.py                      # 100,000 rows, SQLite + PostgreSQL
    python benchmarks/bench_ingest.py --rows 1000000       # the 1 M-row figure of the docs
    python benchmarks/bench_ingest.py --backend duckdb --rows 200000
"""

from __future__ import annotations

import argparse
import contextlib
import io
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

from riskengine import demo  # noqa: E402
from riskengine.ingest import pipeline  # noqa: E402
from riskengine.ingest.batches import group_key, read_batches  # noqa: E402
from riskengine.ingest.mapping import IngestMapping, load_ingest_mapping  # noqa: E402
from riskengine.ingest.pipeline import ingest_file  # noqa: E402
from riskengine.ingest.read import csv_rows, groups  # noqa: E402
from riskengine.ingest.records import Declarations  # noqa: E402
from riskengine.store import migrate  # noqa: E402
from riskengine.store.engine import connect  # noqa: E402
from riskengine.store.schema import TABLES  # noqa: E402
from riskengine.store.writer import insert_rows  # noqa: E402

MAPPING = ROOT / "riskengine" / "demo" / "examples" / "demo_export.toml"
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


def converted_rows(
    csv_path: str, mapping: IngestMapping
) -> tuple[list[str], list[tuple[object, ...]], list[str], list[tuple[object, ...]]]:
    """The rows the ingest stores, converted by the ingest's own reader (not timed), with their
    keys: (header columns, header rows, item columns, item rows)."""
    header_cols: list[str] = []
    item_cols: list[str] = []
    headers: list[tuple[object, ...]] = []
    items: list[tuple[object, ...]] = []
    with open(csv_path, "rb") as raw:
        text = io.TextIOWrapper(
            raw, encoding=mapping.encoding, errors="surrogateescape", newline=""
        )
        header, rows = csv_rows(text, mapping)
        converter = Declarations(mapping, header, None, TABLES.field_columns)
        header_cols, item_cols = converter.header_columns, converter.item_columns
        key_of = group_key(mapping, header, converter)
        pk = 0
        for batch in read_batches(groups(rows, key_of), converter, mapping, 0,
                                     5_000, raw, grouped=key_of is not None):  # fmt: skip
            for _ident, values, item_values in batch.records:
                pk += 1
                headers.append((pk, *values, None))
                for number, item in enumerate(item_values, start=1):
                    items.append((pk, number, *item, None))
    return (
        ["pk", *header_cols, "ingest_batch"],
        headers,
        ["decl_pk", "item_no", *item_cols, "ingest_batch"],
        items,
    )


def bare_insert(
    engine: sa.Engine,
    header_cols: list[str],
    headers: list[tuple[object, ...]],
    item_cols: list[str],
    items: list[tuple[object, ...]],
) -> float:
    """Seconds for a bare bulk insert of the converted rows: the backend's fastest path
    (``insert_rows(checked=True)``: executemany of tuples / binary COPY / COPY from CSV), the
    same SQLite checkpoint interval as the ingest, 20,000 rows per transaction."""
    chunk = 20_000
    began = time.perf_counter()
    for table, columns, rows in (
        (TABLES.declarations, header_cols, headers),
        (TABLES.items, item_cols, items),
    ):
        for start in range(0, len(rows), chunk):
            with engine.begin() as c:
                if engine.dialect.name == "sqlite":
                    c.exec_driver_sql(f"PRAGMA wal_autocheckpoint={pipeline.SQLITE_WAL_PAGES}")
                insert_rows(c, table, columns, rows[start : start + chunk], checked=True)
    if engine.dialect.name == "sqlite":
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="CSV item rows (approx.)")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "duckdb"])
    parser.add_argument(
        "--batch-rows", type=int, default=pipeline.DEFAULT_BATCH_ROWS, help="as riskengine ingest"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--layout",
        choices=["full", "narrow"],
        default="full",
        help="full: the 50-column demo export; narrow: 16 columns (ids, dates, goods, values)",
    )
    parser.add_argument(
        "--parallel",
        choices=["auto", "yes", "no"],
        default="auto",
        help="convert in a second process (ingest_file's parallel=): auto (default) decides by "
        "file size and cores",
    )
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    parallel = {"auto": None, "yes": True, "no": False}[args.parallel]
    declarations = max(1, round(args.rows / 2.11))
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        records = list(demo.generate(declarations, seed=args.seed))
        csv_path = os.path.join(folder, "export.csv")
        rows, mapping_text = write_export(records, csv_path, args.layout)
        del records
        mapping_path = os.path.join(folder, "mapping.toml")
        Path(mapping_path).write_text(mapping_text, encoding="utf-8")
        size = os.path.getsize(csv_path) / 1e6
        columns = len(layout_columns(args.layout))
        print(
            f"export: {rows:,} item rows of {declarations:,} declarations, {size:.0f} MB, "
            f"{columns} columns (made in {time.perf_counter() - began:.1f} s)"
        )
        mapping = load_ingest_mapping(mapping_path)
        header_cols, headers, item_cols, items = converted_rows(csv_path, mapping)
        for backend in backends:
            load = os.getloadavg()[0]
            with fresh_store(backend, folder) as engine:
                began = time.perf_counter()
                result = ingest_file(
                    engine, csv_path, mapping, batch_rows=args.batch_rows, rejects_path=None,
                    parallel=parallel,
                )  # fmt: skip
                ingest_seconds = time.perf_counter() - began
                assert result.rows == rows and result.rows_rejected == 0, result
            with fresh_store(backend, folder) as engine:
                bare_seconds = bare_insert(engine, header_cols, headers, item_cols, items)
            print(
                f"{backend:10} {rows:,} rows x {columns} columns   "
                f"ingest {rows / ingest_seconds:>9,.0f} rows/s ({ingest_seconds:6.1f} s)   "
                f"bare bulk insert {rows / bare_seconds:>9,.0f} rows/s ({bare_seconds:6.1f} s)   "
                f"ingest/bare time {ingest_seconds / bare_seconds:4.2f}x   "
                f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
