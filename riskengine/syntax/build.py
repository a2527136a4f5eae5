"""Tree → model: the lark transformer that turns a parse tree into frozen attrs nodes with spans."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
import threading
from decimal import Decimal
from typing import Any

import attrs
from lark import Token, Transformer

from riskengine import model as m
from riskengine.diagnostics import Diagnostic, Span, error
from riskengine.semantics.limits import (
    MAX_EXPRESSION_DEPTH,
    MAX_HISTORY_DAYS,
    MAX_HISTORY_PREFIX,
    MAX_NUMBER_FRACTION_DIGITS,
    MAX_NUMBER_INTEGER_DIGITS,
    nesting_depth,
    number_digits,
)
from riskengine.semantics.regex import pattern_error

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(.)", re.S)
_NEWLINE = re.compile("\n")
_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER_NAME_RE = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*\Z")


class Builder(Transformer[Token, Any]):
    """Builds the model while the LALR parser runs (lark's embedded transformer: no parse tree is
    materialised). One instance serves every parse; the file being read and the problems found
    live in thread-local state set by :meth:`begin`. The builder never raises on bad input.

    Spans are computed from the tokens and nodes a rule receives: a statement's span starts at
    its first value (``approved 2012-01-11`` points at the date), which is where a caret helps.
    """

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self._tl = threading.local()

    def begin(self, file: str, text: str = "") -> None:
        self._tl.file = file
        self._tl.diagnostics = []
        self._tl.text = text
        self._tl.line_starts = None

    @property
    def file(self) -> str:
        try:
            file: str = self._tl.file
        except AttributeError:
            self.begin("<string>")
            file = self._tl.file
        return file

    @property
    def diagnostics(self) -> list[Diagnostic]:
        if not hasattr(self._tl, "diagnostics"):
            self.begin("<string>")
        diagnostics: list[Diagnostic] = self._tl.diagnostics
        return diagnostics

    # ------------------------------------------------------------------ helpers
    def span_of(self, c: list[Any]) -> Span:
        # what _pos gives, without building a span for a token (most children are tokens)
        line = column = 0
        for x in c:
            if isinstance(x, Token):
                if x.line:
                    line, column = x.line, x.column or 0
                    break
            else:
                first = _pos(x)
                if first is not None:
                    line, column = first.line, first.column
                    break
        else:
            return Span(self.file, 0, 0, 0, 0)
        end_line = end_column = 0
        for x in reversed(c):
            if isinstance(x, Token):
                if x.line:
                    end_line, end_column = x.end_line or x.line, x.end_column or 0
                    break
            else:
                last = _pos(x)
                if last is not None:
                    end_line, end_column = last.end_line, last.end_column
                    break
        return Span(self.file, line, column, end_line, end_column)

    def tspan(self, tok: Token) -> Span:
        return Span(
            self.file,
            tok.line or 0,
            tok.column or 0,
            tok.end_line or tok.line or 0,
            tok.end_column or tok.column or 0,
        )

    def text_of(self, tok: Token) -> str:
        raw = str(tok)
        if raw.startswith('"""'):
            body = raw[3:-3]
            if body.startswith("\n"):
                body = body[1:]
            body = textwrap.dedent(body).rstrip(" \t")
            if body.endswith("\n"):
                body = body[:-1]
        else:
            body = raw[1:-1]

        def unescape(mt: re.Match[str]) -> str:
            ch = mt.group(1)
            if ch in _ESCAPES:
                return _ESCAPES[ch]
            self.diagnostics.append(
                error(
                    "RE013",
                    f"unknown escape `\\{ch}` in a string",
                    self.tspan(tok),
                    'write `\\\\` for a backslash, `\\"` for a quote, `\\n` for a new line',
                )
            )
            return ch

        return _ESCAPE_RE.sub(unescape, body)

    def date_of(self, tok: Token) -> dt.date:
        try:
            return dt.date.fromisoformat(str(tok))
        except ValueError:
            self.diagnostics.append(
                error("RE011", f"`{tok}` is not a valid calendar date", self.tspan(tok))
            )
            return dt.date.min

    def opt_string(self, tok: Token | None) -> str | None:
        return None if tok is None else self.text_of(tok)

    # ------------------------------------------------------------------ limits (RE6xx)
    def bounded(
        self,
        expr: m.Expr,
        what: str,
        stand_in: m.Expr,
        name: Token | None = None,
        after: tuple[int | None, int | None] | None = None,
    ) -> m.Expr:
        """``expr``, or ``stand_in`` (with its span) when it nests deeper than every backend
        can run (RE601, reported at ``name``, the statement's name or code, if given): then
        nothing after the parser -- checks, formatter, code generators, which recurse -- ever
        sees the deep tree. Measured without recursion, and only when the text from ``after``
        (a line and column the whole of ``expr`` is written after: the end of the title, of
        the condition before an `unless`; else the start of ``name``) to the end of ``expr``
        is long enough to hold that many levels (each takes at least one character: `-x`).
        The span of ``expr`` itself is no such start: it leaves out a leading `-` or `not`."""
        end = expr.span
        if after is None and name is not None:
            after = (name.line, name.column)
        if after is not None:
            room = self._distance(after, end.end_line, end.end_column)
            if room is not None and room <= MAX_EXPRESSION_DEPTH:
                return expr
        depth = nesting_depth(expr)
        if depth <= MAX_EXPRESSION_DEPTH:
            return expr
        self.diagnostics.append(
            error(
                "RE601",
                f"{what} is nested {depth:,} levels deep; at most {MAX_EXPRESSION_DEPTH} levels "
                "are allowed",
                expr.span if name is None else self.tspan(name),
                "give parts of it their own indicators and use them by name: the generated "
                "Python and SQL nest one level per operation",
            )
        )
        return attrs.evolve(stand_in, span=expr.span)

    def _distance(
        self, start: tuple[int | None, int | None], end_line: int, end_column: int
    ) -> int | None:
        """The number of characters from ``start`` (line, column) to ``end_line``,
        ``end_column`` in the text being read; ``None`` when not known."""
        line, column = start
        if line is None or column is None:
            return None
        if line == end_line:
            return end_column - column
        text = getattr(self._tl, "text", "")
        if not text or not 0 < line < end_line:
            return None
        starts: list[int] | None = self._tl.line_starts
        if starts is None:
            starts = self._tl.line_starts = [0, *(mt.end() for mt in _NEWLINE.finditer(text))]
        if end_line > len(starts):
            return None
        return (starts[end_line - 1] + end_column) - (starts[line - 1] + column)

    def number_value(self, tok: Token, negative: bool = False) -> Decimal:
        """The value of a number literal of an expression, a list or a fill value. One longer
        than any number the checks could accept (RE602) is reported here and never converted
        (0 stands in): Decimal arithmetic on a million digits overflows."""
        text = str(tok)
        if len(text) > _LONGEST_NUMBER:
            whole, fraction = number_digits(text)
            where = "before" if whole > MAX_NUMBER_INTEGER_DIGITS else "after"
            count = whole if where == "before" else fraction
            limit = MAX_NUMBER_INTEGER_DIGITS if where == "before" else MAX_NUMBER_FRACTION_DIGITS
            self.diagnostics.append(
                error(
                    "RE602",
                    f"this number has {count:,} digits {where} the decimal point; at most "
                    f"{limit} are allowed",
                    self.tspan(tok),
                    NUMBER_HELP,
                )
            )
            return Decimal(0)
        value = Decimal(text)
        return -value if negative else value

    def whole_number(self, tok: Token, what: str, limit: int) -> int:
        """A history window or prefix length: a whole number (RE014). One of more than 9 digits
        is never converted (RE605 here; ``limit`` stands in): the checks report the others
        beyond ``limit`` (RE605), so that the formatter can still write them back."""
        text = str(tok)
        whole = text.split(".")[0].lstrip("0") or "0"
        if "." in text:
            self.diagnostics.append(error("RE014", _WHOLE[what], self.tspan(tok)))
        if len(whole) > 9:
            self.diagnostics.append(
                error(
                    "RE605",
                    f"{what} {shown_number(text, 'of {}', 'here')} is longer than the limit "
                    f"of {limit:,}",
                    self.tspan(tok),
                    _HISTORY_LIMIT_HELP[what],
                )
            )
            return limit
        return int(whole)

    # ------------------------------------------------------------------ file
    def start(self, items: list[Any]) -> dict[str, Any]:
        return {"items": tuple(items)}

    # ------------------------------------------------------------------ profile
    def numbered(self, c: list[Token]) -> m.ProfileNumber:
        return m.ProfileNumber.parse(str(c[0]), self.tspan(c[0]))

    def draft(self, c: list[Any]) -> None:
        return None

    _SINGLE = (
        "approved", "edition_approved", "in_force", "edition_in_force", "filling", "module",
        "spheres", "review", "contact", "updates", "degree", "message", "history", "note",
        "params",
    )  # fmt: skip
    _MULTI = ("lists", "indicators", "exceptions", "controls")

    def _collect(
        self, stmts: list[tuple[str, Any, Span]], what: str, fallback: Span
    ) -> tuple[dict[str, Any], dict[str, Span]]:
        fields: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        multi: dict[str, list[Any]] = {}
        for key, value, span in stmts:
            if not span.line:  # an empty block has no token of its own: point at the header
                span = fallback
            if key in self._MULTI:
                multi.setdefault(key, []).extend(value)
                spans.setdefault(key, span)
                continue
            if key in fields:
                self.diagnostics.append(
                    error(
                        "RE010",
                        f"`{_STATEMENT_WORDS.get(key, key)}` is given twice in this {what}",
                        span,
                        f"the first is at line {spans[key].line}; keep one",
                    )
                )
                continue
            fields[key] = value
            spans[key] = span
        for key, values in multi.items():
            fields[key] = tuple(values)
        return fields, spans

    def profile(self, c: list[Any]) -> m.Profile:
        number, name_tok, *stmts = c
        fields, spans = self._collect(stmts, "profile", self.tspan(name_tok))
        spans["name"] = self.tspan(name_tok)
        if number is not None:
            spans["number"] = number.span
        return m.Profile(
            number=number, name=self.text_of(name_tok), span=self.span_of(c), spans=spans, **fields
        )

    def approved(self, c: list[Token]) -> tuple[str, Any, Span]:
        return ("approved", self.date_of(c[0]), self.span_of(c))

    def edition_approved(self, c: list[Token]) -> tuple[str, Any, Span]:
        return ("edition_approved", self.date_of(c[0]), self.span_of(c))

    def edition_in_force(self, c: list[Token]) -> tuple[str, Any, Span]:
        return ("edition_in_force", self.date_of(c[0]), self.span_of(c))

    def review(self, c: list[Token]) -> tuple[str, Any, Span]:
        return ("review", self.date_of(c[0]), self.span_of(c))

    def in_force(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        start = self.date_of(c[0])  # type: ignore[arg-type]
        end = self.date_of(c[1]) if c[1] is not None else None
        return ("in_force", m.Validity(start, end, span=span), span)

    def filling_central(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        return (
            "filling",
            m.Filling(m.FillingMethod.CENTRAL, self.opt_string(c[1]), span=span),
            span,
        )

    def filling_regional(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        _keyword, unit, *coordinators = c
        coords = tuple(self.text_of(t) for t in coordinators if t is not None)
        return (
            "filling",
            m.Filling(m.FillingMethod.REGIONAL, self.opt_string(unit), coords, span=span),
            span,
        )

    def module(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        name = c[0]
        assert name is not None
        mod = m.Module(str(name), self.opt_string(c[1]), span=self.tspan(name))
        return ("module", mod, span)

    def spheres(self, c: list[Token]) -> tuple[str, Any, Span]:
        return ("spheres", tuple(str(t) for t in c), self.span_of(c))

    def contact(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        person, phone, fax, mailbox = (self.opt_string(t) for t in c)
        assert person is not None
        return ("contact", m.Contact(person, phone, fax, mailbox, span=span), span)

    def updates(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        how = self.opt_string(c[0])
        assert how is not None
        return ("updates", m.Updates(how, self.opt_string(c[1]), span=span), span)

    def list_def(self, c: list[Any]) -> Any:
        span = self.span_of(c)
        ld = m.ListDef(str(c[0]), c[1], span=span)
        return ("lists", [ld], span)

    def regional(self, c: list[m.Param]) -> tuple[str, Any, Span]:
        return ("params", tuple(c), self.span_of(c))

    def param(self, c: list[Any]) -> m.Param:
        name, (type_name, is_list), title = c
        return m.Param(str(name), type_name, is_list, self.opt_string(title), span=self.span_of(c))

    def scalar_type(self, c: list[Token]) -> tuple[str, bool]:
        return (str(c[0]), False)

    def list_type(self, c: list[Token]) -> tuple[str, bool]:
        return (str(c[0]), True)

    def indicators(self, c: list[m.Indicator]) -> tuple[str, Any, Span]:
        return ("indicators", list(c), self.span_of(c))

    def indicator(self, c: list[Any]) -> m.Indicator:
        name, title, cond, unless = c
        cond = self.bounded(cond, f"the condition of indicator `{name}`", _FALSE, name, _end(title))
        if unless is not None:
            after = (cond.span.end_line, cond.span.end_column)
            unless = self.bounded(
                unless, f"the `unless` of indicator `{name}`", _FALSE, name, after
            )
        return m.Indicator(str(name), self.opt_string(title), cond, unless, span=self.span_of(c))

    def exceptions(self, c: list[m.ProfileException]) -> tuple[str, Any, Span]:
        return ("exceptions", list(c), self.span_of(c))

    def exception(self, c: list[Any]) -> m.ProfileException:
        name, title, cond = c
        cond = self.bounded(cond, f"the condition of exception `{name}`", _FALSE, name, _end(title))
        return m.ProfileException(str(name), self.opt_string(title), cond, span=self.span_of(c))

    def degree(self, c: list[Any]) -> tuple[str, Any, Span]:
        return ("degree", self.bounded(c[0], "the degree", _ZERO), self.span_of(c))

    def message(self, c: list[Token]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        tok = c[0]
        text = "".join(self.text_of(t) for t in c)
        return ("message", m.Message(text, self.placeholders(text, tok), span=span), span)

    def placeholders(
        self, text: str, tok: Token
    ) -> tuple[str | m.FieldRef | m.Ref | m.HistoryRef, ...]:
        parts: list[str | m.FieldRef | m.Ref | m.HistoryRef] = []
        buf: list[str] = []
        span = self.tspan(tok)
        pos = 0
        for mt in _PLACEHOLDER_RE.finditer(text):
            buf.append(text[pos : mt.start()])
            pos = mt.end()
            tok_text = mt.group(0)
            if tok_text == "{{":
                buf.append("{")
            elif tok_text == "}}":
                buf.append("}")
            elif mt.group(1) is not None and _PLACEHOLDER_NAME_RE.match(mt.group(1).strip()):
                name = mt.group(1).strip()
                if "".join(buf):
                    parts.append("".join(buf))
                buf = []
                if "." in name:
                    parts.append(m.FieldRef(name, span=span))
                elif name in ("negative_history", "positive_history"):
                    parts.append(m.HistoryRef(m.HistoryKind(name), span=span))
                else:
                    parts.append(m.Ref(name, span=span))
            else:
                self.diagnostics.append(
                    error(
                        "RE012",
                        f"bad placeholder `{tok_text}` in the message",
                        span,
                        "write `{item.hs_code}` for a value, `{{` and `}}` for braces",
                    )
                )
                buf.append(tok_text)
        buf.append(text[pos:])
        if "".join(buf):
            parts.append("".join(buf))
        return tuple(parts)

    def controls(self, c: list[m.Control]) -> tuple[str, Any, Span]:
        return ("controls", list(c), self.span_of(c))

    def control(self, c: list[Any]) -> m.Control:
        code, name, kind, cond, threshold = c
        if cond is not None:
            cond = self.bounded(cond, f"the condition of control {code}", _FALSE, code, _end(name))
        if cond is not None and kind is m.ControlKind.MANDATORY:
            kind = m.ControlKind.CONDITIONAL
        return m.Control(
            str(code), self.text_of(name), kind, Decimal(str(threshold)), cond,
            span=self.span_of(c),
        )  # fmt: skip

    def mandatory(self, c: list[Any]) -> m.ControlKind:
        return m.ControlKind.MANDATORY

    def if_necessary(self, c: list[Any]) -> m.ControlKind:
        return m.ControlKind.IF_NECESSARY

    def history(self, c: list[Any]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        *subjects, window, negative, positive = c
        days = self.whole_number(window, "the history window", MAX_HISTORY_DAYS)
        hist = m.History(tuple(subjects), days, negative, positive, span=span)
        return ("history", hist, span)

    def subject(self, c: list[Any]) -> m.HistorySubject:
        field, prefix = c
        n = None
        if prefix is not None:
            n = self.whole_number(prefix, "a prefix length", MAX_HISTORY_PREFIX)
        return m.HistorySubject(field, n, span=self.span_of(c))

    def negative(self, c: list[Any]) -> m.NegativeHistory:
        mx, per_case, *reasons = c
        return m.NegativeHistory(
            Decimal(str(mx)),
            tuple(reasons),
            Decimal(str(per_case)) if per_case is not None else Decimal(1),
            span=self.span_of(c),
        )

    def reason(self, c: list[Token]) -> m.ReasonCoefficient:
        return m.ReasonCoefficient(str(c[0]), Decimal(str(c[1])), span=self.span_of(c))

    def positive(self, c: list[Token]) -> m.PositiveHistory:
        return m.PositiveHistory(Decimal(str(c[0])), Decimal(str(c[1])), span=self.span_of(c))

    def note(self, c: list[tuple[str, list[str], Span]]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        sections: dict[str, Any] = {}
        for key, texts, sspan in c:
            if key in sections:
                self.diagnostics.append(
                    error("RE010", f"`{key}` is given twice in this note", sspan)
                )
                continue
            if key == "basis":
                sections[key] = tuple(texts)
            else:
                sections[key] = "\n\n".join(texts)
        return ("note", m.Note(**sections, span=span), span)

    def note_section(self, c: list[Token]) -> tuple[str, list[str], Span]:
        return (str(c[0]), [self.text_of(t) for t in c[1:]], self.span_of(c))

    # ------------------------------------------------------------------ fill
    def fill(self, c: list[Any]) -> m.Fill:
        number_tok, *stmts = c
        number = m.ProfileNumber.parse(str(number_tok), self.tspan(number_tok))
        fields, spans = self._collect(stmts, "fill", self.tspan(number_tok))
        spans["profile"] = number.span
        office = fields.pop("office", None)
        if office is not None:
            fields["office"], fields["office_name"] = office
        if "values" in fields:
            fields["values"] = tuple(fields["values"])
        return m.Fill(profile=number, span=self.span_of(c), spans=spans, **fields)

    def office(self, c: list[Token | None]) -> tuple[str, Any, Span]:
        assert c[0] is not None
        return ("office", (str(c[0]), self.opt_string(c[1])), self.span_of(c))

    def order(self, c: list[Token]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        return ("order", m.Order(self.text_of(c[0]), self.date_of(c[1]), span=span), span)

    def valid(self, c: list[Token]) -> tuple[str, Any, Span]:
        span = self.span_of(c)
        return ("valid", m.Validity(self.date_of(c[0]), self.date_of(c[1]), span=span), span)

    def values(self, c: list[m.ParamValue]) -> tuple[str, Any, Span]:
        return ("values", list(c), self.span_of(c))

    def value(self, c: list[Any]) -> m.ParamValue:
        return m.ParamValue(str(c[0]), c[1], span=self.span_of(c))

    # ------------------------------------------------------------------ expressions
    def cond(self, c: list[Any]) -> m.Cond:
        return m.Cond(c[0], c[1], c[2], span=self.span_of(c))

    def or_(self, c: list[Any]) -> m.Or:
        return m.Or(c[0], c[1], span=self.span_of(c))

    def and_(self, c: list[Any]) -> m.And:
        return m.And(c[0], c[1], span=self.span_of(c))

    def not_(self, c: list[Any]) -> m.Not:
        return m.Not(c[0], span=self.span_of(c))

    def compare(self, c: list[Any]) -> m.Compare:
        return m.Compare(str(c[1]), c[0], c[2], span=self.span_of(c))

    def in_list(self, c: list[Any]) -> m.InList:
        return m.InList(c[0], c[1], False, span=self.span_of(c))

    def not_in_list(self, c: list[Any]) -> m.InList:
        return m.InList(c[0], c[1], True, span=self.span_of(c))

    def between(self, c: list[Any]) -> m.Between:
        return m.Between(c[0], c[1], c[2], span=self.span_of(c))

    def starts_with(self, c: list[Any]) -> m.StartsWith:
        return m.StartsWith(c[0], c[1], span=self.span_of(c))

    def matches(self, c: list[Any]) -> m.Matches:
        pattern = self.text_of(c[1])
        if (bad := pattern_error(pattern)) is not None:
            what = "bad pattern" if bad.code == "RE015" else "pattern"
            self.diagnostics.append(error(bad.code, f"{what} {c[1]}: {bad}", self.tspan(c[1])))
        return m.Matches(c[0], pattern, span=self.span_of(c))

    def is_missing(self, c: list[Any]) -> m.IsMissing:
        return m.IsMissing(c[0], False, span=self.span_of(c))

    def is_present(self, c: list[Any]) -> m.IsMissing:
        return m.IsMissing(c[0], True, span=self.span_of(c))

    def arith(self, c: list[Any]) -> m.Arith:
        return m.Arith(str(c[1]), c[0], c[2], span=self.span_of(c))

    def neg(self, c: list[Any]) -> m.Expr:
        operand = c[0]
        if isinstance(operand, m.NumberLit):  # fold -1 into a literal
            return m.NumberLit(-operand.value, span=self.span_of(c))
        return m.Neg(operand, span=self.span_of(c))

    def ref(self, c: list[Token]) -> m.Ref:
        return m.Ref(str(c[0]), span=self.tspan(c[0]))

    def negative_history(self, c: list[Any]) -> m.HistoryRef:
        return m.HistoryRef(m.HistoryKind.NEGATIVE, span=self.span_of(c))

    def positive_history(self, c: list[Any]) -> m.HistoryRef:
        return m.HistoryRef(m.HistoryKind.POSITIVE, span=self.span_of(c))

    def call(self, c: list[Any]) -> m.Call:
        return m.Call(str(c[0]), tuple(c[1:]), span=self.span_of(c))

    def field(self, c: list[Token]) -> m.FieldRef:
        return m.FieldRef(".".join(str(t) for t in c), span=self.span_of(c))

    def number(self, c: list[Token]) -> m.NumberLit:
        return m.NumberLit(self.number_value(c[0]), span=self.tspan(c[0]))

    def string(self, c: list[Token]) -> m.StringLit:
        return m.StringLit(self.text_of(c[0]), span=self.tspan(c[0]))

    def date(self, c: list[Token]) -> m.DateLit:
        return m.DateLit(self.date_of(c[0]), span=self.tspan(c[0]))

    def negative_number(self, c: list[Token]) -> m.NumberLit:
        return m.NumberLit(self.number_value(c[0], negative=True), span=self.tspan(c[0]))

    def true(self, c: list[Any]) -> m.BoolLit:
        return m.BoolLit(True, span=self.span_of(c))

    def false(self, c: list[Any]) -> m.BoolLit:
        return m.BoolLit(False, span=self.span_of(c))

    def list_value(self, c: list[Any]) -> m.ListLit:
        value: m.ListLit = c[0]
        return value

    def list_ref(self, c: list[Token]) -> m.Ref:
        return m.Ref(str(c[0]), span=self.tspan(c[0]))

    def list_param(self, c: list[m.FieldRef]) -> m.FieldRef:
        return c[0]

    def list_literal(self, c: list[Any]) -> m.ListLit:
        return m.ListLit(tuple(x for x in c if x is not None), span=self.span_of(c))


#: Longer number literals are reported by the parser (RE602) and never converted; shorter ones
#: beyond MAX_NUMBER_INTEGER_DIGITS / MAX_NUMBER_FRACTION_DIGITS by the checks.
_LONGEST_NUMBER = 100
NUMBER_HELP = "numbers are computed as double-precision floats, exact to 15 digits on every backend"

# What stands in for an expression nested too deeply (RE601): a condition is false, a degree 0.
_FALSE = m.BoolLit(False)
_ZERO = m.NumberLit(Decimal(0))

_WHOLE = {
    "the history window": "the history window is a whole number of days",
    "a prefix length": "a prefix length is a whole number",
}
_HISTORY_LIMIT_HELP = {
    "the history window": "the window reaches back at most ten years (3,660 days)",
    "a prefix length": "a prefix takes at most 100 characters of a text field",
}


def _end(tok: Token | None) -> tuple[int | None, int | None] | None:
    """Where a token ends (line, column after it), ``None`` without the token: an expression
    written after it starts there or later (see :meth:`Builder.bounded`)."""
    if tok is None:
        return None
    return (tok.end_line, tok.end_column)


def shown_number(text: str, short: str, long: str) -> str:
    """``short`` with the number literal in it for a message, ``long`` when it is too long
    to show."""
    return short.format(f"`{text}`") if len(text) <= 24 else long


_STATEMENT_WORDS = {
    "edition_approved": "edition approved",
    "in_force": "in force",
    "edition_in_force": "edition in force",
    "review": "review by",
    "params": "regional",
}


def _pos(x: Any) -> Span | None:
    """The span of a rule's child: a token, a model node, a statement tuple, or a list of them."""
    if isinstance(x, Token):
        if not x.line:
            return None
        return Span("", x.line, x.column or 0, x.end_line or x.line, x.end_column or 0)
    if isinstance(x, tuple) and len(x) == 3 and isinstance(x[2], Span):
        return x[2] if x[2].line else None
    if isinstance(x, list):
        spans = [p for p in map(_pos, x) if p is not None]
        return spans[0].to(spans[-1]) if spans else None
    sp = getattr(x, "span", None)
    if isinstance(sp, Span) and sp.line:
        return sp
    return None
