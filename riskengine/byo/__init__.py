"""Bring your own tables: history and backtests on a customs service's existing schema.

:mod:`~riskengine.byo.mapping` reads the mapping file (which table and column plays which role);
:mod:`~riskengine.byo.source` checks it against the database and builds the
:class:`~riskengine.store.source.StoreSource` that history and backtests query. The data is
never copied.
"""

from riskengine.byo.mapping import ByoMapping, load_byo_mapping, parse_byo_mapping
from riskengine.byo.source import build_source, load_source

__all__ = ["ByoMapping", "build_source", "load_byo_mapping", "load_source", "parse_byo_mapping"]
