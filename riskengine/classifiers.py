"""The three classifiers of the risk-profile procedure: non-completion reasons, units, spheres."""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

import attrs

__all__ = [
    "KEYS",
    "REASON_TABLES",
    "Classifier",
    "ClassifierEntry",
    "ReasonTableError",
    "classifier",
    "extend_reasons",
    "reasons",
    "spheres",
    "units",
]

#: The keys of the classifiers, in the order of the appendices (3, 4, 5).
KEYS: tuple[str, ...] = ("reasons", "units", "spheres")


@attrs.frozen
class ClassifierEntry:
    """One code of a classifier with its Ukrainian (verbatim) and English names and its group."""

    code: str
    name_uk: str
    name_en: str
    group: str | None = None
    group_name_uk: str | None = None
    group_name_en: str | None = None


@attrs.frozen
class Classifier:
    """A classifier: its title and its entries by code, in the order of the source document."""

    key: str
    title_uk: str
    title_en: str
    # Entries are left out of equality and hashing (a mapping is not hashable); the key, the
    # titles and the source identify a classifier.
    entries: Mapping[str, ClassifierEntry] = attrs.field(eq=False, repr=False)
    #: Where the classifier comes from (appendix, order, edition).
    source: str = ""

    def _canonical(self, code: str) -> str:
        """The code as stored: units are compared as numbers, so "08" and "8" are the same."""
        code = code.strip()
        if self.key == "units" and code.isascii() and code.isdigit():
            return str(int(code))
        return code

    def get(self, code: str) -> ClassifierEntry | None:
        """The entry with this code, or ``None`` when the classifier has no such code."""
        return self.entries.get(self._canonical(code))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self._canonical(code) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def codes(self) -> list[str]:
        """All codes, in the order of the source document."""
        return list(self.entries)

    def suggest(self, code: str) -> str | None:
        """The code closest to ``code``, for a "did you mean" hint; ``None`` if nothing is close.

        A known code (in any accepted spelling) suggests its canonical spelling. A number missing
        its leading zeros (``"101"`` for reasons) suggests the zero-padded code when that exists.
        """
        canonical = self._canonical(code)
        if canonical in self.entries:
            return canonical
        if canonical.isascii() and canonical.isdigit():
            width = max(len(c) for c in self.entries)
            padded = canonical.zfill(width)
            if padded in self.entries:
                return padded
        matches = difflib.get_close_matches(canonical, self.codes(), n=1, cutoff=0.6)
        return matches[0] if matches else None

    def __repr__(self) -> str:
        return f"<Classifier {self.key}: {len(self.entries)} entries>"


def _text(table: Mapping[str, Any], field: str, where: str) -> str:
    value = table.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: field {field!r} must be a non-empty string")
    return value


def _load(key: str) -> Classifier:
    """Read ``riskengine/data/classifiers/<key>.toml`` (works from a wheel as from a checkout)."""
    name = f"{key}.toml"
    resource = resources.files("riskengine") / "data" / "classifiers" / name
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    head = data.get("classifier")
    if not isinstance(head, dict):
        raise ValueError(f"{name}: missing [classifier] table")
    groups: dict[str, tuple[str, str]] = {}
    for table in data.get("group", []):
        where = f"{name}: [[group]]"
        code = _text(table, "code", where)
        groups[code] = (_text(table, "name_uk", where), _text(table, "name_en", where))
    entries: dict[str, ClassifierEntry] = {}
    for table in data.get("entry", []):
        code = _text(table, "code", f"{name}: [[entry]]")
        where = f"{name}: entry {code}"
        if code in entries:
            raise ValueError(f"{where}: duplicate code")
        group = table.get("group")
        if group is not None and group not in groups:
            raise ValueError(f"{where}: unknown group {group!r}")
        group_uk, group_en = groups[group] if group is not None else (None, None)
        entries[code] = ClassifierEntry(
            code=code,
            name_uk=_text(table, "name_uk", where),
            name_en=_text(table, "name_en", where),
            group=group,
            group_name_uk=group_uk,
            group_name_en=group_en,
        )
    return Classifier(
        key=key,
        title_uk=_text(head, "title_uk", name),
        title_en=_text(head, "title_en", name),
        entries=MappingProxyType(entries),
        source=_text(head, "source", name),
    )


@functools.cache
def reasons() -> Classifier:
    """Appendix 3: reasons for non-completion of customs clearance (codes "0101".."1301")."""
    return _load("reasons")


@functools.cache
def units() -> Classifier:
    """Appendix 4: structural units initiating a profile (codes "1".."20"; "08" means "8")."""
    return _load("units")


@functools.cache
def spheres() -> Classifier:
    """Appendix 5: risk spheres (codes "101".."408", grouped by hundreds)."""
    return _load("spheres")


def classifier(key: str) -> Classifier:
    """The classifier named ``key``: one of "reasons", "units", "spheres"."""
    loaders = {"reasons": reasons, "units": units, "spheres": spheres}
    if key not in loaders:
        raise ValueError(f"unknown classifier {key!r}; expected one of {', '.join(KEYS)}")
    return loaders[key]()


# --- a service's own non-completion reasons ------------------------------------------------------

