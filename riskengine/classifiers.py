"""The three classifiers of the risk-profile procedure: non-completion reasons, units, spheres."""

from __future__ import annotations

import difflib
import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

import attrs

__all__ = [
    "KEYS",
    "Classifier",
    "ClassifierEntry",
    "classifier",
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
