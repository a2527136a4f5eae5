"""Bring your own tables: history runs on a customs service's own schema, without copying, and
gives the same numbers as on the store's tables."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from riskengine import demo
from riskengine import model as m
from riskengine.byo.mapping import MappingError, parse_byo_mapping
from riskengine.byo.source import load_source
from riskengine.store import reflect
from riskengine.store.engine import connect
from riskengine.store.history import history_for_range, lookup_history
from riskengine.store.schema import TABLES

RECORDS = list(demo.generate(400, seed=5, start=dt.date(2024, 1, 1), end=dt.date(2024, 3, 31)))

BLOCKS = {
    "declarant and heading": m.History(
        subjects=(
            m.HistorySubject(m.FieldRef("declaration.declarant.id")),
            m.HistorySubject(m.FieldRef("item.hs_code"), 4),
        ),
        window_days=60,
        negative=m.NegativeHistory(
            max=Decimal(30),
            per_case=Decimal(10),
            reasons=(
                m.ReasonCoefficient("0201", Decimal("1.0")),
                m.ReasonCoefficient("0901", Decimal("0.6")),
                m.ReasonCoefficient("1301", Decimal("0.3")),
            ),
        ),
        positive=m.PositiveHistory(max=Decimal(20), step=Decimal(2)),
    ),
    "importer": m.History(
        subjects=(m.HistorySubject(m.FieldRef("declaration.importer.id")),),
        window_days=30,
        negative=m.NegativeHistory(
            max=Decimal(40),
            per_case=Decimal(15),
            reasons=tuple(
                m.ReasonCoefficient(code, Decimal(1))
                for code in ("0602", "0702", "0502", "0302", "1001", "0201", "0901")
            ),
        ),
        positive=m.PositiveHistory(max=Decimal(10), step=Decimal(1)),
    ),
}

MAPPING = """
# The customs service's schema: GTD headers, goods, statuses, refusal reasons, control acts.
[declarations]
table = "gtd_head"
schema = "{schema}"
key = "gtd_id"

[declarations.fields]
"declaration.id" = "gtd_number"
"declaration.date" = "reg_date"
"declaration.declarant.id" = "edrpou"
"declaration.importer.id" = "importer_code"
"declaration.office" = "post_code"

[items]
table = "gtd_goods"
schema = "{schema}"
declaration = "gtd_id"
number = "g32"

[items.fields]
"item.hs_code" = "g33"
"item.origin" = "g34"
"item.net_mass" = "g38"

[outcomes]
table = "gtd_status"
schema = "{schema}"
declaration = "gtd_id"
completed = {{ column = "status", true_values = ["CLOSED"] }}
date = "status_date"

[outcome_reasons]
table = "gtd_refusals"
schema = "{schema}"
declaration = "gtd_id"
reason = "reason_code"

