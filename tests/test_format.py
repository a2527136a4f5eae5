"""The formatter: round trips through the parser, idempotence, golden files, precedence."""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.diagnostics import ProfileError
from riskengine.format import (
    format_expr,
    format_fill,
    format_profile,
    format_source,
    format_string,
    format_text,
)
from riskengine.format.statements import _message_words
from riskengine.syntax import parse
from tests import strategies as S

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "format"
SAMPLES = [*sorted((ROOT / "profiles").rglob("*.rp")), ROOT / "tests/data/kitchen_sink.rp"]
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Long statements are slow to generate: fewer examples (each exercises many wrapping rules).
LONG = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _degree(expr_text: str) -> m.Expr | None:
    return parse(f'profile "e" {{ degree = {expr_text} }}').profiles[0].degree


def _comments(text: str) -> list[str]:
    return [c.text.rstrip() for c in parse(text).comments]


# ------------------------------------------------------------------------------------ properties


@PROPERTY
@given(S.source_files())
def test_random_file_formats_to_text_that_parses_back_to_the_same_model(
    source: m.SourceFile,
) -> None:
    text = format_source(source)
    assert parse(text) == source
    assert format_text(text) == text


@settings(max_examples=200, deadline=None)
@given(S.exprs)
def test_random_expression_round_trips(expr: m.Expr) -> None:
    text = format_expr(expr)
    assert _degree(text) == expr
    assert format_expr(_degree(text)) == text  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(S.profiles, S.fills())
def test_format_profile_and_fill_round_trip(profile: m.Profile, fill: m.Fill) -> None:
    assert parse(format_profile(profile)).profiles == (profile,)
    assert parse(format_fill(fill)).fills == (fill,)


@settings(max_examples=200, deadline=None)
@given(S.texts)
def test_any_text_round_trips_in_every_kind_of_string(text: str) -> None:
    source = (
        f"profile draft {format_string(text)} {{\n"
        f"    indicators {{ a: item.x matches {format_string(re.escape(text))} }}\n"
        f"}}\n"
    )
    profile = parse(source).profiles[0]
    note = m.Note(threat=text, basis=(text, text), causes=text)
    formatted = format_profile(m.Profile(None, text, note=note, indicators=profile.indicators))
    back = parse(formatted).profiles[0]
    assert back.name == text
    assert back.note == note
    assert back.indicators == profile.indicators


# ------------------------------------------------------------------------------------ samples


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_profiles_format_idempotently_and_keep_model_and_comments(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = format_text(text, str(path))
    assert format_text(once, str(path)) == once
    assert parse(once, str(path)) == parse(text, str(path))
    assert sorted(_comments(once)) == sorted(_comments(text))
    assert all(line == line.rstrip() for line in once.splitlines())


def _safe_lines(text: str, own_line: bool) -> list[int]:
    """Lines of canonical text where a comment can go: before the line (``own_line``) when it
    does not start inside a triple-quoted string, after it when it neither starts nor ends
    inside one."""
    out, inside = [], False
    for i, line in enumerate(text.split("\n")):
        toggles = line.count('"""') % 2 == 1
        if not inside and (own_line or not toggles):
            out.append(i)
        inside ^= toggles
    return out


comment_bodies = st.text(
    alphabet=st.characters(exclude_characters="\n", codec="utf-8"), max_size=12
).map(lambda t: "#" + t)


@settings(max_examples=100, deadline=None)
@given(
    # The wrapping golden files put comments inside and after many kinds of wrapped statements.
    st.sampled_from(
        [*SAMPLES, GOLDEN / "wrap_expressions.input.rp", GOLDEN / "wrap_statements.input.rp"]
    ),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.booleans(), st.integers(0, 12), comment_bodies),
        min_size=1,
        max_size=6,
    ),
)
def test_comments_anywhere_are_kept_and_formatting_is_stable(
    path: Path, inserts: list[tuple[int, bool, int, str]]
) -> None:
    base = format_text(path.read_text(encoding="utf-8"))
    lines = base.split("\n")
    for where, own_line, indent, body in inserts:
        safe = _safe_lines("\n".join(lines), own_line)
        i = safe[where % len(safe)]
        if own_line:
            lines.insert(i, " " * indent + body)
        elif lines[i].strip():
            lines[i] += " " * (indent % 3 + 1) + body
        else:
            lines[i] = body
    text = "\n".join(lines)
    once = format_text(text)
    assert format_text(once) == once
    assert parse(once) == parse(base)
    assert sorted(_comments(once)) == sorted(_comments(text))


