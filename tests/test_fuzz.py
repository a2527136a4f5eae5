"""Fuzzing the language front end: random bytes, token soup and mutated sample profiles never
crash the parser, the formatter or the command line, and every diagnostic points into the text."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.checks import check_sources
from riskengine.diagnostics import ProfileError
from riskengine.format import format_text
from riskengine.semantics.limits import MAX_EXPRESSION_DEPTH
from riskengine.syntax import parse, parse_source
from riskengine.syntax.parser import ParseResult

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [*sorted((ROOT / "profiles").rglob("*.rp")), ROOT / "tests/data/kitchen_sink.rp"]
SAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in SAMPLES]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words and punctuation of the language, and a few near misses, for token soup and insertions.
TOKENS = [
    "profile", "draft", "approved", "edition", "in", "force", "..", "filling", "central",
    "regional", "by", "coordinated", "module", "spheres", "review", "contact", "phone", "fax",
    "mailbox", "updates", "list", "=", "of", "indicators", "unless", "exceptions", "degree",
    "message", "controls", "mandatory", "when", "if", "necessary", "from", "then", "else",
    "history", "per", "over", "days", "case", "negative", "positive", "max", "clean", "control",
    "note", "threat", "basis", "fill", "for", "office", "order", "valid", "values", "and", "or",
    "not", "between", "starts", "with", "matches", "is", "missing", "true", "false",
    "negative_history", "positive_history", "item.hs_code", "declaration.declarant.id",
    "region.max", "min", "abs", "{", "}", "(", ")", "[", "]", ":", ",", ".", "+", "-", "*", "/",
    "==", "!=", "<=", ">", "12", "12.5", "0201", "UA100000", "2024-01-01", "2024-02-31",
    "2A/08/2012/00042-03", '"text"', '"{item.x}"', '"{bad"', '"""\n  a\n  """', '"\\q"',
    "# comment\n", "\n", "name", "Назва", "@", '"', '"""', "\\", "=", "\t", "\r\n", "\x00",
    # beyond the limits (RE6xx): long numbers, deep nesting, the ends of the calendar
    "9" * 400, "0." + "0" * 400 + "1", "1234567890123456", "99999999999", "3661", "1000.0000001",
    "not " * 150, "(" * 150, "- " * 150, "abs(" * 150, "9999-12-31", "0001-01-01", "9999-10-31",
]  # fmt: skip


def check_result(text: str, result: ParseResult) -> None:
    """Every diagnostic points at a line and column inside ``text`` and renders."""
    assert result.source is not None or result.diagnostics
    lines = text.split("\n")
    for d in result.diagnostics:
        where = f"{d.code} at {d.span.line}:{d.span.column}: {d.message}"
        assert 1 <= d.span.line <= len(lines), where
        assert 1 <= d.span.column <= len(lines[d.span.line - 1]) + 1, where
        assert d.render({d.span.file: text}).startswith(f"{d.span.file}:{d.span.line}:")


def check_front_end(text: str) -> None:
    """parse_source and the checks never raise; format_text raises ProfileError or formats
    losslessly."""
    result = parse_source(text, "fuzz.rp")
    check_result(text, result)
    checked = check_sources({"fuzz.rp": text})
    assert checked.ok or checked.errors
    try:
        formatted = format_text(text, "fuzz.rp")
    except ProfileError as exc:
        assert not result.ok
        assert exc.diagnostics
        return
    assert result.ok
    assert parse(formatted, "fuzz.rp") == result.source
    assert format_text(formatted, "fuzz.rp") == formatted


# ------------------------------------------------------------------------------------ inputs


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check_front_end(data.decode("utf-8", errors="replace"))
    check_front_end(data.decode("latin-1"))


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_front_end(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.sampled_from([" ", "\n", ""]))
def test_token_soup(tokens: list[str], sep: str) -> None:
    check_front_end(sep.join(tokens))