[controls]
table = "gtd_controls"
schema = "{schema}"
declaration = "gtd_id"
procedure = "form_code"
date = "done_on"
violation_found = {{ column = "result", false_values = ["OK"] }}
profile = "inspector_profile"
"""


def _foreign_tables(schema: str) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData(schema=schema)
    tables = {
        "head": sa.Table(
            "gtd_head", md,
            sa.Column("gtd_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("gtd_number", sa.String(40), nullable=False),
            sa.Column("reg_date", sa.Date, nullable=False),
            sa.Column("edrpou", sa.String(10)),
            sa.Column("importer_code", sa.String(10)),
            sa.Column("post_code", sa.String(10)),
        ),
        "goods": sa.Table(
            "gtd_goods", md,
            sa.Column("gtd_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("g32", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("g33", sa.String(10)),
            sa.Column("g34", sa.String(2)),
            sa.Column("g38", sa.Float),
        ),
        "status": sa.Table(
            "gtd_status", md,
            sa.Column("gtd_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("status", sa.String(10), nullable=False),
            sa.Column("status_date", sa.Date, nullable=False),
        ),
        "refusals": sa.Table(
            "gtd_refusals", md,
            sa.Column("gtd_id", sa.Integer, nullable=False),
            sa.Column("reason_code", sa.String(4), nullable=False),
        ),
        "controls": sa.Table(
            "gtd_controls", md,
            sa.Column("gtd_id", sa.Integer, nullable=False),
            sa.Column("form_code", sa.String(5), nullable=False),
            sa.Column("done_on", sa.Date, nullable=False),
            sa.Column("result", sa.String(3), nullable=False),
            sa.Column("inspector_profile", sa.String(30)),
        ),
    }  # fmt: skip
    return md, tables


def _fill(connection: sa.Connection, tables: dict[str, sa.Table]) -> dict[int, str]:
    """The demo records in the foreign layout; keys unlike the store's (7, 14, 21...)."""
    numbers = {}
    for index, record in enumerate(RECORDS):
        key = 7 * (index + 1)
        header = record.declaration.header
        numbers[key] = header["id"]
        connection.execute(tables["head"].insert().values(
            gtd_id=key, gtd_number=header["id"], reg_date=header["date"],
            edrpou=header.get("declarant.id"), importer_code=header.get("importer.id"),
            post_code=header.get("office"),
        ))  # fmt: skip
        for number, item in enumerate(record.declaration.items, start=1):
            connection.execute(tables["goods"].insert().values(
                gtd_id=key, g32=number, g33=item.get("hs_code"), g34=item.get("origin"),
                g38=item.get("net_mass"),
            ))  # fmt: skip
        outcome = record.outcome
        connection.execute(tables["status"].insert().values(
            gtd_id=key, status="CLOSED" if outcome.completed else "REFUSED",
            status_date=outcome.date,
        ))  # fmt: skip
        for code in outcome.reasons:
            connection.execute(tables["refusals"].insert().values(gtd_id=key, reason_code=code))
        for control in record.controls:
            connection.execute(tables["controls"].insert().values(
                gtd_id=key, form_code=control.procedure, done_on=control.date,
                result="V" if control.violation_found else "OK",
                inspector_profile=control.profile_key,
            ))  # fmt: skip
    return numbers


@pytest.fixture
def foreign(db_url: str, tmp_path: Path) -> Iterator[tuple[sa.Engine, str]]:
    """An engine on a database holding the customs service's schema (and no riskengine tables):
    an attached database on SQLite, a schema on PostgreSQL and DuckDB."""
    engine = connect(db_url)
    backend = engine.dialect.name
    schema = "customs" if backend != "postgresql" else f"customs_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        attached = os.path.join(tmp_path, "customs.db")

        @sa.event.listens_for(engine, "connect")
        def attach(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("ATTACH DATABASE ? AS customs", (attached,))
            cursor.close()

    else:
        with engine.begin() as connection:
            connection.execute(sa.schema.CreateSchema(schema))
    md, tables = _foreign_tables(schema)
    try:
        md.create_all(engine)
        with engine.begin() as connection:
            _fill(connection, tables)
        yield engine, schema
    finally:
        if backend == "postgresql":
            with engine.begin() as connection:
                connection.execute(sa.schema.DropSchema(schema, cascade=True))
        engine.dispose()


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[tuple[str, int | None], tuple[float, float]]]:
    """History of every goods item computed on the store's own tables (SQLite)."""
    path = tmp_path_factory.mktemp("reference") / "store.db"
    engine = connect(f"sqlite:///{path}")
    demo.write_demo(engine, len(RECORDS), seed=5, start=dt.date(2024, 1, 1),
                    end=dt.date(2024, 3, 31))  # fmt: skip
    out = {}
    with engine.connect() as connection:
        ids = dict(connection.execute(sa.select(TABLES.declarations.c.pk,
                                                TABLES.declarations.c.id)).all())  # fmt: skip
        for name, block in BLOCKS.items():
            out[name] = {
                (ids[h.decl_pk], h.item_no): (h.negative, h.positive)
                for h in history_for_range(connection, block)
            }
    engine.dispose()
    return out


def _mapping_file(tmp_path: Path, schema: str) -> str:
    path = tmp_path / "customs.toml"
    path.write_text(MAPPING.format(schema=schema), encoding="utf-8")
    return str(path)