# ------------------------------------------------------------------------------------ golden files

GOLDEN_CASES = sorted(p.name.removesuffix(".input.rp") for p in GOLDEN.glob("*.input.rp"))


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden(name: str) -> None:
    """``tests/format/NAME.input.rp`` formats to ``NAME.output.rp`` (set
    RISKENGINE_UPDATE_GOLDEN=1 to rewrite the outputs, then review the diff)."""
    source = (GOLDEN / f"{name}.input.rp").read_text(encoding="utf-8")
    expected_path = GOLDEN / f"{name}.output.rp"
    actual = format_text(source, f"{name}.input.rp")
    if os.environ.get("RISKENGINE_UPDATE_GOLDEN"):
        expected_path.write_text(actual, encoding="utf-8")
    assert actual == expected_path.read_text(encoding="utf-8")
    assert format_text(actual) == actual
    assert parse(actual) == parse(source)
    assert sorted(_comments(actual)) == sorted(_comments(source))


def test_golden_cases_exist() -> None:
    assert {
        "comments", "expressions", "strings", "passport_order", "fill",
        "wrap_expressions", "wrap_statements",
    } <= set(GOLDEN_CASES)  # fmt: skip


# ------------------------------------------------------------------------------------ expressions


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("(a - b) - c", "a - b - c"),
        ("a - (b - c)", "a - (b - c)"),
        ("a + (b + c)", "a + (b + c)"),
        ("(a * b) / c", "a * b / c"),
        ("a / (b * c)", "a / (b * c)"),
        ("a * (b + c)", "a * (b + c)"),
        ("(a * b) + c", "a * b + c"),
        ("- (a + b)", "-(a + b)"),
        ("-(a * b)", "-(a * b)"),
        ("- a * b", "-a * b"),
        ("-(-a)", "--a"),
        ("a - -1", "a - -1"),
        ("a * (-1)", "a * -1"),
        ("-(1)", "-1"),
        ("(-1) * a", "-1 * a"),
        ("((a))", "a"),
        ("(a or b) or c", "a or b or c"),
        ("a or (b or c)", "a or (b or c)"),
        ("(a and b) or c", "a and b or c"),
        ("a and (b or c)", "a and (b or c)"),
        ("a or (b and c)", "a or b and c"),
        ("not (a and b)", "not (a and b)"),
        ("not (not a)", "not not a"),
        ("(not a) and b", "not a and b"),
        ("not (a == b)", "not a == b"),
        ("(not a) == b", "(not a) == b"),
        ("(a == b) == c", "(a == b) == c"),
        ("(a + 1) == (b * 2)", "a + 1 == b * 2"),
        ("(a < b) and (c >= d)", "a < b and c >= d"),
        ("(x between 1 and 2) and y", "x between 1 and 2 and y"),
        ("x between (a + 1) and (b or c)", "x between a + 1 and (b or c)"),
        ("(a + b) in (1, 2,)", "a + b in (1, 2)"),
        ("(a or b) in (1)", "(a or b) in (1)"),
        ("not (a in l)", "not a in l"),
        ("a not in ()", "a not in ()"),
        ("(a + b) is not missing", "a + b is not missing"),
        ("(a is missing) == true", "(a is missing) == true"),
        ('item.code matches "\\\\d+"', 'item.code matches "\\\\d+"'),
        ("(if a then 1 else 2) + 3", "(if a then 1 else 2) + 3"),
        ("if a then 1 else (if b then 2 else 3)", "if a then 1 else if b then 2 else 3"),
        ("if (if a then b else c) then 1 else 2", "if (if a then b else c) then 1 else 2"),
        ("if a then (b or c) else (d and e)", "if a then b or c else d and e"),
        ("max((a + b), (if a then 1 else 2))", "max(a + b, if a then 1 else 2)"),
        ("-abs(a)", "-abs(a)"),
        ("negative_history - (positive_history)", "negative_history - positive_history"),
    ],
)
def test_expression_precedence(written: str, canonical: str) -> None:
    expr = _degree(written)
    assert expr is not None
    assert format_expr(expr) == canonical
    assert _degree(canonical) == expr


