"""Drafts and bundles where a development set is loaded from files.

A draft (``profile draft "…"``: no number) is scored only for development: ``ProfileSet.load``
refuses one unless the caller passes ``allow_drafts=True``. A bundle (docs/bundle.md) given
where profile files are expected is named as such: it is loaded with its public key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from riskengine import model as m
from riskengine.diagnostics import RiskEngineError

__all__ = ["DraftError", "drafts_of", "refuse_bundle_path", "refuse_drafts"]


class DraftError(RiskEngineError):
    """Drafts in a set loaded without ``allow_drafts``: ``drafts`` lists ``(file, line, name)``."""

    def __init__(self, drafts: Sequence[tuple[str, int, str]]) -> None:
        self.drafts = tuple(drafts)
        where = "; ".join(f'{file}:{line}: profile draft "{name}"' for file, line, name in drafts)
        many = "is a draft" if len(drafts) == 1 else f"are {len(drafts)} drafts"
        super().__init__(
            f"{where} {many} (no number): a draft is scored only for development — pass "
            "allow_drafts=True (the riskengine commands score, test and demo do, and say so); "
            "the clearance software loads the approved set from a signed bundle (docs/bundle.md)"
        )


def drafts_of(files: Iterable[m.SourceFile]) -> list[tuple[str, int, str]]:
    """``(file, line, name)`` of every draft (a profile without a number) in ``files``."""
    return [(sf.path, p.span.line, p.name) for sf in files for p in sf.profiles if p.number is None]


def refuse_drafts(files: Iterable[m.SourceFile]) -> None:
    """A :class:`DraftError` when ``files`` hold a draft."""
    found = drafts_of(files)
    if found:
        raise DraftError(found)


#: The first bytes of a zip file: a bundle (docs/bundle.md).
_ZIP_MAGIC = b"PK\x03\x04"


def refuse_bundle_path(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> None:
    """A clear error when a bundle is given where profile files are expected (its public key
    is needed to load it)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    elif not isinstance(paths, list | tuple):
        return
    for raw in paths:
        p = Path(raw)
        try:
            with p.open("rb") as stream:
                head = stream.read(4)
        except OSError:
            continue  # a folder, or missing: reported by the reading as before
        if head == _ZIP_MAGIC:
            raise RiskEngineError(
                f"{p} is a bundle, not a profile file: load it with its public key, "
                f"Engine.load({str(p)!r}, public_key=...) or ProfileSet.from_bundle"
            )
