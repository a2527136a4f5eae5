"""Limits a profile must stay within so that every backend runs it.

``check`` reports a located error for a profile beyond any of these; the compilers are written
so that every profile within them compiles and runs on every backend (or takes the Python
fallback of a backtest with a stated reason).
"""

from __future__ import annotations

# Depth of nested expressions (parentheses, unary operators, nested calls, nested conditions).
MAX_EXPRESSION_DEPTH = 100
