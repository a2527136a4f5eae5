"""Small wording helpers shared by the terminal output and the reports: counts with the right
plural, durations that read well for a few milliseconds as for an hour, and rates that are only
given when they mean something."""

from __future__ import annotations

__all__ = ["duration", "noun", "plural", "rate"]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 profile``, ``2 profiles``, ``0 profiles`` (``many`` for an irregular plural)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"


def noun(n: int, word: str, many: str | None = None) -> str:
    """The word alone, as :func:`plural` would choose it for ``n`` (``entry``/``entries``)."""
    return word if n == 1 else (many or word + "s")


def duration(seconds: float) -> str:
    """``0.4 ms``, ``37 ms``, ``1.9 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def rate(n: int, seconds: float, unit: str) -> str:
    """``, 12,345 rows/s`` (``unit`` ``row``) when the run was long enough for a rate to mean
    something (at least a second), else nothing."""
    if seconds < 1 or n <= 0:
        return ""
    return f", {n / seconds:,.0f} {unit}s/s"
