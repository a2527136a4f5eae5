"""Operating the store as a user does: an uninitialised store, the catalogue the store remembers,
field names too long for a backend, planner statistics (issue 11, items 5 to 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.store import migrate, reflect
from riskengine.store.catalogue import read_catalogue
from riskengine.store.engine import connect

NOT_INITIALISED = "has no riskengine tables: run `riskengine db init`"

PROFILE = """\
profile draft "Risky zone" {
    module declaration
    spheres 101
    indicators {
        zone "Declared in a risky zone": declaration.risk_zone == "RZ1"
    }
    degree = 60 * zone
    controls {
        102 "Documentary check" mandatory from 50
    }
}
"""

ZONE = '[[field]]\npath = "declaration.risk_zone"\ntype = "code"\n'
STAMP = '[[field]]\npath = "item.excise_stamp"\ntype = "string"\n'


def run(*args: str | Path, stdin: str | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


def _file(url: str) -> Path | None:
    """The SQLite or DuckDB file of ``url`` (``None`` for PostgreSQL)."""
    parsed = sa.make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() != "postgresql" else None


def _table_names(url: str) -> set[str]:
    engine = connect(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "duckdb":
                rows = connection.execute(
                    sa.text(
                        "SELECT table_name FROM information_schema.tables"
                        " WHERE table_catalog = current_database()"
                    )
                )
                return {r[0] for r in rows}
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _assert_nothing_created(url: str) -> None:
    path = _file(url)
    if path is not None:
        assert not path.exists(), f"{path} was created"
        assert not Path(f"{path}-wal").exists()
    else:
        assert _table_names(url) == set()


def _declarations(tmp_path: Path, zone: str = "RZ1") -> Path:
    path = tmp_path / "decls.jsonl"
    lines = [
        {
            "id": f"D{n}",
            "date": "2024-03-0" + str(n),
            "declarant": {"id": "31234567"},
            "risk_zone": zone if n % 2 else "RZ9",
            "items": [{"hs_code": "6403990000", "customs_value": 1000, "net_mass": 100}],
        }
        for n in range(1, 5)
    ]
    path.write_text("".join(json.dumps(d) + "\n" for d in lines), encoding="utf-8")
    return path


# --- item 7: a store that was never initialised ---------------------------------------------


def test_readers_refuse_an_uninitialised_store_and_create_nothing(
    db_url: str, tmp_path: Path
) -> None:
    profile = tmp_path / "zone.rp"
    profile.write_text(PROFILE.replace("declaration.risk_zone", "declaration.office"))
    decl = tmp_path / "d.json"
    decl.write_text(json.dumps({"id": "D1", "date": "2024-03-01", "items": []}))
    commands = [
        ("backtest", profile, "--db", db_url, "--from", "2024-01-01", "--to", "2024-12-31"),
        ("backtest", profile, "--db", db_url, "--from", "2024-01-01", "--to", "2024-12-31",
         "--format", "json"),
        ("score", decl, "--profiles", profile, "--db", db_url),
        ("db", "current", "--db", db_url),
        ("db", "upgrade", "--db", db_url),
        ("db", "analyze", "--db", db_url),
        ("check", profile, "--db", db_url),
    ]  # fmt: skip
    for args in commands:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        shown = sa.make_url(db_url).render_as_string(hide_password=True)
        assert result.output == f"error: the store {shown} {NOT_INITIALISED}\n", args
        _assert_nothing_created(db_url)


def test_a_missing_sqlite_file_given_as_a_path_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "zone.rp"
    profile.write_text(PROFILE.replace("declaration.risk_zone", "declaration.office"))
    for store in ("store.db", "store.duckdb"):
        result = run(
            "backtest", profile, "--db", store, "--from", "2024-01-01", "--to", "2024-12-31"
        )
        assert result.exit_code == 1
        assert NOT_INITIALISED in result.output
        assert "SELECT" not in result.output and "internal error" not in result.output
        assert not (tmp_path / store).exists()


def test_writers_initialise_a_new_store_but_a_failed_start_creates_nothing(
    db_url: str, tmp_path: Path
) -> None:
    bad_mapping = tmp_path / "bad.toml"
    bad_mapping.write_text('kind = "declarations"\nformat = "csv"\n[fields]\n"item.hs_cod" = "x"\n')
    source = _declarations(tmp_path)
    result = run("ingest", source, "--db", db_url, "--mapping", bad_mapping)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    _assert_nothing_created(db_url)
    result = run("demo-data", "--db", db_url, "--start", "2025-01-01", "--end", "2024-01-01")
    assert result.exit_code == 2
    assert "--end 2024-01-01 is before --start 2025-01-01" in result.output
    _assert_nothing_created(db_url)
    # documented (docs/store.md): ingest and demo-data create the schema in an empty database
    result = run("ingest", source, "--db", db_url, "-q")
    assert result.exit_code == 0, result.output
    assert "4 declarations added" in result.output
    result = run("db", "current", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


# --- item 5: field names longer than a backend's identifiers ---------------------------------


def test_a_field_name_over_63_bytes_is_refused_before_anything_is_created(
    db_url: str, tmp_path: Path
) -> None:
    name = "very_long_" + "x" * 60
    fields = tmp_path / "long.toml"
    fields.write_text(ZONE + f'\n[[field]]\npath = "declaration.{name}"\ntype = "code"\n')
    (tmp_path / "zone.rp").write_text(PROFILE)
    for args in (
        ("db", "init", "--db", db_url, "--catalogue", fields),
        ("ingest", _declarations(tmp_path), "--db", db_url, "--catalogue", fields),
        ("check", tmp_path, "--catalogue", fields),
    ):
        result = run(*args)
        assert result.exit_code in (1, 2), result.output
        assert f"{fields}:5: field 'declaration.{name}': the field's store column" in result.output
        assert "would be 70 bytes long; column names hold at most 63 bytes" in result.output
        _assert_nothing_created(db_url)


# --- item 8: the store remembers its catalogue ----------------------------------------------


def test_the_store_remembers_the_catalogue_of_db_init(db_url: str, tmp_path: Path) -> None:
    fields = tmp_path / "my_fields.toml"
    fields.write_text(ZONE)
    profile = tmp_path / "zone.rp"
    profile.write_text(PROFILE)
    result = run("db", "init", "--db", db_url, "--catalogue", fields)
    assert result.exit_code == 0, result.output

    # no --catalogue from here on
    result = run("ingest", _declarations(tmp_path), "--db", db_url, "-q")
    assert result.exit_code == 0, result.output
    engine = connect(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, risk_zone FROM declarations ORDER BY id"))
            assert [tuple(r) for r in rows] == [
                ("D1", "RZ1"), ("D2", "RZ9"), ("D3", "RZ1"), ("D4", "RZ9"),
            ]  # fmt: skip
    finally:
        engine.dispose()
    result = run("check", profile, "--db", db_url)
    assert result.exit_code == 0, result.output
    result = run("check", profile)  # without the store's catalogue the field is unknown
    assert result.exit_code == 1
    assert "declaration.risk_zone" in result.output
    result = run(
        "backtest", profile, "--db", db_url, "--from", "2024-01-01", "--to", "2024-12-31",
        "--format", "json", "--no-record",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    json.loads(result.output)
    assert '"selected": 2,' in result.output  # D1 and D3 are in the risky zone
    decl = tmp_path / "d.json"
    decl.write_text(json.dumps({"id": "X", "date": "2024-05-01", "risk_zone": "RZ1", "items": []}))
    result = run("score", decl, "--profiles", profile, "--db", db_url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fired"][0]["degree"] == 60  # the drafts note: stderr
    result = run("db", "current", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert f"catalogue: version 1 ({fields}, recorded " in result.output


def test_another_catalogue_is_refused_until_db_upgrade_records_it(
    db_url: str, tmp_path: Path
) -> None:
    fields = tmp_path / "my_fields.toml"
    fields.write_text(ZONE)
    more = tmp_path / "more_fields.toml"
    more.write_text(ZONE + "\n" + STAMP)
    profile = tmp_path / "zone.rp"
    profile.write_text(PROFILE)
    assert run("db", "init", "--db", db_url, "--catalogue", fields).exit_code == 0
    # the same catalogue again is fine, also written differently
    same = tmp_path / "same.toml"
    same.write_text(ZONE.replace('type = "code"', 'type = "code"\ndescription = "zone"'))
    result = run("ingest", _declarations(tmp_path), "--db", db_url, "--catalogue", same, "-q")
    assert result.exit_code == 0, result.output

    expected = (
        f"error: --catalogue {more} is not the catalogue the store was initialised with, "
        f"version 1 ({fields}, recorded "
    )
    backtest = ("backtest", profile, "--db", db_url, "--from", "2024-01-01", "--to", "2024-12-31")
    for args in (
        ("db", "init", "--db", db_url),
        (*backtest,),
        ("ingest", _declarations(tmp_path), "--db", db_url),
        ("check", profile, "--db", db_url),
        ("db", "current", "--db", db_url),
    ):
        result = run(*args, "--catalogue", more)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith(expected), result.output
        assert "item.excise_stamp is new" in result.output
        assert f"run `riskengine db upgrade --catalogue {more}`" in result.output
    result = run("db", "init", "--db", db_url)  # without --catalogue: the store's is kept
    assert result.exit_code == 0, result.output

    result = run("db", "upgrade", "--db", db_url, "--catalogue", more)
    assert result.exit_code == 0, result.output
    engine = connect(db_url)
    try:
        with engine.connect() as connection:
            stored = read_catalogue(connection)
            assert "excise_stamp" in reflect.columns(connection, "items")
    finally:
        engine.dispose()
    assert stored is not None and stored.version == 2 and stored.source == str(more)
    assert stored.catalogue.get("item.excise_stamp") is not None
    result = run(*backtest, "--no-record")
    assert result.exit_code == 0, result.output
    result = run(*backtest, "--no-record", "--catalogue", fields)
    assert result.exit_code == 1
    assert "item.excise_stamp is missing" in result.output


def test_a_store_from_before_the_catalogue_was_recorded_keeps_working(
    db_url: str, tmp_path: Path
) -> None:
    """A store at revision r0001 is upgraded; it has no recorded catalogue until it is given one,
    and --catalogue is then used as before."""
    engine = connect(db_url)
    try:
        with engine.begin() as connection:
            migrate.upgrade_connection(connection, revision="r0001")
        with engine.connect() as connection:
            assert migrate.current_revision(connection) == "r0001"
    finally:
        engine.dispose()
    profile = tmp_path / "zone.rp"
    profile.write_text(PROFILE.replace("declaration.risk_zone", "declaration.office"))
    result = run("backtest", profile, "--db", db_url, "--from", "2024-01-01", "--to", "2024-12-31")
    assert result.exit_code == 1
    assert (
        f"is at schema revision r0001, this riskengine needs {migrate.head_revision()}: run "
        "`riskengine db upgrade`" in (result.output)
    )
    assert run("db", "upgrade", "--db", db_url).exit_code == 0
    engine = connect(db_url)
    try:
        with engine.connect() as connection:
            assert read_catalogue(connection) is None
    finally:
        engine.dispose()
    fields = tmp_path / "my_fields.toml"
    fields.write_text(ZONE)
    result = run("db", "upgrade", "--db", db_url, "--catalogue", fields)
    assert result.exit_code == 0, result.output
    result = run("check", tmp_path / "zone.rp", "--db", db_url)
    assert result.exit_code == 0, result.output


# --- item 6: planner statistics ----------------------------------------------------------------


def _has_statistics(url: str) -> bool:
    engine = connect(url)
    try:
        with engine.connect() as connection:
            name = connection.dialect.name
            if name == "postgresql":
                tuples = connection.execute(
                    sa.text(
                        "SELECT reltuples FROM pg_class"
                        " WHERE oid = to_regclass(current_schema() || '.declarations')"
                    )
                ).scalar_one()
                return bool(tuples > 0)
            if name == "sqlite":
                if not reflect.has_table(connection, "sqlite_stat1"):
                    return False
                rows = connection.execute(
                    sa.text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'declarations'")
                ).scalar_one()
                return bool(rows > 0)
            return True  # DuckDB keeps its statistics as it loads
    finally:
        engine.dispose()


@pytest.mark.parametrize("loader", ["demo-data", "ingest"])
def test_loading_refreshes_the_planner_statistics(db_url: str, tmp_path: Path, loader: str) -> None:
    if loader == "demo-data":
        result = run("demo-data", "-n", "300", "--seed", "3", "--db", db_url, "-q")
    else:
        result = run("ingest", _declarations(tmp_path), "--db", db_url, "-q")
    assert result.exit_code == 0, result.output
    # SQLite plans backtests 30-40x slower with statistics: none are gathered there
    assert _has_statistics(db_url) is (sa.make_url(db_url).get_backend_name() != "sqlite")


def test_db_analyze(db_url: str) -> None:
    from riskengine.demo import write_demo

    store_url = db_url
    engine = connect(store_url)
    try:
        write_demo(engine, 200, seed=4)  # the library writes; it gathers no statistics
    finally:
        engine.dispose()
    if store_url.startswith("postgresql"):
        assert not _has_statistics(store_url)
    result = run("db", "analyze", "--db", store_url)
    assert result.exit_code == 0, result.output
    shown = sa.make_url(store_url).render_as_string(hide_password=True)
    if store_url.startswith("sqlite"):
        assert result.output == (
            f"store {shown}: nothing to do (SQLite plans backtests better without statistics; "
            "docs/store.md#planner-statistics)\n"
        )
        assert not _has_statistics(store_url)
    else:
        assert result.output.startswith(f"store {shown}: statistics refreshed in ")
        assert re.fullmatch(r".*refreshed in \d+(\.\d)? (ms|s)\n", result.output), result.output
        assert "in 0.0 s" not in result.output
        assert _has_statistics(store_url)


def test_backtest_output_stays_clean_when_stderr_is_not_a_terminal(
    store_url: str, tmp_path: Path
) -> None:
    profile = tmp_path / "zone.rp"
    profile.write_text(PROFILE.replace("declaration.risk_zone", "declaration.office"))
    result = run(
        "backtest", profile, "--db", store_url, "--from", "2024-01-01", "--to", "2024-12-31",
        "--format", "json", "--no-record",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    json.loads(result.output)  # nothing but the JSON document: no spinner, no timing line
    assert "done in" not in result.output


def test_elapsed_status_on_a_terminal_reports_the_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from riskengine.cli.common import elapsed_status

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with elapsed_status("backtesting 3 profiles"):
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    # a step that takes no time reads in milliseconds, as every duration does (not "0.0 s")
    assert re.search(r"backtesting 3 profiles: done in \d+(\.\d)? ms", captured.err), captured.err
    with elapsed_status("backtesting 3 profiles", quiet=True):
        pass
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.delenv("TTY_COMPATIBLE")
    with elapsed_status("backtesting 3 profiles"):
        pass
    assert capsys.readouterr().err == ""  # not a terminal: nothing


def test_db_upgrade_refuses_to_change_the_type_of_a_stored_field(
    db_url: str, tmp_path: Path
) -> None:
    store_url = db_url  # a store of its own: the shared one must keep its columns
    fields = tmp_path / "my_fields.toml"
    fields.write_text(ZONE)
    assert run("db", "init", "--db", store_url, "--catalogue", fields).exit_code == 0
    first = _recorded_version(store_url)
    numeric = tmp_path / "numeric.toml"
    numeric.write_text(ZONE.replace('"code"', '"number"'))
    result = run("db", "upgrade", "--db", store_url, "--catalogue", numeric)
    assert result.exit_code == 1
    assert result.output == (
        f"error: {numeric} changes the type of declaration.risk_zone (code in the store, number "
        "in the file): a field's column keeps its type, so give the field of the new type a new "
        "path\n"
    )
    text = tmp_path / "text.toml"
    text.write_text(ZONE.replace('"code"', '"string"'))  # the same column type: allowed
    result = run("db", "upgrade", "--db", store_url, "--catalogue", text)
    assert result.exit_code == 0, result.output
    result = run("db", "current", "--db", store_url)
    assert f"catalogue: version {first + 1} ({text}, recorded " in result.output


def _recorded_version(url: str) -> int:
    engine = connect(url)
    try:
        with engine.connect() as connection:
            stored = read_catalogue(connection)
    finally:
        engine.dispose()
    assert stored is not None
    return stored.version
