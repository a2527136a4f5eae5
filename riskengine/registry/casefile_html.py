"""A profile's case file (§7) as one self-contained HTML page: inline CSS, no script, nothing
fetched, printable (A4 portrait).

It shows what the Markdown case file (:mod:`riskengine.registry.casefile`) shows, read from the
same :class:`~riskengine.registry.casefile.CaseFile`: the profile, its editions with the text of
the first and a diff for each later one (and for a clarified current text), the commission's
decisions, the clarifications, the suspensions and resumptions, the regional fills with their
orders, late flags and texts, the evidence of each submission and the profile's log entries
(with their details). Diffs are unified, with line numbers, a ``+``/``-`` marker on every
changed line and colour, so that they read on screen and in black and white on paper. Every text
from the store is escaped (names, reasons and messages are user input).
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
import json
import re
from collections.abc import Iterable, Sequence
from importlib import metadata

import sqlalchemy as sa

from riskengine.registry.base import working_days_after
from riskengine.registry.casefile import CaseFile, EditionEntry, read_case_file

__all__ = ["case_file_html", "diff_rows", "render_html"]

NONE = "—"

# Control characters (a NUL or an ESC in a reason) are shown as Unicode control pictures, as the
# command line shows them; HTML would drop or mangle them otherwise.
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(32) if chr(c) not in "\t\n"} | {0x7F: 0x2421}

_CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #111; background: #fff;
  max-width: 72rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.4; font-size: 15px; }
h1 { font-size: 1.5rem; border-bottom: 2px solid #333; padding-bottom: .3rem;
  overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #999; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; overflow-wrap: anywhere; }
h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
nav { font-size: .92em; }
nav a { margin-right: .9rem; white-space: nowrap; }
.table-box { max-width: 100%; overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; margin: 0; }
table.rows { width: 100%; }
th, td { border: 1px solid #888; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td { overflow-wrap: break-word; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td.day, .key, .flag, .nowrap { white-space: nowrap; }
table.meta th { background: none; font-weight: normal; color: #444; width: 12rem; }
.none { color: #444; font-style: italic; }
.note { color: #444; font-size: .92em; }
code, .listing td.code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: .88em; }
code { white-space: break-spaces; overflow-wrap: anywhere; }
.flag { display: inline-block; padding: 0 .35rem; border-radius: 3px; background: #b00020;
  color: #fff; font-weight: bold; font-size: .85em; line-height: 1.5; }
.listing { width: 100%; border: 1px solid #888; table-layout: fixed; }
.listing td { border: none; padding: 0 .4rem; }
.listing col.ln { width: 3.4em; }
.listing col.mark { width: 1.6em; }
.listing td.ln { color: #666; text-align: right; font-size: .8em; padding-top: .12em;
  font-variant-numeric: tabular-nums; user-select: none; }
.listing td.mark { font-family: "DejaVu Sans Mono", Consolas, monospace; font-weight: bold;
  text-align: center; user-select: none; }
.listing td.code { white-space: pre-wrap; overflow-wrap: anywhere; }
.listing tr.add td { background: #e3f6e3; }
.listing tr.del td { background: #fbe4e4; }
.listing tr.add td.mark { color: #0a5d0a; }
.listing tr.del td.mark { color: #9a0010; }
.listing tr.hunk td { background: #eef2f8; color: #335; font-size: .85em; padding: .1rem .4rem; }
.listing .chg { font-weight: bold; text-decoration: underline; }
.listing tr.add .chg { background: #b9e8b9; }
.listing tr.del .chg { background: #f3b7b7; }
.listing caption { caption-side: top; text-align: left; font-size: .9em; color: #333;
  padding: .15rem 0; }
@media (max-width: 720px) {
  body { font-size: 13px; padding: 0 .6rem; }
  th, td { padding: .15rem .3rem; }
}
@page { size: A4 portrait; margin: 14mm 12mm 16mm; }
@media print {
  body { margin: 0; padding: 0; max-width: none; font-size: 8.5pt; line-height: 1.25; }
  h1 { font-size: 15pt; margin: 0 0 .4rem; }
  h2 { font-size: 12pt; margin: 1rem 0 .4rem; }
  h3 { font-size: 10pt; margin: .7rem 0 .3rem; }
  h1, h2, h3 { break-inside: avoid; }
  nav { display: none; }
  .table-box { overflow: visible; margin: .3rem 0 .6rem; }
  th, td { padding: .1rem .35rem; }
  tr, table.meta { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: none; }
  .flag { background: none; color: #000; border: 1px solid #000; }
  .listing tr.add td, .listing tr.del td, .listing tr.hunk td, .listing .chg {
    -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
""".strip()