@st.composite
def mutated_samples(draw: st.DrawFn) -> str:
    """A sample profile after a few random edits: delete, duplicate or swap lines, delete or
    insert text, insert a token of the language."""
    text = draw(st.sampled_from(SAMPLE_TEXTS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        lines = text.split("\n")
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        pos = draw(st.integers(min_value=0, max_value=len(text)))
        op = draw(st.sampled_from(["del_line", "dup_line", "swap", "del", "token", "char"]))
        if op == "del_line":
            del lines[i]
        elif op == "dup_line":
            lines.insert(j, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        if op in ("del_line", "dup_line", "swap"):
            text = "\n".join(lines)
        elif op == "del":
            text = text[:pos] + text[pos + draw(st.integers(min_value=1, max_value=20)) :]
        elif op == "token":
            token = draw(st.sampled_from(TOKENS))
            text = text[:pos] + " " + token + " " + text[pos:]
        else:
            text = text[:pos] + draw(st.characters(codec="utf-8")) + text[pos:]
    return text


@FUZZ
@given(mutated_samples())
def test_mutated_samples(text: str) -> None:
    check_front_end(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "profile",
        'profile "x" {',
        'profile "x" { degree = }',
        'profile "x" { message "{" }',
        'profile "x" { approved 2024-13-45 }',
        'profile "x" { indicators { a: item.x matches "(" } }',
        'profile "x" { history per item.x[:1.5] over 2.5 days { } }',
        'profile "x" { note { threat "\\q" } }',
        '"""',
        '\ufeffprofile "bom" {}',
        'profile "x" {\r\n  approved 2024-01-01\r\n}\r\n',
        'profile "x" {\f}\n',
        'profile "x" {\u2028}\n',
        'profile "x" {\x0b}\n',
        "\n\n\n  @",
        "list a =\f\f",
        "list a =\r\r",
    ],
)
def test_edge_inputs(text: str) -> None:
    check_front_end(text)


def test_diagnostic_lines_count_new_lines_only() -> None:
    """A form feed or U+2028 inside a comment is not a line break for the parser."""
    text = '# a\fb\u2028c\nprofile "x" { approved 2024-02-31 }\n'
    result = parse_source(text)
    assert [d.code for d in result.diagnostics] == ["RE011"]
    assert result.diagnostics[0].span.line == 2
    check_result(text, result)


def test_rendered_diagnostic_shows_the_line_it_points_at() -> None:
    text = '# a\fb\nprofile "x" { approved 2024-02-31 }\n'
    (diagnostic,) = parse_source(text, "f.rp").diagnostics
    assert '   2 | profile "x" { approved 2024-02-31 }' in diagnostic.render({"f.rp": text})


# ------------------------------------------------------------------------------------ limits

# Each wraps an expression in one more level: (opening, closing). "(" alone adds none.
_NESTERS = {
    "not": ("not ", ""),
    "minus": ("-", ""),
    "call": ("abs(", ")"),
    "max": ("max(1, ", ")"),
    "if": ("if true then ", " else 0"),
    "sum": ("1 + (", ")"),
    "product": ("2 * (", ")"),
    "parentheses": ("(", ")"),
}


@st.composite
def nested_conditions(draw: st.DrawFn) -> tuple[str, list[tuple[str, int]]]:
    """A condition nested by runs of operations, up to thousands of levels deep."""
    runs = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(_NESTERS)), st.integers(min_value=1, max_value=700)),
            min_size=1,
            max_size=4,
        )
    )
    opening = "".join(_NESTERS[kind][0] * n for kind, n in runs)
    closing = "".join(_NESTERS[kind][1] * n for kind, n in reversed(runs))
    return f"{opening}item.net_mass{closing} > 1", runs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_conditions())
def test_deep_nesting_is_a_diagnostic_never_an_exception(case: tuple[str, list[Any]]) -> None:
    condition, runs = case
    text = f'profile draft "deep" {{ indicators {{ a: {condition} }} degree = 100 * a }}'
    check_front_end(text)
    if len(runs) == 1:  # one kind: each adds one level (parentheses none) to the 2 of `x > 1`
        kind, n = runs[0]
        depth = 2 if kind == "parentheses" else n + 2
        codes = [d.code for d in parse_source(text).diagnostics]
        assert codes == (["RE601"] if depth > MAX_EXPRESSION_DEPTH else [])


_EXTREME_NUMBERS = ["9" * 400, "0." + "0" * 400 + "1", "9" * 5000, "99999999999", "4294967296"]
# Strings and comments (left alone), dates, numbers not inside a word or a profile number.
_VALUES = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|(?<![\w/.-])(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]+(?:\.[0-9]+)?)(?![\w/])'
)
_EXTREME_DATES = ["9999-12-31", "0001-01-01", "9999-10-31", "9999-02-28", "0001-03-01"]


