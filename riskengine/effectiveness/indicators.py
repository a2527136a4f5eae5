"""Per-indicator firing for a review, from the profile's text: the decision log does not record
which indicators were true, so the profile is backtested over the review's period on the stored
declarations (``riskengine.backtest``, per-indicator counts) and the counts are shown beside the
log's figures, labelled as a simulation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from riskengine.effectiveness.results import EffectivenessError, IndicatorFiring, matcher
from riskengine.store.schema import StoreTables

__all__ = ["IndicatorFiring", "indicator_firing"]


def indicator_firing(
    conn: sa.Connection,
    tables: StoreTables,
    profile_file: str | Path,
    number: str,
    start: dt.date,
    end: dt.date,
) -> IndicatorFiring:
    """Backtest the profile ``number`` of ``profile_file`` (a file or folder of profiles) over
    ``start`` .. ``end`` with per-indicator counts; nothing is recorded in the store."""
    from riskengine.backtest.run import BacktestOptions, planned_from, run_backtest
    from riskengine.checks import load_checked
    from riskengine.store.source import native_source

    wanted, every = matcher(number)
    path = Path(profile_file)
    files = sorted(path.rglob("*.rp")) if path.is_dir() else [path]
    if not files:
        raise EffectivenessError(f"{path} holds no profile (*.rp)")
    checked = load_checked(files, tables.catalogue)
    planned = [
        pp
        for pp in planned_from(checked)
        if pp.key == wanted
        or (every and pp.key.startswith(wanted + "-"))
        or str(pp.profile.number or "") == wanted
    ]
    if not planned:
        raise EffectivenessError(f"{profile_file} has no profile {wanted}")
    if len(planned) > 1:
        keys = ", ".join(pp.key for pp in planned)
        raise EffectivenessError(f"{profile_file} has several profiles {wanted}: {keys}")
    options = BacktestOptions(start, end, indicators=True)
    result = run_backtest(conn, native_source(tables), planned, options, record=False)
    (figures,) = result.profiles
    return IndicatorFiring(
        source=str(profile_file),
        key=figures.key,
        name=figures.name,
        considered=result.considered,
        selected=figures.total.selected,
        counts=tuple((c.name, c.declarations, c.items) for c in figures.indicators),
    )
