"""The field catalogue: the built-in fields, user catalogues, suggestions and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskengine.catalogue import (
    Catalogue,
    CatalogueError,
    Field,
    FieldType,
    catalogue_with,
    default_catalogue,
    load_catalogue,
)
from riskengine.diagnostics import RiskEngineError

REQUIRED = {
    "declaration.id": FieldType.STRING,
    "declaration.number": None,
    "declaration.date": FieldType.DATE,
    "declaration.office": FieldType.CODE,
    "declaration.regime": FieldType.CODE,
    "declaration.direction": FieldType.CODE,
    "declaration.declarant.id": FieldType.CODE,
    "declaration.declarant.name": FieldType.STRING,
    "declaration.declarant.aeo": FieldType.BOOLEAN,
    "declaration.importer.id": FieldType.CODE,
    "declaration.exporter.id": FieldType.CODE,
    "declaration.exporter.country": FieldType.CODE,
    "declaration.broker.id": FieldType.CODE,
    "declaration.dispatch_country": FieldType.CODE,
    "declaration.destination_country": FieldType.CODE,
    "declaration.transport.mode": FieldType.CODE,
    "declaration.transport.nationality": FieldType.CODE,
    "declaration.border_office": FieldType.CODE,
    "declaration.destination_office": FieldType.CODE,
    "declaration.currency": FieldType.CODE,
    "declaration.invoice_total": FieldType.NUMBER,
    "declaration.items_count": FieldType.NUMBER,
    "declaration.transit_deadline": FieldType.DATE,
    "item.number": FieldType.NUMBER,
    "item.hs_code": FieldType.CODE,
    "item.description": FieldType.STRING,
    "item.origin": FieldType.CODE,
    "item.preference": FieldType.CODE,
    "item.customs_value": FieldType.NUMBER,
    "item.invoice_value": FieldType.NUMBER,
    "item.net_mass": FieldType.NUMBER,
    "item.gross_mass": FieldType.NUMBER,
    "item.supplementary_quantity": FieldType.NUMBER,
    "item.supplementary_unit": FieldType.CODE,
    "item.procedure": FieldType.CODE,
    "item.brand": FieldType.STRING,
    "item.excise_rate": FieldType.NUMBER,
    "item.duty_rate": FieldType.NUMBER,
    "item.licence": FieldType.STRING,
    "item.ip_registered": FieldType.BOOLEAN,
    "item.precursor": FieldType.BOOLEAN,
    "item.packages": FieldType.NUMBER,
    "item.container": None,
}


def write(tmp_path: Path, text: str, name: str = "fields.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the built-in catalogue ----------------------------------------------------------------


def test_default_catalogue_has_the_fields_other_modules_rely_on() -> None:
    catalogue = default_catalogue()
    for path, expected_type in REQUIRED.items():
        field = catalogue.get(path)
        assert field is not None, path
        if expected_type is not None:
            assert field.type is expected_type, path


def test_default_catalogue_is_documented_in_both_languages() -> None:
    catalogue = default_catalogue()
    assert 35 <= len(catalogue) <= 50
    for field in catalogue:
        assert field.description, field.path
        assert field.description_uk, field.path
        assert any("а" <= c <= "я" for c in field.description_uk.lower()), field.path


def test_default_catalogue_is_loaded_once() -> None:
    assert default_catalogue() is default_catalogue()


def test_field_scope_name_and_box() -> None:
    field = default_catalogue().fields["declaration.declarant.id"]
    assert (field.scope, field.name) == ("declaration", "declarant.id")
    hs_code = default_catalogue().fields["item.hs_code"]
    assert (hs_code.scope, hs_code.name, hs_code.box) == ("item", "hs_code", "33")
    assert hs_code.example == "6403990000"


def test_scope_fields_are_in_file_order() -> None:
    catalogue = default_catalogue()
    header = catalogue.scope_fields("declaration")
    items = catalogue.scope_fields("item")
    assert header[0].path == "declaration.id"
    assert items[0].path == "item.number"
    assert len(header) + len(items) == len(catalogue)
    assert catalogue.scope_fields("goods") == []


def test_contains_and_get() -> None:
    catalogue = default_catalogue()
    assert "item.hs_code" in catalogue
    assert "item.hs_cod" not in catalogue
    assert 42 not in catalogue
    assert catalogue.get("item.nope") is None


def test_comparable_types() -> None:
    assert FieldType.STRING.comparable_with(FieldType.CODE)
    assert FieldType.CODE.comparable_with(FieldType.STRING)
    assert FieldType.DATE.comparable_with(FieldType.DATE)
    assert not FieldType.NUMBER.comparable_with(FieldType.STRING)
    assert not FieldType.DATE.comparable_with(FieldType.NUMBER)
    assert not FieldType.BOOLEAN.comparable_with(FieldType.CODE)


# --- did you mean --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("item.hs_cod", "item.hs_code"),
        ("item.orign", "item.origin"),
        ("item.customs_valeu", "item.customs_value"),
        ("declaration.declarant.aoe", "declaration.declarant.aeo"),
        ("item.declarant.aeo", "declaration.declarant.aeo"),  # right name, wrong scope
        ("declaration.hs_code", "item.hs_code"),
        ("Item.HS_Code", "item.hs_code"),
        ("hs_code", "item.hs_code"),  # scope forgotten
        ("declaraton.office", "declaration.office"),
    ],
)
def test_suggest(typo: str, expected: str) -> None:
    assert default_catalogue().suggest(typo) == expected


def test_suggest_prefers_the_same_scope() -> None:
    # "number" exists in both scopes, as declaration.number and item.number.
    assert default_catalogue().suggest("item.numbr") == "item.number"
    assert default_catalogue().suggest("declaration.numbr") == "declaration.number"


def test_suggest_nothing_for_unrelated_names() -> None:
    assert default_catalogue().suggest("item.zzzz") is None
    assert default_catalogue().suggest("item.colour_of_the_sky") is None


# --- user catalogues -----------------------------------------------------------------------

USER = """
[[field]]
path = "item.brand_owner.id"
type = "code"
description = "Registry code of the holder of the trade mark"
description_uk = "Код власника торговельної марки"
example = 31234567
box = 31

