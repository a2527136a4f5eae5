"""A mapping column's conversion, defined once: from a cell (text, or a JSON value) to its field's
typed value.

The conversion of one column is written in one place, :func:`cell_code`, as Python source
(like the evaluator's compiled profiles). Everything that converts a cell runs that source:

* :func:`cell_converter` compiles it for one value: ``FieldRule.converter``, used for JSON Lines,
  for a mapping's constants, and to say which column of a row is wrong;
* :func:`compile_row` compiles it for every mapped column of a CSV row into one function (no
  call per cell for text, numbers, dates and booleans), used by the fast ingest.

Both therefore return the same values and raise the same :class:`ConversionError` for the same
cell; ``tests/test_ingest_convert.py`` checks it on a corpus of tricky cells.

The steps (``docs/ingest.md``): a missing value (``None``) stays missing. A text cell is stripped
(``strip``), an empty one is missing (``empty = "missing"``), then ``upper``, ``zfill`` and the
translation table apply, and the text is read as the field's type. A JSON value that is not text
is not cleaned: a number for a text field becomes its text first (and is then upper-cased,
padded and translated like a cell); for other types, the translation table is looked up with its
text and the value is read as the type. A number must be well-formed in the mapping's format
(:func:`number_pattern`: the decimal mark, thousands separators only where declared) and follow
the input rule of :mod:`riskengine.semantics.numbers` (finite, at most 1e15 in magnitude, not
below the field's catalogue ``minimum``). The typed readers (:func:`read_number`,
:func:`read_date`, :func:`read_boolean`, :func:`read_text`) say what is wrong; the generated code
reads the common case inline and hands anything else to them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from riskengine.catalogue import FieldType
from riskengine.semantics.numbers import MAX_INPUT_NUMBER, InputNumberError, input_number

if TYPE_CHECKING:
    from riskengine.ingest.mapping import FieldRule

__all__ = [
    "ConversionError",
    "cell_code",
    "cell_converter",
    "compile_row",
    "number_pattern",
    "read_boolean",
    "read_date",
    "read_number",
    "read_text",
]


class ConversionError(ValueError):
    """A source value cannot be read as its field's type (the reason is the message)."""


# --- the typed readers: any value, a message when it cannot be read ----------------------------

#: Dates parsed once are remembered, per column, up to this many different texts.
DATE_CACHE = 50_000


#: The thousands separators a mapping may declare (``thousands``); "space" stands for the three
#: spaces exports use (space, no-break space, narrow no-break space).
THOUSANDS = {
    "space": " \u00a0\u202f",
    " ": " ",
    "\u00a0": "\u00a0",
    "\u202f": "\u202f",
    "'": "'",
    "\u2019": "\u2019",
    ".": ".",
    ",": ",",
}


