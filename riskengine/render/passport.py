"""The passport as a document for people: a profile or a regional fill in Markdown or HTML.

The order of the fields is the order of the passport form in appendix 1 of the procedure
(seed ``003``), followed by the table of region-filled parameters (§4.2.22) and the analytical
note (appendix 2). Labels come in English or in Ukrainian; the Ukrainian labels are the seed's
field names, word for word. A document is first built as a list of blocks (headings, fields,
tables), then written out by one emitter per format, so Markdown and HTML never disagree.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TypeAlias

import attrs

from riskengine import classifiers
from riskengine import model as m
from riskengine.format import format_expr, format_literal, format_number
from riskengine.render.labels import LABELS, LANGUAGES, WORDS, label, lang_index

__all__ = [
    "FORMATS",
    "LANGUAGES",
    "Code",
    "Field",
    "Heading",
    "Paragraph",
    "Table",
    "expr_text",
    "label",
    "passport_blocks",
    "render",
    "render_fill",
    "render_profile",
]

#: Output formats of :func:`render`.
FORMATS: tuple[str, ...] = ("markdown", "html")

# ------------------------------------------------------------------------------------ blocks


@attrs.frozen
class Code:
    """Text shown as code: an expression, a field path, a list of values."""

    text: str


Part: TypeAlias = str | Code
Line: TypeAlias = tuple[Part, ...]
Value: TypeAlias = tuple[Line, ...]  # one or more lines


@attrs.frozen
class Heading:
    text: str
    level: int = 1


@attrs.frozen
class Paragraph:
    value: Value


@attrs.frozen
class Field:
    """A labelled passport field; ``bullets`` shows each line of the value as a list item."""

    label: str
    value: Value
    bullets: bool = False


@attrs.frozen
class Table:
    label: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]


Block: TypeAlias = Heading | Paragraph | Field | Table

# ------------------------------------------------------------------------------------ expressions


def expr_text(expr: m.Expr) -> str:
    """An expression as readable text, spelled exactly as ``riskengine fmt`` writes it."""
    return format_expr(expr)


# ------------------------------------------------------------------------------------ values


@attrs.frozen
class _Ctx:
    lang: str
    source: m.SourceFile | None
    #: the non-completion reasons (appendix 3, or extended by a catalogue's own reasons)
    reasons: classifiers.Classifier | None = None

    @property
    def i(self) -> int:
        return LANGUAGES.index(self.lang)

    def label(self, key: str) -> str:
        return LABELS[key][self.i]

    def word(self, key: str) -> str:
        return WORDS[key][self.i]

    def date_str(self, day: dt.date | None) -> str:
        # dt.date.min is the builder's stand-in for an invalid date (RE011).
        if day is None or day == dt.date.min:
            return self.word("none")
        return day.strftime("%d.%m.%Y") if self.lang == "uk" else day.isoformat()

    def date(self, day: dt.date | None) -> Value:
        return _text(self.date_str(day))

    def none(self) -> Value:
        return _text(self.word("none"))

    def days(self, n: int) -> str:
        if self.lang == "en":
            return f"{n} day" if n == 1 else f"{n} days"
        if n % 10 == 1 and n % 100 != 11:
            return f"{n} день"
        if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
            return f"{n} дні"
        return f"{n} днів"

    def classified(self, clf: classifiers.Classifier, code: str) -> str:
        entry = clf.get(code)
        if entry is None:
            return f"{code} ({self.word('unknown_code')})"
        return f"{code} — {entry.name_uk if self.lang == 'uk' else entry.name_en}"


def _text(*lines: str | None) -> Value:
    return tuple((line,) for line in lines if line is not None)


def _optional(value: str | None, ctx: _Ctx) -> Value:
    return _text(value) if value else ctx.none()


def _number(value: Decimal | None, ctx: _Ctx) -> Value:
    return _text(format_number(value)) if value is not None else ctx.none()


def _multiline(value: str | None, ctx: _Ctx) -> Value:
    if not value:
        return ctx.none()
    return tuple((line,) for line in value.split("\n"))


_ITEM_START = re.compile(r"\s*(?:[-*•–]\s|\d+[.)]\s)")


def _prose(value: str | None, ctx: _Ctx) -> Value:
    """Text written across source lines, re-flowed: the lines of a paragraph joined, paragraphs
    (after a blank line) and list items (``- …``, ``1. …``) kept apart."""
    if not value:
        return ctx.none()
    lines: list[str] = []
    blank = True
    for raw in value.split("\n"):
        line = raw.strip()
        if not line:
            if not blank:
                lines.append("")
            blank = True
            continue
        if blank or _ITEM_START.match(raw):
            lines.append(line)
        else:
            lines[-1] += " " + line
        blank = False
    while lines and not lines[-1]:
        lines.pop()
    return tuple((line,) for line in lines)


def _message(message: m.Message | None, ctx: _Ctx, default: Value | None = None) -> Value:
    """The inspector message, its placeholders shown as code: ``Check {item.hs_code}``."""
    if message is None:
        return default if default is not None else ctx.none()
    if not message.parts:
        return _multiline(message.text, ctx)
    lines: list[list[Part]] = [[]]
    for part in message.parts:
        match part:
            case str():
                first, *rest = part.split("\n")
                if first:
                    lines[-1].append(first)
                for more in rest:
                    lines.append([more] if more else [])
            case m.FieldRef(path=name) | m.Ref(name=name):
                lines[-1].append(Code("{" + name + "}"))
            case m.HistoryRef(kind=kind):
                lines[-1].append(Code("{" + kind.value + "}"))
    return tuple(tuple(line) for line in lines)


def _kind(control: m.Control, ctx: _Ctx) -> Value:
    match control.kind:
        case m.ControlKind.MANDATORY:
            return _text(ctx.word("mandatory"))
        case m.ControlKind.IF_NECESSARY:
            return _text(ctx.word("if_necessary"))
        case m.ControlKind.CONDITIONAL:
            if control.condition is None:
                return _text(ctx.word("conditional"))
            return ((ctx.word("conditional") + " ", Code(expr_text(control.condition))),)
    raise ValueError(f"unknown control kind {control.kind!r}")  # pragma: no cover


def _controls_table(key: str, controls: Sequence[m.Control], ctx: _Ctx) -> Table:
    rows = tuple(
        (
            _text(f"{c.code} {c.name}"),
            _kind(c, ctx),
            _text(format_number(c.threshold)),
        )
        for c in controls
    )
    headers = (ctx.label("control_code"), ctx.label("control_kind"), ctx.label("threshold"))
    return Table(ctx.label(key), headers, rows)


def _named(name: str, title: str | None) -> Line:
    return (f"{title} (", Code(name), ")") if title else (Code(name),)


def _refs(exprs: Iterable[m.Expr | None]) -> set[str]:
    """Every name the expressions use: indicators and named lists (after ``in``)."""
    return {
        node.name
        for expr in exprs
        if expr is not None
        for node in m.walk(expr)
        if isinstance(node, m.Ref)
    }


def _profile_exprs(profile: m.Profile) -> list[m.Expr | None]:
    exprs: list[m.Expr | None] = [profile.degree]
    for ind in profile.indicators:
        exprs += [ind.condition, ind.unless]
    exprs += [e.condition for e in profile.exceptions]
    exprs += [c.condition for c in profile.controls]
    return exprs


# ------------------------------------------------------------------------------------ profile


def _profile_blocks(p: m.Profile, ctx: _Ctx) -> list[Block]:
    L = ctx.label
    number = str(p.number) if p.number else ctx.word("draft")
    head = f"{L('title_profile')} {p.number} — {p.name}" if p.number else p.name
    blocks: list[Block] = [
        Heading(head, 1),
        Paragraph(_text(L("department"))),
        Field(L("approved"), ctx.date(p.approved)),
        Field(L("edition_approved"), ctx.date(p.edition_approved)),
        Paragraph(_text(L("rms"))),
        Field(L("in_force_from"), ctx.date(p.in_force.start if p.in_force else None)),
        Field(
            L("in_force_to"),
            ctx.date(p.in_force.end)
            if p.in_force and p.in_force.end
            else _text(ctx.word("open_end") if p.in_force else ctx.word("none")),
        ),
        Field(L("edition_in_force"), ctx.date(p.edition_in_force)),
        Field(L("number"), _text(number)),
        Field(L("name"), _text(p.name)),
        Field(L("filling"), _filling(p.filling, ctx)),
        Field(L("module"), _module(p.module, ctx)),
        Field(
            L("spheres"),
            tuple((ctx.classified(classifiers.spheres(), s),) for s in p.spheres) or ctx.none(),
            bullets=bool(p.spheres),
        ),
    ]
    # Indicators, each with its own exception, then the profile's exceptions.
    if p.indicators:
        rows = []
        for ind in p.indicators:
            value: list[Line] = [(Code(expr_text(ind.condition)),)]
            if ind.unless is not None:
                value.append((ctx.word("unless") + " ", Code(expr_text(ind.unless))))
            rows.append(((_named(ind.name, ind.title),), tuple(value)))
        headers = (L("indicator_name"), L("indicator_value"))
        blocks.append(Table(L("indicators"), headers, tuple(rows)))
    else:
        blocks.append(Field(L("indicators"), ctx.none()))
    if p.exceptions:
        lines = tuple(
            (*_named(e.name, e.title), ": ", Code(expr_text(e.condition))) for e in p.exceptions
        )
        blocks.append(Field(L("exceptions"), lines, bullets=True))
    else:
        blocks.append(Field(L("exceptions"), ctx.none()))
    lists = list(p.lists)
    if ctx.source is not None:
        used = _refs(_profile_exprs(p))
        own = {d.name for d in lists}
        lists = [d for d in ctx.source.lists if d.name in used and d.name not in own] + lists
    if lists:
        lines = tuple((Code(f"{d.name} = {format_literal(d.values)}"),) for d in lists)
        blocks.append(Field(L("lists"), lines, bullets=True))
    # The degree algorithm: the expression, periodic updates, the inspector message.
    if p.degree is not None:
        degree: Value = ((Code("degree = " + expr_text(p.degree)),), (ctx.word("clamped"),))
    else:
        degree = ctx.none()
    blocks.append(Field(L("algorithm"), degree))
    if p.updates is not None:
        updates = p.updates.how
        if p.updates.by:
            updates += f" ({ctx.word('by')}: {p.updates.by})"
        blocks.append(Field(L("updates"), _prose(updates, ctx)))
    blocks.append(Field(L("message"), _message(p.message, ctx)))
    if p.controls:
        blocks.append(_controls_table("controls", p.controls, ctx))
    else:
        blocks.append(Field(L("controls"), ctx.none()))
    blocks += _history_blocks(p.history, ctx)
    # The contact block, under the department's name as in the form.
    contact = p.contact
    blocks += [
        Paragraph(_text(L("department"))),
        Field(L("contact"), _optional(contact.person if contact else None, ctx)),
        Field(L("phone"), _optional(contact.phone if contact else None, ctx)),
        Field(L("fax"), _optional(contact.fax if contact else None, ctx)),
        Field(L("mailbox"), _optional(contact.mailbox if contact else None, ctx)),
        Field(L("review"), ctx.date(p.review)),
    ]
    if p.params or p.is_regional:
        blocks += _regional_blocks(p, ctx)
    if p.note is not None:
        blocks += _note_blocks(p, p.note, ctx)
    return blocks


def _filling(filling: m.Filling | None, ctx: _Ctx) -> Value:
    if filling is None:
        return ctx.none()
    if filling.method is m.FillingMethod.CENTRAL:
        if filling.unit:
            return _text(f"{ctx.word('central_by')} {filling.unit}")
        return _text(ctx.word("central"))
    text = f"{ctx.word('regional_by')} {filling.unit}" if filling.unit else ctx.word("regional")
    if filling.coordinators:
        text += f"; {ctx.word('coordinated_by')} {', '.join(filling.coordinators)}"
    return _text(text)


def _module(module: m.Module | None, ctx: _Ctx) -> Value:
    if module is None:
        return ctx.none()
    names = m.MODULES.get(module.name)
    text = names[ctx.i] if names else module.name
    if module.text:
        text += f": {module.text}"
    return _text(text)


def _history_blocks(history: m.History | None, ctx: _Ctx) -> list[Block]:
    L = ctx.label
    neg = history.negative if history else None
    pos = history.positive if history else None
    blocks: list[Block] = [
        Field(L("max_negative"), _number(neg.max if neg else None, ctx)),
        Field(L("max_positive"), _number(pos.max if pos else None, ctx)),
    ]
    if neg is not None and neg.reasons:
        rows = tuple(
            (
                _text(ctx.classified(ctx.reasons or classifiers.reasons(), r.code)),
                _text(format_number(r.coefficient)),
            )
            for r in neg.reasons
        )
        blocks.append(Table(L("reasons"), (L("reason_code"), L("coefficient")), rows))
    else:
        blocks.append(Field(L("reasons"), ctx.none()))
    if history is not None:
        subjects = ", ".join(
            s.field.path + (f"[:{s.prefix}]" if s.prefix is not None else "")
            for s in history.subjects
        )
        window = f"{ctx.days(history.window_days)} {ctx.word('before_date')}"
        blocks += [
            Field(L("history_subject"), ((Code(subjects),),)),
            Field(L("history_window"), _text(window)),
        ]
        if neg is not None:
            blocks.append(Field(L("per_case"), _text(format_number(neg.per_case))))
        if pos is not None:
            blocks.append(Field(L("per_clean"), _text(format_number(pos.step))))
    return blocks


def _param_type(param: m.Param, ctx: _Ctx) -> str:
    key = f"type_{param.type}"
    word = ctx.word(key) if key in WORDS else param.type
    return f"{ctx.word('list_of')} {word}" if param.is_list else word


def _regional_blocks(p: m.Profile, ctx: _Ctx) -> list[Block]:
    L = ctx.label
    blocks: list[Block] = []
    if p.params:
        rows = tuple(
            (
                ((Code("region." + q.name),),),
                _text(_param_type(q, ctx)),
                _optional(q.title, ctx),
            )
            for q in p.params
        )
        headers = (L("param"), L("param_type"), L("param_title"))
        blocks.append(Table(L("regional_table"), headers, rows))
    else:
        blocks.append(Field(L("regional_table"), ctx.none()))
    columns = [L("office")]
    columns += [q.title or q.name for q in p.params]
    text = "; ".join(columns) + "; " + ctx.word("fill_columns_tail")
    blocks.append(Field(L("fill_columns"), _text(text)))
    return blocks


def _note_blocks(p: m.Profile, note: m.Note, ctx: _Ctx) -> list[Block]:
    L = ctx.label
    return [
        Heading(L("note"), 2),
        Paragraph(_text(f"“{p.name}”")),
        Heading(L("note_description"), 3),
        Field(L("threat"), _prose(note.threat, ctx)),
        Field(L("basis"), _text(*note.basis) or ctx.none(), bullets=bool(note.basis)),
        Field(L("causes"), _prose(note.causes, ctx)),
        Field(L("damage"), _prose(note.damage, ctx)),
        Field(L("measures"), _prose(note.measures, ctx)),
    ]


# ------------------------------------------------------------------------------------ fill


def _fill_blocks(f: m.Fill, ctx: _Ctx) -> list[Block]:
    L = ctx.label
    profile = None
    if ctx.source is not None:
        profile = next((p for p in ctx.source.profiles if p.number == f.profile), None)
    head = f"{L('fill_title')} {f.profile}"
    if f.office:
        head += f" — {f.office}"
    if f.valid is not None:
        head += f", {ctx.date_str(f.valid.start)} .. {ctx.date_str(f.valid.end)}"
    office = " ".join(x for x in (f.office, f.office_name) if x) or None
    order: Value = ctx.none()
    if f.order is not None:
        template = ctx.word("order_of")
        order = _text(template.format(number=f.order.number, date=ctx.date_str(f.order.date)))
    blocks: list[Block] = [
        Heading(head, 1),
        Field(L("number"), _text(str(f.profile) + (f" — {profile.name}" if profile else ""))),
        Field(L("office"), _optional(office, ctx)),
        Field(L("order"), order),
        Field(L("valid_from"), ctx.date(f.valid.start if f.valid else None)),
        Field(L("valid_to"), ctx.date(f.valid.end if f.valid else None)),
    ]
    if f.values:
        titles = {q.name: q.title for q in profile.params} if profile else {}
        rows = tuple(
            (
                (_named("region." + v.name, titles.get(v.name)),),
                ((Code(format_literal(v.value)),),),
            )
            for v in f.values
        )
        blocks.append(Table(L("values"), (L("param"), L("value")), rows))
    else:
        blocks.append(Field(L("values"), ctx.none()))
    as_profile = _text(f"{ctx.word('none')} ({ctx.word('as_profile')})")
    blocks.append(Field(L("fill_message"), _message(f.message, ctx, as_profile)))
    if f.controls:
        blocks.append(_controls_table("fill_controls", f.controls, ctx))
    else:
        blocks.append(Field(L("fill_controls"), as_profile))
    return blocks


def passport_blocks(
    item: m.Profile | m.Fill,
    lang: str = "en",
    source: m.SourceFile | None = None,
    reasons: classifiers.Classifier | None = None,
) -> list[Block]:
    """The passport of a profile (or a regional fill) as blocks, in the order of the form.

    ``source`` is the file the item comes from: it supplies the file-level lists a profile uses
    and, for a fill, its profile's name and parameter titles. ``reasons``: the non-completion
    reasons the names come from (a catalogue's ``reasons``; default appendix 3).
    """
    ctx = _Ctx(LANGUAGES[lang_index(lang)], source, reasons)
    if isinstance(item, m.Profile):
        return _profile_blocks(item, ctx)
    return _fill_blocks(item, ctx)


# ------------------------------------------------------------------------------------ Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
# What would start a block when it begins a line: a heading, a list item, a setext underline.
_MD_BLOCK_START = re.compile(r"^(\s*)(?:([#+\-=])|(\d+)([.)]))")


def _md_block_start(mt: re.Match[str]) -> str:
    indent, mark, digits, dot = mt.groups()
    return f"{indent}\\{mark}" if mark else f"{indent}{digits}\\{dot}"


def _md_text(text: str, at_start: bool = False) -> str:
    """Plain text as Markdown: punctuation escaped, so a name never becomes markup or HTML."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_BLOCK_START.sub(_md_block_start, text) if at_start else text


def _md_code(text: str, in_table: bool) -> str:
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_line(line: Line, *, in_table: bool = False, at_start: bool = False) -> str:
    return "".join(
        _md_code(p.text, in_table)
        if isinstance(p, Code)
        else _md_text(p, at_start=at_start and i == 0)
        for i, p in enumerate(line)
    )


def _md_value(value: Value, *, in_table: bool = False, at_start: bool = False) -> str:
    if in_table:
        return "<br>".join(_md_line(line, in_table=True) for line in value)
    return "  \n".join(_md_line(line, at_start=at_start or i > 0) for i, line in enumerate(value))


def _markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        match block:
            case Heading(text=text, level=level):
                out.append("#" * level + " " + _md_text(text))
            case Paragraph(value=value):
                out.append(_md_value(value, at_start=True))
            case Field(label=lab, value=value, bullets=bullets):
                head = f"**{_md_text(lab)}:**"
                if bullets:
                    out.append(
                        head + "\n\n" + "\n".join("- " + _md_line(x, at_start=True) for x in value)
                    )
                elif len(value) > 1:
                    out.append(head + "\n\n" + _md_value(value, at_start=True))
                else:
                    out.append(head + " " + _md_value(value))
            case Table(label=lab, headers=headers, rows=rows):
                lines = [
                    f"**{_md_text(lab)}:**",
                    "",
                    "| " + " | ".join(_md_text(h) for h in headers) + " |",
                    "|" + "---|" * len(headers),
                ]
                for row in rows:
                    cells = (_md_value(cell, in_table=True) or " " for cell in row)
                    lines.append("| " + " | ".join(cells) + " |")
                out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


# ------------------------------------------------------------------------------------ HTML

_CSS = """
body { font-family: "DejaVu Serif", "Times New Roman", serif; color: #111; background: #fff;
  max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.4rem; border-bottom: 2px solid #333; padding-bottom: .3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; }
.field { margin: .35rem 0; }
.label { font-weight: bold; }
.paragraph { margin: .8rem 0; font-style: italic; }
.value.multi, ul { margin: .2rem 0 .2rem 1.5rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .8rem; }
th, td { border: 1px solid #555; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: .92em;
  white-space: pre-wrap; word-break: break-word; }
section.passport + section.passport { margin-top: 3rem; border-top: 1px dashed #999; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  section.passport + section.passport { break-before: page; border-top: none; }
  table, tr { break-inside: avoid; }
  th { background: none; }
}
""".strip()


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_line(line: Line) -> str:
    return "".join(f"<code>{_h(p.text)}</code>" if isinstance(p, Code) else _h(p) for p in line)


def _html_value(value: Value) -> str:
    return "<br>".join(_html_line(line) for line in value)


def _html_blocks(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        match block:
            case Heading(text=text, level=level):
                out.append(f"<h{level}>{_h(text)}</h{level}>")
            case Paragraph(value=value):
                out.append(f'<p class="paragraph">{_html_value(value)}</p>')
            case Field(label=lab, value=value, bullets=bullets):
                head = f'<span class="label">{_h(lab)}:</span>'
                if bullets:
                    items = "".join(f"<li>{_html_line(x)}</li>" for x in value)
                    out.append(f'<div class="field">{head}<ul>{items}</ul></div>')
                elif len(value) > 1:
                    body = _html_value(value)
                    out.append(
                        f'<div class="field">{head}<div class="value multi">{body}</div></div>'
                    )
                else:
                    body = _html_value(value)
                    out.append(f'<div class="field">{head} <span class="value">{body}</span></div>')
            case Table(label=lab, headers=headers, rows=rows):
                head_row = "".join(f"<th>{_h(x)}</th>" for x in headers)
                body_rows = "".join(
                    "<tr>" + "".join(f"<td>{_html_value(c)}</td>" for c in row) + "</tr>"
                    for row in rows
                )
                out.append(
                    f'<div class="field"><span class="label">{_h(lab)}:</span></div>\n'
                    f"<table><thead><tr>{head_row}</tr></thead><tbody>{body_rows}</tbody></table>"
                )
    return "\n".join(out)


def _html_document(sections: Sequence[list[Block]], lang: str) -> str:
    first = next((b for s in sections for b in s if isinstance(b, Heading)), None)
    title = first.text if first else "riskengine"
    body = "\n".join(
        f'<section class="passport">\n{_html_blocks(blocks)}\n</section>' for blocks in sections
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="riskengine">\n<title>{_h(title)}</title>\n'
        f"<style>\n{_CSS}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------------ entry points


def render(
    items: Sequence[m.Profile | m.Fill],
    *,
    fmt: str = "markdown",
    lang: str = "en",
    source: m.SourceFile | None = None,
    reasons: classifiers.Classifier | None = None,
) -> str:
    """Render profiles and fills as one document: ``fmt`` "markdown" or "html", ``lang`` "en"
    or "uk". HTML is a self-contained page (inline CSS, no scripts, nothing fetched), printable,
    with every text from the profile escaped. ``reasons`` names the non-completion reasons (a
    catalogue's, with a service's own; default appendix 3)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    sections = [passport_blocks(item, lang, source, reasons) for item in items]
    if fmt == "html":
        return _html_document(sections, lang)
    return "\n---\n\n".join(_markdown(blocks) for blocks in sections)


def render_profile(
    profile: m.Profile,
    *,
    fmt: str = "markdown",
    lang: str = "en",
    source: m.SourceFile | None = None,
) -> str:
    """The passport of one profile (see :func:`render`)."""
    return render([profile], fmt=fmt, lang=lang, source=source)


def render_fill(
    fill: m.Fill,
    *,
    fmt: str = "markdown",
    lang: str = "en",
    source: m.SourceFile | None = None,
) -> str:
    """One regional office's fill of a regional profile (see :func:`render`)."""
    return render([fill], fmt=fmt, lang=lang, source=source)
