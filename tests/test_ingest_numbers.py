"""Numbers in ingested files (issue 11): a number that is not well-formed in the mapping's format,
or beyond the one input rule (finite, at most 1e15, not below the field's minimum), is rejected
with its row and reason; the other rows are stored."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from riskengine.ingest.mapping import MappingError, parse_ingest_mapping
from riskengine.ingest.pipeline import ingest_file
from riskengine.store.schema import TABLES

_MAPPING = """
[source]
delimiter = ";"
[defaults]
date_format = "%d.%m.%Y"
[fields]
"declaration.id" = "ID"
"declaration.date" = "DATE"
"item.customs_value" = { column = "VALUE", decimal_comma = true }
"item.net_mass" = { column = "MASS", thousands = "," }
"""


def _rejects(path: str | None) -> dict[str, str]:
    assert path is not None
    with open(path, encoding="utf-8", newline="") as stream:
        return {r["declaration"]: r["reason"] for r in csv.DictReader(stream)}


def _stored(engine: sa.Engine) -> dict[str, tuple[Any, Any]]:
    t = TABLES
    query = sa.select(t.declarations.c.id, t.items.c.customs_value, t.items.c.net_mass).join(
        t.items, t.items.c.decl_pk == t.declarations.c.pk
    )
    with engine.connect() as c:
        return {r.id: (r.customs_value, r.net_mass) for r in c.execute(query)}


def test_numbers_that_were_misread_are_rejected_with_the_reason(
    store: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "ID;DATE;VALUE;MASS\n"
        "OK1;01.02.2024;1234,56;1,234.5\n"
        "DOT;01.02.2024;1,234.56;1\n"  # was 1.23456
        "TWO;01.02.2024;1.234,5.6;1\n"  # was 1234.56
        "UND;01.02.2024;1_000;1\n"  # was 1000
        "SEP;01.02.2024;1 234,5;1\n"  # thousands not declared for VALUE
        "BIG;01.02.2024;1e999;1\n"
        "NEG;01.02.2024;5;-1\n"
        "OK2;01.02.2024;7;12,345,678\n",
        encoding="utf-8",
    )
    result = ingest_file(store, path, parse_ingest_mapping(_MAPPING))
    assert _stored(store) == {"OK1": (1234.56, 1234.5), "OK2": (7.0, 12345678.0)}
    rejects = _rejects(result.rejects_path)
    prefix = "column VALUE (item.customs_value): expected a number, got "
    assert rejects == {
        "DOT": prefix + "'1,234.56' (this mapping reads a decimal comma)",
        "TWO": prefix + "'1.234,5.6' (this mapping reads a decimal comma)",
        "UND": prefix + "'1_000'",
        "SEP": prefix + "'1 234,5' (declare thousands = \"space\" for ' ' between thousands)",
        "BIG": "column VALUE (item.customs_value): '1e999' is out of range (a number may be at "
        "most 1e15 in magnitude)",
        "NEG": "column MASS (item.net_mass): expected a number that is not negative, got '-1'",
    }
    assert result.rows_rejected == 6


def test_json_lines_numbers_follow_the_same_rule(store: sa.Engine, tmp_path: Path) -> None:
    mapping = parse_ingest_mapping(
        """
[source]
format = "jsonl"
items = "goods"
[fields]
"declaration.id" = "id"
"declaration.date" = "date"
"item.customs_value" = "value"
"""
    )
    lines = [
        {"id": "OK", "date": "2024-02-01", "goods": [{"value": 12.5}]},
        {"id": "INT", "date": "2024-02-01", "goods": [{"value": 10**400}]},
        {"id": "NEG", "date": "2024-02-01", "goods": [{"value": -3}]},
        {"id": "TXT", "date": "2024-02-01", "goods": [{"value": "1_000"}]},
    ]
    path = tmp_path / "export.jsonl"
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    path.write_text(text, encoding="utf-8")
    result = ingest_file(store, path, mapping)
    assert _stored(store) == {"OK": (12.5, None)}
    assert _rejects(result.rejects_path) == {
        # the line is not read whole (JSON Lines reader): the line's reason, and its declaration
        # id, found before the number that could not be read
        "INT": "invalid JSON: an integer of 401 digits: out of the range of numbers (at most 308 "
        "digits)",
        "NEG": "item 1, column value (item.customs_value): expected a number that is not "
        "negative, got -3",
        "TXT": "item 1, column value (item.customs_value): expected a number, got '1_000'",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('thousands = "."', "thousands: '.' is the decimal mark of this field (set decimal_comma "
         "= true for 1.234,5)"),
        ('decimal_comma = true, thousands = ","', "thousands: ',' is the decimal mark of this "
         "field"),
        ('thousands = "_"', "thousands: '_' is not a thousands separator (one of 'space', ' ', "
         "'\\xa0', '\\u202f', \"'\", '’', '.', ',')"),
        ('decimal_comma = "yes"', "decimal_comma must be true or false"),
    ],
)  # fmt: skip
def test_a_wrong_number_format_is_a_mapping_error(options: str, message: str) -> None:
    text = _MAPPING.replace('"item.net_mass" = { column = "MASS", thousands = "," }',
                            f'"item.net_mass" = {{ column = "MASS", {options} }}')  # fmt: skip
    with pytest.raises(MappingError) as info:
        parse_ingest_mapping(text, "map.toml")
    assert str(info.value) == f"map.toml:10: fields.item.net_mass: {message}"


def test_thousands_in_defaults_apply_to_every_number() -> None:
    text = _MAPPING.replace("[defaults]", '[defaults]\nthousands = ["space", "\'"]')
    rules = {r.target: r for r in parse_ingest_mapping(text).rules}
    assert rules["item.customs_value"].converter()("1 234 567,5") == 1234567.5
    assert rules["item.customs_value"].converter()("1'234,5") == 1234.5
    assert rules["item.net_mass"].converter()("1,234") == 1234.0  # its own option wins
