"""The formatter: a parsed file back to its one canonical text, with its comments kept.

:mod:`~riskengine.format.doc` (literals, line breaking), :mod:`~riskengine.format.expr`
(expressions), :mod:`~riskengine.format.statements` (profiles, fills, lists as statements) and
:mod:`~riskengine.format.comments` (comments put back where they belong) build it.
"""

from __future__ import annotations

from riskengine import model as m
from riskengine.format.comments import attach
from riskengine.format.doc import format_date, format_literal, format_number, format_string
from riskengine.format.expr import format_expr
from riskengine.format.statements import (
    Node,
    fill_node,
    item_node,
    profile_node,
    render_file,
    top_level_items,
)

__all__ = [
    "format_date",
    "format_expr",
    "format_fill",
    "format_literal",
    "format_number",
    "format_profile",
    "format_source",
    "format_string",
    "format_text",
]


# ------------------------------------------------------------------------------------ public API


def format_source(source: m.SourceFile, text: str | None = None) -> str:
    """The canonical text of a parsed file, its comments kept.

    Pass ``text``, the source the model was parsed from, to place comments written after the
    last statement of a block exactly (before that block's ``}``); without it, the model's
    spans (which end at a block's last value) put such comments after the block."""
    root = Node("", [item_node(item) for item in top_level_items(source)])
    if source.comments:
        attach(root, source.comments, text)
    return render_file(root)


def format_text(text: str, file: str = "<string>") -> str:
    """Parse ``text`` and return its canonical form; raises ProfileError on any error."""
    from riskengine.syntax import parse

    return format_source(parse(text, file), text)


def format_profile(profile: m.Profile) -> str:
    """The canonical text of one profile (without comments)."""
    return render_file(Node("", [profile_node(profile)]))


def format_fill(fill: m.Fill) -> str:
    """The canonical text of one regional fill (without comments)."""
    return render_file(Node("", [fill_node(fill)]))