def _h(value: object) -> str:
    """A value as HTML text: escaped (quotes too), control characters made visible."""
    return html.escape(str(value), quote=True).translate(_CONTROL_PICTURES)


def _key(number: str) -> str:
    """A profile or edition number, kept on one line."""
    return f'<span class="key">{_h(number)}</span>'


def _d(day: dt.date | str) -> str:
    """A date (or a time), never broken over lines."""
    return f'<span class="nowrap">{_h(day)}</span>'


def _version() -> str:
    try:
        return metadata.version("riskengine")
    except metadata.PackageNotFoundError:  # pragma: no cover - an unpacked tree
        return "unknown"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of already-escaped cells (a cell the code wrote as ``<td …>…</td>`` is used as
    it is: escaped text never starts with ``<``), in its own box: on a narrow screen the box
    scrolls, never the page."""
    head = "".join(f"<th>{_h(x)}</th>" for x in headers)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return (
        f'<div class="table-box"><table class="rows"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _none(what: str = "None.") -> str:
    return f'<p class="none">{_h(what)}</p>'


# ------------------------------------------------------------------------------------ diffs


_TOKEN = re.compile(r"\w+|\s+|.")


def _changed_spans(a: str, b: str) -> tuple[str, str]:
    """Two versions of a line with the words and signs that differ marked
    (``<span class="chg">``)."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    out_a: list[str] = []
    out_b: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        left, right = _h("".join(ta[i1:i2])), _h("".join(tb[j1:j2]))
        if tag == "equal":
            out_a.append(left)
            out_b.append(right)
            continue
        if left:
            out_a.append(f'<span class="chg">{left}</span>')
        if right:
            out_b.append(f'<span class="chg">{right}</span>')
    return "".join(out_a), "".join(out_b)


def _row(kind: str, old: int | None, new: int | None, mark: str, code: str) -> str:
    cls = f' class="{kind}"' if kind else ""
    return (
        f'<tr{cls}><td class="ln">{"" if old is None else old}</td>'
        f'<td class="ln">{"" if new is None else new}</td>'
        f'<td class="mark">{mark}</td><td class="code">{code}</td></tr>'
    )


def _span(start: int, count: int) -> str:
    """A hunk range as ``unified_diff`` writes it (line numbers from 1)."""
    first = start + 1 if count else start
    return f"{first}" if count == 1 else f"{first},{count}"


def diff_rows(before: str, after: str, context: int = 3) -> list[str]:
    """The rows of a unified diff of two texts as HTML table rows: a hunk header
    (``@@ -10,7 +10,7 @@``), then each line with its old and new line numbers and its marker:
    ``-`` removed, ``+`` added, blank for context. A changed line's changed characters are
    marked. Empty when the texts are equal."""
    a, b = before.splitlines(), after.splitlines()
    rows: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        header = f"@@ -{_span(i1, i2 - i1)} +{_span(j1, j2 - j1)} @@"
        rows.append(f'<tr class="hunk"><td colspan="4">{header}</td></tr>')
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                rows += [
                    _row("", x1 + k + 1, y1 + k + 1, "", _h(a[x1 + k])) for k in range(x2 - x1)
                ]
                continue
            old = [_h(line) for line in a[x1:x2]]
            new = [_h(line) for line in b[y1:y2]]
            if tag == "replace":
                for k in range(min(len(old), len(new))):
                    old[k], new[k] = _changed_spans(a[x1 + k], b[y1 + k])
            rows += [_row("del", x1 + k + 1, None, "-", line) for k, line in enumerate(old)]
            rows += [_row("add", None, y1 + k + 1, "+", line) for k, line in enumerate(new)]
    return rows


