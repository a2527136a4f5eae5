"""Declarations as input: normalisation of each type, type errors, and the JSON Schema."""

from __future__ import annotations

import datetime
import functools
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.catalogue import Catalogue, Field, FieldType, default_catalogue
from riskengine.declaration import (
    Declaration,
    DeclarationError,
    declaration_json_schema,
    normalise_declaration,
    schema_json,
)
from riskengine.diagnostics import RiskEngineError

DOCS = Path(__file__).resolve().parent.parent / "docs"
CATALOGUE = default_catalogue()


def normalise(raw: dict[str, Any]) -> Declaration:
    return normalise_declaration(raw, CATALOGUE)


def item_value(value: Any, field: str = "net_mass") -> Any:
    """The normalised value of one field of a one-item declaration."""
    return normalise({"items": [{field: value}]}).items[0].get(field)


def item_error(value: Any, field: str = "net_mass", position: int = 1) -> DeclarationError:
    items: list[dict[str, Any]] = [{} for _ in range(position)]
    items[-1][field] = value
    with pytest.raises(DeclarationError) as caught:
        normalise({"items": items})
    return caught.value


def example_declaration() -> dict[str, Any]:
    """The example declaration in docs/declarations.md (the first ```json block)."""
    text = (DOCS / "declarations.md").read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert match, "docs/declarations.md has no ```json example"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    schema = declaration_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


# --- shape ---------------------------------------------------------------------------------


def test_nested_header_and_items_become_flat_records() -> None:
    declaration = normalise(
        {
            "id": "D1",
            "date": "2012-04-02",
            "declarant": {"id": "31234567", "aeo": True},
            "transport": {"mode": "30"},
            "items": [
                {"number": 1, "hs_code": "6403990000", "net_mass": 150.0},
                {"number": 2, "origin": "CN"},
            ],
        }
    )
    assert declaration.id == "D1"
    assert declaration.header == {
        "id": "D1",
        "date": datetime.date(2012, 4, 2),
        "declarant.id": "31234567",
        "declarant.aeo": True,
        "transport.mode": "30",
    }
    assert declaration.items == (
        {"number": 1, "hs_code": "6403990000", "net_mass": 150.0},
        {"number": 2, "origin": "CN"},
    )


def test_get_reads_header_and_items_and_missing_is_none() -> None:
    declaration = normalise(
        {"office": "UA100110", "items": [{"origin": "CN"}, {"origin": "VN", "net_mass": 3}]}
    )
    assert declaration.get("declaration.office", None) == "UA100110"
    assert declaration.get("declaration.office", 1) == "UA100110"
    assert declaration.get("item.origin", 0) == "CN"
    assert declaration.get("item.origin", 1) == "VN"
    assert declaration.get("item.net_mass", 0) is None
    assert declaration.get("item.origin", None) is None
    assert declaration.get("declaration.date", None) is None
    with pytest.raises(ValueError, match="not a field path"):
        declaration.get("origin", 0)


def test_missing_and_null_are_absent_not_errors() -> None:
    declaration = normalise(
        {
            "date": None,
            "declarant": None,
            "transport": {"mode": None},
            "items": [{"net_mass": None}],
        }
    )
    assert declaration.header == {}
    assert declaration.items == ({},)
    assert declaration.id is None
    assert normalise({}).items == ()
    assert normalise({"items": None}).items == ()


def test_unknown_keys_are_kept_but_ignored() -> None:
    raw = {"office": "UA1", "contract": {"no": 7}, "items": [{"origin": "CN", "colour": "red"}]}
    declaration = normalise(raw)
    assert declaration.header == {"office": "UA1"}
    assert declaration.items == ({"origin": "CN"},)
    assert declaration.raw["contract"] == {"no": 7}


