"""The pipeline fuzzer, bounded: every profile that ``check`` accepts runs on every backend.

150 mutated profiles (``benchmarks/fuzz_pipeline.py``; the long run is the script itself, 10,000
profiles) through check, compile, scoring (fast and explaining paths) and a backtest on SQLite,
DuckDB and PostgreSQL over two small stores (edge values such as 1.4 / 1.4 and 4,199,999.99 /
10,000, 10,000-character descriptions, missing fields; and 1e308 / 0.1, 1e39, 1e-300). Each
profile must be rejected by check with located errors, or run everywhere with the evaluator's
figures (or take the Python fallback with a stated reason). The failure message lists every
class of finding with a repro.

More profiles: ``RISKENGINE_FUZZ_PROFILES=1000``; another seed: ``RISKENGINE_FUZZ_SEED``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from fuzz_cases import BACKENDS
from fuzz_pipeline import format_report, fuzz

from tests.conftest import _pg_problem, require_postgresql

COUNT = int(os.environ.get("RISKENGINE_FUZZ_PROFILES", "150"))
SEED = int(os.environ.get("RISKENGINE_FUZZ_SEED", "20261206"))


@pytest.mark.sqlite
@pytest.mark.duckdb
@pytest.mark.postgresql
def test_every_profile_check_accepts_runs_on_every_backend() -> None:
    backends = list(BACKENDS)
    if _pg_problem() is not None:
        require_postgresql()  # fails in CI, skips elsewhere
    report = fuzz(COUNT, SEED, backends, timeout=5.0, batch=25, minimize=False)
    assert report.cases == COUNT
    # the mutations must reach every stage: some rejected, most run everywhere
    assert report.rejected > 0
    assert not report.classes, format_report(report)
    assert report.ok > COUNT // 3, format_report(report)
