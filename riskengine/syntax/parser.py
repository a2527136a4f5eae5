"""Text → parse tree → model: grammar loaded once per process; syntax errors become diagnostics."""

from __future__ import annotations

import functools
import importlib.resources
import threading
from pathlib import Path
from typing import Any

import attrs
import lark
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from riskengine import model as m
from riskengine.diagnostics import Diagnostic, ProfileError, Span, error
from riskengine.syntax.build import Builder
from riskengine.syntax.fastpath import FastParser

GRAMMAR_NAME = "profile.lark"

_local = threading.local()


def grammar_text() -> str:
    """The grammar, from the installed package (wheel) or the source tree's ``grammar/``."""
    try:
        res = importlib.resources.files("riskengine") / "grammar" / GRAMMAR_NAME
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - packaging fallback
        pass
    src = Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_NAME
    return src.read_text(encoding="utf-8")


def _on_comment(tok: Token) -> Token:
    comments = getattr(_local, "comments", None)
    if comments is not None:
        comments.append(tok)
    return tok


_BUILDER = Builder()


@functools.cache
def parser() -> Lark:
    """The LALR parser with the model builder embedded (no parse tree), built once per process."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        lexer_callbacks={"COMMENT": _on_comment},
        transformer=_BUILDER,
    )


@functools.cache
def fast_parser() -> FastParser:
    return FastParser(parser())


@attrs.frozen
class ParseResult:
    """The model of one file (None after a syntax error) and every problem found building it."""

    source: m.SourceFile | None
    diagnostics: list[Diagnostic]
    text: str

    @property
    def ok(self) -> bool:
        return self.source is not None and not any(d.is_error for d in self.diagnostics)


def parse_source(text: str, file: str = "<string>") -> ParseResult:
    """Parse one file's text. Never raises on bad input: problems come back as diagnostics."""
    builder = _BUILDER
    builder.begin(file, text)
    comment_tokens: list[Token] = []
    built = fast_parser().parse(text, comment_tokens)
    if built is None:  # not valid, or beyond the fast path: let lark parse and explain
        builder.begin(file, text)
        _local.comments = comment_tokens = []
        try:
            built = parser().parse(text)
        except UnexpectedInput as exc:
            return ParseResult(None, [_syntax_diagnostic(exc, text, file)], text)
        finally:
            _local.comments = None
    items = tuple(_top_item(x) for x in built["items"])
    comments = tuple(m.Comment(str(t), builder.tspan(t)) for t in comment_tokens)
    source = m.SourceFile(
        path=file,
        profiles=tuple(x for x in items if isinstance(x, m.Profile)),
        fills=tuple(x for x in items if isinstance(x, m.Fill)),
        lists=tuple(x for x in items if isinstance(x, m.ListDef)),
        comments=comments,
        items=items,
    )
    return ParseResult(source, list(builder.diagnostics), text)


def _top_item(x: Any) -> m.Profile | m.Fill | m.ListDef:
    item: m.Profile | m.Fill | m.ListDef
    if isinstance(x, tuple):  # ("lists", [ListDef], span) from a file-level list
        item = x[1][0]
    else:
        item = x
    return item


def parse(text: str, file: str = "<string>") -> m.SourceFile:
    """Parse one file's text; raise :class:`ProfileError` listing every error found."""
    result = parse_source(text, file)
    errors = [d for d in result.diagnostics if d.is_error]
    if result.source is None or errors:
        raise ProfileError(errors or result.diagnostics, {file: text})
    return result.source


