"""The store's schema: migrations on each backend, catalogue columns, URLs, `riskengine db`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from riskengine.catalogue import catalogue_with, default_catalogue
from riskengine.cli import cli
from riskengine.cli.db import db
from riskengine.store import migrate, reflect
from riskengine.store.engine import DEFAULT_URL, StoreError, connect, resolve_url
from riskengine.store.schema import (
    TABLES,
    VERSION_TABLE,
    SchemaError,
    build_tables,
    column_name,
)

STORE_TABLES = {t.name for t in TABLES.metadata.sorted_tables}


def test_init_creates_every_table_and_a_column_per_catalogue_field(store: sa.Engine) -> None:
    with store.connect() as connection:
        for name in STORE_TABLES:
            assert reflect.has_table(connection, name), name
        header = reflect.columns(connection, "declarations")
        items = reflect.columns(connection, "items")
    for field in default_catalogue():
        table = header if field.scope == "declaration" else items
        assert column_name(field) in table, field.path
    assert column_name("declaration.declarant.id") == "declarant_id"
    assert not header["id"].nullable and not header["date"].nullable


def test_migrated_schema_equals_the_tables_in_code(store: sa.Engine) -> None:
    with store.connect() as connection:
        if connection.dialect.name == "duckdb":
            # duckdb-engine cannot reflect for Alembic's comparison: compare names and nullability.
            for table in TABLES.metadata.sorted_tables:
                found = reflect.columns(connection, table.name)
                expected = {c.name: c.nullable for c in table.columns}
                assert {n: c.nullable for n, c in found.items()} == expected, table.name
            return
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, parent: name != VERSION_TABLE,
            },
        )
        assert compare_metadata(context, TABLES.metadata) == []


def test_init_twice_changes_nothing_and_reports_head(store_url: str, store: sa.Engine) -> None:
    status = migrate.init(store_url)
    assert status.revision == migrate.head_revision()
    assert status.up_to_date
    with store.connect() as connection:
        assert migrate.current_revision(connection) == status.head


def test_a_user_catalogue_adds_columns_on_upgrade(
    db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    migrate.init(db_url)
    store = engine
    extra = tmp_path / "extra.toml"
    extra.write_text(
        '[[field]]\npath = "declaration.risk_zone"\ntype = "code"\n\n'
        '[[field]]\npath = "item.excise_stamp.serial"\ntype = "string"\n',
        encoding="utf-8",
    )
    catalogue = catalogue_with(extra)
    with store.begin() as connection:
        status = migrate.status(connection, catalogue)
        assert set(status.missing_columns) == {"declaration.risk_zone", "item.excise_stamp.serial"}
        with pytest.raises(StoreError, match="riskengine db upgrade"):
            migrate.ensure_schema(connection, catalogue)
    status = migrate.upgrade(db_url, catalogue)
    assert status.up_to_date
    with store.connect() as connection:
        assert "risk_zone" in reflect.columns(connection, "declarations")
        assert "excise_stamp_serial" in reflect.columns(connection, "items")
        migrate.ensure_schema(connection, catalogue)  # no complaint any more


def test_upgrade_of_an_empty_database_asks_for_init(db_url: str, engine: sa.Engine) -> None:
    with pytest.raises(StoreError, match="riskengine db init"):
        migrate.upgrade(db_url)


def test_writers_create_the_schema_in_an_empty_database(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        migrate.ensure_schema(connection)
    with engine.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()


def test_catalogue_fields_that_would_share_a_column_are_refused(tmp_path: Path) -> None:
    extra = tmp_path / "clash.toml"
    extra.write_text('[[field]]\npath = "declaration.declarant_id"\ntype = "code"\n')
    with pytest.raises(SchemaError, match="declarant_id"):
        build_tables(catalogue_with(extra))
    reserved = tmp_path / "reserved.toml"
    reserved.write_text('[[field]]\npath = "item.item_no"\ntype = "number"\n')
    with pytest.raises(SchemaError, match="reserves"):
        build_tables(catalogue_with(reserved))


def test_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKENGINE_DB", raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///riskengine.db"
    monkeypatch.setenv("RISKENGINE_DB", "duckdb:///x.duckdb")
    assert resolve_url(None) == "duckdb:///x.duckdb"
    assert resolve_url("sqlite:///y.db") == "sqlite:///y.db"
    assert resolve_url("data/y.duckdb") == "duckdb:///data/y.duckdb"
    assert resolve_url("y.sqlite") == "sqlite:///y.sqlite"
    assert resolve_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    with pytest.raises(StoreError, match="not a database URL"):
        resolve_url("notes.txt")


def test_a_database_riskengine_does_not_know_or_without_its_driver_is_said_so() -> None:
    from riskengine.store.engine import connect

    known = "(write sqlite:///file.db, postgresql://user@host/db or duckdb:///file.duckdb)"
    for url, kind in (("foo://bar", "foo"), ("mysql://u@h/d", "mysql")):
        with pytest.raises(StoreError) as info:
            connect(url)
        assert str(info.value) == (
            f"cannot use the database {url}: {kind!r} is not a kind of database riskengine "
            f"knows {known}"
        )
    with pytest.raises(StoreError) as info:  # PostgreSQL through a driver that is not there
        connect("postgresql+pg9000://u@h/d")
    assert str(info.value).startswith(
        "cannot use the database postgresql+pg9000://u@h/d: its driver is not installed "
        "(pip install 'riskengine[postgres]'): "
    )


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot use the database"):
        migrate.init("postgresql://postgres@127.0.0.1:1/nothing")


def test_db_commands_use_a_sqlite_file_in_the_working_folder_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RISKENGINE_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "current"])
    assert result.exit_code == 1
    assert "has no riskengine tables: run `riskengine db init`" in result.output
    assert not (tmp_path / "riskengine.db").exists()
    result = runner.invoke(db, ["init"])
    assert result.exit_code == 0, result.output
    assert "sqlite:///riskengine.db" in result.output
    assert (tmp_path / "riskengine.db").is_file()
    result = runner.invoke(db, ["current"])
    assert result.exit_code == 0
    assert "up to date" in result.output


def test_db_init_with_url(db_url: str, engine: sa.Engine) -> None:
    result = CliRunner().invoke(db, ["init", "--url", db_url])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(db, ["current", "--url", db_url])
    assert result.exit_code == 0, result.output
    assert f"head {migrate.head_revision()}" in result.output


def test_sqlite_store_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = connect(os.path.join(tmp_path, "s.db"))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
