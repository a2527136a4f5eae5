"""Shared machinery of the checks: the diagnostic sink, source-text spans and "did you mean"."""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterable, Mapping

from riskengine import model as m
from riskengine.checks.codes import CODES
from riskengine.diagnostics import Diagnostic, Span

_COMMENT = re.compile(r"#[^\n]*")
_NEWLINE = re.compile(r"\n")


class Reporter:
    """Collects diagnostics; the severity of each comes from the code registry. Also knows the
    source texts, to point at a token inside a statement (only done when reporting)."""

    def __init__(self, texts: Mapping[str, str]):
        self.texts = texts
        self.diagnostics: list[Diagnostic] = []
        self._lines: dict[str, list[int]] = {}

    def __call__(self, code: str, message: str, span: Span, suggestion: str | None = None) -> None:
        info = CODES[code]
        self.diagnostics.append(Diagnostic(code, info.severity, message, span, suggestion))

    # ------------------------------------------------------------------ spans in the text
    def _starts(self, file: str) -> list[int] | None:
        starts = self._lines.get(file)
        if starts is None:
            text = self.texts.get(file)
            if text is None:
                return None
            starts = [0]
            starts.extend(mt.end() for mt in _NEWLINE.finditer(text))
            self._lines[file] = starts
        return starts

    def _offset(self, starts: list[int], line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    def _position(self, starts: list[int], offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1

    def find(self, span: Span, pattern: str | re.Pattern[str], nth: int = 0) -> Span:
        """The span of the ``nth`` match of ``pattern`` (its group 1 if it has one) inside
        ``span``, comments blanked out; ``span`` itself when the text is not at hand."""
        found = self.find_all(span, pattern)
        return found[nth] if nth < len(found) else span

    def find_all(self, span: Span, pattern: str | re.Pattern[str]) -> list[Span]:
        """The spans of every match of ``pattern`` (group 1 if any) inside ``span``."""
        starts = self._starts(span.file)
        if starts is None or span.line < 1 or span.line > len(starts):
            return []
        text = self.texts[span.file]
        begin = self._offset(starts, span.line, span.column)
        end = self._offset(starts, span.end_line, span.end_column)
        if span.end_line > len(starts):
            end = len(text)
        chunk = _COMMENT.sub(lambda mt: " " * len(mt.group(0)), text[begin:end])
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        out = []
        for mt in regex.finditer(chunk):
            group = 1 if regex.groups else 0
            a, b = begin + mt.start(group), begin + mt.end(group)
            la, ca = self._position(starts, a)
            lb, cb = self._position(starts, b)
            out.append(Span(span.file, la, ca, lb, cb))
        return out


class Capture(Reporter):
    """A reporter that keeps ``(code, message, span, suggestion)`` to re-report them elsewhere."""

    def __init__(self) -> None:
        super().__init__({})
        self.kept: list[tuple[str, str, Span, str | None]] = []

    def __call__(self, code: str, message: str, span: Span, suggestion: str | None = None) -> None:
        self.kept.append((code, message, span, suggestion))


def head(span: Span, width: int) -> Span:
    """The first ``width`` characters of ``span``: a name that starts a statement."""
    return Span(span.file, span.line, span.column, span.line, span.column + max(1, width))


def tail(span: Span, width: int) -> Span:
    """The last ``width`` characters of ``span``: a number that ends a statement."""
    col = max(1, span.end_column - width)
    return Span(span.file, span.end_line, col, span.end_line, span.end_column)


def line_head(report: Reporter, span: Span) -> Span:
    """The first line of ``span`` up to an opening ``{``: the head of a block statement."""
    return report.find(span, r"([^\n{]*[^\s{])")


def token_span(report: Reporter, span: Span, token: str) -> Span:
    """The first occurrence of ``token`` as a whole word (or number) inside ``span``."""
    return report.find(span, r"(?<![\w.])(" + re.escape(token) + r")(?![\w.])")


def header_span(item: m.Profile | m.Fill) -> Span:
    """From the keyword through the name (profile) or the number (fill): the item's header."""
    key = "name" if isinstance(item, m.Profile) else "profile"
    end = item.spans.get(key)
    if end is None or item.span.line == 0:
        return item.span
    return item.span.to(end)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (difflib), or None. Only called to report an error."""
    pool = list(candidates)
    found = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not found:
        lower = {c.lower(): c for c in pool}
        found = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
        return lower[found[0]] if found else None
    return found[0]


def did_you_mean(word: str | None) -> str | None:
    return f"did you mean `{word}`?" if word else None


def where(span: Span, here: Span | None = None) -> str:
    """How a message names another place: ``line 12`` in the same file as ``here``, else
    ``file.rp:12``."""
    if here is not None and here.file == span.file:
        return f"line {span.line}"
    return f"{span.file}:{span.line}"


def fmt_number(value: float) -> str:
    """A bound for messages: 70.0 → "70", 12.5 → "12.5", inf → "unbounded"."""
    if value != value or value in (float("inf"), float("-inf")):
        return "unbounded"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"
