"""The demo's last steps: production scoring into the decision log, then the effectiveness review
of one sample profile and the KPI report (``docs/effectiveness.md``, ``docs/kpi.md``).

Every demo declaration of the review year is scored with the sample profiles on its own date, with
its history read from the store (preloaded once per profile), as a clearance system would have
scored it, and recorded in ``decision_log`` under the revision :data:`REVISION`. A second demo run
records nothing new (a decision is keyed by declaration id and revision).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

if TYPE_CHECKING:
    from riskengine.declaration import Declaration
    from riskengine.evaluator import Engine

__all__ = ["REVIEWED", "REVIEW_END", "REVIEW_START", "REVISION", "LoggedSummary", "log_decisions"]

#: The bundle revision the demo's decisions are recorded under.
REVISION = "demo-sample-profiles"
#: The profile the demo reviews (undervaluation of footwear and textiles) and the period.
REVIEWED = "2A/08/2013/00117-04"
REVIEW_START = dt.date(2025, 1, 1)
REVIEW_END = dt.date(2025, 12, 31)


@attrs.frozen
class LoggedSummary:
    """What the decision-log step did."""

    scored: int
    fired: int
    written: int
    duplicates: int


def log_decisions(
    store: sa.Engine,
    engine: Engine,
    declarations: Iterable[Declaration],
    spool: Path,
    start: dt.date = REVIEW_START,
    end: dt.date = REVIEW_END,
) -> LoggedSummary:
    """Score the declarations dated ``start`` .. ``end`` with ``engine`` (the sample profiles)
    and record every decision in the store's decision log."""
    from riskengine.decisionlog import DecisionLog
    from riskengine.evaluator.batching import gc_paused
    from riskengine.store.history import SqlHistoryProvider

    history = SqlHistoryProvider(store, cache=True)
    for compiled in engine.profiles:
        history.preload(compiled.profile)
    scored = fired = 0
    with DecisionLog(engine=store, spool=spool, revision=REVISION) as log, gc_paused():
        for declaration in declarations:
            day = declaration.header["date"]
            if not start <= day <= end:
                continue
            result = engine.score(declaration, day, history=history)
            log.record(result, declaration)
            scored += 1
            fired += bool(result.fired)
        log.flush()
    stats = log.stats()
    return LoggedSummary(scored, fired, stats.written, stats.duplicates)
