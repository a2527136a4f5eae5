"""History from the store: one subject on one date (online scoring), or a whole date range in one
set-based query (backtests). Both give the same numbers as the evaluator's in-memory provider.

The formula and its exact arithmetic are :mod:`riskengine.semantics.history` (docs/semantics.md
and docs/store.md): for a profile's ``history per S1, S2 over N days`` block, a declaration's
history counts the *events* of earlier declarations with the same subject:

* negative: every **non-completed clearance** (``clearance_outcomes.completed`` false) whose
  outcome ``date`` lies in ``[as_of - N days, as_of)`` counts per_case × the highest coefficient
  among its reason codes that the profile lists (0 when none is listed); the sum is capped at max;
* positive: every **clean control** (``control_results.violation_found`` false) whose ``date``
  lies in the same window counts step; the sum is capped at max.

The window uses the event's own date (the day the outcome or control was recorded), so nothing
dated on or after the declaration's date counts: no look-ahead.

Subject matching: header subject fields (``declaration.declarant.id``) must equal the earlier
declaration's; item subject fields (``item.hs_code[:4]``) must equal those of **some goods item**
of the earlier declaration, all item subject fields on the **same** item. An earlier declaration
counts once however many of its items match. A subject value that is missing gives 0 and 0.

Sums are exact: coefficients are scaled to integers (``0.8`` → ``8`` with scale 10), the database
adds integers, and the value is the exact ``min(max, per_case × units / scale)`` rounded once to
the evaluator's ``float`` -- in Python by the providers, in SQL by the same integer comparison and
one IEEE division (:func:`riskengine.semantics.history.weight_sql`).

Modules: :mod:`~riskengine.store.history.timeline` (the set-based query of a date range),
:mod:`~riskengine.store.history.online` (online scoring: :class:`StoreHistoryProvider`, one
compiled statement per lookup, a cache kept current), :mod:`~riskengine.store.history.changes`
(the writer's hook and PostgreSQL's notifications that keep caches current),
:mod:`~riskengine.store.history.lookup` (one subject; the first provider),
:mod:`~riskengine.store.history.subjects` (day numbers and subject fields in SQL).
"""

from riskengine.semantics.history import HistoryTerms
from riskengine.store.history.lookup import SqlHistoryProvider, lookup_history
from riskengine.store.history.online import StoreHistoryProvider
from riskengine.store.history.subjects import day_number
from riskengine.store.history.timeline import (
    RangeHistory,
    history_for_range,
    history_select,
    history_select_many,
)

__all__ = [
    "HistoryTerms",
    "RangeHistory",
    "SqlHistoryProvider",
    "StoreHistoryProvider",
    "day_number",
    "history_for_range",
    "history_select",
    "history_select_many",
    "lookup_history",
]