def read_source(path: str | Path) -> str:
    """Read a profile file as UTF-8, turning OS and decoding problems into our error type."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")  # a byte-order mark is not content
    except UnicodeDecodeError as exc:
        span = Span(str(path), 1, 1, 1, 1)
        raise ProfileError(
            [error("RE005", f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", span)]
        ) from None
    except OSError as exc:
        raise ProfileError(
            [error("RE006", f"cannot read the file: {exc.strerror}", Span(str(path), 0, 0, 0, 0))]
        ) from None


def parse_file(path: str | Path) -> m.SourceFile:
    return parse(read_source(path), str(path))


# ------------------------------------------------------------------------------------ syntax errors

# Friendly messages by example (lark's match_examples): the parser state of each bad snippet maps
# to the message. Each snippet ends where the error happens.
_EXAMPLES: dict[str, list[str]] = {
    "use `==` to compare two values (`=` is only for `degree =`, lists and fill values)": [
        'profile "x" { indicators { a: item.origin = "CN" } }',
        'profile "x" { indicators { a: item.origin == "CN" and item.x = 1 } }',
        'profile "x" { indicators { b: true a: item.origin = "CN" } }',
        'profile "x" { indicators { b: true a: item.origin == "CN" and item.x = 1 } }',
    ],
    "an indicator is written `name: condition` (a colon after the name)": [
        'profile "x" { indicators { a item.origin == "CN" } }',
        'profile "x" { indicators { b: true a item.origin == "CN" } }',
    ],
    'a control form is written `CODE "name" mandatory|if necessary [when CONDITION] from '
    "THRESHOLD`": [
        'profile "x" { controls { 102 "Documentary check" from 30 } }',
        'profile "x" { controls { 102 mandatory from 30 } }',
        'profile "x" { controls { 102 "Documentary check" mandatory 30 } }',
        'profile "x" { controls { 1 "a" mandatory from 1 102 "Documentary check" from 30 } }',
        'profile "x" { controls { 1 "a" mandatory from 1 102 mandatory from 30 } }',
        'profile "x" { controls { 1 "a" mandatory from 1 102 "Documentary check" mandatory 30 } }',
    ],
    'a list of values is written in parentheses: `("CN", "VN")`': [
        'profile "x" { indicators { a: item.origin in "CN" } }',
        'profile "x" { indicators { a: item.hs_code starts with "6403" } }',
        'profile "x" { indicators { b: true a: item.origin in "CN" } }',
        'profile "x" { indicators { b: true a: item.hs_code starts with "6403" } }',
    ],
    'a profile starts with `profile NUMBER "name" {` (or `profile draft "name" {`)': [
        "profile { ",
        "profile 2A/08/2012/00042-03 { ",
        'list a = ("x") profile { ',
        'list a = ("x") profile 2A/08/2012/00042-03 { ',
    ],
}


def _terminal_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for t in parser().terminals:
        pat = t.pattern
        if isinstance(pat, lark.lexer.PatternStr):
            names[t.name] = f"`{pat.value}`"
    names.update(
        NAME="a name",
        STRING="a string in double quotes",
        NUMBER="a number",
        DATE="a date (YYYY-MM-DD)",
        CODE="a code",
        PROFILE_NUMBER="a profile number (WW/XX/YYYY/ZZZZZ-VV)",
        SCOPE="a field (`declaration.…`, `item.…`, `region.…`)",
        COMPARE="a comparison (`==`, `<`, …)",
        ADD="`+` or `-`",
        MUL="`*` or `/`",
        NOTE_KEY="a note section (threat, basis, causes, damage, measures)",
        **{"$END": "end of file"},
    )
    return names


def _expected(exc: UnexpectedInput) -> str:
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
    names = _terminal_names()
    shown = sorted({names.get(e, e) for e in expected})
    if not shown:
        return ""
    if len(shown) > 8:
        shown = [*shown[:8], "…"]
    return "expected " + ", ".join(shown)


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line = getattr(exc, "line", 0) or 0
    column = getattr(exc, "column", 0) or 0
    friendly = None
    try:
        friendly = exc.match_examples(parser().parse, _EXAMPLES, use_accepts=True)
    except Exception:
        friendly = None
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        if ch == '"':
            msg, code = 'this string is not closed: a `"` is missing on this line', "RE004"
        else:
            shown = ch if ch.isprintable() else repr(ch)[1:-1]
            msg, code = f"unexpected character `{shown}`", "RE001"
        span = Span(file, line, column, line, column + 1)
        return error(code, msg, span, friendly)
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        lines = text.split("\n")  # lines as lark counts them: only \n ends a line
        last = len(lines)
        col = len(lines[-1]) + 1
        opened = _unclosed_brace(text)
        if opened is not None:
            oline, ocol = opened
            return error(
                "RE003",
                f"the file ends before the `{{` opened at line {oline}, column {ocol} is closed",
                Span(file, oline, ocol, oline, ocol + 1),
                "add the missing `}`",
            )
        return error(
            "RE003", "the file ends too early", Span(file, last, col, last, col),
            friendly or _expected(exc) or None,
        )  # fmt: skip
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    width = len(str(tok)) or 1
    shown = str(tok) if len(str(tok)) <= 40 else str(tok)[:37] + "…"
    span = Span(file, line, column, line, column + width)
    return error("RE002", f"unexpected `{shown}`", span, friendly or _expected(exc) or None)


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """Line and column of the innermost `{` left open, skipping strings and comments."""
    stack: list[tuple[int, int]] = []
    line, col, i, n = 1, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch == '"':
            quote = '"""' if text.startswith('"""', i) else '"'
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n" and quote == '"':
                    break
                j += 1
            end = min(n, j + len(quote))
            for c in text[i:end]:
                line, col = (line + 1, 1) if c == "\n" else (line, col + 1)
            i = end
            continue
        if ch == "{":
            stack.append((line, col))
        elif ch == "}" and stack:
            stack.pop()
        line, col = (line + 1, 1) if ch == "\n" else (line, col + 1)
        i += 1
    return stack[-1] if stack else None
