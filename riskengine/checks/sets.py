"""Checks across the whole set of files (RE5xx), and finding the profile each fill is for."""

from __future__ import annotations

from collections.abc import Sequence

from riskengine import model as m
from riskengine.checks.context import Reporter, header_span, where


def check_profile_set(profiles: Sequence[m.Profile], report: Reporter) -> None:
    """Duplicate numbers (RE501); one name for two different profiles (RE502). A name may be
    shared by the editions of one base number, and by a draft and a numbered profile (the draft
    of its next edition); two drafts, or two different base numbers, may not share a name."""
    by_number: dict[str, m.Profile] = {}
    numbered_names: dict[str, m.Profile] = {}
    draft_names: dict[str, m.Profile] = {}
    for p in profiles:
        if p.number is not None:
            key = str(p.number)
            first = by_number.get(key)
            if first is not None:
                report(
                    "RE501",
                    f"profile number {key} is also used at {where(first.span, p.span)}",
                    p.number.span,
                    "a number identifies one edition of one profile; a changed profile gets the "
                    "next edition (-VV)",
                )
                continue
            by_number[key] = p
            other = numbered_names.get(p.name)
            if other is not None and other.number is not None:
                if other.number.base != p.number.base:
                    report(
                        "RE502",
                        f"profile {other.number} at {where(other.span, p.span)} has the same name",
                        p.spans.get("name", header_span(p)),
                        "profile names are unique; editions of one profile share its base number",
                    )
            else:
                numbered_names[p.name] = p
        else:
            other = draft_names.get(p.name)
            if other is not None:
                report(
                    "RE502",
                    f"the draft at {where(other.span, p.span)} has the same name",
                    p.spans.get("name", header_span(p)),
                    "a draft is known by its name: give each draft its own",
                )
            else:
                draft_names[p.name] = p


def resolve_fill(
    f: m.Fill,
    by_number: dict[str, m.Profile],
    by_base: dict[str, list[m.Profile]],
    report: Reporter,
    complete: bool,
) -> m.Profile | None:
    """The profile a fill is for: the loaded profile with exactly its number, base and edition
    (RE409 when there is none, unless some file failed to parse: ``complete`` False); it must be
    regional (RE410)."""
    p = by_number.get(str(f.profile))
    span = f.spans.get("profile", f.profile.span)
    if p is None:
        if complete:
            editions = by_base.get(f.profile.base, [])
            hint = None
            if editions:
                numbers = ", ".join(str(e.number) for e in editions)
                hint = f"loaded editions: {numbers}; a fill names the exact edition it fills"
            report(
                "RE409",
                f"no loaded profile has the number {f.profile}",
                span,
                hint or "check the number, or check the profile's file together with the fill",
            )
        return None
    if not p.is_regional:
        report(
            "RE410",
            f"profile {p.number} is not regional: it has no values for offices to fill",
            span,
            'only a profile with `filling regional by "…"` takes fills',
        )
        return None
    return p
