"""What a technical clarification (seed 003 §10.2) may change, and the located diff when it
changes more.

The risk unit may clarify an edition's passport without the commission on three grounds:

* ``10.2.1`` a technical error in the passport, and ``10.2.2`` a change of the regulations the
  profile cites — when the fix does not change what the indicators mean. Allowed to change:
  the profile's **name**, the **contact** (person, phone, fax, mailbox), the **note** (threat,
  basis documents, causes, damage, measures), the **updates** text (how indicator values are
  updated, and by whom), the **message** to the inspector, and the **titles** of indicators,
  exceptions and parameters and the **names** of control procedures (their code, kind,
  threshold and condition stay);
* ``10.2.3`` a change of the contact person's details: only the **contact**.

Everything else is what the profile selects or how it is numbered and dated — the number and
every date, filling, module, spheres, review date, named lists, parameters' names and types,
indicator and exception conditions, the degree, the controls' codes, kinds, thresholds and
conditions, the history — and a change there is refused with each changed element located in
the new text and a unified diff. Comparison is of the parsed models (layout and comments never
count).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import attrs

from riskengine import model as m
from riskengine.format import format_profile

__all__ = ["GROUNDS", "allowed_changes", "changes_outside"]

#: The §10.2 grounds: code → what it means.
GROUNDS: dict[str, str] = {
    "10.2.1": "a technical error in the passport",
    "10.2.2": "a change of the regulations the profile takes into account",
    "10.2.3": "a change of the contact person's details",
}


def _blank_titles(p: m.Profile) -> m.Profile:
    return attrs.evolve(
        p,
        name="",
        note=None,
        updates=None,
        message=None,
        indicators=tuple(attrs.evolve(i, title=None) for i in p.indicators),
        exceptions=tuple(attrs.evolve(e, title=None) for e in p.exceptions),
        params=tuple(attrs.evolve(x, title=None) for x in p.params),
        controls=tuple(attrs.evolve(c, name="") for c in p.controls),
    )


def _blank(p: m.Profile, ground: str) -> m.Profile:
    p = attrs.evolve(p, contact=None)
    return p if ground == "10.2.3" else _blank_titles(p)


def _line(obj: Any) -> str:
    span = getattr(obj, "span", None)
    return f"line {span.line}: " if span is not None and span.line else ""


def _named(kind: str, old: Sequence[Any], new: Sequence[Any], key: str) -> list[str]:
    before = {getattr(x, key): x for x in old}
    after = {getattr(x, key): x for x in new}
    out = []
    for name, item in after.items():
        if name not in before:
            out.append(f"{_line(item)}{kind} `{name}` added")
        elif before[name] != item:
            out.append(f"{_line(item)}{kind} `{name}` changed")
    out += [f"{kind} `{name}` removed" for name in before if name not in after]
    if not out and [getattr(x, key) for x in old] != [getattr(x, key) for x in new]:
        out.append(f"the order of the {kind}s changed")
    return out


_ELEMENTS = {
    "indicators": ("indicator", "name"),
    "exceptions": ("exception", "name"),
    "controls": ("control", "code"),
    "lists": ("list", "name"),
    "params": ("parameter", "name"),
}


def _located(old: m.Profile, new: m.Profile) -> list[str]:
    out: list[str] = []
    for field in attrs.fields(m.Profile):
        if field.name in ("span", "spans"):
            continue
        a, b = getattr(old, field.name), getattr(new, field.name)
        if a == b:
            continue
        if field.name in _ELEMENTS:
            kind, key = _ELEMENTS[field.name]
            out += _named(kind, a, b, key)
            continue
        span = new.spans.get(field.name) or getattr(b, "span", None)
        where = f"line {span.line}: " if span is not None and span.line else ""
        out.append(f"{where}`{field.name.replace('_', ' ')}` changed")
    return out


def changes_outside(old: m.Profile, new: m.Profile, ground: str) -> list[str]:
    """The changes ``ground`` does not allow, located in the new text (empty: allowed)."""
    return _located(_blank(old, ground), _blank(new, ground))


def allowed_changes(old: m.Profile, new: m.Profile) -> list[str]:
    """The allowed fields that changed (what the clarification recorded), by name."""
    out = []
    if old.contact != new.contact:
        out.append("contact")
    pairs = {
        "name": (old.name, new.name),
        "note": (old.note, new.note),
        "updates": (old.updates, new.updates),
        "message": (old.message, new.message),
    }
    out += [name for name, (a, b) in pairs.items() if a != b]
    for field, (kind, key) in _ELEMENTS.items():
        title = "name" if field == "controls" else "title"
        before = {getattr(x, key): getattr(x, title) for x in getattr(old, field)}
        for item in getattr(new, field):
            if before.get(getattr(item, key), getattr(item, title)) != getattr(item, title):
                out.append(f"{kind} {getattr(item, key)} {title}")
    return out


def text_diff(old: m.Profile, new: m.Profile, before: str, after: str) -> str:
    """A unified diff of the two profiles' canonical texts."""
    lines = difflib.unified_diff(
        format_profile(old).splitlines(),
        format_profile(new).splitlines(),
        before,
        after,
        lineterm="",
    )
    return "\n".join(lines)
