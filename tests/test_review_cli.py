"""``riskengine review report``: the text a reviewer reads, the HTML page (self-contained,
escaped, laid out in headless Chromium at 1,280 and 640 px), and clear errors. The store is the
hand-made one of tests/test_effectiveness.py; the figures are worked out there."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.store import migrate
from tests.test_effectiveness import P, write_review_store
from tests.test_report_browser import _chromium, _probe

PERIOD = ["--from", "2025-01-01", "--to", "2025-03-31"]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("review")
    url = f"sqlite:///{folder / 'review.db'}"
    migrate.init(url)
    engine = sa.create_engine(url)
    write_review_store(engine)
    engine.dispose()
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["review", "report", *args])
    return result.exit_code, result.stdout, result.stderr


def test_report_text(url: str) -> None:
    code, out, _ = run(P, *PERIOD, "--db", url)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == (
        "Effectiveness review of 1A/01/2025/00001-01, 2025-01-01 .. 2025-03-31 (90 days)"
    )
    # 4 of 8 declarations; forms on 3, carried out on 2; 2 hits of 3 controlled; random 1 of 2;
    # revenue 1,000 + 200; 2 of the 5 detections; D2 shared with Q
    for expected in [
        "fired on 4 of 8 declarations scored (50.0 %); bundle revisions: r1, r2",
        "controls ordered on 3 of them, carried out on 2 (66.7 %)",
        "controlled at its order: 3 declarations, 2 with a violation: hit rate 66.7 % "
        "[20.8–93.9] (2/3)",
        "random controls: hit rate 50.0 % [9.5–90.5] (1/2)",
        "revenue: 1,200 UAH; detection share: 40.0 % of 5 declarations where a violation was found",
        "overlap: 1 of its 4 selections (25.0 %) were also selected by 2B/02/2025/00002-01 (1)",
        "missed by its forms: 1; controlled at its order without a logged firing: 1",
        "degrees: 40 × 1, 55 × 1, 75 × 1, 100 × 1",
        "Recommendation: keep",
    ]:
        assert expected in lines, expected
    # the tables: forms, offices, months (a row's figures in order)
    assert re.search(r"^102\s+mandatory\s+3\s+2$", out, re.M)
    assert re.search(r"^201\s+if necessary\s+1\s+0$", out, re.M)
    assert re.search(r"^office B\s+4\s+2\s+1\s+0\s+0\s+0\s+—\s+100 % \[20\.7–100\] \(1/1\)", out,
                     re.M)  # fmt: skip
    assert re.search(r"^2025-03\s+3\s+1\s+1\s+0\s+1\s+1\s+100 %", out, re.M)
    # the three questions: 3 controls are too few to judge
    assert any(
        line.startswith("1. Did applying the profile bring the expected results? cannot tell yet")
        for line in lines
    )
    rule = (
        "   too-few-controls → keep: only 3 declarations were controlled at its order: too few "
        "to judge its hit rate; review it again after a longer period"
    )
    assert rule in lines
    assert "not which indicators were true" in out


def test_rules_of_ones_own(url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nid = "busy"\nrecommendation = "narrow"\nwhen = ["selectivity >= 50"]\n'
        'reason = "selects {selectivity} % of the declarations"\n',
        encoding="utf-8",
    )
    code, out, _ = run(P, *PERIOD, "--db", url, "--rules", str(rules))
    assert code == 0, out
    assert "   busy → narrow: selects 50 % of the declarations" in out.splitlines()
    assert out.rstrip().endswith("Recommendation: narrow")


def test_errors_are_clear(url: str, tmp_path: Path) -> None:
    code, _, err = run(P, "--from", "2025-03-31", "--to", "2025-01-01", "--db", url)
    assert code == 2 and "--to 2025-01-01 is before --from 2025-03-31" in err
    code, _, err = run(P, "--from", "2025-13-01", "--to", "2025-12-31", "--db", url)
    assert code == 2 and "expected a date YYYY-MM-DD" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\nrecommendation = "wait"\nreason = "r"\n', encoding="utf-8")
    code, out, err = run(P, *PERIOD, "--db", url, "--rules", str(bad))
    assert code == 1 and "recommendation must be one of keep, widen" in err and out == ""
    sample = Path(__file__).resolve().parents[1] / "profiles" / "drug_precursors.rp"
    code, out, err = run(P, *PERIOD, "--db", url, "--profile", str(sample))
    assert code == 1 and f"{sample} has no profile {P}" in err and out == ""
    code, _, err = run(P, *PERIOD, "--db", str(tmp_path / "none.db"))
    assert code == 1 and "riskengine db init" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def page(url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review-html") / "review.html"
    code, text, _ = run(P, *PERIOD, "--db", url, "--html", str(out))
    assert code == 0 and f"wrote {out}" in text
    return out


def test_page_is_self_contained_and_escaped(page: Path, url: str, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<svg" in text
    hostile = tmp_path / "hostile.html"
    code, _, _ = run('<b onmouseover="x">&</b>', *PERIOD, "--db", url, "--html", str(hostile))
    assert code == 0
    page_text = hostile.read_text(encoding="utf-8")
    assert "<b onmouseover" not in page_text
    assert "&lt;b onmouseover=&quot;x&quot;&gt;&amp;&lt;/b&gt;" in page_text


@pytest.mark.parametrize("width", [1280, 640])
def test_page_in_chromium(page: Path, tmp_path: Path, width: int) -> None:
    _chromium()
    layout, dom = _probe(page, tmp_path, width)
    assert layout["view"] <= width and layout["measured"] > 50
    assert layout["problems"] == [], layout["problems"]
    body = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    assert "Recommendation: keep" in body
    assert "1. Did applying the profile bring the expected results?" in body
    assert "hit rate 66.7 % [20.8–93.9] (2/3)" in body
    for heading in ("Control forms", "By office", "By month (trend)", "Per indicator"):
        assert heading in body


def test_the_same_report_on_every_backend(store: sa.Engine, store_url: str) -> None:
    write_review_store(store)
    code, out, err = run(P, *PERIOD, "--db", store_url)
    assert code == 0, err
    lines = out.splitlines()
    # the figures of tests/test_effectiveness.py, whatever the backend
    assert "fired on 4 of 8 declarations scored (50.0 %); bundle revisions: r1, r2" in lines
    assert "random controls: hit rate 50.0 % [9.5–90.5] (1/2)" in lines
    assert "missed by its forms: 1; controlled at its order without a logged firing: 1" in lines
    assert lines[-1] == "Recommendation: keep"