_COLS = '<colgroup><col class="ln"><col class="ln"><col class="mark"><col></colgroup>'


def _diff(before: str, after: str, old_name: str, new_name: str) -> str:
    rows = diff_rows(before, after)
    if not rows:
        return _none(f"The text of {new_name} is the same as that of {old_name}.")
    removed = sum(1 for r in rows if r.startswith('<tr class="del"'))
    added = sum(1 for r in rows if r.startswith('<tr class="add"'))
    caption = (
        f"--- {old_name}  +++ {new_name}: {added} line{'s' if added != 1 else ''} added (+), "
        f"{removed} removed (-)"
    )
    return (
        f'<table class="listing diff">{_COLS}<caption>{_h(caption)}</caption>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _listing(text: str, name: str) -> str:
    """A whole text with its line numbers."""
    rows = "".join(
        f'<tr><td class="ln">{n}</td><td class="code">{_h(line)}</td></tr>'
        for n, line in enumerate(text.splitlines(), start=1)
    )
    return (
        '<table class="listing text"><colgroup><col class="ln"><col></colgroup>'
        f"<caption>{_h(name)}</caption><tbody>{rows}</tbody></table>"
    )


# ------------------------------------------------------------------------------------ sections


def _header(cf: CaseFile, generated: dt.datetime) -> str:
    current = next((e for e in reversed(cf.editions) if not e.withdrawn), None)
    rows = [
        ("Profile", _key(cf.key)),
        ("Name", _h(cf.name)),
        ("State", _h(cf.state)),
        ("Latest edition", _key(current.number) if current else _h(NONE)),
        ("Editions", str(len(cf.editions))),
        ("Log entries", str(len(cf.log))),
        (
            "Generated",
            _h(
                f"{generated.isoformat(sep=' ', timespec='seconds')} UTC by riskengine {_version()}"
            ),
        ),
    ]
    meta = "".join(f"<tr><th>{_h(k)}</th><td>{v}</td></tr>" for k, v in rows)
    nav = " ".join(
        f'<a href="#{anchor}">{_h(title)}</a>' for anchor, title in _SECTIONS if anchor != "top"
    )
    return (
        f'<header id="top">\n<h1>Case file of {_key(cf.key)}: {_h(cf.name)}</h1>\n'
        f'<div class="table-box"><table class="meta rows">{meta}</table></div>\n'
        f"<nav>{nav}</nav>\n</header>"
    )


_SECTIONS = (
    ("top", "Profile"),
    ("editions", "Editions"),
    ("decisions", "Commission decisions"),
    ("clarifications", "Clarifications"),
    ("suspensions", "Suspensions and resumptions"),
    ("fills", "Regional fills"),
    ("reviews", "Effectiveness reviews"),
    ("evidence", "Evidence of the submissions"),
    ("log", "Log"),
)


def _section(anchor: str, body: str) -> str:
    title = dict(_SECTIONS)[anchor]
    return f'<section id="{anchor}">\n<h2>{_h(title)}</h2>\n{body}\n</section>'


def _in_force(e: EditionEntry) -> str:
    end = _d(e.in_force_to) if e.in_force_to else "open"
    return f"{_d(e.in_force_from)} .. {end}" + (" (withdrawn)" if e.withdrawn else "")


def _editions(cf: CaseFile) -> str:
    if not cf.editions:
        return _section("editions", _none("None: the profile has not been approved."))
    out = [
        _table(
            ("edition", "approved", "in force", "clarified", "SHA-256 of the approved text"),
            (
                (
                    f'<td class="day">{_key(e.number)}</td>',
                    f'<td class="day">{_h(e.approved_on)}</td>',
                    _in_force(e),
                    "yes" if e.current != e.text else "no",
                    f"<code>{_h(e.sha256)}</code>",
                )
                for e in cf.editions
            ),
        )
    ]
    previous: EditionEntry | None = None
    for e in cf.editions:
        if previous is None:
            out.append(f"<h3>{_key(e.number)}: the approved text</h3>")
            out.append(_listing(e.text, f"{e.number}, approved {e.approved_on}"))
        else:
            out.append(f"<h3>{_key(e.number)}: changes from {_key(previous.number)}</h3>")
            out.append(_diff(previous.text, e.text, previous.number, e.number))
        if e.current != e.text:
            out.append(
                f"<h3>{_key(e.number)}: the current (clarified) text, changes from the approved "
                "text</h3>"
            )
            out.append(_diff(e.text, e.current, f"{e.number} approved", f"{e.number} current"))
        previous = e
    return _section("editions", "\n".join(out))


def _decisions(cf: CaseFile) -> str:
    if not cf.decisions:
        return _section("decisions", _none())
    rows = (
        (
            _h(d.kind),
            _h(d.number),
            f'<td class="day">{_h(d.decided_on)}</td>',
            _h(NONE if d.submission is None else d.submission),
        )
        for d in cf.decisions
    )
    return _section("decisions", _table(("decision", "number", "date", "submission"), rows))


def _clarifications(cf: CaseFile) -> str:
    if not cf.clarifications:
        return _section("clarifications", _none())
    rows = (
        (
            f'<td class="day">{_key(c.edition)}</td>',
            _h(c.ground),
            _h(c.reason),
            _h(", ".join(c.changed)),
            f'<td class="day">{_h(c.recorded_at.date())}</td>',
        )
        for c in cf.clarifications
    )
    headers = ("edition", "ground (§10.2)", "reason", "changed", "recorded")
    return _section("clarifications", _table(headers, rows))


def _suspensions(cf: CaseFile) -> str:
    if not cf.suspensions:
        return _section("suspensions", _none())
    rows = (
        (
            _h(s.kind),
            f'<td class="day">{_h(s.effective_on)}</td>',
            _h(s.ground or NONE),
            _h(s.reason),
        )
        for s in cf.suspensions
    )
    return _section("suspensions", _table(("event", "from", "ground (§10.3)", "reason"), rows))


def _entered(entered: dt.date, order_date: dt.date, late: bool) -> str:
    if not late:
        return f"{_d(entered)}<br>on time"
    due = working_days_after(order_date, 2)
    return f'{_d(entered)}<br><span class="flag">LATE</span> due by {_d(due)}'


def _fills(cf: CaseFile) -> str:
    if not cf.fills:
        return _section("fills", _none())
    rows = (
        (
            f'<td class="num">{f.pk}</td>',
            f'<td class="num" title="{_h(f.edition)}">{_h(f.edition.rsplit("-", 1)[-1])}</td>',
            f'<td class="day">{_h(f.office)}</td>',
            f"{_h(f.order_number)} of {_d(f.order_date)}",
            f"{_d(f.valid_from)} .. {_d(f.valid_to)}",
            "<br>".join(_h(x) for x in f.responsible) or _h(NONE),
            "<br>".join(_h(x) for x in f.viewers) or _h(NONE),
            _entered(f.entered_on, f.order_date, f.late),
        )
        for f in cf.fills
    )
    headers = ("fill", "edition", "office", "order", "valid", "responsible", "viewers", "entered")
    note = (
        '<p class="note">Edition: VV of the profile\'s number. LATE (§11.4): entered more than 2 '
        "working days (Monday to Friday; public holidays are not known) after the date of the "
        "office's order.</p>"
    )
    out = [_table(headers, rows), note]
    for f in cf.fills:
        out.append(f"<h3>Fill {f.pk} of {_h(f.office)}: order {_h(f.order_number)}</h3>")
        out.append(_listing(f.text, f"fill {f.pk}, entered {f.entered_on}"))
    return _section("fills", "\n".join(out))


def _reviews(cf: CaseFile) -> str:
    if not cf.reviews:
        return _section("reviews", _none())
    rows = (
        (
            f'<td class="day">{_h(r.decided_on)}</td>',
            _h(r.by),
            _h(r.decision),
            f'<td class="day">{_h(r.next_review or NONE)}</td>',
            _h(r.minutes or NONE),
        )
        for r in cf.reviews
    )
    headers = ("decided", "by", "decision (§9.4, §11.5)", "next review", "minutes")
    return _section("reviews", _table(headers, rows))


def _evidence(cf: CaseFile) -> str:
    if not cf.evidence:
        return _section("evidence", _none())
    rows = (
        (
            f'<td class="num">{s.submission}</td>',
            _h(s.kind),
            _h(s.status),
            _h(s.check_summary),
            _h(f"{s.tests_passed} passed, {s.tests_failed} failed"),
            f'<td class="num">{s.coverage:.1f}%</td>',
            f'<td class="num">{s.backtest_run}</td>',
            f"<code>{_h(s.sha256[:12])}</code>",
        )
        for s in cf.evidence
    )
    headers = (
        "submission",
        "kind",
        "status",
        "check result",
        "unit tests",
        "coverage",
        "backtest run",
        "text SHA-256",
    )
    note = (
        '<p class="note">The check result is <code>riskengine check</code> on the submitted '
        "text; the unit tests are the submission's <code>.test.toml</code> run against it; the "
        "backtest run is the key of the recorded run in the store's "
        "<code>backtest_runs</code> table, which tested this very text.</p>"
    )
    out = [_table(headers, rows), note]
    for s in cf.evidence:
        if s.status == "approved" or not s.text:
            continue  # an approved text is an edition's, shown above
        out.append(f"<h3>Submission {s.submission} ({_h(s.status)}): the submitted text</h3>")
        pending_amendment = s.kind == "amend" and s.status == "pending" and cf.editions
        base = cf.editions[-1] if pending_amendment else None
        if base is None:
            out.append(_listing(s.text, f"submission {s.submission}"))
        else:  # an amendment: what it changes in the edition in force's current text
            name = f"submission {s.submission}"
            out.append(_diff(base.current, s.text, f"{base.number} current", name))
    return _section("evidence", "\n".join(out))


def _details(text: str) -> str:
    try:
        details = json.loads(text)
    except ValueError:
        return _h(text)
    if not isinstance(details, dict):
        return _h(text)
    return "<br>".join(
        f"{_h(k)}=<code>{_h(json.dumps(v, ensure_ascii=False))}</code>" for k, v in details.items()
    )


def _log(cf: CaseFile) -> str:
    if not cf.log:
        return _section("log", _none())
    rows = (
        (
            f'<td class="num">{a.pk}</td>',
            f"{_d(a.logged_at.date())} {_d(a.logged_at.time().isoformat('seconds'))}",
            _h(a.actor),
            _h(a.action),
            _details(a.details),
            f'<code title="{_h(a.entry_hash)}">{_h(a.entry_hash[:12])}</code>',
        )
        for a in cf.log
    )
    headers = ("entry", "at (UTC)", "actor", "action", "details", "hash")
    note = (
        '<p class="note">The log is hash-chained: <code>riskengine registry verify</code> '
        "checks every entry of the store's log (this page only shows them).</p>"
    )
    return _section("log", _table(headers, rows) + "\n" + note)


# ------------------------------------------------------------------------------------ entry points


def render_html(cf: CaseFile, *, generated: dt.datetime | None = None) -> str:
    """A case file as one HTML page. ``generated`` is the time shown in the header (default:
    now, UTC)."""
    when = generated or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    sections = [
        _header(cf, when),
        _editions(cf),
        _decisions(cf),
        _clarifications(cf),
        _suspensions(cf),
        _fills(cf),
        _reviews(cf),
        _evidence(cf),
        _log(cf),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="riskengine {_h(_version())}">\n'
        f"<title>Case file {_h(cf.key)}: {_h(cf.name)}</title>\n<style>\n{_CSS}\n</style>\n"
        f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def case_file_html(
    connection: sa.Connection, number: str, *, generated: dt.datetime | None = None
) -> str:
    """The case file of the profile ``number`` (as :func:`~riskengine.registry.casefile.
    case_file` takes it) as an HTML page. Raises RegistryError for an unknown profile."""
    return render_html(read_case_file(connection, number), generated=generated)
