"""The fast ingest path gives what the plain one gives: conversion in a second process, the
compiled row converters, and YAML mappings equal to their TOML twins."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.ingest.mapping import MappingError, load_ingest_mapping, parse_ingest_mapping
from riskengine.ingest.pipeline import ingest_file
from riskengine.ingest.records import Reader
from riskengine.store.engine import StoreError, connect
from riskengine.store.schema import TABLES
from tests.test_ingest import (
    DECLARATIONS_MAP,
    EXAMPLES,
    RECORDS,
    _broken_export,
    contents,
    read_rejects,
)

YAML_MAP = EXAMPLES / "demo_export.yaml"


def _reference(tmp_path: Path, name: str) -> sa.Engine:
    folder = tmp_path / name
    folder.mkdir()
    return connect(f"sqlite:///{folder / 'ref.db'}")


# --- a second process ---------------------------------------------------------------------------


def test_converting_in_a_second_process_stores_and_rejects_the_same(
    store: sa.Engine, tmp_path: Path
) -> None:
    path, expected, lost = _broken_export(tmp_path)
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    reference = _reference(tmp_path, "single")
    try:
        plain = ingest_file(reference, path, mapping, batch_rows=40, parallel=False,
                            rejects_path=tmp_path / "plain.rejects.csv")  # fmt: skip
        fast = ingest_file(store, path, mapping, batch_rows=40, parallel=True,
                           rejects_path=tmp_path / "fast.rejects.csv")  # fmt: skip
        assert contents(store) == contents(reference)
    finally:
        reference.dispose()
    assert (fast.rows, fast.rows_rejected, fast.records_added, fast.batches) == (
        plain.rows, plain.rows_rejected, plain.records_added, plain.batches,
    )  # fmt: skip
    assert fast.rows_rejected > 0
    # the rejects file is the same byte for byte: row numbers, reasons, raw cells, order
    assert (tmp_path / "fast.rejects.csv").read_bytes() == (
        tmp_path / "plain.rejects.csv"
    ).read_bytes()
    culprits = {int(r["row"]) for r in read_rejects(tmp_path / "fast.rejects.csv")
                if "see row" not in r["reason"]}  # fmt: skip
    assert culprits == set(expected)
    stored = set(contents(store)["declarations"])
    assert stored == {r.declaration.header["id"] for r in RECORDS} - lost


def test_an_interrupted_parallel_ingest_resumes_and_stops_its_child(
    store: sa.Engine, tmp_path: Path
) -> None:
    path, expected, lost = _broken_export(tmp_path)
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    calls: list[int] = []

    def stop_after_three(_position: int, rows: int) -> None:
        calls.append(rows)
        if len(calls) == 3:
            raise KeyboardInterrupt

    children_before = _children()
    with pytest.raises(KeyboardInterrupt):
        ingest_file(store, path, mapping, batch_rows=30, progress=stop_after_three, parallel=True)
    assert _children() == children_before  # the converting process was stopped
    result = ingest_file(store, path, mapping, batch_rows=30, parallel=True)
    assert result.resumed_from == calls[-1] > 0
    rejects = read_rejects(result.rejects_path or "")
    assert len({r["row"] for r in rejects}) == len(rejects)  # no reject written twice
    assert {int(r["row"]) for r in rejects if "see row" not in r["reason"]} == set(expected)
    assert (
        set(contents(store)["declarations"]) == {r.declaration.header["id"] for r in RECORDS} - lost
    )


def _children() -> set[int]:
    """The live child processes of this process (Linux: /proc)."""
    found = set()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(entry))
    return found


def test_a_child_that_cannot_start_is_a_store_error(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = _broken_export(tmp_path)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(StoreError, match="the process converting the file stopped unexpectedly"):
        ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP), parallel=True)
    with store.connect() as c:
        count = c.execute(sa.select(sa.func.count()).select_from(TABLES.declarations))
        assert count.scalar_one() == 0


# --- compiled converters ------------------------------------------------------------------------

_CONVERSIONS = "\n".join([
    "[source]",
    'delimiter = ";"',
    "[fields]",
    '"declaration.id" = "ID"',
    '"declaration.date" = { column = "DATE", date_format = ["%d.%m.%Y", "%Y-%m-%d"] }',
    '"declaration.direction" = { value = "IM" }',
    '"declaration.transport.mode" = { column = "MODE", translate = "modes", '
    'on_unknown = "reject" }',
    '"declaration.transport.nationality" = { column = "MODE", translate = "modes", '
    'on_unknown = "missing", upper = true }',
    '"declaration.delivery_terms" = { column = "MODE", translate = "modes" }',
    '"declaration.invoice_total" = { column = "VALUE", decimal_comma = true }',
    '"declaration.exchange_rate" = "VALUE"',
    '"declaration.transit_deadline" = { column = "DATE", date_format = "%d.%m.%Y", strip = false }',
    '"declaration.declarant.aeo" = { column = "FLAG", true_values = ["так", "Y"], '
    'false_values = ["ні"] }',
    '"declaration.declarant.name" = { column = "NAME", upper = true, zfill = 4 }',
    '"declaration.office" = { column = "NAME", strip = false }',
    '"declaration.items_count" = { column = "VALUE", strip = false }',
    "[translate.modes]",
    'ROAD = "30"',
    'sea = "10"',
    "",
])  # fmt: skip

_CELLS = st.sampled_from([
    "", " ", "  x ", "ROAD", "road", " ROAD", "sea", "AIR", "1", "0", "так", "ТАК", "Y", "y",
    "ні", " 1", "yes", "12", "12,5", "1 234,56", "1.234,5", "1.234", "1e5", "-0", "inf", "nan",
    "-inf", "1e999", "1_000", "1,2,3", "01.02.2024", " 01.02.2024 ", "2024-02-01", "31.02.2024",
    "2024-13-01", "x1", "Ñoño", "\u00a0", "1\u00a0234,5",
])  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CELLS, min_size=6, max_size=6))
def test_the_compiled_converter_reads_like_the_field_converters(cells: list[str]) -> None:
    mapping = parse_ingest_mapping(_CONVERSIONS)
    header = ["ID", "DATE", "MODE", "VALUE", "FLAG", "NAME"]
    for iso_dates in (True, False):
        reader = Reader(mapping.rules, mapping, header, iso_dates=iso_dates)
        values, problem = reader.read(cells)
        # the reference: every value through its field's own converter
        reference, reference_problem = reader.per_cell(cells)
        assert problem == reference_problem
        assert tuple(values) == tuple(reference)
        if problem is None:
            assert [type(v) for v in values] == [type(v) for v in reference]


def test_the_compiled_converter_is_generated_source() -> None:
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    from riskengine import demo

    names = [name for name, _, _ in demo.EXPORT_COLUMNS]
    reader = Reader([r for r in mapping.rules if r.scope == "item"], mapping, names)
    assert reader.fast is not None
    source = reader.fast.__source__  # type: ignore[attr-defined]
    assert source.startswith("def convert(c):")
    assert 'float(x.replace(",", "."))' in source  # decimal commas inline
    assert ".zfill(10)" in source


# --- YAML mappings ------------------------------------------------------------------------------


def test_a_yaml_mapping_ingests_like_its_toml_twin(store: sa.Engine, tmp_path: Path) -> None:
    path, _, _ = _broken_export(tmp_path)
    reference = _reference(tmp_path, "toml")
    try:
        from_toml = ingest_file(reference, path, load_ingest_mapping(DECLARATIONS_MAP),
                                rejects_path=tmp_path / "toml.rejects.csv")  # fmt: skip
        from_yaml = ingest_file(store, path, load_ingest_mapping(YAML_MAP),
                                rejects_path=tmp_path / "yaml.rejects.csv")  # fmt: skip
        assert contents(store) == contents(reference)
    finally:
        reference.dispose()
    assert (from_yaml.rows, from_yaml.rows_rejected, from_yaml.records_added) == (
        from_toml.rows, from_toml.rows_rejected, from_toml.records_added,
    )  # fmt: skip
    assert (tmp_path / "yaml.rejects.csv").read_bytes() == (
        tmp_path / "toml.rejects.csv"
    ).read_bytes()


def test_the_yaml_example_is_the_toml_example() -> None:
    toml, yaml = load_ingest_mapping(DECLARATIONS_MAP), load_ingest_mapping(YAML_MAP)
    assert yaml.rules == toml.rules
    assert (yaml.kind, yaml.format, yaml.delimiter, yaml.group_by, yaml.encoding) == (
        toml.kind, toml.format, toml.delimiter, toml.group_by, toml.encoding,
    )  # fmt: skip


def test_yaml_mapping_errors_name_the_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        'source:\n  delimiter: ";"\nfields:\n  declaration.id: ID\n  declaration.date: [DATE\n',
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as info:
        load_ingest_mapping(broken)
    message = str(info.value)
    assert message.startswith(f"{broken}:")
    assert "invalid YAML" in message

    typo = tmp_path / "typo.yml"
    typo.write_text(
        "fields:\n  declaration.id: ID\n  declaration.date: DATE\n  item.hs_cod: HS\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as info:
        load_ingest_mapping(typo)
    assert (
        f"{typo}:4: fields.item.hs_cod: not a catalogue field; did you mean 'item.hs_code'?"
        in str(info.value)
    )

    booleans = tmp_path / "booleans.yaml"
    booleans.write_text(
        "fields:\n  declaration.id: ID\n  declaration.date: DATE\n"
        "  declaration.declarant.aeo: { column: AEO, true_values: [yes], false_values: [no] }\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="quote yes, no, on, off, true and false"):
        load_ingest_mapping(booleans)

    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "fields:\n  declaration.id: ID\n  declaration.date: DATE\n"
        "  declaration.transport.mode: { column: M, translate: t }\n"
        "translate:\n  t:\n    no: '10'\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match=r"keys\.yaml:7: translate\.t: the key no is not text"):
        load_ingest_mapping(keys)

    for text in ("- a\n- b\n", "fields: [1, 2]\n"):
        (tmp_path / "list.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(MappingError, match=r"list\.yaml"):
            load_ingest_mapping(tmp_path / "list.yaml")


def test_the_ingest_command_takes_a_yaml_mapping(
    store_url: str, store: sa.Engine, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from riskengine import demo
    from riskengine.cli.ingest import ingest

    path = tmp_path / "export.csv"
    demo.export_csv(RECORDS[:30], path)
    result = CliRunner().invoke(
        ingest, [str(path), "--db", store_url, "--mapping", str(YAML_MAP), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert len(contents(store)["declarations"]) == 30

    from riskengine.cli import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("fields:\n  declaration.id: [ID\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["ingest", str(path), "--db", store_url, "--mapping", str(bad), "--quiet"]
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert f"{bad}:" in result.output and "invalid YAML" in result.output
