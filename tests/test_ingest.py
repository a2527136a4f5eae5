"""Ingestion: CSV and JSON Lines into the store on each backend — exact rejects, nothing lost,
nothing duplicated, resume after an interruption or a kill."""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine import demo
from riskengine.cli.ingest import ingest
from riskengine.ingest.mapping import (
    MappingError,
    load_ingest_mapping,
    parse_ingest_mapping,
)
from riskengine.ingest.pipeline import ingest_file
from riskengine.store.schema import TABLES

EXAMPLES = Path(demo.__file__).parent / "examples"
DECLARATIONS_MAP = EXAMPLES / "demo_export.toml"
OUTCOMES_MAP = EXAMPLES / "demo_outcomes.toml"
CONTROLS_MAP = EXAMPLES / "demo_controls.toml"
RECORDS = list(demo.generate(120, seed=7))


# --- helpers -------------------------------------------------------------------------------------


def contents(engine: sa.Engine) -> dict[str, Any]:
    """Everything stored, keyed by declaration id (not by surrogate key), batch ids left out."""
    t = TABLES
    with engine.connect() as c:
        ids = dict(c.execute(sa.select(t.declarations.c.pk, t.declarations.c.id)).all())
        skip = {"pk", "ingest_batch", "decl_pk"}

        def rows(table: sa.Table) -> list[dict[str, Any]]:
            return [dict(r) for r in c.execute(sa.select(table)).mappings()]

        declarations = {
            r["id"]: {k: v for k, v in r.items() if k not in skip} for r in rows(t.declarations)
        }
        items = {
            (ids[r["decl_pk"]], r["item_no"]): {k: v for k, v in r.items() if k not in skip}
            for r in rows(t.items)
        }
        outcomes = {ids[r["decl_pk"]]: (r["completed"], r["date"]) for r in rows(t.outcomes)}
        reasons = sorted((ids[r["decl_pk"]], r["reason_code"]) for r in rows(t.outcome_reasons))
        controls = sorted(
            (ids[r["decl_pk"]], r["procedure"], r["date"], r["violation_found"],
             r["random_control"], r["profile_key"],
             None if r["revenue"] is None else float(r["revenue"]))
            for r in rows(t.control_results)
        )  # fmt: skip
    return {
        "declarations": declarations,
        "items": items,
        "outcomes": outcomes,
        "reasons": reasons,
        "controls": controls,
    }


def write_rows(path: Path, rows: list[list[str]], header: list[str] | None = None) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(header or [name for name, _, _ in demo.EXPORT_COLUMNS])
        writer.writerows(rows)