@st.composite
def samples_with_extreme_values(draw: st.DrawFn) -> str:
    """A sample profile with some numbers and dates outside strings replaced by extreme ones."""
    text = draw(st.sampled_from(SAMPLE_TEXTS))
    found = [
        (mt.start(), mt.end(), mt.group(0))
        for mt in re.finditer(_VALUES, text)
        if not mt.group(0).startswith(('"', "#"))
    ]
    chosen = draw(st.lists(st.sampled_from(found), min_size=1, max_size=4, unique=True))
    for start, end, token in sorted(chosen, reverse=True):
        pool = _EXTREME_DATES if "-" in token else _EXTREME_NUMBERS
        text = text[:start] + draw(st.sampled_from(pool)) + text[end:]
    return text


@FUZZ
@given(samples_with_extreme_values())
def test_extreme_numbers_and_dates_are_diagnostics_never_exceptions(text: str) -> None:
    check_front_end(text)


@pytest.mark.parametrize(
    "text",
    [
        'profile "x" { indicators { a: item.x > ' + "9" * 5000 + " } }",
        'profile "x" { indicators { a: item.x > -' + "9" * 1_000_001 + " } }",
        'profile "x" { history per item.x[:' + "9" * 5000 + "] over " + "9" * 5000 + " days { } }",
        'profile "x" { history per item.x over 1 days { negative max ' + "9" * 5000 + " { } } }",
        "fill for 2A/08/2012/00042-01 { valid 9999-10-31 .. 9999-12-31 }",
        'profile "x" { indicators { a: ' + "not " * 100_000 + "true } }",
    ],
    ids=["5000 digits", "a million digits", "window", "history maximum", "fill in 9999", "deep"],
)
def test_inputs_beyond_every_limit(text: str) -> None:
    check_front_end(text)


# ------------------------------------------------------------------------------------ fast path

_GRAMMAR_SPACE = " \t\f\r\n"  # the grammar's WS terminal


def _lark_accepts(text: str) -> bool:
    """Whether lark's own lexer and parser (not the fast path) accept ``text``."""
    from lark.exceptions import UnexpectedInput

    from riskengine.syntax.parser import _BUILDER, parser

    _BUILDER.begin("fuzz.rp")
    try:
        parser().parse(text)
    except UnexpectedInput:
        return False
    return True


@FUZZ
@given(st.one_of(mutated_samples(), st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)))
def test_fast_path_accepts_exactly_what_the_grammar_accepts(text: str) -> None:
    # Exotic white space is left out here: test_only_the_grammars_white_space... covers it.
    text = "".join(" " if c.isspace() and c not in _GRAMMAR_SPACE else c for c in text)
    assert (parse_source(text).source is not None) == _lark_accepts(text)


@pytest.mark.parametrize(
    "space", list("\v\x1c\x85\xa0\u2028\u3000"), ids=lambda ch: f"U+{ord(ch):04X}"
)
def test_only_the_grammars_white_space_separates_tokens(space: str) -> None:
    text = f'profile "x" {{{space}}}\n'
    assert not _lark_accepts(text)
    assert parse_source(text).source is None


# ------------------------------------------------------------------------------------ command line


def _cli() -> object:
    try:
        module = importlib.import_module("riskengine.cli")
    except ImportError:
        pytest.skip("the command line (riskengine.cli) is not there yet")
    return getattr(module, "cli", None) or module.main


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=mutated_samples())
def test_command_line_never_shows_a_traceback(tmp_path: Path, text: str) -> None:
    from click.testing import CliRunner

    from riskengine.cli.common import EXIT_INTERNAL

    cli = _cli()
    path = tmp_path / "mutated.rp"
    path.write_text(text, encoding="utf-8")
    runner = CliRunner()
    for args in (["check", str(path)], ["fmt", "--check", str(path)], ["show", str(path)]):
        result = runner.invoke(cli, args)  # type: ignore[arg-type]
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert "Traceback" not in output, (args, output)
        assert result.exit_code != EXIT_INTERNAL, (args, output)
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), (args, result.exception)
