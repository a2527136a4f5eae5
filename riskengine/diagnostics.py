"""Diagnostics: source spans, problems found in profile files, and the error type users see."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

import attrs


@attrs.frozen
class Span:
    """A place in a source file: 1-based line and column of the start and of the end."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        """``file:line:col``; ``file`` alone for a problem of the whole file (line 0: a file
        that cannot be read, say), as compilers say it."""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def to(self, other: Span) -> Span:
        """The span covering ``self`` through ``other``."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


NO_SPAN = Span("<unknown>", 0, 0, 0, 0)


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Diagnostic:
    """One problem in a profile file, with a stable code such as ``RE104``."""

    code: str
    severity: Severity
    message: str
    span: Span
    suggestion: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self, sources: dict[str, str] | None = None) -> str:
        """Render like a compiler: ``file:line:col: error[RE104]: message``, the line, a caret."""
        head = f"{self.span}: {self.severity}[{self.code}]: {self.message}"
        lines = [head]
        text = (sources or {}).get(self.span.file)
        if text is not None and self.span.line > 0:
            src_lines = text.split("\n")  # as the parser counts lines
            if self.span.line <= len(src_lines):
                src = src_lines[self.span.line - 1].rstrip("\r")
                gutter = f"{self.span.line:>4} | "
                lines.append(gutter + src)
                width = 1
                if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
                    width = self.span.end_column - self.span.column
                pad = "".join(c if c == "\t" else " " for c in src[: self.span.column - 1])
                lines.append(" " * (len(gutter) - 2) + "| " + pad + "^" * max(1, width))
        if self.suggestion:
            lines.append(f"     = help: {self.suggestion}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "suggestion": self.suggestion,
        }


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(
        diagnostics, key=lambda d: (d.span.file, d.span.line, d.span.column, d.code, d.message)
    )


class RiskEngineError(Exception):
    """Base of every error riskengine raises on purpose."""


class ProfileError(RiskEngineError):
    """A profile (or fill) file has errors. ``diagnostics`` holds every problem found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.sources) for d in self.diagnostics)


def error(code: str, message: str, span: Span, suggestion: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, suggestion)


def warning(code: str, message: str, span: Span, suggestion: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, span, suggestion)