def test_right_operand_of_same_precedence_keeps_its_parentheses() -> None:
    a, b, c = m.Ref("a"), m.Ref("b"), m.Ref("c")
    assert format_expr(m.Arith("-", a, m.Arith("+", b, c))) == "a - (b + c)"
    assert format_expr(m.Arith("/", a, m.Arith("/", b, c))) == "a / (b / c)"
    assert format_expr(m.And(a, m.And(b, c))) == "a and (b and c)"
    assert format_expr(m.Neg(m.Neg(a))) == "--a"
    assert format_expr(m.Cond(a, b, m.Cond(a, b, c))) == "if a then b else if a then b else c"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("-1"), "-1"),
        (Decimal("1E+1"), "10"),
        (Decimal("12.50"), "12.50"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("0"), "0"),
        (Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
    ],
)
def test_numbers_are_written_as_exact_decimals(value: Decimal, written: str) -> None:
    assert format_expr(m.NumberLit(value)) == written
    assert _degree(written) == m.NumberLit(value)


# ------------------------------------------------------------------------------------ strings


@pytest.mark.parametrize(
    ("text", "block"),
    [
        ("one line", False),
        ("two\nlines", True),
        ("  all lines\n  indented", False),  # dedent would take the indentation away
        ("first\n  second indented", True),
        ('with """ three quotes\nand more', True),
        ("ends with a new line\n", True),
        ("\nstarts with a new line", True),
        ("trailing spaces  \nhere", False),
        ("a line of spaces\n   \nbetween", False),
        ("tab\tinside\n\tand leading", True),
        ("back\\slash\nand \\n literally", True),
        ("\n\n", False),
    ],
)
def test_note_text_is_a_triple_quoted_block_only_when_that_round_trips(
    text: str, block: bool
) -> None:
    formatted = format_profile(m.Profile(None, "n", note=m.Note(threat=text)))
    assert ('"""' in formatted) is block
    note = parse(formatted).profiles[0].note
    assert note is not None and note.threat == text
    assert format_text(formatted) == formatted


def test_strings_are_escaped() -> None:
    assert format_string('a "b" \\ c\nd\te') == '"a \\"b\\" \\\\ c\\nd\\te"'
    assert format_string("Ірина") == '"Ірина"'


def test_message_is_written_as_stored_with_placeholders_and_braces() -> None:
    text = 'profile "m" { message "Goods {item.hs_code}: {{not a placeholder}} {degree}" }\n'
    formatted = format_text(text)
    assert 'message "Goods {item.hs_code}: {{not a placeholder}} {degree}"' in formatted
    assert parse(formatted) == parse(text)


def test_message_parts_hold_no_empty_text() -> None:
    message = parse('profile "m" { message "{degree}{item.x}" }').profiles[0].message
    assert message is not None
    assert message.parts == (m.Ref("degree"), m.FieldRef("item.x"))


# ------------------------------------------------------------------------------------ layout


def test_passport_statements_come_in_the_order_of_the_form() -> None:
    text = (GOLDEN / "passport_order.input.rp").read_text(encoding="utf-8")
    formatted = format_text(text)
    keywords = [
        "approved", "edition approved", "in force", "edition in force", "filling", "module",
        "spheres", "list", "regional", "indicators", "exceptions", "degree", "updates",
        "message", "controls", "history", "contact", "review by", "note",
    ]  # fmt: skip
    first_profile = formatted.split("\n}\n")[0].splitlines()
    starts = [
        next(i for i, line in enumerate(first_profile) if line.startswith("    " + kw + " "))
        for kw in keywords
    ]
    assert starts == sorted(starts)