[[field]]
path = "item.hs_code"
type = "code"
description = "Commodity code, 10 digits of the national nomenclature"
"""


def test_user_catalogue_adds_and_overrides(tmp_path: Path) -> None:
    catalogue = catalogue_with(write(tmp_path, USER))
    added = catalogue.get("item.brand_owner.id")
    assert added == Field(
        "item.brand_owner.id",
        FieldType.CODE,
        "Registry code of the holder of the trade mark",
        "Код власника торговельної марки",
        example="31234567",
        box="31",
    )
    hs_code = catalogue.fields["item.hs_code"]
    assert hs_code.description == "Commodity code, 10 digits of the national nomenclature"
    assert hs_code.box is None  # an override replaces the whole entry
    # Built-ins stay, in their place; new fields come last.
    paths = list(catalogue.fields)
    assert paths.index("item.hs_code") == list(default_catalogue().fields).index("item.hs_code")
    assert paths[-1] == "item.brand_owner.id"
    assert len(catalogue) == len(default_catalogue()) + 1
    # The built-in catalogue is unchanged.
    assert "item.brand_owner.id" not in default_catalogue()
    assert default_catalogue().fields["item.hs_code"].box == "33"


def test_load_catalogue_reads_only_the_user_file(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, USER))
    assert list(catalogue.fields) == ["item.brand_owner.id", "item.hs_code"]


def test_catalogue_with_none_is_the_default() -> None:
    assert catalogue_with(None) is default_catalogue()


def test_extend_returns_a_new_catalogue() -> None:
    base = Catalogue({"item.a": Field("item.a", FieldType.NUMBER)})
    extra = Catalogue({"item.b": Field("item.b", FieldType.DATE)})
    both = base.extend(extra)
    assert list(both.fields) == ["item.a", "item.b"]
    assert list(base.fields) == ["item.a"]
    assert both == Catalogue({"item.a": base.fields["item.a"], "item.b": extra.fields["item.b"]})
    assert hash(both) == hash(base.extend(extra))


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (
            '[[field]]\npath = "item.a"\ntype = "number"\n\n'
            '[[field]]\npath = "item.b"\ntype = "int"\n',
            5,
            "item.b",
            "unknown type 'int' (one of: string, number, date, boolean, code)",
        ),
        (
            '[[field]]\npath = "item.a"\ntype = "Number"\n',
            1,
            "item.a",
            "did you mean 'number'?",
        ),
        ('[[field]]\npath = "goods.a"\ntype = "code"\n', 1, "goods.a", "must start with"),
        ('[[field]]\npath = "item"\ntype = "code"\n', 1, "item", "no field"),
        ('[[field]]\npath = "item.9lives"\ntype = "code"\n', 1, "item.9lives", "'9lives'"),
        ('[[field]]\npath = "item.hs code"\ntype = "code"\n', 1, "item.hs code", "'hs code'"),
        ('[[field]]\npath = "item.a..b"\ntype = "code"\n', 1, "item.a..b", "bad path segment"),
        (
            '[[field]]\npath = "item.a"\ntype = "code"\n'
            '[[field]]\npath = "item.a"\ntype = "code"\n',
            4,
            "item.a",
            "duplicate path",
        ),
        ('[[field]]\npath = "item.a"\n', 1, "item.a", "no 'type'"),
        (
            '[[field]]\npath = "item.a"\ntype = "code"\ndescripton = "x"\n',
            1,
            "item.a",
            "descripton",
        ),
        ('[[field]]\ntype = "code"\n', 1, None, "field #1 has no 'path'"),
        (
            '[[field]]\npath = "declaration.items"\ntype = "number"\n',
            1,
            "declaration.items",
            "reserved",
        ),
        (
            '[[field]]\npath = "item.a"\ntype = "code"\n\n'
            '[[field]]\npath = "item.' + "x" * 30 + "." + "y" * 33 + '"\ntype = "code"\n',
            5,
            "item." + "x" * 30 + "." + "y" * 33,
            "would be 64 bytes long; column names hold at most 63 bytes (PostgreSQL",
        ),
        (
            '[[field]]\npath = "item.box"\ntype = "code"\n[[field]]\npath = "item.box.id"\n'
            'type = "code"\n',
            1,
            "item.box",
            "cannot also be a group",
        ),
    ],
)
def test_bad_user_catalogue_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, reason: str
) -> None:
    path = write(tmp_path, text, "my_fields.toml")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    error = caught.value
    assert isinstance(error, RiskEngineError)
    assert error.file == str(path)
    assert error.line == line
    assert error.field == field
    assert reason in str(error)
    assert str(error).startswith(f"{path}:{line}: ")


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[field]]\npath = "item.a"\ntype = code\n', "broken.toml")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert caught.value.file == str(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: invalid TOML")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(CatalogueError, match=r"nowhere\.toml: cannot read the file"):
        catalogue_with(path)


def test_wrong_layout_is_explained(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"unknown top-level key 'fields'"):
        load_catalogue(write(tmp_path, '[[fields]]\npath = "item.a"\ntype = "code"\n'))
    with pytest.raises(CatalogueError, match=r"write \[\[field\]\]"):
        load_catalogue(write(tmp_path, '[field]\npath = "item.a"\ntype = "code"\n'))


def test_user_field_cannot_turn_a_builtin_into_a_group(tmp_path: Path) -> None:
    path = write(tmp_path, '[[field]]\npath = "item.hs_code.chapter"\ntype = "code"\n')
    with pytest.raises(CatalogueError) as caught:
        catalogue_with(path)
    assert caught.value.file == str(path)
    assert caught.value.field == "item.hs_code"


def test_field_path_is_checked_when_built_in_code() -> None:
    with pytest.raises(CatalogueError, match="must start with"):
        Field("hs_code", FieldType.CODE)


def test_a_field_of_63_bytes_is_accepted_and_the_limit_applies_to_built_in_code() -> None:
    assert Field("item." + "a" * 63, FieldType.CODE).name == "a" * 63
    with pytest.raises(CatalogueError, match="would be 64 bytes long"):
        Field("declaration." + "a" * 32 + "." + "b" * 31, FieldType.CODE)


@pytest.mark.parametrize(
    ("minimum", "field_type", "reason"),
    [
        ('"0"', "number", "'minimum' must be a number"),
        ("true", "number", "'minimum' must be a number"),
        ("0", "code", "'minimum' applies to number fields only"),
        ("1e16", "number", "'minimum' must be a finite number of at most 1e15 in magnitude"),
        ("nan", "number", "'minimum' must be a finite number of at most 1e15 in magnitude"),
    ],
)
def test_a_bad_minimum_names_file_line_and_field(
    tmp_path: Path, minimum: str, field_type: str, reason: str
) -> None:
    text = f'[[field]]\npath = "item.a"\ntype = "{field_type}"\nminimum = {minimum}\n'
    path = write(tmp_path, text, "my_fields.toml")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert str(caught.value) == f"{path}:1: field 'item.a': {reason}"


def test_number_fields_of_the_builtin_catalogue_are_never_negative(tmp_path: Path) -> None:
    numbers = [f for f in default_catalogue() if f.type is FieldType.NUMBER]
    assert numbers and all(f.minimum == 0 for f in numbers)
    path = write(tmp_path, '[[field]]\npath = "item.delta"\ntype = "number"\nminimum = -5\n')
    assert load_catalogue(path).fields["item.delta"].minimum == -5
