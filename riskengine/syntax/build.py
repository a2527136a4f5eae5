"""Tree → model: the lark transformer that turns a parse tree into frozen attrs nodes with spans."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from decimal import Decimal
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from riskengine import model as m
from riskengine.diagnostics import Diagnostic, Span, error

_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(.)", re.S)
_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER_NAME_RE = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*\Z")


class Builder(Transformer[Token, Any]):
    """Builds the model of one file. Problems found while building are collected in
    ``diagnostics``; the builder never raises on bad input."""

    def __init__(self, file: str):
        super().__init__(visit_tokens=False)
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    # ------------------------------------------------------------------ helpers
    def span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 0, 0, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

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

    # ------------------------------------------------------------------ file
    @v_args(meta=True)
    def start(self, meta: Meta, items: list[Any]) -> dict[str, Any]:
        return {"items": tuple(items)}

    # ------------------------------------------------------------------ profile
    @v_args(meta=True)
    def numbered(self, meta: Meta, c: list[Token]) -> m.ProfileNumber:
        return m.ProfileNumber.parse(str(c[0]), self.tspan(c[0]))

    @v_args(meta=True)
    def draft(self, meta: Meta, c: list[Any]) -> None:
        return None

    _SINGLE = (
        "approved", "edition_approved", "in_force", "edition_in_force", "filling", "module",
        "spheres", "review", "contact", "updates", "degree", "message", "history", "note",
        "params",
    )  # fmt: skip
    _MULTI = ("lists", "indicators", "exceptions", "controls")

    def _collect(self, stmts: list[tuple[str, Any, Span]], what: str) -> tuple[dict[str, Any],
                                                                               dict[str, Span]]:
        fields: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        multi: dict[str, list[Any]] = {}
        for key, value, span in stmts:
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

    @v_args(meta=True)
    def profile(self, meta: Meta, c: list[Any]) -> m.Profile:
        number, name_tok, *stmts = c
        fields, spans = self._collect(stmts, "profile")
        spans["name"] = self.tspan(name_tok)
        if number is not None:
            spans["number"] = number.span
        return m.Profile(
            number=number, name=self.text_of(name_tok), span=self.span(meta), spans=spans, **fields
        )

    @v_args(meta=True)
    def approved(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        return ("approved", self.date_of(c[0]), self.span(meta))

    @v_args(meta=True)
    def edition_approved(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        return ("edition_approved", self.date_of(c[0]), self.span(meta))

    @v_args(meta=True)
    def edition_in_force(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        return ("edition_in_force", self.date_of(c[0]), self.span(meta))

    @v_args(meta=True)
    def review(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        return ("review", self.date_of(c[0]), self.span(meta))

    @v_args(meta=True)
    def in_force(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        start = self.date_of(c[0])  # type: ignore[arg-type]
        end = self.date_of(c[1]) if c[1] is not None else None
        return ("in_force", m.Validity(start, end, span=span), span)

    @v_args(meta=True)
    def filling_central(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        return (
            "filling",
            m.Filling(m.FillingMethod.CENTRAL, self.opt_string(c[0]), span=span),
            span,
        )

    @v_args(meta=True)
    def filling_regional(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        unit, *coordinators = c
        coords = tuple(self.text_of(t) for t in coordinators if t is not None)
        return (
            "filling",
            m.Filling(m.FillingMethod.REGIONAL, self.opt_string(unit), coords, span=span),
            span,
        )

    @v_args(meta=True)
    def module(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        name = c[0]
        assert name is not None
        mod = m.Module(str(name), self.opt_string(c[1]), span=self.tspan(name))
        return ("module", mod, span)

    @v_args(meta=True)
    def spheres(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        return ("spheres", tuple(str(t) for t in c), self.span(meta))

    @v_args(meta=True)
    def contact(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        person, phone, fax, mailbox = (self.opt_string(t) for t in c)
        assert person is not None
        return ("contact", m.Contact(person, phone, fax, mailbox, span=span), span)

    @v_args(meta=True)
    def updates(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        how = self.opt_string(c[0])
        assert how is not None
        return ("updates", m.Updates(how, self.opt_string(c[1]), span=span), span)

    @v_args(meta=True)
    def list_def(self, meta: Meta, c: list[Any]) -> Any:
        span = self.span(meta)
        ld = m.ListDef(str(c[0]), c[1], span=span)
        return ("lists", [ld], span)

    @v_args(meta=True)
    def regional(self, meta: Meta, c: list[m.Param]) -> tuple[str, Any, Span]:
        return ("params", tuple(c), self.span(meta))

    @v_args(meta=True)
    def param(self, meta: Meta, c: list[Any]) -> m.Param:
        name, (type_name, is_list), title = c
        return m.Param(str(name), type_name, is_list, self.opt_string(title), span=self.span(meta))

    def scalar_type(self, c: list[Token]) -> tuple[str, bool]:
        return (str(c[0]), False)

    def list_type(self, c: list[Token]) -> tuple[str, bool]:
        return (str(c[0]), True)

    @v_args(meta=True)
    def indicators(self, meta: Meta, c: list[m.Indicator]) -> tuple[str, Any, Span]:
        return ("indicators", list(c), self.span(meta))

    @v_args(meta=True)
    def indicator(self, meta: Meta, c: list[Any]) -> m.Indicator:
        name, title, cond, unless = c
        return m.Indicator(str(name), self.opt_string(title), cond, unless, span=self.span(meta))

    @v_args(meta=True)
    def exceptions(self, meta: Meta, c: list[m.ProfileException]) -> tuple[str, Any, Span]:
        return ("exceptions", list(c), self.span(meta))

    @v_args(meta=True)
    def exception(self, meta: Meta, c: list[Any]) -> m.ProfileException:
        name, title, cond = c
        return m.ProfileException(str(name), self.opt_string(title), cond, span=self.span(meta))

    @v_args(meta=True)
    def degree(self, meta: Meta, c: list[Any]) -> tuple[str, Any, Span]:
        return ("degree", c[0], self.span(meta))

    @v_args(meta=True)
    def message(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        tok = c[0]
        text = self.text_of(tok)
        return ("message", m.Message(text, self.placeholders(text, tok), span=span), span)

    def placeholders(self, text: str, tok: Token) -> tuple[str | m.FieldRef | m.Ref |
                                                           m.HistoryRef, ...]:
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
                if buf:
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

    @v_args(meta=True)
    def controls(self, meta: Meta, c: list[m.Control]) -> tuple[str, Any, Span]:
        return ("controls", list(c), self.span(meta))

    @v_args(meta=True)
    def control(self, meta: Meta, c: list[Any]) -> m.Control:
        code, name, kind, cond, threshold = c
        if cond is not None and kind is m.ControlKind.MANDATORY:
            kind = m.ControlKind.CONDITIONAL
        return m.Control(
            str(code), self.text_of(name), kind, Decimal(str(threshold)), cond,
            span=self.span(meta),
        )  # fmt: skip

    def mandatory(self, c: list[Any]) -> m.ControlKind:
        return m.ControlKind.MANDATORY

    def if_necessary(self, c: list[Any]) -> m.ControlKind:
        return m.ControlKind.IF_NECESSARY

    @v_args(meta=True)
    def history(self, meta: Meta, c: list[Any]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        *subjects, window, negative, positive = c
        hist = m.History(
            tuple(subjects), int(str(window).split(".")[0]), negative, positive, span=span
        )
        if "." in str(window):
            self.diagnostics.append(
                error("RE014", "the history window is a whole number of days", self.tspan(window))
            )
        return ("history", hist, span)

    @v_args(meta=True)
    def subject(self, meta: Meta, c: list[Any]) -> m.HistorySubject:
        field, prefix = c
        n = None
        if prefix is not None:
            if "." in str(prefix):
                self.diagnostics.append(
                    error("RE014", "a prefix length is a whole number", self.tspan(prefix))
                )
            n = int(str(prefix).split(".")[0])
        return m.HistorySubject(field, n, span=self.span(meta))

    @v_args(meta=True)
    def negative(self, meta: Meta, c: list[Any]) -> m.NegativeHistory:
        mx, per_case, *reasons = c
        return m.NegativeHistory(
            Decimal(str(mx)),
            tuple(reasons),
            Decimal(str(per_case)) if per_case is not None else Decimal(1),
            span=self.span(meta),
        )

    @v_args(meta=True)
    def reason(self, meta: Meta, c: list[Token]) -> m.ReasonCoefficient:
        return m.ReasonCoefficient(str(c[0]), Decimal(str(c[1])), span=self.span(meta))

    @v_args(meta=True)
    def positive(self, meta: Meta, c: list[Token]) -> m.PositiveHistory:
        return m.PositiveHistory(Decimal(str(c[0])), Decimal(str(c[1])), span=self.span(meta))

    @v_args(meta=True)
    def note(self, meta: Meta, c: list[tuple[str, list[str], Span]]) -> tuple[str, Any, Span]:
        span = self.span(meta)
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

    @v_args(meta=True)
    def note_section(self, meta: Meta, c: list[Token]) -> tuple[str, list[str], Span]:
        return (str(c[0]), [self.text_of(t) for t in c[1:]], self.span(meta))

    # ------------------------------------------------------------------ fill
    @v_args(meta=True)
    def fill(self, meta: Meta, c: list[Any]) -> m.Fill:
        number_tok, *stmts = c
        number = m.ProfileNumber.parse(str(number_tok), self.tspan(number_tok))
        fields, spans = self._collect(stmts, "fill")
        spans["profile"] = number.span
        office = fields.pop("office", None)
        if office is not None:
            fields["office"], fields["office_name"] = office
        if "values" in fields:
            fields["values"] = tuple(fields["values"])
        return m.Fill(profile=number, span=self.span(meta), spans=spans, **fields)

    @v_args(meta=True)
    def office(self, meta: Meta, c: list[Token | None]) -> tuple[str, Any, Span]:
        assert c[0] is not None
        return ("office", (str(c[0]), self.opt_string(c[1])), self.span(meta))

    @v_args(meta=True)
    def order(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        return ("order", m.Order(self.text_of(c[0]), self.date_of(c[1]), span=span), span)

    @v_args(meta=True)
    def valid(self, meta: Meta, c: list[Token]) -> tuple[str, Any, Span]:
        span = self.span(meta)
        return ("valid", m.Validity(self.date_of(c[0]), self.date_of(c[1]), span=span), span)

    @v_args(meta=True)
    def values(self, meta: Meta, c: list[m.ParamValue]) -> tuple[str, Any, Span]:
        return ("values", list(c), self.span(meta))

    @v_args(meta=True)
    def value(self, meta: Meta, c: list[Any]) -> m.ParamValue:
        return m.ParamValue(str(c[0]), c[1], span=self.span(meta))

    # ------------------------------------------------------------------ expressions
    @v_args(meta=True)
    def cond(self, meta: Meta, c: list[Any]) -> m.Cond:
        return m.Cond(c[0], c[1], c[2], span=self.span(meta))

    @v_args(meta=True)
    def or_(self, meta: Meta, c: list[Any]) -> m.Or:
        return m.Or(c[0], c[1], span=self.span(meta))

    @v_args(meta=True)
    def and_(self, meta: Meta, c: list[Any]) -> m.And:
        return m.And(c[0], c[1], span=self.span(meta))

    @v_args(meta=True)
    def not_(self, meta: Meta, c: list[Any]) -> m.Not:
        return m.Not(c[0], span=self.span(meta))

    @v_args(meta=True)
    def compare(self, meta: Meta, c: list[Any]) -> m.Compare:
        return m.Compare(str(c[1]), c[0], c[2], span=self.span(meta))

    @v_args(meta=True)
    def in_list(self, meta: Meta, c: list[Any]) -> m.InList:
        return m.InList(c[0], c[1], False, span=self.span(meta))

    @v_args(meta=True)
    def not_in_list(self, meta: Meta, c: list[Any]) -> m.InList:
        return m.InList(c[0], c[1], True, span=self.span(meta))

    @v_args(meta=True)
    def between(self, meta: Meta, c: list[Any]) -> m.Between:
        return m.Between(c[0], c[1], c[2], span=self.span(meta))

    @v_args(meta=True)
    def starts_with(self, meta: Meta, c: list[Any]) -> m.StartsWith:
        return m.StartsWith(c[0], c[1], span=self.span(meta))

    @v_args(meta=True)
    def matches(self, meta: Meta, c: list[Any]) -> m.Matches:
        pattern = self.text_of(c[1])
        try:
            re.compile(pattern)
        except re.error as exc:
            self.diagnostics.append(
                error("RE015", f"bad pattern {c[1]}: {exc}", self.tspan(c[1]))
            )
        return m.Matches(c[0], pattern, span=self.span(meta))

    @v_args(meta=True)
    def is_missing(self, meta: Meta, c: list[Any]) -> m.IsMissing:
        return m.IsMissing(c[0], False, span=self.span(meta))

    @v_args(meta=True)
    def is_present(self, meta: Meta, c: list[Any]) -> m.IsMissing:
        return m.IsMissing(c[0], True, span=self.span(meta))

    @v_args(meta=True)
    def arith(self, meta: Meta, c: list[Any]) -> m.Arith:
        return m.Arith(str(c[1]), c[0], c[2], span=self.span(meta))

    @v_args(meta=True)
    def neg(self, meta: Meta, c: list[Any]) -> m.Expr:
        operand = c[0]
        if isinstance(operand, m.NumberLit):  # fold -1 into a literal
            return m.NumberLit(-operand.value, span=self.span(meta))
        return m.Neg(operand, span=self.span(meta))

    @v_args(meta=True)
    def ref(self, meta: Meta, c: list[Token]) -> m.Ref:
        return m.Ref(str(c[0]), span=self.tspan(c[0]))

    @v_args(meta=True)
    def negative_history(self, meta: Meta, c: list[Any]) -> m.HistoryRef:
        return m.HistoryRef(m.HistoryKind.NEGATIVE, span=self.span(meta))

    @v_args(meta=True)
    def positive_history(self, meta: Meta, c: list[Any]) -> m.HistoryRef:
        return m.HistoryRef(m.HistoryKind.POSITIVE, span=self.span(meta))

    @v_args(meta=True)
    def call(self, meta: Meta, c: list[Any]) -> m.Call:
        return m.Call(str(c[0]), tuple(c[1:]), span=self.span(meta))

    @v_args(meta=True)
    def field(self, meta: Meta, c: list[Token]) -> m.FieldRef:
        return m.FieldRef(".".join(str(t) for t in c), span=self.span(meta))

    @v_args(meta=True)
    def number(self, meta: Meta, c: list[Token]) -> m.NumberLit:
        return m.NumberLit(Decimal(str(c[0])), span=self.tspan(c[0]))

    @v_args(meta=True)
    def string(self, meta: Meta, c: list[Token]) -> m.StringLit:
        return m.StringLit(self.text_of(c[0]), span=self.tspan(c[0]))

    @v_args(meta=True)
    def date(self, meta: Meta, c: list[Token]) -> m.DateLit:
        return m.DateLit(self.date_of(c[0]), span=self.tspan(c[0]))

    @v_args(meta=True)
    def true(self, meta: Meta, c: list[Any]) -> m.BoolLit:
        return m.BoolLit(True, span=self.span(meta))

    @v_args(meta=True)
    def false(self, meta: Meta, c: list[Any]) -> m.BoolLit:
        return m.BoolLit(False, span=self.span(meta))

    @v_args(meta=True)
    def list_value(self, meta: Meta, c: list[Any]) -> m.ListLit:
        return c[0]  # type: ignore[no-any-return]

    @v_args(meta=True)
    def list_ref(self, meta: Meta, c: list[Token]) -> m.Ref:
        return m.Ref(str(c[0]), span=self.tspan(c[0]))

    @v_args(meta=True)
    def list_param(self, meta: Meta, c: list[m.FieldRef]) -> m.FieldRef:
        return c[0]

    @v_args(meta=True)
    def list_literal(self, meta: Meta, c: list[Any]) -> m.ListLit:
        return m.ListLit(tuple(x for x in c if x is not None), span=self.span(meta))


_STATEMENT_WORDS = {
    "edition_approved": "edition approved",
    "in_force": "in force",
    "edition_in_force": "edition in force",
    "review": "review by",
    "params": "regional",
}