def test_controls_are_aligned_in_columns() -> None:
    text = (
        'profile "c" { controls { 102 "Documentary check" mandatory from 30 '
        '201 "Inspection" mandatory when x from 70 3011 "Lab" if necessary from 9 } }'
    )
    rows = [line for line in format_text(text).splitlines() if line.startswith("        ")]
    assert [row.index("from") for row in rows] == [rows[0].index("from")] * 3
    assert [row.index('"') for row in rows] == [rows[0].index('"')] * 3


def test_empty_block_written_in_the_source_is_kept() -> None:
    assert "indicators {}" in format_text('profile "e" { indicators { } }')
    assert "indicators" not in format_profile(m.Profile(None, "e"))


def test_file_with_only_comments_and_empty_file() -> None:
    assert format_text("") == ""
    assert format_text("  # one\n\n#two  \n") == "# one\n#two\n"


def test_format_text_raises_profile_error_on_bad_input() -> None:
    with pytest.raises(ProfileError) as info:
        format_text('profile "x" { degree = }', "bad.rp")
    assert info.value.diagnostics[0].span.file == "bad.rp"
    with pytest.raises(ProfileError) as info:
        format_text('profile "x" { approved 2020-02-31 }')
    assert info.value.diagnostics[0].code == "RE011"


def test_format_source_without_text_keeps_every_comment() -> None:
    text = (GOLDEN / "comments.input.rp").read_text(encoding="utf-8")
    formatted = format_source(parse(text))
    assert sorted(_comments(formatted)) == sorted(_comments(text))
    assert parse(formatted) == parse(text)


def test_hand_built_source_without_items_is_formatted_from_its_tuples() -> None:
    lst = m.ListDef("codes", m.ListLit((m.StringLit("a"),)))
    fill = m.Fill(m.ProfileNumber.parse("1/1/11/1-1"), office="1", valid=m.Validity(
        dt.date(2024, 1, 1), dt.date(2024, 3, 31)))  # fmt: skip
    source = m.SourceFile("<string>", profiles=(m.Profile(None, "p"),), fills=(fill,), lists=(lst,))
    formatted = format_source(source)
    assert (
        formatted.index("list codes")
        < formatted.index("profile draft")
        < formatted.index("fill for 1/1/11/1-1")
    )
    assert parse(formatted) == source


# ------------------------------------------------------------------------------------ line breaking

LIMIT = 100
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"]+')


def _too_long(text: str) -> list[str]:
    """Lines of formatted ``text`` longer than the limit that are more than one unbreakable
    token (a string, name, path or number) after at most two keyword words (``message``,
    ``and not``, ``profile 1A/…``, a control's code), with a trailing ``,``, ``:`` or ``{``.
    Lines inside triple-quoted note blocks are the note's own text and are left out."""
    bad, inside = [], False
    for line in text.split("\n"):
        toggles = line.count('"""') % 2 == 1
        if not inside and len(line) > LIMIT:
            body = line.strip().removesuffix(" {").removesuffix(",").removesuffix(":")
            if len(_TOKEN.findall(body)) > 3:
                bad.append(line)
        inside ^= toggles
    return bad


def _without_comments(text: str) -> str:
    return format_source(attrs.evolve(parse(text), comments=()))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_lines_fit_in_100_columns_unless_one_token_cannot(path: Path) -> None:
    formatted = _without_comments(path.read_text(encoding="utf-8"))
    assert _too_long(formatted) == []


@pytest.mark.parametrize("name", ["wrap_expressions", "wrap_statements"])
def test_wrapping_golden_lines_fit_unless_one_token_cannot(name: str) -> None:
    output = (GOLDEN / f"{name}.output.rp").read_text(encoding="utf-8")
    assert _too_long(output) == []
    long_lines = [line for line in output.splitlines() if len(line) > LIMIT]
    assert long_lines, "the golden file should also show what cannot be broken"


