"""Regular expressions of `matches`: linear time on every backend, the meaning of Python's re.

The classic catastrophic patterns finish in milliseconds against a 10,000-character
description, in the evaluator and in an SQL backtest on SQLite, PostgreSQL and DuckDB; patterns
without an exact linear-time translation are located `check` errors; random patterns from a
grammar read the same in the translation as in Python's ``re`` and on every SQL engine.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from riskengine.backtest.pushdown import PlannedProfile
from riskengine.backtest.run import BacktestOptions, run_backtest
from riskengine.checks import check_sources
from riskengine.evaluator import Engine
from riskengine.semantics.regex import (
    MAX_PROGRAM_SIZE,
    Chars,
    PatternError,
    compile_pattern,
    pattern_error,
)
from riskengine.semantics.regex_sql import register_functions, sql_matches
from riskengine.store.schema import build_tables
from riskengine.syntax import parse, parse_source
from tests.backtest_store import write_store

CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(a|a?)+$", "(.*a){20}", r"^(\w+\s?)*$"]
LONG_TEXTS = ["a" * 10_000 + "!", "a" * 10_000, "a " * 5_000 + "!"]
DAY = dt.date(2024, 3, 1)


def rp_string(pattern: str) -> str:
    """``pattern`` as a string literal of the profile language."""
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


def catastrophic_profile() -> str:
    indicators = "\n".join(
        f"        p{k}: item.description matches {rp_string(p)}" for k, p in enumerate(CATASTROPHIC)
    )
    degree = " + ".join(f"20 * p{k}" for k in range(len(CATASTROPHIC)))
    return f"""
