"""``riskengine backtest --memory-limit``: DuckDB runs under a memory cap with the same results;
other engines and sizes that are not sizes get a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskengine import demo
from riskengine.cli import cli
from riskengine.store import migrate
from riskengine.store.engine import connect

ROOT = Path(__file__).resolve().parents[1]
PROFILE = str(ROOT / "profiles" / "undervaluation_footwear_textiles.rp")
PERIOD = ["--from", "2024-01-01", "--to", "2025-12-31"]


def _backtest(url: str, *extra: str) -> tuple[int, str]:
    args = ["backtest", PROFILE, "--db", url, *PERIOD, "--format", "json", "--no-record"]
    run = CliRunner().invoke(cli, [*args, *extra])
    return run.exit_code, run.output


def test_a_capped_duckdb_backtest_gives_the_same_figures(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    migrate.init(url)
    engine = connect(url)
    try:
        demo.write_demo(engine, 600, seed=3)
    finally:
        engine.dispose()
    code, free = _backtest(url)
    assert code == 0, free
    code, capped = _backtest(url, "--memory-limit", "300MB")
    assert code == 0, capped
    a, b = json.loads(free), json.loads(capped)
    a.pop("seconds", None), b.pop("seconds", None)
    assert a["profiles"] == b["profiles"]
    assert a["profiles"][0]["total"]["considered"] == 600


@pytest.mark.parametrize(
    ("url", "limit", "message"),
    [
        ("sqlite:///{tmp}/store.db", "1GB", "--memory-limit applies to DuckDB stores only"),
        ("duckdb:///{tmp}/store.duckdb", "lots", "'lots' is not a size such as 450MB or 2GB"),
    ],
)
def test_a_memory_limit_that_cannot_apply_is_refused(
    tmp_path: Path, url: str, limit: str, message: str
) -> None:
    code, output = _backtest(url.format(tmp=tmp_path), "--memory-limit", limit)
    assert code == 2
    assert message in output
    assert "Traceback" not in output
