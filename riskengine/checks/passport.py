"""Passport checks (RE1xx): the number, the name, the dates, required fields, module, spheres."""

from __future__ import annotations

import datetime as dt

from riskengine import classifiers
from riskengine import model as m
from riskengine.checks.context import Reporter, closest, did_you_mean, header_span
from riskengine.diagnostics import Span

MAX_NAME = 250

#: Passport fields every numbered (approved) profile must have, with how to write each.
REQUIRED: tuple[tuple[str, str, str], ...] = (
    ("approved", "`approved` date", "approved 2012-01-11"),
    ("in_force", "`in force` period", "in force 2012-03-15 .. 2012-12-31"),
    ("filling", "`filling` method", 'filling central by "Customs value unit"'),
    ("module", "`module`", "module declaration"),
    ("spheres", "risk `spheres`", "spheres 101, 203"),
    ("indicators", "`indicators`", "indicators { name: condition }"),
    ("degree", "`degree`", "degree = 100 * name"),
    ("message", "`message` for the inspector", 'message "…"'),
    ("controls", "`controls`", 'controls { 102 "Documentary check" mandatory from 30 }'),
)


def check_passport(p: m.Profile, report: Reporter) -> None:
    """Every RE1xx check of one profile."""
    if p.number is not None:
        check_number(p, p.number, report)
    check_name(p, report)
    check_dates(p, report)
    check_required(p, report)
    check_module(p, report)
    check_spheres(p, report)


def _part_spans(n: m.ProfileNumber) -> dict[str, Span]:
    """Spans of the five parts of a number token (it is written on one line)."""
    s = n.span
    out = {}
    col = s.column
    for key, text, sep in (
        ("group", n.group, 1),
        ("unit", n.unit, 1),
        ("year", n.year, 1),
        ("sequence", n.sequence, 1),
        ("edition", n.edition, 0),
    ):
        out[key] = Span(s.file, s.line, col, s.line, col + len(text))
        col += len(text) + sep
    return out


def _given(d: dt.date | None) -> bool:
    """A date that was written and is a real date (a bad one is dt.date.min, see RE011)."""
    return d is not None and d != dt.date.min


def check_number(p: m.Profile, n: m.ProfileNumber, report: Reporter) -> None:
    """``WW/XX/YYYY/ZZZZZ-VV`` part by part (RE101–RE108)."""
    spans = _part_spans(n)
    if len(n.group) != 2 or not n.group.isalnum():
        report(
            "RE101",
            f"the risk-criteria group `{n.group}` must be exactly 2 letters or digits",
            spans["group"],
        )
    if len(n.unit) != 2 or not (n.unit.isascii() and n.unit.isdigit()):
        suggestion = None
        if n.unit.isdigit() and n.unit.lstrip("0") and len(n.unit.lstrip("0")) <= 2:
            suggestion = f"write `{int(n.unit):02d}`"
        report(
            "RE102",
            f"the unit part `{n.unit}` must be exactly 2 digits",
            spans["unit"],
            suggestion,
        )
    elif n.unit not in classifiers.units():
        report(
            "RE103",
            f"`{n.unit}` is not an initiating unit of appendix 4 (01–20)",
            spans["unit"],
            "the units are numbered 01 to 20; 20 stands for the regional customs offices",
        )
    if len(n.year) != 4:
        report("RE104", f"the year part `{n.year}` must be exactly 4 digits", spans["year"])
    elif _given(p.approved) and p.approved is not None and int(n.year) != p.approved.year:
        report(
            "RE105",
            f"the number says {n.year} but the profile was approved in {p.approved.year}",
            spans["year"],
            f"the year of the number is the approval year: `{p.approved.year}`",
        )
    if len(n.sequence) != 5:
        suggestion = None
        if len(n.sequence) < 5:
            suggestion = f"write `{n.sequence.zfill(5)}`"
        report(
            "RE106",
            f"the sequence number `{n.sequence}` must be exactly 5 digits",
            spans["sequence"],
            suggestion,
        )
    if len(n.edition) != 2 or int(n.edition) < 1:
        suggestion = None
        if n.edition.isdigit() and 1 <= int(n.edition) <= 99:
            suggestion = f"write `{int(n.edition):02d}`"
        report(
            "RE107",
            f"the edition `{n.edition}` must be two digits from 01 to 99",
            spans["edition"],
            suggestion,
        )
    elif int(n.edition) > 1 and p.edition_approved is None:
        report(
            "RE108",
            f"edition {n.edition} has no `edition approved` date",
            spans["edition"],
            "add `edition approved YYYY-MM-DD`: the date the commission approved this edition",
        )


def check_name(p: m.Profile, report: Reporter) -> None:
    span = p.spans.get("name", p.span)
    if not p.name.strip():
        report(
            "RE110",
            "the profile name is empty",
            span,
            "give the short, unique name of the passport",
        )
    elif len(p.name) > MAX_NAME:
        report(
            "RE111",
            f"the profile name has {len(p.name)} characters; at most {MAX_NAME} are allowed",
            span,
            "keep the name short; the analytical note (`note { threat … }`) holds the details",
        )