def number_pattern(decimal_comma: bool, thousands: str = "") -> re.Pattern[str]:
    """A well-formed number in a mapping's format: an optional sign, digits (in groups of three
    separated by one of ``thousands``, the same all along, when the mapping declares them), an
    optional fraction after the decimal mark (``,`` with ``decimal_comma``, else ``.``) and an
    optional exponent (``1.5e3``). Nothing else: no ``_``, no other digits or spaces."""
    mark = "," if decimal_comma else "."
    whole = "[0-9]+"
    if thousands:
        separators = "[" + "".join(re.escape(c) for c in thousands) + "]"
        whole = f"(?:[0-9]{{1,3}}(?P<sep>{separators})[0-9]{{3}}(?:(?P=sep)[0-9]{{3}})*|[0-9]+)"
    fraction = re.escape(mark) + "[0-9]"
    return re.compile(f"[+-]?(?:{whole}(?:{fraction}*)?|{fraction}+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def read_number(
    decimal_comma: bool, thousands: str = "", minimum: float | None = None
) -> Callable[[Any], float | int]:
    """A number from text well-formed in the mapping's format (:func:`number_pattern`; the text
    is stripped first) or from a JSON number, by the input rule
    (:func:`riskengine.semantics.numbers.input_number`: finite, at most 1e15 in magnitude, not
    below the field's ``minimum``). Text gives a ``float``."""
    pattern = number_pattern(decimal_comma, thousands)
    other_mark = number_pattern(not decimal_comma)
    grouped = number_pattern(decimal_comma, "".join(THOUSANDS.values()).replace(
        "," if decimal_comma else ".", ""))  # fmt: skip

    def read(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise ConversionError(f"expected a number, got {value!r}")
        if not isinstance(value, str):
            try:
                return input_number(value, minimum=minimum)
            except InputNumberError as exc:
                raise ConversionError(str(exc)) from None
        text = value.strip()
        found = pattern.fullmatch(text)
        if found is None:
            raise ConversionError(f"expected a number, got {value!r}{_hint(text)}")
        if found.groupdict().get("sep"):
            text = text.replace(found["sep"], "")
        if decimal_comma:
            text = text.replace(",", ".")
        try:
            return float(input_number(Decimal(text), minimum=minimum, shown=repr(value)))
        except InputNumberError as exc:
            raise ConversionError(str(exc)) from None

    def _hint(text: str) -> str:
        hints = []
        if other_mark.fullmatch(text):
            hints.append(
                "this mapping reads a decimal comma"
                if decimal_comma
                else "set decimal_comma = true for a decimal comma"
            )
        found = grouped.fullmatch(text)
        if found is not None and found["sep"]:
            sep = found["sep"]
            name = "space" if sep.isspace() else sep
            hints.append(f"declare thousands = {json.dumps(name)} for {sep!r} between thousands")
        if not hints and decimal_comma and "." in text:
            hints.append("this mapping reads a decimal comma")
        return f" ({'; or '.join(hints)})" if hints else ""

    return read


def read_date(formats: Sequence[str]) -> Callable[[Any], dt.date]:
    """A date from text in one of ``formats`` (strptime), or from a date."""
    strptime = dt.datetime.strptime
    iso_only = list(formats) == ["%Y-%m-%d"]
    shown = " or ".join(repr(f) for f in formats)

    def read(value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        if iso_only:
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                pass
        else:
            for fmt in formats:
                try:
                    return strptime(text, fmt).date()
                except ValueError:
                    continue
        raise ConversionError(f"expected a date in the format {shown}, got {text!r}")

    return read


def _truth(true_values: Sequence[str], false_values: Sequence[str]) -> dict[str, bool]:
    """The accepted texts of a boolean, lower-cased."""
    truth = {v.lower(): True for v in true_values}
    truth.update({v.lower(): False for v in false_values})
    return truth


def read_boolean(true_values: Sequence[str], false_values: Sequence[str]) -> Callable[[Any], bool]:
    """A boolean from one of the accepted texts (any case, stripped) or from a JSON boolean."""
    truth = _truth(true_values, false_values)
    shown = ", ".join([*true_values, *false_values])

    def read(value: Any) -> bool:
        if value is True or value is False:
            return bool(value)
        found = truth.get(str(value).strip().lower())
        if found is None:
            raise ConversionError(f"expected one of {shown}, got {value!r}")
        return found

    return read


def read_text(value: Any) -> str:
    """Text as it is; a JSON number as its text. Anything else is not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConversionError(f"expected text, got {value!r}")
    return str(value)


def _reader(rule: FieldRule) -> Callable[[Any], Any]:
    match rule.type:
        case FieldType.NUMBER:
            return read_number(rule.decimal_comma, rule.thousands, rule.minimum)
        case FieldType.DATE:
            return read_date(rule.date_formats)
        case FieldType.BOOLEAN:
            return read_boolean(rule.true_values, rule.false_values)
        case _:
            return read_text


def _remembering(
    read: Callable[[Any], dt.date], cache: dict[str, Any], iso_dates: bool
) -> Callable[[str], Any]:
    """A date reader that remembers what it read in ``cache`` (as ISO text with ``iso_dates``)."""

    def remember(text: str) -> Any:
        value: Any = read(text)
        if iso_dates:
            value = value.isoformat()
        if len(cache) >= DATE_CACHE:
            cache.clear()
        cache[text] = value
        return value

    return remember


# --- the conversion of one column, as source ---------------------------------------------------


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def cell_code(
    rule: FieldRule,
    k: int,
    cell: str,
    env: dict[str, Any],
    *,
    empty_is_missing: bool = True,
    iso_dates: bool = False,
    text_only: bool = False,
) -> list[str]:
    """Python statements that set ``v{k}`` to the value of the cell ``cell`` (an expression) as
    ``rule`` reads it, or raise :class:`ConversionError`; the names they use are put in ``env``.

    This is the one definition of a column's conversion. ``iso_dates``: a date comes out as ISO
    text. ``text_only``: the cell is known to be text (a CSV cell), so the code for JSON values
    is left out.
    """
    v = f"v{k}"
    typed = rule.type
    textual = typed in (FieldType.STRING, FieldType.CODE)
    env[f"R{k}"] = _reader(rule)
    env["ConversionError"] = ConversionError

    def read_as_type(x: str) -> list[str]:
        """``x`` (text, cleaned and translated) read as the field's type into ``v``."""
        if textual:
            return [f"{v} = {x}"]
        if typed is FieldType.NUMBER:
            # float() is the common case. It also takes what is not well-formed ("1_000", other
            # scripts' digits, "inf", "1.5" where the decimal mark is a comma) or out of range:
            # the reader has the last word on anything outside plain ASCII in range.
            text = f'{x}.replace(",", ".")' if rule.decimal_comma else x
            low = float(-MAX_INPUT_NUMBER if rule.minimum is None else rule.minimum)
            odd = f'not {x}.isascii() or "_" in {x}'
            if rule.decimal_comma:
                odd += f' or "." in {x}'
            return [
                "try:",
                f"    {v} = float({text})",
                "except ValueError:",
                f"    {v} = R{k}({x})",
                "else:",
                f"    if not {low!r} <= {v} <= {float(MAX_INPUT_NUMBER)!r} or {odd}:",
                f"        {v} = R{k}({x})",
            ]
        if typed is FieldType.DATE:
            cache: dict[str, Any] = {}
            env[f"D{k}"] = cache
            env[f"G{k}"] = _remembering(env[f"R{k}"], cache, iso_dates)
            return [f"{v} = D{k}.get({x})", f"if {v} is None:", f"    {v} = G{k}({x})"]
        truth = _truth(rule.true_values, rule.false_values)  # the texts as written, too
        written = {t: truth[t.lower()] for t in (*rule.true_values, *rule.false_values)}
        env[f"B{k}"] = {**written, **truth}
        return [f"{v} = B{k}.get({x})", f"if {v} is None:", f"    {v} = R{k}({x})"]

    def translated(x: str, key: str, then: list[str]) -> list[str]:
        """The translation table on ``key`` (``x``'s text), then ``then`` with ``x``."""
        if rule.translate is None:
            return then
        env[f"T{k}"] = dict(rule.translate)
        env[f"N{k}"] = repr(rule.translate_name)
        if rule.on_unknown == "keep":
            return [f"y = T{k}.get({key})", "if y is not None:", f"    {x} = y", *then]
        missing = (
            [f"{v} = None"]
            if rule.on_unknown == "missing"
            else [f'raise ConversionError(f"{{{x}!r}} is not in the translation table {{N{k}}}")']
        )
        return [f"y = T{k}.get({key})", "if y is None:", *_indent(missing),
                "else:", *_indent([f"{x} = y", *then])]  # fmt: skip

    def cleaned(x: str, source: str) -> list[str]:
        """Text ``source`` into ``x``: stripped, empty is missing, upper, zfill, translated, read
        as the type."""
        steps = [f"{x} = {source}.strip()" if rule.strip else f"{x} = {source}"]
        if steps == [f"{x} = {x}"]:
            steps = []
        rest: list[str] = []
        if rule.upper:
            rest.append(f"{x} = {x}.upper()")
        if rule.zfill:
            rest.append(f"{x} = {x}.zfill({int(rule.zfill)})")
        rest += translated(x, x, read_as_type(x))
        if rest == [f"{v} = {x}"] and rule.strip and empty_is_missing:  # plain text
            return [f"{v} = {source}.strip() or None"]
        if not empty_is_missing:
            return steps + rest
        return [*steps, f"if {x}:", *_indent(rest), "else:", f"    {v} = None"]

    iso = [f"if {v} is not None:", f"    {v} = {v}.isoformat()"]
    if not (iso_dates and typed is FieldType.DATE):
        iso = []
    if text_only:
        return cleaned("x", cell)
    if textual:  # a JSON number becomes its text, then is cleaned like a cell
        return [
            f"x = {cell}",
            "if x is None:",
            f"    {v} = None",
            "else:",
            "    if type(x) is not str:",
            f"        x = R{k}(x)",
            *_indent(cleaned("x", "x")),
        ]
    return [
        f"x = {cell}",
        "if x is None:",
        f"    {v} = None",
        "elif type(x) is str:",
        *_indent(cleaned("x", "x")),
        "else:",  # a JSON value: no cleaning; translated by its text, read as the type
        *_indent(translated("x", "str(x)", [f"{v} = R{k}(x)", *iso])),
    ]


def _compile(name: str, parameter: str, body: list[str], result: str, env: dict[str, Any]) -> Any:
    lines = [f"def {name}({parameter}):", *_indent(body), f"    return {result}"]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<riskengine ingest: {name}>", "exec"), env)
    function = env[name]
    function.__source__ = source
    return function


def cell_converter(
    rule: FieldRule, empty_is_missing: bool = True, *, iso_dates: bool = False
) -> Callable[[Any], Any]:
    """A function from one cell (text or a JSON value) to the field's value (``None``:
    missing), compiled from :func:`cell_code`; raises :class:`ConversionError`. The source is
    in ``__source__``."""
    env: dict[str, Any] = {}
    body = cell_code(rule, 0, "c", env, empty_is_missing=empty_is_missing, iso_dates=iso_dates)
    function: Callable[[Any], Any] = _compile("convert", "c", body, "v0", env)
    return function


def compile_row(
    rules: Sequence[FieldRule],
    indices: Sequence[int],
    constants: Sequence[Any] = (),
    *,
    empty_is_missing: bool = True,
    iso_dates: bool = False,
) -> Callable[[list[str]], tuple[Any, ...]]:
    """One function from a CSV row's cells to the values of ``rules`` (column ``indices[i]`` for
    ``rules[i]``), then ``constants``: the :func:`cell_code` of every column in a row. Raises
    :class:`ConversionError` for the first cell that does not convert. The source is in
    ``__source__``."""
    env: dict[str, Any] = {"float": float, "ValueError": ValueError}
    body: list[str] = []
    results: list[str] = []
    for k, (rule, index) in enumerate(zip(rules, indices, strict=True)):
        body += cell_code(rule, k, f"c[{index}]", env, empty_is_missing=empty_is_missing,
                          iso_dates=iso_dates, text_only=True)  # fmt: skip
        results.append(f"v{k}")
    for k, value in enumerate(constants):
        env[f"K{k}"] = value
        results.append(f"K{k}")
    result = f"({', '.join(results)}{',' if len(results) == 1 else ''})"
    function: Callable[[list[str]], tuple[Any, ...]] = _compile("convert", "c", body, result, env)
    return function
