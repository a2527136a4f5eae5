"""A mapping column's conversion is defined once: the compiled CSV row function and the per-cell
converter (JSON Lines, constants, the message for a bad row) read every cell alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.ingest.convert import ConversionError, cell_converter, compile_row
from riskengine.ingest.mapping import FieldRule, parse_ingest_mapping

#: One column per kind of conversion: every type, every cleaning option, both decimal marks.
_FIELDS = {
    "declaration.invoice_total": '{ column = "A", decimal_comma = true, '
    'thousands = ["space", "."] }',
    "declaration.exchange_rate": '"A"',
    "declaration.items_count": '{ column = "A", strip = false, thousands = "\'" }',
    "item.customs_value": '{ column = "A", thousands = "," }',
    "item.net_mass": '{ column = "A", decimal_comma = true }',
    "declaration.date": '{ column = "A", date_format = ["%d.%m.%Y", "%Y-%m-%d"] }',
    "declaration.transit_deadline": '{ column = "A" }',
    "declaration.declarant.aeo": '{ column = "A", true_values = ["так", "Y"], '
    'false_values = ["ні", "n"] }',
    "declaration.declarant.name": '{ column = "A", upper = true, zfill = 4 }',
    "declaration.office": '{ column = "A", strip = false }',
    "declaration.id": '"A"',
    "declaration.transport.mode": '{ column = "A", translate = "modes", on_unknown = "reject" }',
    "declaration.transport.nationality": '{ column = "A", translate = "modes", '
    'on_unknown = "missing", upper = true }',
    "declaration.delivery_terms": '{ column = "A", translate = "modes" }',
    "declaration.currency": '{ column = "A", zfill = 3 }',
}


def _rules(empty: str) -> list[FieldRule]:
    text = "\n".join([
        "[source]",
        f'empty = "{empty}"',
        "[fields]",
        *(f'"{target}" = {spec}' for target, spec in _FIELDS.items()),
        "[translate.modes]",
        'ROAD = "30"',
        'sea = "10"',
        '"1" = "40"',
    ])  # fmt: skip
    return list(parse_ingest_mapping(text).rules)


RULES = {"missing": _rules("missing"), "empty-string": _rules("empty-string")}

#: Cells that have tripped converters up: blanks, separators, both decimal marks, inf and nan,
#: underscores, non-ASCII digits and spaces, dates that do not exist, case, translations.
TRICKY = [
    "", " ", "\t", "\u00a0", "  x ", "ROAD", "road", " ROAD", "sea", "AIR", "1", "0", "01",
    "так", "ТАК", " Y", "y", "n", "N", "ні", "yes", "12", "12,5", "12.5", " 12.5 ", "1 234,56",
    "1.234,5", "1.234", "1,234", "1'234", "1\u202f234,5", "1\u00a0234,5", "1e5", "1E-3", "-0",
    "+7", ".5", "5.", "inf", "-inf", "nan", "NaN", "infinity", "1e999", "1_000", "1__0", "_1",
    "1,2,3", "0x10", "١٢٣", "²", "1,234.56", "1.234,5.6", "1.234.567,5", "1 234 567", "1 23",
    "1,23,456", "1e15", "1e16", "-1e15", "999999999999999.99", "-1", "-0", "1.5e3", "1,5e3",
    "１２", "01.02.2024", " 01.02.2024 ", "2024-02-01", "31.02.2024",
    "2024-13-01", "2024-2-1", "29.02.2023", "x1", "Ñoño", "ß", "ǆ", "None", "true",
]  # fmt: skip


def _in_a_row(row: Any) -> Any:
    """A one-column row function as a converter of one cell."""
    return lambda cell: row([cell])[0]


def _outcome(convert: Any, cell: Any) -> tuple[str, Any]:
    try:
        value = convert(cell)
    except ConversionError as exc:
        return "error", str(exc)
    return type(value).__name__, value


@pytest.mark.parametrize("empty", ["missing", "empty-string"])
@pytest.mark.parametrize("iso_dates", [False, True])
def test_the_row_function_and_the_cell_converter_agree_on_tricky_cells(
    empty: str, iso_dates: bool
) -> None:
    for rule in RULES[empty]:
        one = cell_converter(rule, empty == "missing", iso_dates=iso_dates)
        row = compile_row([rule], [0], empty_is_missing=empty == "missing", iso_dates=iso_dates)
        for cell in TRICKY:
            assert _outcome(_in_a_row(row), cell) == _outcome(one, cell), (rule, cell)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \u00a0,._'-+eE0123456789intfyYNaорт", max_size=8))
def test_they_agree_on_any_cell(cell: str) -> None:
    for empty in ("missing", "empty-string"):
        for rule in RULES[empty]:
            one = cell_converter(rule, empty == "missing")
            row = compile_row([rule], [0], empty_is_missing=empty == "missing")
            assert _outcome(_in_a_row(row), cell) == _outcome(one, cell), (rule, cell)


def _rule(target: str) -> FieldRule:
    found = [r for r in RULES["missing"] if r.target == target]
    return found[0]


@pytest.mark.parametrize(
    ("target", "cell", "expected"),
    [
        ("declaration.invoice_total", " 1 234,56 ", 1234.56),
        ("declaration.invoice_total", "1.234,5", 1234.5),
        ("declaration.items_count", "1'234.5", 1234.5),
        ("item.customs_value", "1,234,567.5", 1234567.5),
        ("item.customs_value", "1,234", 1234.0),
        ("item.net_mass", "1,234", 1.234),  # a decimal comma
        ("declaration.exchange_rate", "1e15", 1e15),
        ("declaration.exchange_rate", "  ", None),
        ("declaration.date", "01.02.2024", dt.date(2024, 2, 1)),
        ("declaration.date", "2024-02-01", dt.date(2024, 2, 1)),
        ("declaration.declarant.aeo", " ТАК ", True),
        ("declaration.declarant.aeo", "N", False),
        ("declaration.declarant.name", " ab ", "00AB"),
        ("declaration.transport.mode", " ROAD ", "30"),
        ("declaration.transport.nationality", "road", "30"),
        ("declaration.transport.nationality", "AIR", None),
        ("declaration.delivery_terms", "AIR", "AIR"),
        ("declaration.office", " x ", " x "),
    ],
)
def test_what_a_cell_becomes(target: str, cell: str, expected: Any) -> None:
    rule = _rule(target)
    assert rule.converter()(cell) == expected
    assert compile_row([rule], [0])([cell]) == (expected,)


@pytest.mark.parametrize(
    ("target", "cell", "message"),
    [
        ("declaration.exchange_rate", "1,5", "expected a number, got '1,5' (set decimal_comma = "
         "true for a decimal comma)"),
        ("declaration.invoice_total", "1,5,5", "expected a number, got '1,5,5'"),
        ("declaration.invoice_total", "12.5", "expected a number, got '12.5' (this mapping reads "
         "a decimal comma)"),
        ("declaration.exchange_rate", "inf", "expected a number, got 'inf'"),
        # issue 11: numbers that were silently mis-read
        ("item.net_mass", "1,234.56", "expected a number, got '1,234.56' (this mapping reads a "
         "decimal comma)"),
        ("item.net_mass", "1.234,5.6", "expected a number, got '1.234,5.6' (this mapping reads a "
         "decimal comma)"),
        ("item.net_mass", "1.234,56", "expected a number, got '1.234,56' (declare thousands = "
         "\".\" for '.' between thousands)"),
        ("declaration.exchange_rate", "1_000", "expected a number, got '1_000'"),
        ("declaration.exchange_rate", "1 000", "expected a number, got '1 000' (declare "
         "thousands = \"space\" for ' ' between thousands)"),
        ("declaration.exchange_rate", "1,000", "expected a number, got '1,000' (set decimal_comma "
         "= true for a decimal comma; or declare thousands = \",\" for ',' between thousands)"),
        ("declaration.exchange_rate", "١٢٣", "expected a number, got '١٢٣'"),
        ("declaration.invoice_total", "1 23", "expected a number, got '1 23'"),
        ("item.customs_value", "1,23,456", "expected a number, got '1,23,456'"),
        ("declaration.invoice_total", "1.234 567,5", "expected a number, got '1.234 567,5' (this "
         "mapping reads a decimal comma)"),  # one separator all along
        # issue 11: one range rule for every input
        ("declaration.exchange_rate", "1e999", "'1e999' is out of range (a number may be at "
         "most 1e15 in magnitude)"),
        ("declaration.exchange_rate", "1e16", "'1e16' is out of range (a number may be at most "
         "1e15 in magnitude)"),
        ("item.customs_value", "1,000,000,000,000,001", "'1,000,000,000,000,001' is out of range "
         "(a number may be at most 1e15 in magnitude)"),
        ("item.customs_value", "-1", "expected a number that is not negative, got '-1'"),
        ("item.net_mass", "-0,5", "expected a number that is not negative, got '-0,5'"),
        ("declaration.date", "31.02.2024", "expected a date in the format '%d.%m.%Y' or "
         "'%Y-%m-%d', got '31.02.2024'"),
        ("declaration.declarant.aeo", "yes", "expected one of так, Y, ні, n, got 'yes'"),
        ("declaration.transport.mode", "air", "'air' is not in the translation table 'modes'"),
    ],
)  # fmt: skip
def test_what_a_bad_cell_says(target: str, cell: str, message: str) -> None:
    rule = _rule(target)
    for convert in (rule.converter(), _in_a_row(compile_row([rule], [0]))):
        with pytest.raises(ConversionError) as info:
            convert(cell)
        assert str(info.value) == message


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        ("declaration.declarant.name", 7, "0007"),  # a JSON number for a code: its text, padded
        ("declaration.currency", 980, "980"),
        ("declaration.currency", 8, "008"),
        ("declaration.transport.mode", 1, "40"),  # translated by its text
        ("declaration.exchange_rate", 12, 12),
        ("declaration.exchange_rate", 12.5, 12.5),
        ("declaration.declarant.aeo", False, False),
        ("declaration.date", dt.date(2024, 1, 31), dt.date(2024, 1, 31)),
        ("declaration.id", None, None),
    ],
)
def test_json_values(target: str, value: Any, expected: Any) -> None:
    assert _rule(target).converter()(value) == expected


@pytest.mark.parametrize(
    ("target", "value", "message"),
    [
        ("declaration.id", True, "expected text, got True"),
        ("declaration.exchange_rate", True, "expected a number, got True"),
        ("declaration.exchange_rate", float("nan"), "expected a finite number, got nan"),
        ("declaration.exchange_rate", float("inf"), "expected a finite number, got inf"),
        (
            "declaration.exchange_rate",
            10**400,
            "an integer of 401 digits is out of range (a number may be at most 1e15 in magnitude)",
        ),
        (
            "declaration.exchange_rate",
            1e300,
            "1e+300 is out of range (a number may be at most 1e15 in magnitude)",
        ),
        ("item.net_mass", -1, "expected a number that is not negative, got -1"),
        ("declaration.declarant.aeo", 2, "expected one of так, Y, ні, n, got 2"),
    ],
)
def test_bad_json_values(target: str, value: Any, message: str) -> None:
    with pytest.raises(ConversionError) as info:
        _rule(target).converter()(value)
    assert str(info.value) == message


def test_one_column_and_a_row_run_the_same_source() -> None:
    """The row function is the cell code of each column, one after the other."""
    rules = [_rule("declaration.invoice_total"), _rule("declaration.declarant.name")]
    row = compile_row(rules, [3, 0])
    source = row.__source__  # type: ignore[attr-defined]
    assert "x = c[3].strip()" in source and 'float(x.replace(",", "."))' in source
    assert "x = c[0].strip()" in source and "x = x.upper()" in source and ".zfill(4)" in source
    assert row(["ab", "", "", " 2,5 "]) == (2.5, "00AB")