def read_rejects(path: str | Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", errors="replace", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture
def exported(tmp_path: Path) -> dict[str, Path]:
    declarations = tmp_path / "export.csv"
    demo.export_csv(RECORDS, declarations)
    outcomes = tmp_path / "export.outcomes.csv"
    demo.export_outcomes_csv(RECORDS, outcomes)
    return {
        "declarations": declarations,
        "outcomes": outcomes,
        "controls": tmp_path / "export.outcomes.controls.csv",
    }


# --- nothing lost -------------------------------------------------------------------------------


def test_csv_exports_ingest_to_the_same_store_as_the_generator(
    store: sa.Engine, store_url: str, exported: dict[str, Path], tmp_path: Path
) -> None:
    results = [
        ingest_file(store, exported["declarations"], load_ingest_mapping(DECLARATIONS_MAP),
                    batch_rows=50),
        ingest_file(store, exported["outcomes"], load_ingest_mapping(OUTCOMES_MAP)),
        ingest_file(store, exported["controls"], load_ingest_mapping(CONTROLS_MAP)),
    ]  # fmt: skip
    assert [r.rows_rejected for r in results] == [0, 0, 0]
    assert results[0].records_added == len(RECORDS)
    assert results[0].rows == sum(r.item_rows for r in RECORDS)
    assert results[0].batches > 3
    ingested = contents(store)

    reference = tmp_path / "reference"
    reference.mkdir()
    from riskengine.store.engine import connect

    other_url = _sibling_store(store_url, tmp_path)
    other = connect(other_url)
    try:
        demo.write_demo(other, len(RECORDS), seed=7)
        assert ingested == contents(other)
    finally:
        other.dispose()


def _sibling_store(store_url: str, tmp_path: Path) -> str:
    """An empty store file of the same backend (SQLite for PostgreSQL: the values read back are
    the same Python values on every backend)."""
    if store_url.startswith("duckdb"):
        return f"duckdb:///{tmp_path / 'reference' / 'ref.duckdb'}"
    return f"sqlite:///{tmp_path / 'reference' / 'ref.db'}"


def test_jsonl_in_the_input_format_needs_no_mapping(store: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "declarations.jsonl"
    demo.export_jsonl(RECORDS[:40], path)
    result = ingest_file(store, path)
    assert (result.records_added, result.rows_rejected) == (40, 0)
    stored = contents(store)
    first = RECORDS[0].declaration
    row = stored["declarations"][first.header["id"]]
    assert row["declarant_id"] == first.header["declarant.id"]
    assert row["date"] == first.header["date"]
    assert stored["items"][(first.header["id"], 1)]["hs_code"] == first.items[0]["hs_code"]


# --- exact rejects ------------------------------------------------------------------------------


def _broken_export(tmp_path: Path) -> tuple[Path, dict[int, str], set[str]]:
    """The demo export with deliberately broken rows.

    Returns the file, the expected rejects {row number: reason fragment} and the ids of the
    declarations that must not be stored.
    """
    rows = list(demo.export_rows(RECORDS))
    col = {name: i for i, (name, _, _) in enumerate(demo.EXPORT_COLUMNS)}
    expected: dict[int, str] = {}
    lost: set[str] = set()

    def row_of(record_index: int) -> int:
        return sum(r.item_rows for r in RECORDS[:record_index]) + 1

    def break_row(record_index: int, column: str, value: str, reason: str) -> None:
        number = row_of(record_index)
        rows[number - 1][col[column]] = value
        expected[number] = reason
        lost.add(RECORDS[record_index].declaration.header["id"])

    break_row(3, "NET", "12kg", "column NET (item.net_mass): expected a number")
    break_row(10, "DECL_DATE", "31.02.2024", "column DECL_DATE (declaration.date)")
    break_row(20, "AEO", "maybe", "column AEO (declaration.declarant.aeo)")
    for number in range(row_of(30), row_of(31)):
        rows[number - 1][col["RATE"]] = ""  # an empty optional value is fine
    # a row with a missing cell
    number = row_of(40)
    rows[number - 1] = rows[number - 1][:-1]
    expected[number] = "the row has 49 cells, the header has 50"
    lost.add(RECORDS[40].declaration.header["id"])
    # a declaration of several items whose second row disagrees on a header column
    multi = next(i for i, r in enumerate(RECORDS) if i > 50 and len(r.declaration.items) >= 2)
    second = row_of(multi) + 1
    rows[second - 1][col["DECLARANT"]] = "99999999"
    expected[second] = "column DECLARANT (declaration.declarant.id) differs from row"
    lost.add(RECORDS[multi].declaration.header["id"])
    # a translation that is not allowed: transport code translated, unknown kept (fine)
    for number in range(row_of(60), row_of(61)):
        rows[number - 1][col["TRANSPORT"]] = "ROAD"
    # a row of a declaration that comes back later, not next to its other rows: one more item
    # of that declaration (stored whole with it at the end of the file)
    duplicate = list(rows[row_of(70) - 1])
    rows.append(duplicate)
    # a row that is not valid UTF-8
    target = row_of(80)
    rows[target - 1][col["DESCRIPTION"]] = "@@BAD@@"
    path = tmp_path / "broken.csv"
    write_rows(path, rows)
    path.write_bytes(path.read_bytes().replace(b"@@BAD@@", b"Shoes \xff\xfe"))
    expected[target] = "not valid text"
    lost.add(RECORDS[80].declaration.header["id"])
    return path, expected, lost


def test_broken_rows_are_rejected_exactly_and_the_rest_is_stored(
    store: sa.Engine, tmp_path: Path
) -> None:
    path, expected, lost = _broken_export(tmp_path)
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    result = ingest_file(store, path, mapping, batch_rows=40)
    rejects = read_rejects(result.rejects_path or "")
    culprits = {int(r["row"]): r["reason"] for r in rejects if "see row" not in r["reason"]}
    assert set(culprits) == set(expected)
    for number, fragment in expected.items():
        assert fragment in culprits[number], (number, culprits[number])
    # every other row of a rejected declaration is in the file too, pointing at the culprit
    rejected_ids = {r["declaration"] for r in rejects}
    assert rejected_ids - {""} <= lost
    siblings = [r for r in rejects if "see row" in r["reason"]]
    for sibling in siblings:
        assert sibling["declaration"] in lost
    # raw cells are kept
    assert all(len(r) > 4 for r in rejects)
    stored = contents(store)["declarations"]
    all_ids = {r.declaration.header["id"] for r in RECORDS}
    assert set(stored) == all_ids - lost
    assert result.records_added == len(all_ids - lost)
    rejected_rows = sum(RECORDS[[r.declaration.header["id"] for r in RECORDS].index(i)].item_rows
                        for i in lost)  # fmt: skip
    assert result.rows_rejected == len(rejects) == rejected_rows
    assert stored[RECORDS[60].declaration.header["id"]]["transport_mode"] == "30"
    # the declaration whose row came back at the end has that row as one more item
    split = RECORDS[70].declaration
    items = contents(store)["items"]
    count = len(split.items)
    assert (split.header["id"], count + 1) in items
    assert (split.header["id"], count + 2) not in items
    again = dict(items[(split.header["id"], count + 1)], item_no=1)
    assert again == items[(split.header["id"], 1)]


def test_reingesting_adds_nothing(store: sa.Engine, exported: dict[str, Path]) -> None:
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    first = ingest_file(store, exported["declarations"], mapping)
    before = contents(store)
    again = ingest_file(store, exported["declarations"], mapping)
    assert again.already_done and again.records_added == first.records_added
    forced = ingest_file(store, exported["declarations"], mapping, force=True)
    assert (forced.records_added, forced.records_skipped) == (0, len(RECORDS))
    assert contents(store) == before


class Interrupt(Exception):
    pass


def test_an_interrupted_ingest_resumes_after_the_last_committed_batch(
    store: sa.Engine, tmp_path: Path
) -> None:
    path, expected, lost = _broken_export(tmp_path)
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    calls = []

    def stop_after_three(_position: int, rows: int) -> None:
        calls.append(rows)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_file(store, path, mapping, batch_rows=30, progress=stop_after_three)
    with store.connect() as c:
        stored_then = c.execute(sa.select(sa.func.count()).select_from(TABLES.declarations))
        count_then = stored_then.scalar_one()
    assert 0 < count_then < len(RECORDS)
    result = ingest_file(store, path, mapping, batch_rows=30)
    assert result.resumed_from == calls[-1] > 0
    rejects = read_rejects(result.rejects_path or "")
    assert len({r["row"] for r in rejects}) == len(rejects)  # no reject written twice
    assert {int(r["row"]) for r in rejects if "see row" not in r["reason"]} == set(expected)
    stored = contents(store)["declarations"]
    assert set(stored) == {r.declaration.header["id"] for r in RECORDS} - lost


@pytest.mark.parametrize("parallel", ["no", "yes"])
def test_a_killed_ingest_resumes(
    store: sa.Engine, store_url: str, tmp_path: Path, parallel: str
) -> None:
    if store.dialect.name == "duckdb":
        pytest.skip(
            "DuckDB lets one process open a database for writing, so this test cannot watch the "
            "killed process's progress; resuming on DuckDB is covered by the interruption test"
        )
    records = list(demo.generate(1500, seed=11))
    path = tmp_path / "big.csv"
    demo.export_csv(records, path)
    script = (
        "import sys\n"
        "from riskengine.cli.ingest import ingest\n"
        "ingest.main(sys.argv[1:], standalone_mode=True)\n"
    )
    args = [sys.executable, "-c", script, str(path), "--db", store_url, "--mapping",
            str(DECLARATIONS_MAP), "--batch-rows", "25", "--parallel", parallel,
            "--quiet"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    files = TABLES.ingest_files
    deadline = time.monotonic() + 60
    committed = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            with store.connect() as c:
                committed = c.execute(sa.select(sa.func.max(files.c.rows_committed))).scalar() or 0
            if committed >= 200:
                break
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    if process.returncode == 0:
        pytest.skip("the ingest finished before it could be killed")
    assert committed >= 200
    with store.connect() as c:
        status = c.execute(sa.select(files.c.status, files.c.rows_committed)).one()
    assert status.status == "running"
    result = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP), batch_rows=25)
    assert result.resumed_from == status.rows_committed
    assert result.rows_rejected == 0
    assert result.records_added == len(records)
    with store.connect() as c:
        ids = c.execute(sa.select(TABLES.declarations.c.id)).scalars().all()
        items = c.execute(sa.select(sa.func.count()).select_from(TABLES.items)).scalar_one()
    assert sorted(ids) == sorted(r.declaration.header["id"] for r in records)
    assert items == sum(len(r.declaration.items) for r in records)


# --- outcomes and controls ----------------------------------------------------------------------


def test_outcomes_and_controls_reject_what_they_cannot_store(
    store: sa.Engine, tmp_path: Path
) -> None:
    ingest_file(store, _write_export(tmp_path, RECORDS[:20]), load_ingest_mapping(DECLARATIONS_MAP))
    known = RECORDS[0].declaration.header["id"]
    second = RECORDS[1].declaration.header["id"]
    third = RECORDS[2].declaration.header["id"]
    outcomes = tmp_path / "outcomes.csv"
    write_rows(
        outcomes,
        [
            [known, "NOT_COMPLETED", "05.01.2024", "0201"],
            [known, "NOT_COMPLETED", "05.01.2024", "1301"],
            ["NO-SUCH-ID", "COMPLETED", "05.01.2024", ""],
            [second, "NOT_COMPLETED", "05.01.2024", "0209"],
            [third, "COMPLETED", "05.01.2024", "0201"],
        ],
        header=["DECL_ID", "STATUS", "STATUS_DATE", "REASON"],
    )
    result = ingest_file(store, outcomes, load_ingest_mapping(OUTCOMES_MAP))
    assert result.records_added == 1
    rejects = {int(r["row"]): r["reason"] for r in read_rejects(result.rejects_path or "")}
    assert set(rejects) == {3, 4, 5}
    assert "no declaration NO-SUCH-ID in the store" in rejects[3]
    assert "unknown non-completion reason '0209'" in rejects[4]
    assert "a completed clearance has no non-completion reasons" in rejects[5]
    stored = contents(store)
    assert stored["outcomes"][known] == (False, dt.date(2024, 1, 5))
    assert [r for r in stored["reasons"] if r[0] == known] == [(known, "0201"), (known, "1301")]

    controls = tmp_path / "controls.csv"
    write_rows(
        controls,
        [
            [known, "201", "", "0", "VIOLATION", "1234,50", "05.01.2024"],
            [known, "201", "", "0", "VIOLATION", "1234,50", "05.01.2024"],  # the same again
            [known, "102", "2A/08/2013/00117-04", "1", "NO_VIOLATION", "", "06.01.2024"],
            [known, "103", "", "0", "PERHAPS", "", "06.01.2024"],
        ],
        header=["DECL_ID", "PROCEDURE", "PROFILE", "RANDOM", "RESULT", "REVENUE", "DATE"],
    )
    result = ingest_file(store, controls, load_ingest_mapping(CONTROLS_MAP))
    assert (result.records_added, result.records_skipped, result.rows_rejected) == (2, 1, 1)
    stored = contents(store)["controls"]
    assert (known, "201", dt.date(2024, 1, 5), True, False, None, 1234.5) in stored
    assert (known, "102", dt.date(2024, 1, 6), False, True, "2A/08/2013/00117-04", None) in stored


def _write_export(tmp_path: Path, records: list[demo.DemoRecord]) -> Path:
    path = tmp_path / "part.csv"
    demo.export_csv(records, path)
    return path


# --- mappings -----------------------------------------------------------------------------------

MINIMAL = """
[source]
delimiter = ";"
[fields]
"declaration.id" = "ID"
"declaration.date" = { column = "DATE", date_format = ["%d.%m.%Y", "%Y-%m-%d"] }
"""


def test_mapping_errors_name_the_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as info:
        parse_ingest_mapping(MINIMAL + '"item.hs_cod" = "HS"\n', "m.toml")
    assert (
        "m.toml:7: fields.item.hs_cod: not a catalogue field; did you mean 'item.hs_code'?"
        in str(info.value)
    )
    with pytest.raises(MappingError, match=r"must give 'declaration\.date'"):
        parse_ingest_mapping('[fields]\n"declaration.id" = "ID"\n', "m.toml")
    with pytest.raises(MappingError, match="no translation table"):
        parse_ingest_mapping(MINIMAL + '"item.origin" = { column = "O", translate = "x" }\n')
    with pytest.raises(MappingError, match="unknown option 'colum'; did you mean 'column'"):
        parse_ingest_mapping(MINIMAL + '"item.origin" = { colum = "O" }\n')
    with pytest.raises(MappingError, match="invalid TOML"):
        parse_ingest_mapping("[fields\n")


def test_a_mapping_column_missing_from_the_file_is_an_error(
    store: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("ID;DAT\nA;01.01.2024\n", encoding="utf-8")
    with pytest.raises(MappingError, match="no column 'DATE'; did you mean 'DAT'"):
        ingest_file(store, path, parse_ingest_mapping(MINIMAL))


def test_conversions(store: sa.Engine, tmp_path: Path) -> None:
    mapping = parse_ingest_mapping(
        MINIMAL
        + """
"declaration.direction" = { value = "IM" }
"declaration.transport.mode" = { column = "MODE", translate = "modes", on_unknown = "reject" }
"item.hs_code" = { column = "HS", zfill = 10 }
"item.customs_value" = { column = "VALUE", decimal_comma = true, thousands = ["space", "."] }
"item.origin" = { column = "ORIGIN", upper = true }
"item.ip_registered" = { column = "IP", true_values = ["так"], false_values = ["ні"] }
[translate.modes]
ROAD = "30"
SEA = "10"
"""
    )
    path = tmp_path / "f.csv"
    path.write_text(
        "ID;DATE;MODE;HS;VALUE;ORIGIN;IP\n"
        "A;01.02.2024;ROAD;207140000;1 234,56;cn;так\n"
        "B;2024-02-02;SEA;6403990000;7;de;\n"
        "C;03.02.2024;AIR;6403990000;7;de;ні\n"
        "D;04.02.2024;SEA;6403990000;1.234,5;de;ні\n",
        encoding="utf-8",
    )
    result = ingest_file(store, path, mapping)
    stored = contents(store)
    assert set(stored["declarations"]) == {"A", "B", "D"}
    a = stored["declarations"]["A"]
    assert (a["date"], a["direction"], a["transport_mode"]) == (dt.date(2024, 2, 1), "IM", "30")
    item = stored["items"][("A", 1)]
    assert (item["hs_code"], item["customs_value"], item["origin"], item["ip_registered"]) == (
        "0207140000", 1234.56, "CN", True,
    )  # fmt: skip
    assert stored["items"][("B", 1)]["ip_registered"] is None
    assert stored["items"][("D", 1)]["customs_value"] == 1234.5
    rejects = read_rejects(result.rejects_path or "")
    assert [(r["row"], r["declaration"]) for r in rejects] == [("3", "C")]
    assert "'AIR' is not in the translation table 'modes'" in rejects[0]["reason"]


# --- the command line ---------------------------------------------------------------------------


def test_ingest_command_reports_and_exits_1_on_rejects(
    store_url: str, store: sa.Engine, tmp_path: Path
) -> None:
    path, _, _ = _broken_export(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        ingest, [str(path), "--db", store_url, "--mapping", str(DECLARATIONS_MAP), "--quiet"]
    )
    assert result.exit_code == 1, result.output
    assert f"rejected rows: {path}.rejects.csv" in result.output
    assert "already stored" in result.output
    rejected = len(read_rejects(f"{path}.rejects.csv"))
    # unchanged, run again: nothing to do, but the file still has its rejects: said, status 1
    result = runner.invoke(
        ingest, [str(path), "--db", store_url, "--mapping", str(DECLARATIONS_MAP), "--quiet"]
    )
    assert result.exit_code == 1, result.output
    assert "was already ingested" in result.output
    assert f"{rejected} rows were rejected: {path}.rejects.csv\n" in result.output
    # the rejects file removed meanwhile: said too
    os.remove(f"{path}.rejects.csv")
    result = runner.invoke(
        ingest, [str(path), "--db", store_url, "--mapping", str(DECLARATIONS_MAP), "--quiet"]
    )
    assert result.exit_code == 1, result.output
    assert f"{rejected} rows were rejected: {path}.rejects.csv (the file is no longer" in (
        result.output
    )


def test_reingesting_a_file_without_rejects_exits_0(
    store_url: str, exported: dict[str, Path]
) -> None:
    runner = CliRunner()
    args = [str(exported["declarations"]), "--db", store_url, "--mapping",
            str(DECLARATIONS_MAP), "--quiet"]  # fmt: skip
    assert runner.invoke(ingest, args).exit_code == 0
    result = runner.invoke(ingest, args)
    assert result.exit_code == 0, result.output
    assert "was already ingested" in result.output
    assert "rejected" not in result.output


def test_jsonl_with_a_mapping_reads_dotted_paths_and_nested_items(
    store: sa.Engine, tmp_path: Path
) -> None:
    import json

    mapping = parse_ingest_mapping(
        """
[source]
format = "jsonl"
items = "goods"
[fields]
"declaration.id" = "head.number"
"declaration.date" = { column = "head.registered", date_format = "%d.%m.%Y" }
"declaration.declarant.id" = "head.declarant.edrpou"
"item.hs_code" = "code"
"item.net_mass" = "mass.net"
"""
    )
    lines = [
        {"head": {"number": "J1", "registered": "02.01.2024", "declarant": {"edrpou": "123"}},
         "goods": [{"code": "6403990000", "mass": {"net": 12.5}}, {"code": "6404110000"}]},
        {"head": {"number": "J2", "registered": "03.01.2024"}, "goods": []},
        {"head": {"number": "J3", "registered": "2024-01-04"}, "goods": []},
        {"head": {"number": "J4", "registered": "05.01.2024"},
         "goods": [{"code": "85", "mass": {"net": "heavy"}}]},
    ]  # fmt: skip
    path = tmp_path / "export.jsonl"
    path.write_text(
        "\n".join(json.dumps(line) for line in lines) + "\n{not json\n", encoding="utf-8"
    )
    result = ingest_file(store, path, mapping)
    stored = contents(store)
    assert set(stored["declarations"]) == {"J1", "J2"}
    assert stored["declarations"]["J1"]["declarant_id"] == "123"
    assert stored["items"][("J1", 1)]["net_mass"] == 12.5
    assert stored["items"][("J1", 2)]["net_mass"] is None
    reasons = {int(r["row"]): r["reason"] for r in read_rejects(result.rejects_path or "")}
    assert set(reasons) == {3, 4, 5}
    assert "column head.registered (declaration.date): expected a date" in reasons[3]
    assert "item 1, column mass.net (item.net_mass): expected a number" in reasons[4]
    assert "invalid JSON" in reasons[5]