profile draft "Catastrophic patterns" {{
    indicators {{
{indicators}
    }}
    degree = {degree}
    controls {{ 102 "Documentary check" mandatory from 20 }}
}}
"""


# ----------------------------------------------------------------------------- linear time


def test_catastrophic_patterns_match_long_texts_in_milliseconds() -> None:
    compiled = {p: compile_pattern(p) for p in CATASTROPHIC}
    start = time.perf_counter()
    got = {p: [rx(text) for text in LONG_TEXTS] for p, rx in compiled.items()}
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed
    # only the text of a's alone is matched, by every one of them
    assert got == {p: [False, True, False] for p in CATASTROPHIC}
    # and they answer what Python's re answers (on texts short enough for Python to finish)
    for pattern in CATASTROPHIC:
        for text in ("a" * 12 + "!", "a" * 12, "a " * 6 + "!", "a b", ""):
            assert compile_pattern(pattern)(text) == (re.fullmatch(pattern, text) is not None)


@pytest.mark.parametrize("explain", [False, True], ids=["fast", "explaining"])
def test_the_evaluator_scores_a_long_description_in_milliseconds(explain: bool) -> None:
    engine = Engine.load(sources={"cat.rp": catastrophic_profile()}, allow_drafts=True)
    engine.score({"items": [{"description": "warm-up"}]}, DAY, explain=explain)
    start = time.perf_counter()
    results = [
        engine.score({"items": [{"description": text}]}, DAY, explain=explain)
        for text in LONG_TEXTS
    ]
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed
    # every pattern holds on the text of a's alone, none on the others
    assert [bool(r.fired) for r in results] == [False, True, False]


def test_the_sql_backtest_runs_catastrophic_patterns_in_milliseconds(engine: sa.Engine) -> None:
    register_functions(engine)
    source = write_store(
        engine,
        [(k, f"D{k}", DAY, "UA100000") for k in range(1, 4)],
        [(k, 1, "CN", 100.0, 1.0) for k in range(1, 4)],
        [],
        DAY,
    )
    tables = build_tables()
    with engine.begin() as conn:
        for k, text in enumerate(LONG_TEXTS, 1):
            conn.execute(
                tables.items.update().where(tables.items.c.decl_pk == k).values(description=text)
            )
    profile = parse(catastrophic_profile()).profiles[0]
    planned = [PlannedProfile(profile.key, profile)]
    start = time.perf_counter()
    with engine.connect() as conn:
        result = run_backtest(
            conn, source, planned, BacktestOptions(DAY, DAY, history=False), record=False
        )
    elapsed = time.perf_counter() - start
    got = result.profile(profile.key)
    assert got.path == "sql", got.reason
    assert got.total.selected == 1  # D2: only a's
    assert elapsed < 5.0, elapsed  # the whole backtest, queries and all; the matching is ms


PYTHON_PATH_PATTERNS = [
    "(?i).*lamps?.*", ".*(a|b).*", "(?s).*ab?.*", "[a-z]*x", "a*b?a{3}", "(?i)boots?", "6[0-9]+",
    "x(a|aa|aaa)*y",
]  # fmt: skip
ADVERSARIAL = ["a" * 10_000, "a" * 10_000 + "\n", "lamp" * 2_500 + "\n", "ab" * 5_000 + "!"]


def test_patterns_on_pythons_engine_are_proven_linear() -> None:
    """Short simple patterns run on Python's ``re`` (faster than a call into RE2), only where
    backtracking is bounded; the rest stays on RE2."""
    fast = {p: compile_pattern(p) for p in PYTHON_PATH_PATTERNS}
    on_python = [p for p, rx in fast.items() if rx.match is not rx.re2_match]
    assert on_python == PYTHON_PATH_PATTERNS[:-1]  # x(a|aa|aaa)*y: a repeated alternation
    for p in [*CATASTROPHIC, "(?is).*(lamp|bulb|luminaire|tube|лампа|світильник).*", "x*y*"]:
        rx = compile_pattern(p)
        assert rx.match is rx.re2_match, p
    start = time.perf_counter()
    got = {p: [rx.match(t) for t in ADVERSARIAL] for p, rx in fast.items()}
    assert time.perf_counter() - start < 0.5
    assert got == {p: [rx.re2_match(t) for t in ADVERSARIAL] for p, rx in fast.items()}


# ----------------------------------------------------------------------------- check


def test_check_reports_a_pattern_it_cannot_guarantee_at_the_pattern() -> None:
    source = """profile draft "x" {
    indicators {
        a: item.description matches "(ab)\\\\1"
        b: item.description matches "a{99999999999}"
    }
    degree = 50 * a + 50 * b
    controls { 102 "Documentary check" mandatory from 50 }
}
"""
    result = parse_source(source, "x.rp")  # never raises
    found = [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert found == [("RE016", 3, 37), ("RE016", 4, 37)]
    checked = check_sources({"x.rp": source})
    assert [d.code for d in checked.diagnostics] == ["RE016", "RE016"]
    assert "backreference" in checked.diagnostics[0].message
    assert "repetition count above 1000" in checked.diagnostics[1].message


@pytest.mark.parametrize(
    ("pattern", "code", "why"),
    [
        ("(a)\\1", "RE016", "backreference"),
        ("(?=a)a", "RE016", "lookahead"),
        ("(?<!a)b", "RE016", "lookbehind"),
        ("(a)?(?(1)b|c)", "RE016", "conditional"),
        ("(?>a+)b", "RE016", "atomic"),
        ("a++", "RE016", "possessive"),
        ("a{1001}", "RE016", "above 1000"),
        ("a{99999999999}", "RE016", "above 1000"),
        ("(a{2,200}){2,200}", "RE016", "nested repetitions"),
        ("((((a{10}){10}){10}){10})", "RE016", "nested repetitions"),
        ("a$b", "RE016", "`$` before the end"),
        ("a\\w*\\bb", "RE016", "word boundary"),
        ("(" * 60 + "a" + ")" * 60, "RE016", "nested deeper"),
        ("(" * 2000 + ")" * 2000, "RE016", "nested deeper"),
        ("[a-", "RE015", "unterminated character set"),
        ("(?L)a", "RE015", "str pattern"),
    ],
)
def test_patterns_without_an_exact_linear_translation_are_refused(
    pattern: str, code: str, why: str
) -> None:
    err = pattern_error(pattern)
    assert err is not None and err.code == code, err
    assert why in err.message
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_a_compiled_program_has_a_budget() -> None:
    big = "(" + "|".join(f"[a-z]{{{n}}}x" for n in range(900, 1000)) + ")"
    err = pattern_error(big)
    assert err is not None and err.code == "RE016" and str(MAX_PROGRAM_SIZE) in err.message


# ----------------------------------------------------------------------------- the meaning


def _python_set(pattern: str) -> set[int]:
    rx = re.compile(pattern)
    return {c for c in range(0x110000) if rx.fullmatch(chr(c))}


def _translated_set(pattern: str) -> set[int]:
    tree = compile_pattern(pattern).tree
    assert isinstance(tree, Chars), tree
    return {c for lo, hi in tree.ranges for c in range(lo, hi + 1)}


@pytest.mark.parametrize(
    "pattern",
    [
        r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"(?a)\w", r"(?a)\s", r"(?a)\d", ".", "(?s).",
        "(?i)[a-z]", "(?i)[^a-z]", r"(?i)\w", r"(?i)[\W\d]", "(?i)[Ѐ-ӿ]", "(?i)[^ß-ÿ]",
        "(?ia)[a-z]", "(?i)[k-s]",
    ],
)  # fmt: skip
def test_every_class_is_pythons_over_every_code_point(pattern: str) -> None:
    surrogates = set(range(0xD800, 0xE000))  # never in UTF-8 text: dropped when emitted
    assert _translated_set(pattern) - surrogates == _python_set(pattern) - surrogates


def test_each_caseless_ascii_letter_is_pythons() -> None:
    letters = _python_set("(?i)[a-z]")
    for letter in "abcdefghijklmnopqrstuvwxyz":
        rx = re.compile(f"(?i){letter}")
        assert _translated_set(f"(?i){letter}") == {c for c in letters if rx.fullmatch(chr(c))}


SAMPLE_PATTERNS = [
    "(?is).*(lamp|bulb|luminaire|tube|лампа|світильник).*",
    "UA/20[0-9]{2}/[0-9]{6}",
    "(?i).*(china|guangdong|shenzhen).*",
    "[A-Z]{3}U[0-9]{7}",
    r"(?i).*\b(nike|adidas|ray-ban|jbl)\b.*",
    r"(?is).*(безалкогольн|non-alcoholic|alcohol-free).*",
]
SAMPLE_TEXTS = [
    "NIKE air", "nike", "Nikeшка", "кросівкиnike", "ray-ban", "x RAY-BAN!", "ﬁnike", "jbl_x",
    "jbl-x", "\u212aors", "LAMP\nbase", "Лампа", "ЛАМПА", "UA/2024/123456", "UA/2024/12345",
    "MSCU1234567", "MSCu1234567", "made in CHİNA", "Безалкогольне", "٣nike", "nike٣", "",
]  # fmt: skip


@pytest.mark.parametrize("pattern", SAMPLE_PATTERNS)
def test_the_sample_profiles_patterns_read_as_python(pattern: str) -> None:
    rx = compile_pattern(pattern)
    for text in SAMPLE_TEXTS:
        assert rx(text) == (re.fullmatch(pattern, text) is not None), text


def test_a_lone_surrogate_reads_as_a_replacement_character() -> None:
    assert compile_pattern("a.b")("a\udc80b")
    assert not compile_pattern("a[^\ufffd]b")("a\udc80b")


# hypothesis: patterns from a grammar the translation should cover, against Python's re

_ATOMS = [
    "a", "b", "A", "é", "Я", "я", " ", "\\n", "_", "1", "٣", "-", "k", "K", "ſ", "ı", "İ",
    ".", "\\d", "\\w", "\\s", "\\W", "\\S", "[a-c]", "[^a]", "[а-г]", "[\\w-]", "[^\\d\\s]",
    "\\.", "\\\\", "(?:)",
]  # fmt: skip
_TEXT_CHARS = "abAéЯя \n_1٣-kKſıİ\u212a.\\x"


def _patterns() -> st.SearchStrategy[str]:
    atom = st.sampled_from(_ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        quant = st.sampled_from(["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "+?"])
        return st.one_of(
            st.lists(inner, min_size=2, max_size=3).map("".join),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + "|".join(xs) + ")"),
            st.tuples(inner, quant).map(lambda t: f"(?:{t[0]}){t[1]}"),
            st.tuples(st.sampled_from(["\\b", "\\B"]), inner).map("".join),
            st.tuples(inner, st.sampled_from(["\\b", "\\B"])).map("".join),
            st.tuples(st.sampled_from(["(?i:", "(?s:", "(?-i:"]), inner).map(
                lambda t: t[0] + t[1] + ")"
            ),
        )

    body = st.recursive(atom, extend, max_leaves=6)
    flags = st.sampled_from(["", "(?i)", "(?s)", "(?m)", "(?a)", "(?is)", "(?ai)"])
    start = st.sampled_from(["", "^", ".*", "\\A", ".*\\b"])
    end = st.sampled_from(["", "$", ".*", "\\Z", "\\b.*"])
    return st.tuples(flags, start, body, end).map("".join)


_texts = st.lists(st.text(alphabet=_TEXT_CHARS, max_size=7), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(pattern=_patterns(), texts=_texts)
def test_random_patterns_read_as_python(pattern: str, texts: list[str]) -> None:
    note(pattern)
    err = pattern_error(pattern)
    if err is not None:  # refused: only for what has no exact linear translation
        assert err.code == "RE016", err
        assert "\\b" in pattern or "\\B" in pattern or "$" in pattern, err
        return
    rx = compile_pattern(pattern)
    for text in texts:
        want = re.fullmatch(pattern, text) is not None
        assert rx.re2_match(text) == want, (pattern, text, rx.re2)
        assert rx.match(text) == want, (pattern, text, "Python's engine on the translation")


@settings(
    max_examples=int(os.environ.get("REGEX_SQL_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pattern=_patterns(), texts=_texts)
def test_every_sql_engine_reads_a_pattern_as_the_evaluator(
    engine: sa.Engine, pattern: str, texts: list[str]
) -> None:
    """SQLite (RE2 registered), DuckDB (its RE2) and PostgreSQL (ARE) against the evaluator;
    PostgreSQL may decline a pattern, with its reason (the backtest then runs it in Python)."""
    note(pattern)
    if pattern_error(pattern) is not None:
        return
    register_functions(engine)
    dialect = engine.dialect.name
    rx = compile_pattern(pattern)
    columns: list[Any] = []
    for text in texts:
        pred, reason = sql_matches(dialect, sa.literal(text, sa.String()), pattern)
        if pred is None:
            assert dialect == "postgresql" and "PostgreSQL" in reason, reason
            return
        columns.append(sa.func.coalesce(pred, sa.false()))
    with engine.connect() as conn:
        got = conn.execute(sa.select(*columns)).one()
    assert [bool(g) for g in got] == [rx(t) for t in texts], rx.re2


@pytest.mark.parametrize("pattern", [*SAMPLE_PATTERNS, *CATASTROPHIC])
def test_the_sample_and_catastrophic_patterns_on_every_engine(
    engine: sa.Engine, pattern: str
) -> None:
    register_functions(engine)
    dialect = engine.dialect.name
    rx = compile_pattern(pattern)
    texts = [*SAMPLE_TEXTS, *LONG_TEXTS]
    columns: list[Any] = []
    for text in texts:
        pred, reason = sql_matches(dialect, sa.literal(text, sa.String()), pattern)
        if pred is None:
            assert dialect == "postgresql" and reason, reason
            return
        columns.append(sa.func.coalesce(pred, sa.false()))
    start = time.perf_counter()
    with engine.connect() as conn:
        got = conn.execute(sa.select(*columns)).one()
    assert time.perf_counter() - start < 1.0
    assert [bool(g) for g in got] == [rx(t) for t in texts]


_PIECES = [
    *"ab()[]{}|*+?.^$\\-,:=!<>PNdwsbBAZzx019#' \n&~",
    "(?", "(?P<n>", "(?P=n)", "\\N{DIGIT ONE}", "[[", "(?x)", "(?i", "{2,1}", "\\u00e9", "\\x41",
    "\\0", "(?s)", "(?m)", "(?a)", "(?i)",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_any_pattern_text_is_refused_with_a_reason_or_reads_as_python(pattern: str) -> None:
    """Whatever a profile writes, checking it never raises, and what is accepted matches as
    Python's re (on texts short enough for Python to finish)."""
    err = pattern_error(pattern)
    if err is not None:
        assert err.code in ("RE015", "RE016") and err.message
        return
    rx = compile_pattern(pattern)
    for text in ("", "a", "ab", "a\n", "aab", "1", "b a"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = re.fullmatch(pattern, text) is not None
        assert rx.match(text) == want and rx.re2_match(text) == want, (pattern, text)


@pytest.mark.parametrize(
    "source",
    ["[\\U0000006b]", "[\\U000000df]", "[\\U00000130]", "[\\U000003c3]", "[\\w]", "[^\\d\\s]",
     "[\\U00000061-\\U0000007a]", "[^\\U0000006b]"],
)  # fmt: skip
@pytest.mark.parametrize("ascii_only", [False, True])
def test_case_folding_is_what_python_matches_character_by_character(
    source: str, ascii_only: bool
) -> None:
    """A class under ``(?i)`` is translated from one scan of every case candidate: the same
    code points as asking Python's ``re`` about each candidate alone."""
    from riskengine.semantics import regex as rx

    sensitive = ((0, 5),)
    python = re.compile(source, re.IGNORECASE | (re.ASCII if ascii_only else 0))
    candidates = rx._case_candidates()
    yes = rx._from_codes(c for c in candidates if python.fullmatch(chr(c)))
    expected = rx._union(rx._minus(sensitive, rx._from_codes(candidates)), yes)
    assert rx._ignoring_case(source, ascii_only, sensitive) == expected
