"""Mapping files (ingest mappings and bring-your-own-tables mappings): reading them, and errors
that name the file, the line of the offending key and the key."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from typing import Any

from riskengine.diagnostics import RiskEngineError

__all__ = ["MappingError", "line_of", "load_toml", "read_text", "suggest"]


class MappingError(RiskEngineError):
    """A mapping file is wrong: ``file``, ``line`` (when found) and ``key`` say where."""

    def __init__(
        self, reason: str, *, file: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        what = f"{key}: " if key else ""
        super().__init__(f"{where}{what}{reason}")


def suggest(word: str, options: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for the option closest to ``word``, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def line_of(text: str, key: str) -> int | None:
    """The 1-based line where ``key`` is written (quoted or bare), if it can be found."""
    candidates = (f'"{key}"', f"'{key}'", key)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        for candidate in candidates:
            if stripped.startswith(candidate) or f"[{candidate}" in stripped:
                return number
    return None


def load_toml(text: str, source: str) -> dict[str, Any]:
    """A TOML mapping file's tables; a syntax error names the file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        raise MappingError(
            f"invalid TOML: {exc}", file=source, line=int(match.group(1)) if match else None
        ) from None


def read_text(source: str) -> str:
    """A mapping file's text; an unreadable file or one that is not UTF-8 is a
    :class:`MappingError`."""
    try:
        with open(source, "rb") as stream:
            return stream.read().decode("utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read the file: {exc.strerror or exc}", file=source) from None
    except UnicodeDecodeError as exc:
        raise MappingError(f"not UTF-8 text: {exc.reason}", file=source) from None
