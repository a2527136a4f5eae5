"""Renderers that turn the model into documents for people: the passport in Markdown and HTML."""

from riskengine.render.passport import (
    FORMATS,
    LANGUAGES,
    passport_blocks,
    render,
    render_fill,
    render_profile,
)

__all__ = [
    "FORMATS",
    "LANGUAGES",
    "passport_blocks",
    "render",
    "render_fill",
    "render_profile",
]