def test_history_on_the_users_tables_equals_history_on_the_store(
    foreign: tuple[sa.Engine, str],
    reference: dict[str, dict[tuple[str, int | None], tuple[float, float]]],
    tmp_path: Path,
) -> None:
    engine, schema = foreign
    with engine.connect() as connection:
        source = load_source(connection, _mapping_file(tmp_path, schema))
        numbers = dict(connection.execute(sa.select(source.declarations.c.pk,
                                                    source.declarations.c.id)).all())  # fmt: skip
        for name, block in BLOCKS.items():
            found = {
                (numbers[h.decl_pk], h.item_no): (h.negative, h.positive)
                for h in history_for_range(connection, block, source)
            }
            assert found == reference[name], name
            assert any(v != (0.0, 0.0) for v in found.values()), f"{name}: no history at all"
        # the single lookup reads the same tables
        block = BLOCKS["importer"]
        busiest = max(reference["importer"].items(), key=lambda kv: kv[1])
        decl_id, _item_no = busiest[0]
        record = next(r for r in RECORDS if r.declaration.header["id"] == decl_id)
        value = lookup_history(
            connection, block, (record.declaration.header["importer.id"],),
            record.declaration.header["date"], source,
        )  # fmt: skip
        assert (value.negative, value.positive) == busiest[1]
        assert value.records
        # nothing was copied: the database has no riskengine tables
        assert not reflect.has_table(connection, "declarations")


def test_the_mapping_is_checked_against_the_database(
    foreign: tuple[sa.Engine, str], tmp_path: Path
) -> None:
    engine, schema = foreign
    text = MAPPING.format(schema=schema)
    cases = {
        'key = "gtd_id"': ('key = "gtd_idd"', "has no column 'gtd_idd'; did you mean 'gtd_id'?"),
        'table = "gtd_goods"': ('table = "gtd_goods; DROP TABLE gtd_head"', "no table or view"),
        '"item.origin" = "g34"': ('"item.origin" = "g35"', "has no column 'g35'"),
        '"item.net_mass" = "g38"': ('"item.net_mass" = "g33"', "a number field needs a numeric"),
    }
    with engine.connect() as connection:
        for old, (new, message) in cases.items():
            mapping = parse_byo_mapping(text.replace(old, new), "customs.toml")
            with pytest.raises(MappingError, match=message.replace("?", r"\?")) as info:
                mapping.source(connection)
            line = next(n for n, t in enumerate(text.replace(old, new).splitlines(), 1) if new in t)
            assert str(info.value).startswith(f"customs.toml:{line}: "), str(info.value)
        assert reflect.has_table(connection, "gtd_head", schema)  # nothing was dropped


def test_mapping_syntax_errors() -> None:
    with pytest.raises(MappingError, match="needs a \\[items\\] section"):
        parse_byo_mapping('[declarations]\ntable = "t"\nkey = "k"\n')
    with pytest.raises(MappingError, match=r"did you mean 'declaration\.importer\.id'"):
        parse_byo_mapping(MAPPING.format(schema="s").replace("importer.id", "importer.idd"))
    with pytest.raises(
        MappingError, match=r"item.brand is a item field: map it in \[items.fields\]"
    ):
        parse_byo_mapping(MAPPING.format(schema="s").replace('"declaration.office"',
                                                             '"item.brand"'))  # fmt: skip
    with pytest.raises(MappingError, match="true_values and false_values apply to boolean"):
        parse_byo_mapping(MAPPING.format(schema="s").replace(
            'procedure = "form_code"', 'procedure = { column = "form_code", true_values = [1] }'
        ))  # fmt: skip


# --- system schemas and refused reads (issue 11, item 9) ---------------------------------------


@pytest.mark.parametrize(
    ("section", "table", "schema", "key", "reason"),
    [
        ("declarations", "pg_authid", "pg_catalog", "schema", "'pg_catalog' is a system schema"),
        ("items", "pg_stat_activity", None, "table", "'pg_stat_activity' is a name of the"),
        ("outcomes", "tables", "information_schema", "schema", "'information_schema' is a system"),
        ("outcomes", "pg_toast_1", "pg_toast", "schema", "'pg_toast' is a system schema"),
        ("controls", "sqlite_master", None, "table", "'sqlite_master' is a name of the"),
        ("controls", "sqlite_schema", "main", "table", "'sqlite_schema' is a name of the"),
        ("declarations", "duckdb_tables", None, "table", "'duckdb_tables' is a name of the"),
        ("items", "settings", "system.main", "schema", "'system.main' is a system schema"),
        ("items", "PG_Class", None, "table", "'PG_Class' is a name of the database's system"),
    ],
)
def test_a_mapping_may_not_name_a_system_schema_or_catalogue(
    section: str, table: str, schema: str | None, key: str, reason: str
) -> None:
    text = MAPPING.format(schema="customs")
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    table_line = next(n for n in range(start, len(lines)) if lines[n].startswith("table ="))
    lines[table_line] = f'table = "{table}"'
    schema_line = table_line + 1
    assert lines[schema_line].startswith("schema =")
    lines[schema_line] = f'schema = "{schema}"' if schema else "# no schema"
    with pytest.raises(MappingError) as info:
        parse_byo_mapping("\n".join(lines), "customs.toml")
    line = (schema_line if key == "schema" else table_line) + 1
    assert str(info.value).startswith(f"customs.toml:{line}: {section}.{key}: {reason}")
    assert "a mapping reads only your own tables" in str(info.value)