def test_checker_rejects_a_breakable_long_line() -> None:
    assert _too_long("    x: " + " or ".join(["item.value == 1"] * 8)) != []
    assert _too_long("    message " + format_string("x" * 120)) == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(S.long_exprs)
def test_long_expression_wraps_in_every_statement_and_round_trips(expr: m.Expr) -> None:
    profile = m.Profile(
        None,
        "wrapping",
        indicators=(
            m.Indicator("i", None, expr),
            m.Indicator("j", "a title to make the head longer", expr, expr),
        ),
        exceptions=(m.ProfileException("e", None, expr),),
        degree=expr,
        controls=(
            m.Control("1", "short", m.ControlKind.MANDATORY, Decimal(1)),
            m.Control("2", "conditional", m.ControlKind.CONDITIONAL, Decimal(2), expr),
        ),
    )
    text = format_profile(profile)
    assert parse(text).profiles == (profile,)
    assert format_text(text) == text
    assert _too_long(text) == []
    if len(format_expr(expr)) > LIMIT:
        assert text.count("\n") > 12  # wrapped, not one line per statement


@LONG
@given(S.long_profiles, S.long_fills())
def test_long_statements_wrap_round_trip_and_fit(profile: m.Profile, fill: m.Fill) -> None:
    for text, back in (
        (format_profile(profile), lambda t: parse(t).profiles == (profile,)),
        (format_fill(fill), lambda t: parse(t).fills == (fill,)),
    ):
        assert back(text)
        assert format_text(text) == text
        assert _too_long(text) == []


@LONG
@given(st.lists(st.one_of(S.long_profiles, S.long_fills(), S.file_lists), min_size=1, max_size=3))
def test_long_random_file_round_trips_and_is_idempotent(
    items: list[m.Profile | m.Fill | m.ListDef],
) -> None:
    source = m.SourceFile(
        path="<string>",
        profiles=tuple(x for x in items if isinstance(x, m.Profile)),
        fills=tuple(x for x in items if isinstance(x, m.Fill)),
        lists=tuple(x for x in items if isinstance(x, m.ListDef)),
        items=tuple(items),
    )
    text = format_source(source)
    assert parse(text) == source
    assert format_text(text) == text


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"n": "\n", "t": "\t"}


def _message_strings(formatted: str) -> list[str]:
    """The strings of the (only) message statement of a formatted profile, unescaped."""
    lines = formatted.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("    message "))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("        "))
    pieces = []
    for line in lines[start:end]:
        (body,) = _STRING.findall(line)
        pieces.append(re.sub(r"\\(.)", lambda mt: _UNESCAPE.get(mt[1], mt[1]), body))
    return pieces


_UNITS = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")  # as the parser reads a message


@settings(max_examples=150, deadline=None)
@given(S.long_messages)
def test_long_message_splits_at_spaces_outside_placeholders(message: m.Message) -> None:
    formatted = format_profile(m.Profile(None, "m", message=message))
    back = parse(formatted).profiles[0].message
    assert back == message
    assert format_text(formatted) == formatted
    pieces = _message_strings(formatted)
    assert "".join(pieces) == message.text
    cuts, at = set(), 0
    for piece in pieces[:-1]:
        at += len(piece)
        cuts.add(at)
        assert piece.endswith(" ") and not message.text[at].startswith(" ")
    for mt in _UNITS.finditer(message.text):
        assert not any(mt.start() < cut < mt.end() for cut in cuts), mt.group(0)
    message_lines = formatted.split("\n")[1 : 1 + len(pieces)]
    for line, piece in zip(message_lines, pieces, strict=True):
        if len(line) > LIMIT:  # only a piece that is one word too long for any line
            assert " " not in piece.strip(" ") or len(_message_words(piece)) == 1


