"""The bundle's error."""

from __future__ import annotations

from riskengine.diagnostics import RiskEngineError

__all__ = ["BundleError"]


class BundleError(RiskEngineError):
    """A bundle that cannot be built, read, verified or loaded; ``member`` names the member
    concerned when there is one (``manifest.json`` for the signature)."""

    def __init__(self, message: str, member: str | None = None) -> None:
        self.member = member
        super().__init__(message)