def check_dates(p: m.Profile, report: Reporter) -> None:
    """The order of the passport dates (RE120–RE127); bad dates (RE011) are skipped."""
    spans = p.spans
    approved = p.approved if _given(p.approved) else None
    ed_approved = p.edition_approved if _given(p.edition_approved) else None
    ed_in_force = p.edition_in_force if _given(p.edition_in_force) else None
    review = p.review if _given(p.review) else None
    start = end = None
    if p.in_force is not None:
        start = p.in_force.start if _given(p.in_force.start) else None
        end = p.in_force.end if _given(p.in_force.end) else None
    if approved and ed_approved and ed_approved < approved:
        report(
            "RE120",
            f"the edition was approved ({ed_approved}) before the profile ({approved})",
            spans.get("edition_approved", p.span),
        )
    if start and end and end < start:
        report(
            "RE121",
            f"the profile is in force until {end}, before it starts ({start})",
            spans.get("in_force", p.span),
        )
    if ed_in_force and start and ed_in_force < start:
        report(
            "RE122",
            f"the edition is in force from {ed_in_force}, before the profile is ({start})",
            spans.get("edition_in_force", p.span),
        )
    if ed_in_force and end and ed_in_force > end:
        report(
            "RE123",
            f"the edition is in force from {ed_in_force}, after the profile ends ({end})",
            spans.get("edition_in_force", p.span),
        )
    if review and start and review < start:
        report(
            "RE124",
            f"the review is due {review}, before the profile is in force ({start})",
            spans.get("review", p.span),
            "the effectiveness review comes after some time in force",
        )
    elif review and approved and review < approved:
        report(
            "RE125",
            f"the review is due {review}, before the profile was approved ({approved})",
            spans.get("review", p.span),
        )
    if start and approved and start < approved:
        report(
            "RE126",
            f"the profile is in force from {start}, before it was approved ({approved})",
            spans.get("in_force", p.span),
        )
    if ed_in_force and ed_approved and ed_in_force < ed_approved:
        report(
            "RE127",
            f"the edition is in force from {ed_in_force}, before it was approved ({ed_approved})",
            spans.get("edition_in_force", p.span),
        )


def _has(p: m.Profile, key: str) -> bool:
    value = getattr(p, key)
    return bool(value) if isinstance(value, tuple) else value is not None


def check_required(p: m.Profile, report: Reporter) -> None:
    """Numbered profiles need every field of :data:`REQUIRED` (RE130); drafts that cannot be
    evaluated yet (no degree or no controls) get a warning (RE131)."""
    span = header_span(p)
    if p.number is not None:
        for key, what, example in REQUIRED:
            if not _has(p, key):
                report(
                    "RE130",
                    f"approved profile {p.number} has no {what}",
                    span,
                    f'add `{example}`, or make it a draft: `profile draft "…"`',
                )
        return
    missing = [
        what for key, what, _ in REQUIRED if key in ("degree", "controls") and not _has(p, key)
    ]
    if missing:
        report(
            "RE131",
            f'draft "{p.name}" has no {" and no ".join(missing)}: it cannot be evaluated yet',
            span,
        )


def check_module(p: m.Profile, report: Reporter) -> None:
    mod = p.module
    if mod is None:
        return
    if mod.name not in m.MODULES:
        hint = did_you_mean(closest(mod.name, m.MODULES))
        report(
            "RE140",
            f"unknown module `{mod.name}`",
            mod.span,
            hint or "the modules are " + ", ".join(m.MODULES),
        )
    elif mod.name == "other" and not mod.text:
        report(
            "RE141",
            "`module other` should say which module",
            mod.span,
            'write `module other "name of the module"`',
        )


def check_spheres(p: m.Profile, report: Reporter) -> None:
    if not p.spheres:
        return
    table = classifiers.spheres()
    seen: set[str] = set()
    statement = p.spans.get("spheres", p.span)
    tokens: list[Span] | None = None
    for i, code in enumerate(p.spheres):
        problem = None
        if code not in table:
            found = table.suggest(code)
            problem = (
                "RE142",
                f"`{code}` is not a risk sphere of appendix 5",
                did_you_mean(found) or "the spheres are 101–113, 201–208, 301–307, 401–408",
            )
        elif code in seen:
            problem = ("RE143", f"risk sphere {code} is listed twice", "list it once")
        seen.add(code)
        if problem is not None:
            if tokens is None:
                tokens = report.find_all(statement, r"[^\s,]+")
                if len(tokens) > len(p.spheres):
                    tokens = tokens[1:]  # the keyword, when the statement's span includes it
            span = tokens[i] if i < len(tokens) else statement
            report(problem[0], problem[1], span, problem[2])