def test_message_is_split_into_adjacent_strings_that_fit() -> None:
    words = [f"word{i} {{item.field_{i}}}" for i in range(30)]
    text = "Check " + " ".join(words) + " {{literal braces}} { item.x } done."
    message = parse(f'profile "m" {{ message {format_string(text)} }}').profiles[0].message
    formatted = format_profile(m.Profile(None, "m", message=message))
    lines = formatted.splitlines()[1:-1]
    assert len(lines) > 3
    assert lines[0].startswith('    message "Check word0 ')
    assert all(line.startswith('        "') for line in lines[1:])
    assert all(len(line) <= LIMIT for line in lines)
    assert "".join(_message_strings(formatted)) == text
    assert not any(line.rstrip('"').endswith(("{{", "{ item.x", "{item.")) for line in lines)


def test_message_that_fits_stays_one_string_and_split_message_is_joined() -> None:
    assert 'message "one two three"' in format_text('profile "m" { message "one " "two " "three" }')
    url = "https://example.gov.ua/" + "a" * 100
    formatted = format_text(f'profile "m" {{ message "See {url} now" }}')
    assert f'    message "See "\n        "{url} "\n        "now"' in formatted


def test_message_words_keep_placeholders_and_escaped_braces_whole() -> None:
    text = "a { item.x } b {{c d}} e  f"
    assert _message_words(text) == ["a ", "{ item.x } ", "b ", "{{c ", "d}} ", "e  ", "f"]
    assert "".join(_message_words(text)) == text


def test_long_control_condition_wraps_and_other_rows_stay_aligned() -> None:
    condition = " and ".join(f"item.value_{i} > {i}" for i in range(8))
    text = (
        f'profile "c" {{ controls {{ 102 "Documentary check" mandatory from 30 '
        f'201 "Inspection" mandatory when {condition} from 70 '
        f'3011 "Laboratory analysis" if necessary from 90 }} }}'
    )
    rows = format_text(text).splitlines()[2:-2]
    assert rows[0].index("from") == rows[-1].index("from")
    assert rows[0].index("mandatory") == rows[-1].index("if necessary")
    assert rows[1] == '        201 "Inspection"'
    assert rows[2].startswith("            mandatory when item.value_0 > 0")
    assert rows[-2].endswith(" from 70") and rows[-2].lstrip().startswith("and item.value_7")
    assert all(len(row) <= LIMIT for row in rows)


def test_long_contact_and_filling_break_before_their_parts() -> None:
    person = "Natalia O. Savchenko, chief inspector, non-tariff regulation division"
    text = (
        f'profile "c" {{ filling regional by "Regional unit" coordinated by '
        f'"{"A" * 30}", "{"B" * 30}", "{"C" * 30}" '
        f'contact "{person}" phone "+380 44" fax "+380 45" mailbox "n.s" }}'
    )
    lines = format_text(text).splitlines()
    assert lines[1:9] == [
        '    filling regional by "Regional unit"',
        f'        coordinated by "{"A" * 30}", "{"B" * 30}",',
        f'            "{"C" * 30}"',
        "",
        f'    contact "{person}"',
        '        phone "+380 44"',
        '        fax "+380 45"',
        '        mailbox "n.s"',
    ]


def test_long_list_packs_items_with_a_trailing_comma() -> None:
    codes = ", ".join(f'"{2900 + i}"' for i in range(30))
    formatted = format_text(f"list codes = ({codes})")
    lines = formatted.splitlines()
    assert lines[0] == "list codes = ("
    assert lines[-1] == ")"
    assert lines[-2].endswith('"2929",')
    assert all(line.startswith('    "') and len(line) <= LIMIT for line in lines[1:-1])
    assert len(lines[1]) > LIMIT - 10  # packed, not one item per line
    assert format_text(f"list codes = ({codes},)") == formatted


def test_format_expr_stays_on_one_line() -> None:
    expr = _degree(" + ".join(f"item.value_{i}" for i in range(30)))
    assert expr is not None
    assert "\n" not in format_expr(expr)
