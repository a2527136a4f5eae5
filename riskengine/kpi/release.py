"""Release time: hours from lodgement to release (placeholder until the timestamps exist)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from riskengine.kpi.metrics import Measure, MetricNotAvailable
from riskengine.kpi.periods import Period
from riskengine.store.schema import StoreTables


def release_time(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    office: str | None,
    params: Mapping[str, Any],
) -> Measure:
    raise MetricNotAvailable("not available yet: the store holds no release timestamps")
