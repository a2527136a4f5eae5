"""``backtest --compare`` of a profile with its own earlier version: same number or same draft
name on both sides just works, the compared side named by its file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from riskengine import demo
from riskengine.cli import cli
from riskengine.store.engine import connect

ROOT = Path(__file__).resolve().parents[1]
FOOTWEAR = ROOT / "profiles" / "undervaluation_footwear_textiles.rp"
KEY = "2A/08/2013/00117-04"
PERIOD = ("--from", "2024-01-01", "--to", "2025-12-31", "--no-record")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env={"NO_COLOR": "1"})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("compare") / "demo.db"
    engine = connect(f"sqlite:///{path}")
    demo.write_demo(engine, 1500, seed=1)
    engine.dispose()
    return str(path)


def test_a_numbered_profile_against_its_unchanged_copy(store: str, tmp_path: Path) -> None:
    old = tmp_path / "old.rp"
    shutil.copy(FOOTWEAR, old)
    done = run("backtest", FOOTWEAR, "--compare", old, "--db", store, *PERIOD, "--format", "json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    keys = [p["key"] for p in result["profiles"]]
    assert keys == [KEY, f"{KEY} ({old})"]
    first, second = result["profiles"]
    assert first["total"] == second["total"] and first["sha256"] == second["sha256"]
    (cmp,) = result["comparisons"]
    assert (cmp["a"], cmp["b"]) == (KEY, f"{KEY} ({old})")
    assert cmp["newly_selected"] == 0 and cmp["no_longer_selected"] == 0
    assert all(delta in (0, 0.0) for _, _, delta in cmp["deltas"].values())


def test_a_draft_against_its_edited_version_and_a_file_against_itself(
    store: str, tmp_path: Path
) -> None:
    text = FOOTWEAR.read_text(encoding="utf-8")
    start = text.index("profile 2A/08/2013/00117-04")
    draft = text[:start] + 'profile draft "Footwear draft"' + text[text.index(" {", start) :]
    draft = "\n".join(
        ln
        for ln in draft.splitlines()
        if not ln.lstrip().startswith(("approved", "edition", "in force"))
    )
    before = tmp_path / "before.rp"
    before.write_text(draft, encoding="utf-8")
    after = tmp_path / "after.rp"
    after.write_text(
        draft.replace("mandatory    from 40", "mandatory    from 25"), encoding="utf-8"
    )
    done = run("backtest", after, "--compare", before, "--db", store, *PERIOD, "--format", "json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    (cmp,) = result["comparisons"]
    assert (cmp["a"], cmp["b"]) == ("Footwear draft", f"Footwear draft ({before})")
    new, old = (p["total"]["selected"] for p in result["profiles"])
    assert cmp["newly_selected"] == new - old > 0 and cmp["no_longer_selected"] == 0
    table = run("backtest", after, "--compare", before, "--db", store, *PERIOD)
    assert f"│ Footwear draft ({before}) " in table.output
    same = run("backtest", after, "--compare", after, "--db", store, *PERIOD, "--format", "json")
    assert same.exit_code == 0, same.output
    assert [p["key"] for p in json.loads(same.output)["profiles"]] == [
        "Footwear draft",
        f"Footwear draft ({after})",
    ]