def test_an_unqualified_name_resolving_to_a_system_schema_is_refused(
    foreign: tuple[sa.Engine, str], tmp_path: Path
) -> None:
    engine, schema = foreign
    if engine.dialect.name != "postgresql":
        pytest.skip("a search path reaching a system schema is PostgreSQL's")
    text = MAPPING.format(schema=schema).replace(
        f'table = "gtd_status"\nschema = "{schema}"', 'table = "views"'
    )
    mapping = parse_byo_mapping(text, "customs.toml")
    with engine.connect() as connection:
        connection.execute(sa.text("SET search_path = information_schema"))
        with pytest.raises(MappingError) as info:
            mapping.source(connection)
    line = text.splitlines().index('table = "views"') + 1
    assert str(info.value) == (
        f"customs.toml:{line}: outcomes.table: 'views' is in the system schema "
        "'information_schema': a mapping reads only your own tables, in the schemas it names"
    )


def test_unqualified_tables_are_read_from_the_schema_they_were_found_in(
    foreign: tuple[sa.Engine, str], tmp_path: Path
) -> None:
    engine, schema = foreign
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL resolves unqualified names through its search path")
    text = MAPPING.format(schema=schema).replace(f'schema = "{schema}"\n', "")
    with engine.connect() as connection:
        connection.execute(sa.text(f'SET search_path = "{schema}"'))
        source = parse_byo_mapping(text, "customs.toml").source(connection)
        sql = str(sa.select(source.declarations).compile(connection))
        assert f"{schema}.gtd_head" in sql  # qualified: a later search path cannot redirect it
        assert connection.execute(sa.select(sa.func.count()).select_from(source.items)).scalar()


def test_a_refused_read_is_a_mapping_error_not_a_database_error(
    foreign: tuple[sa.Engine, str], tmp_path: Path
) -> None:
    from riskengine.store.engine import StoreError, database_errors

    engine, schema = foreign
    if engine.dialect.name != "postgresql":
        pytest.skip("privileges are PostgreSQL's")
    role = f"reader_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE ROLE "{role}" NOLOGIN'))
        connection.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        for name in ("gtd_head", "gtd_goods", "gtd_status", "gtd_refusals"):
            connection.execute(sa.text(f'GRANT SELECT ON "{schema}"."{name}" TO "{role}"'))
    text = MAPPING.format(schema=schema)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'SET ROLE "{role}"'))
            with pytest.raises(MappingError) as info:
                load_source(connection, _mapping_file(tmp_path, schema))
            lines = text.splitlines()
            line = lines.index('table = "gtd_controls"') + 1
            assert str(info.value).startswith(
                f"{tmp_path / 'customs.toml'}:{line}: controls.table: permission denied: the "
                f"database user may not read '{schema}.gtd_controls' (grant it SELECT on the "
                "table and USAGE on its schema): permission denied for table gtd_controls"
            ), str(info.value)
            # the connection is still usable, and a refused read elsewhere is a store error
            assert connection.execute(sa.text("SELECT 1")).scalar() == 1
            refused = pytest.raises(StoreError, match="permission denied on the database")
            with refused, database_errors(engine):
                connection.execute(sa.text(f'SELECT * FROM "{schema}".gtd_controls'))
            connection.rollback()
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP OWNED BY "{role}"'))
            connection.execute(sa.text(f'DROP ROLE "{role}"'))