def test_the_catalogue_decides_what_is_read() -> None:
    catalogue = Catalogue({"item.size": Field("item.size", FieldType.NUMBER)})
    declaration = normalise_declaration({"id": 7, "items": [{"size": "42"}]}, catalogue)
    assert declaration.items == ({"size": 42},)
    assert declaration.id == "7"  # no declaration.id field: the raw id is still the id


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (12, 12),
        (12.5, 12.5),
        (0, 0),
        ("12.5", 12.5),
        ("12", 12),
        (" 12.5 ", 12.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        (Decimal("12.50"), 12.5),
        (10**15, 10**15),
        ("1e15", 1e15),
        ("1000000000000000", 10**15),
    ],
)
def test_numbers(given_value: Any, expected: Any) -> None:
    value = item_value(given_value)
    assert value == expected
    assert type(value) is type(expected)


def test_comma_decimal_separator_is_a_clear_error() -> None:
    error = item_error("12,5", position=2)
    assert (error.field, error.item) == ("item.net_mass", 2)
    assert str(error) == (
        'item 2, item.net_mass: expected a number, got "12,5" (the decimal separator is a dot)'
    )


def test_empty_string_is_not_a_number() -> None:
    error = item_error("", field="customs_value", position=3)
    assert (error.field, error.item) == ("item.customs_value", 3)
    assert str(error) == 'item 3, item.customs_value: expected a number, got ""'


@pytest.mark.parametrize(
    "bad", ["abc", "12.5 kg", "1_000", "nan", "inf", "1,234.5", True, False, [1], {"v": 1}]
)
def test_not_numbers(bad: Any) -> None:
    error = item_error(bad)
    assert error.field == "item.net_mass"
    assert error.item == 1
    assert error.reason.startswith("expected a number, got")


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), float("-inf"), Decimal("Infinity"), Decimal("NaN")]
)
def test_non_finite_floats_are_errors(bad: float) -> None:
    assert item_error(bad).reason.startswith("expected a finite number")


_RANGE = "is out of range (a number may be at most 1e15 in magnitude)"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1e999", f'"1e999" {_RANGE}'),
        (Decimal("1e400"), f"1E+400 {_RANGE}"),
        (10**400, f"an integer of 401 digits {_RANGE}"),
        pytest.param(10**5000 - 1, f"an integer of 5,000 digits {_RANGE}", id="5000-digits"),
        ("9" * 5000, f'"{"9" * 37}..." {_RANGE}'),
        (1e308, f"1e+308 {_RANGE}"),
        (10**15 + 1, f"1000000000000001 {_RANGE}"),
        ("1.0000000000000002e15", f'"1.0000000000000002e15" {_RANGE}'),
    ],
)
def test_numbers_beyond_the_input_range_are_errors(bad: Any, message: str) -> None:
    """One rule for every number entering riskengine (issue 11): finite and at most 1e15."""
    error = item_error(bad, field="customs_value")
    assert str(error) == f"item 1, item.customs_value: {message}"


@pytest.mark.parametrize("bad", [-1, -0.5, "-3.25", Decimal("-2")])
def test_negative_masses_and_values_are_errors(bad: Any) -> None:
    for field in ("net_mass", "gross_mass", "customs_value", "invoice_value"):
        error = item_error(bad, field=field)
        assert error.reason.startswith("expected a number that is not negative, got ")
    with pytest.raises(DeclarationError) as caught:
        normalise({"invoice_total": bad})
    assert caught.value.field == "declaration.invoice_total"


def test_the_schema_bounds_numbers_like_the_normaliser() -> None:
    check = validator()
    schema = declaration_json_schema()
    mass = schema["properties"]["items"]["items"]["properties"]["net_mass"]
    assert (mass["minimum"], mass["maximum"]) == (0, 10**15)
    for bad in (-1, -0.5, 10**15 + 1, 1e16, 1e308):
        assert not check.is_valid({"items": [{"net_mass": bad}]}), bad
        assert not check.is_valid({"invoice_total": bad}), bad
        item_error(bad)
    for good in (0, 0.5, 10**15):
        assert check.is_valid({"items": [{"net_mass": good}]})
        assert item_value(good) == good


def test_a_user_catalogue_number_without_minimum_may_be_negative() -> None:
    catalogue = Catalogue({"item.delta": Field("item.delta", FieldType.NUMBER)})
    assert normalise_declaration({"items": [{"delta": -3.25}]}, catalogue).items == (
        {"delta": -3.25},
    )
    with pytest.raises(DeclarationError, match="out of range"):
        normalise_declaration({"items": [{"delta": -1e16}]}, catalogue)


