"""riskengine: customs risk profiles as a small language, compiled into a Python evaluator and
into SQL backtests over a store on SQLite, PostgreSQL or DuckDB."""

from importlib import metadata as _metadata

__all__ = ["__version__"]

try:
    #: The installed version (``riskengine --version`` prints the same).
    __version__: str = _metadata.version("riskengine")
except _metadata.PackageNotFoundError:  # pragma: no cover - an unpacked, uninstalled tree
    __version__ = "0+unknown"
