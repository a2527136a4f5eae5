"""Golden files: the sample profiles' scores, explanations and backtest figures must not change.

The files under ``tests/golden_semantics/`` were written by the code before the semantics core was
rewritten (issue 10); this test recomputes everything on the same reproducible demo data and
compares. What is compared is what a user sees:

* ``scores.jsonl``: every demo declaration scored by the evaluator with the sample profiles (and
  their regional fills), history read from the store: the JSON record of ``riskengine score``
  (fired profiles, degrees, controls, lane, messages, items);
* ``explanations.txt``: the rendered explanations (``riskengine score --explain``) of the fired
  profiles of every selected declaration, and of every profile in force for every 100th one;
* ``backtest.json``: the figures of ``riskengine backtest --format json`` (per profile: selected,
  selectivity, hits, hit rate, revenue, breakdowns by office and regime, the monthly series) on
  SQLite; the same figures are asserted on PostgreSQL and DuckDB.

The data comes from the command line (``riskengine demo-data`` with a fixed seed), the backtest
too; scoring uses the public ``riskengine.evaluator.Engine`` with the store's history provider.

To regenerate after an *intended* change (never in CI)::

    RISKENGINE_REGEN_GOLDEN=1 python3 -m pytest tests/test_semantics_golden.py -k sqlite

and review the diff of ``tests/golden_semantics/`` before committing it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden_semantics"
PROFILES = ROOT / "profiles"

SEED = 7
#: First part: demo declarations with their outcomes and controls, over half a year, so that
#: traders come back often enough for history to count.
DECLARATIONS = 2000
START, END = "2024-01-01", "2024-06-30"
#: Second part: demo declarations while the regional fills are valid (2026-07-01 .. 2026-12-31),
#: every 5th moved to an office with fills and given a monitored heading, origin and unit price
#: (see ``_regional``); ingested as declarations only (no outcomes).
REGIONAL_DECLARATIONS = 1000
REGIONAL_START, REGIONAL_END = "2026-07-01", "2026-12-31"
FILL_OFFICES = ("UA500110", "UA100110")
HEADINGS = ("8418", "8450", "8516", "8528")
#: UAH per kg: at, below, at half of, just above and well above the ceilings (185.50 / 160).
UNIT_PRICES = (None, 185.5, 120.0, 92.75, 60.0, 185.51, 300.0, 160.0, 80.0)
ORIGINS = ("CN", "TR", "KR", "DE")
EXPLAIN_EVERY = 100
#: Run-specific fields of the backtest JSON (not figures).
_RUN_FIELDS = ("seconds", "run_id", "engine")
#: Per-profile fields that say how a figure was computed, not what it is (SQL or fallback).
_HOW_FIELDS = ("path", "reason")


def _regenerating() -> bool:
    if os.environ.get("RISKENGINE_REGEN_GOLDEN", "") not in ("", "0"):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("RISKENGINE_REGEN_GOLDEN must not be used in CI", pytrace=False)
        return True
    return False


def _cli(*args: str) -> str:
    """Run ``python -m riskengine ARGS`` from this source tree; its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "riskengine", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, f"riskengine {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _demo_args(count: int = DECLARATIONS, start: str = START, end: str = END) -> list[str]:
    return ["demo-data", "-n", str(count), "--seed", str(SEED), "--start", start, "--end", end,
            "-q"]  # fmt: skip


def _regional(source: Path, target: Path) -> None:
    """Rewrite demo declarations (JSON Lines) so that the regional profile has work: every 5th
    goes to an office with fills, its first item gets a monitored heading, an origin and a unit
    price from the cycles above (customs value rounded to kopecks)."""
    lines = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines()):
        decl = json.loads(line)
        items = decl.get("items") or []
        if number % 5 == 0 and items and items[0].get("net_mass"):
            k = number // 5
            decl["office"] = FILL_OFFICES[k % len(FILL_OFFICES)]
            item = items[0]
            item["hs_code"] = HEADINGS[k % len(HEADINGS)] + item["hs_code"][4:]
            item["origin"] = ORIGINS[k % len(ORIGINS)]
            price = UNIT_PRICES[k % len(UNIT_PRICES)]
            if price is not None:
                item["customs_value"] = round(item["net_mass"] * price, 2)
        lines.append(json.dumps(decl, ensure_ascii=False))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _declarations(folder: Path) -> Path:
    """The JSON Lines of both parts, in one file."""
    first, raw, second = folder / "first.jsonl", folder / "raw.jsonl", folder / "second.jsonl"
    _cli(*_demo_args(), "--jsonl", str(first))
    _cli(*_demo_args(REGIONAL_DECLARATIONS, REGIONAL_START, REGIONAL_END), "--jsonl", str(raw))
    _regional(raw, second)
    both = folder / "declarations.jsonl"
    both.write_text(
        first.read_text(encoding="utf-8") + second.read_text(encoding="utf-8"), encoding="utf-8"
    )
    return both


def _store(url: str, folder: Path) -> None:
    """Fill the store at ``url``: the first part with outcomes and controls, then the second."""
    _cli(*_demo_args(), "--url", url)
    second = folder / "second.jsonl"
    if not second.exists():
        _declarations(folder)
    _cli("ingest", str(second), "--url", url, "--rejects", str(folder / "rejects.csv"))


def _backtest(url: str) -> dict[str, Any]:
    out = _cli("backtest", str(PROFILES), "--db", url, "--from", START, "--to", REGIONAL_END,
               "--by", "office,regime", "--format", "json", "--no-record")  # fmt: skip
    data: dict[str, Any] = json.loads(out)
    for name in _RUN_FIELDS:
        data.pop(name, None)
    for profile in data["profiles"]:
        for name in _HOW_FIELDS:
            profile.pop(name, None)
    data["profiles"].sort(key=lambda p: p["key"])
    return data