def test_header_number_error_has_no_item() -> None:
    with pytest.raises(DeclarationError) as caught:
        normalise({"invoice_total": "15 400"})
    assert caught.value.item is None
    assert str(caught.value) == 'declaration.invoice_total: expected a number, got "15 400"'
    assert isinstance(caught.value, RiskEngineError)


# --- dates ---------------------------------------------------------------------------------


def test_dates() -> None:
    april_2 = datetime.date(2012, 4, 2)
    assert normalise({"date": "2012-04-02"}).header["date"] == april_2
    assert normalise({"date": april_2}).header["date"] == april_2
    moment = datetime.datetime(2012, 4, 2, 23, 59)
    assert normalise({"date": moment}).header["date"] == april_2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("02.04.2012", 'declaration.date: expected a date YYYY-MM-DD, got "02.04.2012"'),
        ("2012-4-2", 'declaration.date: expected a date YYYY-MM-DD, got "2012-4-2"'),
        ("2012-02-30", 'declaration.date: no such date: "2012-02-30"'),
        ("", 'declaration.date: expected a date YYYY-MM-DD, got ""'),
        (20120402, "declaration.date: expected a date YYYY-MM-DD, got 20120402"),
        (
            "2012-04-02T10:00",
            'declaration.date: expected a date YYYY-MM-DD, got "2012-04-02T10:00"',
        ),
    ],
)
def test_bad_dates(bad: Any, message: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        normalise({"date": bad})
    assert str(caught.value) == message


# --- booleans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True)],
)
def test_booleans(given_value: Any, expected: bool) -> None:
    assert normalise({"declarant": {"aeo": given_value}}).header["declarant.aeo"] is expected


@pytest.mark.parametrize("bad", ["yes", "", 1, 0, "1"])
def test_bad_booleans(bad: Any) -> None:
    with pytest.raises(DeclarationError) as caught:
        normalise({"declarant": {"aeo": bad}})
    assert caught.value.field == "declaration.declarant.aeo"
    assert caught.value.reason.startswith("expected true or false")


# --- codes and strings ---------------------------------------------------------------------


def test_codes_and_strings() -> None:
    declaration = normalise(
        {"declarant": {"id": 31234567, "name": "TOV"}, "items": [{"hs_code": "0101210000"}]}
    )
    assert declaration.header == {"declarant.id": "31234567", "declarant.name": "TOV"}
    assert declaration.items[0]["hs_code"] == "0101210000"
    assert item_value("", "description") == ""  # empty text is a value, not a missing one


@pytest.mark.parametrize("bad", [True, 6403.99, ["CN"], {"code": "CN"}])
def test_bad_codes(bad: Any) -> None:
    error = item_error(bad, field="origin")
    assert (error.field, error.item) == ("item.origin", 1)
    assert error.reason.startswith("expected a code (text), got")


# --- structure errors ----------------------------------------------------------------------


def test_structure_errors_name_the_place() -> None:
    with pytest.raises(
        DeclarationError, match=r'^declaration.declarant: expected an object, got "3'
    ):
        normalise({"declarant": "31234567"})
    with pytest.raises(DeclarationError, match=r"^items: expected a list, got an object"):
        normalise({"items": {"hs_code": "6403"}})
    with pytest.raises(DeclarationError, match=r'^item 2, item: expected an object, got "6403"'):
        normalise({"items": [{}, "6403"]})
    with pytest.raises(DeclarationError, match=r"^declaration: expected an object, got a list"):
        normalise_declaration([], CATALOGUE)  # type: ignore[arg-type]


# --- the JSON Schema -----------------------------------------------------------------------


def test_schema_file_in_docs_is_up_to_date() -> None:
    on_disk = (DOCS / "declaration.schema.json").read_text(encoding="utf-8")
    assert on_disk == schema_json(), (
        "docs/declaration.schema.json is stale: "
        "python -m riskengine.declaration > docs/declaration.schema.json"
    )
    assert json.loads(on_disk) == declaration_json_schema()