#: The tables of a field catalogue file that extend the reason classifier (docs/store.md).
REASON_TABLES: tuple[str, ...] = ("reason_group", "reason")
_REASON_CODE = re.compile(r"\d{4}\Z")
_GROUP_CODE = re.compile(r"[1-9]\d?\Z")
_REASON_KEYS = frozenset({"code", "group", "name_uk", "name_en"})
_GROUP_KEYS = frozenset({"code", "name_uk", "name_en"})


class ReasonTableError(ValueError):
    """A ``[[reason]]`` or ``[[reason_group]]`` table is invalid: ``line`` (1-based, of the
    table's header in its file, when known) and the reason."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(reason)


def extend_reasons(
    base: Classifier,
    groups: Any,
    entries: Any,
    lines: Mapping[str, list[int]] | None = None,
) -> Classifier:
    """``base`` (the appendix-3 classifier) with a service's own reasons: ``groups`` and
    ``entries`` are the ``[[reason_group]]`` and ``[[reason]]`` tables of a TOML file, ``lines``
    the line of each table's header per table name (for the errors). A code is four digits,
    its first two the group ("1401" is in group 14); a group is a number 1-99; neither may
    repeat a code of ``base`` or of the file. Raises :class:`ReasonTableError`."""
    where = lines or {}

    def line(table: str, index: int) -> int | None:
        found = where.get(table, [])
        return found[index] if index < len(found) else None

    def tables(value: Any, name: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise ReasonTableError(f"'{name}' must be an array of tables: write [[{name}]]")
        return value

    known_groups: dict[str, tuple[str, str]] = {}
    for entry in base.entries.values():
        if entry.group is not None:
            known_groups[entry.group] = (entry.group_name_uk or "", entry.group_name_en or "")
    new_groups: dict[str, tuple[str, str]] = {}
    for index, table in enumerate(tables(groups, "reason_group")):
        at = line("reason_group", index)
        code = _code(table, at, "reason group", _GROUP_KEYS)
        if not _GROUP_CODE.match(code):
            raise ReasonTableError(
                f'reason group {code!r}: a group is a number from 1 to 99, e.g. "14"', at
            )
        if code in known_groups:
            raise ReasonTableError(
                f"reason group {code} is already a group of appendix 3 "
                f'({known_groups[code][1]}): add its reasons with [[reason]] group = "{code}"',
                at,
            )
        if code in new_groups:
            raise ReasonTableError(f"reason group {code} is given twice", at)
        uk, en = _names(table, at, f"reason group {code}")
        new_groups[code] = (uk, en)
    all_groups = {**known_groups, **new_groups}
    added: dict[str, ClassifierEntry] = {}
    for index, table in enumerate(tables(entries, "reason")):
        at = line("reason", index)
        code = _code(table, at, "reason", _REASON_KEYS)
        if not _REASON_CODE.match(code):
            raise ReasonTableError(
                f"reason {code!r}: a reason code is four digits, the group and a number, "
                'e.g. "1401"',
                at,
            )
        if code in base.entries:
            raise ReasonTableError(
                f"reason {code} is already in appendix 3 ({base.entries[code].name_en}): a "
                "service adds codes of its own, it does not redefine these",
                at,
            )
        if code in added:
            raise ReasonTableError(f"reason {code} is given twice", at)
        group = table.get("group", str(int(code[:2])))
        if not isinstance(group, str) or group not in all_groups:
            raise ReasonTableError(
                f"reason {code}: unknown group {group!r}; declare it with [[reason_group]]", at
            )
        if int(code[:2]) != int(group):
            raise ReasonTableError(
                f"reason {code}: the code's first two digits ({code[:2]}) are not its group "
                f"({group})",
                at,
            )
        uk, en = _names(table, at, f"reason {code}")
        added[code] = ClassifierEntry(code, uk, en, group, *all_groups[group])
    if not added and not new_groups:
        return base
    entries_all = {**base.entries, **added}
    return attrs.evolve(
        base,
        entries=MappingProxyType(dict(sorted(entries_all.items()))),
        source=base.source + f"; with {len(added)} reasons of the service's own classifier",
    )


def _code(table: Mapping[str, Any], at: int | None, what: str, keys: frozenset[str]) -> str:
    code = table.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        raise ReasonTableError(
            f'{what} {code}: write the code in quotes ("{code:04d}" keeps its leading zero)'
            if what == "reason"
            else f'{what} {code}: write the code in quotes ("{code}")',
            at,
        )
    if not isinstance(code, str) or not code.strip():
        raise ReasonTableError(f"a {what} without a 'code'", at)
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ReasonTableError(
            f"{what} {code}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(keys))})",
            at,
        )
    return code.strip()


def _names(table: Mapping[str, Any], at: int | None, what: str) -> tuple[str, str]:
    uk = table.get("name_uk")
    en = table.get("name_en", uk)
    for key, value in (("name_uk", uk), ("name_en", en)):
        if not isinstance(value, str) or not value.strip():
            raise ReasonTableError(f"{what}: {key!r} must be a non-empty string", at)
    assert isinstance(uk, str) and isinstance(en, str)
    return uk, en
