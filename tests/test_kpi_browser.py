"""The KPI report's HTML page opened in headless Chromium at 1,280 and 640 px: what it shows
(read from ``--dump-dom``), nothing wider than its container, nothing fetched from outside, every
passport text escaped. The browser tests are skipped without Chromium, except in CI
(``CI=true``) where they fail."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.store import migrate
from tests.test_kpi import GOOD
from tests.test_kpi_metrics import write_kpi_store
from tests.test_report_browser import _chromium, _probe


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kpi-html")
    url = f"sqlite:///{folder / 'kpi.db'}"
    migrate.init(url)
    engine = sa.create_engine(url)
    write_kpi_store(engine)
    engine.dispose()
    kpis = folder / "kpis"
    kpis.mkdir()
    (kpis / "green.toml").write_text(GOOD, encoding="utf-8")
    # a name with markup and a very long unbroken word: escaped, and wrapped in its cell
    hostile = (
        GOOD.replace('id = "green"', 'id = "aeo"')
        .replace('name = "Green corridor"',
                 'name = "<script>alert(1)</script> AEO & co ' + "x" * 120 + '"')
        .replace('metric = "corridor_share"\ncorridor = "green"',
                 'metric = "aeo_share"\nweight = "customs_value"')
    )  # fmt: skip
    (kpis / "hostile.toml").write_text(hostile, encoding="utf-8")
    out = folder / "kpi.html"
    result = CliRunner().invoke(
        cli,
        ["kpi", "report", "--db", url, "--year", "2025", "--by", "office",
         "--passports", str(kpis), "--html", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    return out


def test_page_is_self_contained_and_escaped(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text  # the passport's <script> is text, and the page has none
    assert "&lt;script&gt;alert(1)&lt;/script&gt; AEO &amp; co" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<svg" in text


@pytest.mark.parametrize("width", [1280, 640])
def test_page_in_chromium(page: Path, tmp_path: Path, width: int) -> None:
    _chromium()
    layout, dom = _probe(page, tmp_path, width)
    assert layout["view"] <= width and layout["measured"] > 50
    assert layout["problems"] == [], layout["problems"]
    # what a reader sees: the seeds' columns, the figures and the totals, per office
    body = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    for heading in ("KPI", "Indicator", "Baseline", "Target", "Actual", "Unit", "Source",
                    "Periodicity", "Score"):  # fmt: skip
        assert f" {heading} " in body
    assert "KPI report 2025" in body
    assert "Totals by office" in body
    assert "Office A" in body and "Office B" in body
    # green 16.7 % and AEO 5.0 % of the customs value, both against 40: 1 point each
    assert "total (all offices): 2 / (5 × 2) = 0.20 (20 %)" in body
    assert re.search(r"40\.0 \(normative\)\s+16\.7", body)
    assert "<script>alert(1)</script> AEO & co" in body
