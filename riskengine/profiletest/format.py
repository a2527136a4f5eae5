"""Profile test files (``*.test.toml``): parsing and validation of ``[[case]]`` tables."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from riskengine.diagnostics import RiskEngineError
from riskengine.model import ControlKind

__all__ = [
    "TEST_SUFFIX",
    "TestCase",
    "TestFile",
    "TestFileError",
    "find_test_files",
    "parse_test_file",
    "parse_test_text",
]

#: Profile test files are found in directories by this suffix.
TEST_SUFFIX = ".test.toml"

_KINDS = {k.value: k for k in ControlKind} | {"conditional": ControlKind.CONDITIONAL}
_CASE_KEYS = {
    "name", "profile", "as_of", "declaration", "history", "fires", "applies", "degree",
    "controls", "message", "message_contains", "items", "lane",
}  # fmt: skip
_LANES = ("red", "yellow", "green")


class TestFileError(RiskEngineError):
    """A test file that cannot be read: names the file and the line, or the case and key."""

    __test__ = False  # not a pytest class

    def __init__(self, file: str, where: str, reason: str) -> None:
        self.file = file
        self.where = where
        self.reason = reason
        super().__init__(f"{file}: {where}: {reason}" if where else f"{file}: {reason}")


@attrs.frozen
class TestCase:
    """One ``[[case]]``: the input (declaration, date, history) and the expectations (``None``:
    not checked). ``controls`` maps each expected code to its kind (``None``: any kind)."""

    __test__ = False

    file: str
    index: int
    name: str
    profile: str | None
    as_of: dt.date | None
    declaration: Mapping[str, Any]
    history: tuple[float, float] | None = None
    fires: bool | None = None
    applies: bool | None = None
    degree: float | None = None
    controls: Mapping[str, ControlKind | None] | None = None
    message: str | None = None
    message_contains: str | None = None
    items: tuple[int, ...] | None = None
    lane: str | None = None


@attrs.frozen
class TestFile:
    """A parsed test file: its path, its default profile (the file's stem) and its cases."""

    __test__ = False

    path: str
    stem: str
    cases: tuple[TestCase, ...]


def find_test_files(paths: list[str | Path]) -> list[Path]:
    """Files as given, and every ``*.test.toml`` file under each directory (sorted, recursive)."""
    found: dict[Path, None] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for c in sorted(p.rglob("*" + TEST_SUFFIX), key=str):
                if c.is_file():
                    found[c] = None
        else:
            found[p] = None
    return list(found)


def parse_test_file(path: str | Path) -> TestFile:
    """Read and validate one test file; raises :class:`TestFileError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TestFileError(str(path), "", f"cannot read the file: {exc}") from None
    return parse_test_text(text, str(path))


_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_test_text(text: str, file: str) -> TestFile:
    """Parse the text of a test file named ``file``; raises :class:`TestFileError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        at = _TOML_AT.search(msg)
        where = f"line {at.group(1)}, column {at.group(2)}" if at else ""
        reason = _TOML_AT.sub("", msg).strip()
        raise TestFileError(file, where, f"bad TOML: {reason}") from None
    stem = Path(file).name.removesuffix(TEST_SUFFIX)
    extra = sorted(set(data) - {"case"})
    if extra:
        raise TestFileError(file, "", f"unknown top-level key {extra[0]!r}: use [[case]] tables")
    raw_cases = data.get("case", [])
    if not isinstance(raw_cases, list) or not raw_cases:
        raise TestFileError(file, "", "no [[case]] tables")
    cases = tuple(_case(file, i, raw) for i, raw in enumerate(raw_cases, 1))
    names = [c.name for c in cases]
    for name in names:
        if names.count(name) > 1:
            raise TestFileError(file, f"case {name!r}", "two cases have this name")
    return TestFile(file, stem, cases)


def _case(file: str, index: int, raw: Any) -> TestCase:
    if not isinstance(raw, dict):  # pragma: no cover - tomllib gives tables for [[case]]
        raise TestFileError(file, f"case #{index}", "must be a table")
    name = raw.get("name")
    label = f"case {name!r}" if isinstance(name, str) else f"case #{index}"

    def bad(key: str, reason: str) -> TestFileError:
        return TestFileError(file, f"{label}, key {key!r}", reason)

    if not isinstance(name, str) or not name:
        raise TestFileError(file, label, "needs a name (a non-empty string)")
    for key in raw:
        if key not in _CASE_KEYS:
            close = difflib.get_close_matches(key, sorted(_CASE_KEYS), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else "use one of " + ", ".join(sorted(_CASE_KEYS))
            )
            raise bad(key, f"unknown key; {hint}")
    profile = raw.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise bad("profile", "expected a profile number or name (a string)")
    as_of = raw.get("as_of")
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError:
            raise bad("as_of", f"{as_of!r} is not a date YYYY-MM-DD") from None
    if as_of is not None and (not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime)):
        raise bad("as_of", "expected a date YYYY-MM-DD")
    declaration = raw.get("declaration")
    if not isinstance(declaration, dict):
        raise bad("declaration", "required: a table with the declaration (same shape as JSON)")
    history = None
    if "history" in raw:
        h = raw["history"]
        if not isinstance(h, dict) or set(h) - {"negative", "positive"}:
            raise bad("history", "expected { negative = N, positive = N }")
        vals = []
        for part in ("negative", "positive"):
            v = h.get(part, 0)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise bad("history", f"{part} must be a number ≥ 0")
            vals.append(float(v))
        history = (vals[0], vals[1])
    out: dict[str, Any] = {}
    for key in ("fires", "applies"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise bad(key, "expected true or false")
            out[key] = raw[key]
    if "degree" in raw:
        d = raw["degree"]
        if isinstance(d, bool) or not isinstance(d, int | float):
            raise bad("degree", "expected a number")
        out["degree"] = float(d)
    if "controls" in raw:
        out["controls"] = _controls(raw["controls"], bad)
    for key in ("message", "message_contains"):
        if key in raw:
            if not isinstance(raw[key], str):
                raise bad(key, "expected a string")
            out[key] = raw[key]
    if "items" in raw:
        items = raw["items"]
        if not isinstance(items, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in items
        ):
            raise bad("items", "expected a list of item numbers (1, 2, ...)")
        out["items"] = tuple(sorted(items))
    if "lane" in raw:
        if raw["lane"] not in _LANES:
            raise bad("lane", "expected one of " + ", ".join(_LANES))
        out["lane"] = raw["lane"]
    return TestCase(file, index, name, profile, as_of, declaration, history, **out)


def _controls(value: Any, bad: Any) -> dict[str, ControlKind | None]:
    if isinstance(value, list):
        if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in value):
            raise bad("controls", "expected a list of procedure codes")
        return {str(c): None for c in value}
    if isinstance(value, dict):
        out: dict[str, ControlKind | None] = {}
        for code, kind in value.items():
            if kind not in _KINDS:
                raise bad(
                    "controls",
                    f"code {code}: kind {kind!r}: use mandatory, mandatory when, if necessary",
                )
            out[str(code)] = _KINDS[kind]
        return out
    raise bad("controls", "expected a list of codes or a table code = kind")
