"""The decision log: every production scoring recorded in the store (``decision_log``), batched
by a background writer, spooled to a local file while the store is away and replayed when it is
back, idempotent per (declaration id, bundle revision). See ``docs/production.md``.

    log = DecisionLog("postgresql://…/customs", spool="/var/lib/riskengine/decisions.jsonl",
                      revision=bundle_revision)
    result = engine.score(declaration)
    log.record(result, declaration)    # no I/O on the scoring thread
    …
    log.close()                        # everything in the store or fsync'd in the spool
"""

from riskengine.decisionlog.log import DecisionBatch, DecisionLog, LogFull, LogStats
from riskengine.decisionlog.record import COLUMNS, DecisionRecord, RecordError
from riskengine.decisionlog.sink import StoreSink
from riskengine.decisionlog.spool import Spool, SpoolError

__all__ = [
    "COLUMNS",
    "DecisionBatch",
    "DecisionLog",
    "DecisionRecord",
    "LogFull",
    "LogStats",
    "RecordError",
    "Spool",
    "SpoolError",
    "StoreSink",
]