def test_schema_follows_the_catalogue() -> None:
    schema = declaration_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is True
    assert "required" not in json.dumps(schema)
    header = schema["properties"]
    assert header["date"]["format"] == "date"
    assert header["date"]["type"] == ["string", "null"]
    assert header["declarant"]["properties"]["aeo"]["type"] == ["boolean", "null"]
    assert header["declarant"]["properties"]["aeo"]["title"] == "declaration.declarant.aeo"
    item = header["items"]["items"]
    assert item["additionalProperties"] is True
    assert item["properties"]["net_mass"]["type"] == ["number", "null"]
    assert item["properties"]["net_mass"]["examples"] == [1500.0]
    assert item["properties"]["hs_code"]["type"] == ["string", "null"]


def test_schema_of_an_extended_catalogue_has_the_user_field() -> None:
    extra = Catalogue({"item.owner.id": Field("item.owner.id", FieldType.CODE)})
    schema = declaration_json_schema(CATALOGUE.extend(extra))
    owner = schema["properties"]["items"]["items"]["properties"]["owner"]
    assert owner["properties"]["id"]["type"] == ["string", "null"]


def test_docs_example_is_valid_and_normalises() -> None:
    example = example_declaration()
    errors = [e.message for e in validator().iter_errors(example)]
    assert errors == []
    declaration = normalise(example)
    assert declaration.id == "UA100110-2012-000123"
    assert declaration.header["declarant.aeo"] is False
    assert declaration.header["date"] == datetime.date(2012, 4, 2)
    assert "destination_office" not in declaration.header
    assert [item["origin"] for item in declaration.items] == ["CN", "VN"]
    assert declaration.get("item.net_mass", 0) == 1500.0
    assert declaration.get("item.brand", 1) is None


def test_schema_rejects_what_normalisation_rejects() -> None:
    check = validator()
    assert not check.is_valid({"date": "02.04.2012"})
    assert not check.is_valid({"items": [{"net_mass": "12,5"}]})
    assert not check.is_valid({"declarant": {"aeo": "yes"}})


# --- any declaration of the schema's types normalises ----------------------------------------

_JSON_TEXT = st.text(max_size=12)
_VALUES: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.NUMBER: st.one_of(
        st.integers(min_value=0, max_value=10**15),
        st.floats(min_value=0, max_value=1e15),
    ),
    FieldType.DATE: st.dates(min_value=datetime.date(1, 1, 1)).map(datetime.date.isoformat),
    FieldType.BOOLEAN: st.booleans(),
    FieldType.STRING: _JSON_TEXT,
    FieldType.CODE: _JSON_TEXT,
}


def _record(fields: list[Field]) -> st.SearchStrategy[dict[str, Any]]:
    """A nested JSON object with any subset of ``fields``, each a value, null or absent."""
    entries = [
        st.one_of(st.none(), st.tuples(st.just(f), st.one_of(st.none(), _VALUES[f.type])))
        for f in fields
    ]

    def build(chosen: list[tuple[Field, Any] | None]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for entry in chosen:
            if entry is None:
                continue
            field, value = entry
            *groups, last = field.name.split(".")
            node = data
            for group in groups:
                node = node.setdefault(group, {})
            node[last] = value
        return data

    return st.tuples(*entries).map(lambda chosen: build(list(chosen)))


declarations = st.builds(
    lambda header, items: {**header, "items": items},
    _record(CATALOGUE.scope_fields("declaration")),
    st.lists(_record(CATALOGUE.scope_fields("item")), max_size=3),
)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        elif value is not None:
            flat[prefix + key] = value
    return flat


@settings(max_examples=150, deadline=None)
@given(declarations)
def test_any_declaration_of_the_schema_normalises(raw: dict[str, Any]) -> None:
    assert validator().is_valid(raw)
    declaration = normalise(raw)
    header = _flat({k: v for k, v in raw.items() if k != "items"})
    expected_header = {
        name: datetime.date.fromisoformat(value)
        if CATALOGUE.fields[f"declaration.{name}"].type is FieldType.DATE
        else value
        for name, value in header.items()
    }
    assert declaration.header == expected_header
    assert len(declaration.items) == len(raw["items"])
    for record, raw_item in zip(declaration.items, raw["items"], strict=True):
        assert record == _flat(raw_item)