def _score(url: str, jsonl: Path) -> tuple[list[str], list[str]]:
    """Score every declaration of ``jsonl`` with history from the store at ``url``: the JSON
    records (one line each) and the explanation blocks."""
    from riskengine.declaration import normalise_declaration
    from riskengine.evaluator import Engine
    from riskengine.store.engine import connect
    from riskengine.store.history import SqlHistoryProvider

    engine = Engine.load([PROFILES])
    store = connect(url)
    history = SqlHistoryProvider(store, cache=True)
    records: list[str] = []
    explained: list[str] = []
    try:
        for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines()):
            decl = normalise_declaration(json.loads(line), engine.profiles.catalogue)
            day = decl.header["date"]
            assert isinstance(day, dt.date)
            result = engine.score(decl, day, history=history)
            record = result.to_dict(explanations=False)
            records.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
            if result.selected or number % EXPLAIN_EVERY == 0:
                why = engine.score(decl, day, explain=True, history=history)
                # The explaining path must reach the same result as the fast one.
                assert why.to_dict(explanations=False) == record, record["id"]
                explained.append(f"=== declaration {record['id']} as of {record['as_of']}: "
                                 f"lane {record['lane']}")  # fmt: skip
                for e in why.explanations:
                    if not e.fired and number % EXPLAIN_EVERY:
                        continue
                    explained.append(f"--- {e.key}: applies {e.applies}, fired {e.fired}")
                    explained.append(e.render())
    finally:
        store.dispose()
    return records, explained


def _compare_lines(name: str, blocks: list[str]) -> None:
    """Compare ``blocks`` (joined by newlines) with the golden file ``name``, line by line; the
    failure names the first differing line and the declaration it belongs to."""
    path = GOLDEN / name
    text = "\n".join(blocks) + "\n"
    if _regenerating():
        path.write_text(text, encoding="utf-8")
        return
    actual = text.splitlines()
    expected = path.read_text(encoding="utf-8").splitlines()
    context = ""
    for number, (got, want) in enumerate(zip(actual, expected, strict=False), 1):
        if want.startswith(("===", '{"')):
            context = want[:120]
        assert got == want, f"{name}:{number} differs from the golden file (in {context})"
    assert len(actual) == len(expected), f"{name}: {len(actual)} lines, golden {len(expected)}"


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("golden")


@pytest.fixture(scope="module")
def declarations(data_folder: Path) -> Path:
    return _declarations(data_folder)


@pytest.fixture(scope="module")
def sqlite_store(data_folder: Path, declarations: Path) -> str:
    url = f"sqlite:///{data_folder / 'store.db'}"
    _store(url, data_folder)
    return url


@pytest.mark.sqlite
def test_scores_and_explanations_unchanged(sqlite_store: str, declarations: Path) -> None:
    records, explained = _score(sqlite_store, declarations)
    assert len(records) == DECLARATIONS + REGIONAL_DECLARATIONS
    # The data must exercise the profiles: every one fires, history counts, fills apply.
    for key in _profile_keys():
        assert sum(f'"key": "{key}"' in r for r in records) > 0, f"{key} never fires"
    text = "\n".join(explained)
    assert "negative 0, positive 0" in text and "(1 record)" in text
    assert ": not completed (reasons " in text  # the records behind a history value are listed
    assert all(f"fill of office {office}" in text for office in FILL_OFFICES)
    _compare_lines("scores.jsonl", records)
    _compare_lines("explanations.txt", explained)


@pytest.mark.sqlite
def test_backtest_figures_unchanged_sqlite(sqlite_store: str) -> None:
    figures = _backtest(sqlite_store)
    path = GOLDEN / "backtest.json"
    if _regenerating():
        path.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", "utf-8")
        return
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert figures["considered"] == DECLARATIONS + REGIONAL_DECLARATIONS
    for got, want in zip(figures["profiles"], expected["profiles"], strict=True):
        assert got == want, f"backtest figures of {want['key']} changed: " + "; ".join(
            _differences(got, want)[:8]
        )
    assert figures == expected


@pytest.mark.duckdb
def test_backtest_figures_same_on_duckdb(data_folder: Path, declarations: Path) -> None:
    url = f"duckdb:///{data_folder / 'store.duckdb'}"
    _store(url, data_folder)
    _same_as_golden(_backtest(url))


@pytest.mark.postgresql
def test_backtest_figures_same_on_postgresql(
    data_folder: Path, declarations: Path, pg_schema: tuple[sa.URL, str]
) -> None:
    from tests.conftest import _pg_url

    url = _pg_url(*pg_schema)  # a fresh schema, dropped afterwards (conftest)
    _store(url, data_folder)
    _same_as_golden(_backtest(url))


def _same_as_golden(figures: dict[str, Any]) -> None:
    expected = json.loads((GOLDEN / "backtest.json").read_text(encoding="utf-8"))
    assert figures["considered"] == expected["considered"]
    for got, want in zip(figures["profiles"], expected["profiles"], strict=True):
        assert got == want, f"{want['key']} differs from SQLite's: " + "; ".join(
            _differences(got, want)[:8]
        )
    assert figures == expected


def _profile_keys() -> list[str]:
    keys = []
    for path in sorted(PROFILES.glob("*.rp")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("profile "):
                keys.append(line.split()[1])
    return keys


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two JSON values differ: ``path: got != want`` for each differing leaf."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for key in sorted(set(got) | set(want), key=str):
            out += _differences(got.get(key), want.get(key), f"{path}.{key}")
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        out = []
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            label = a[0] if isinstance(a, list) and a and isinstance(a[0], str) else index
            out += _differences(a, b, f"{path}[{label}]")
        return out
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]
