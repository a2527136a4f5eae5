"""The backtest report opened in a real browser: headless Chromium at 1,280 px and printed to PDF.

A small script is injected into a copy of the generated report; it measures the laid-out page
(every element against its container, every HIGH badge against whatever could clip it, every
profile number on one line) and writes what it found into the page, which ``--dump-dom``
returns. The same report is printed with ``--print-to-pdf`` and its pages are counted.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). Without it the test is
skipped, except in CI (``CI=true``) where it fails.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from riskengine.cli import cli

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
#: A4 landscape less the report's @page margins (297 mm - 2 x 12 mm) in CSS pixels.
PRINT_WIDTH = round((297 - 24) / 25.4 * 96)


def _chromium() -> str:
    found = os.environ.get("RISKENGINE_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    if found is None:
        problem = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem + ": CI must render the report in a browser", pytrace=False)
        pytest.skip(problem)
    return found


def _run_chromium(args: list[str], profile_dir: Path) -> str:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile_dir}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# The measurement, run in the page once it is laid out. `problems` lists everything that does
# not fit; the other keys say what was measured, so that an empty list cannot pass by accident.
_PROBE = r"""
<script>
(function () {
  const problems = [];
  const view = document.documentElement.clientWidth;
  function describe(el) {
    const parts = [];
    for (let e = el; e && e.nodeType === 1 && parts.length < 4; e = e.parentElement) {
      const cls = typeof e.className === "string" && e.className.trim()
        ? "." + e.className.trim().split(/\s+/).join(".") : "";
      parts.unshift(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + cls);
    }
    return parts.join(" > ") + ' "' + (el.textContent || "").trim().slice(0, 50) + '"';
  }
  function scrolls(el) {
    const o = getComputedStyle(el).overflowX;
    return o === "auto" || o === "scroll";
  }
  const page = document.documentElement.scrollWidth;
  if (page > view + 1) problems.push("the page scrolls sideways: " + page + " > " + view + " px");
  const scrolling = [];
  let measured = 0;
  for (const el of document.body.querySelectorAll("*")) {
    if (el.tagName.toLowerCase() === "script") continue;
    if (el.closest("svg") && el.tagName.toLowerCase() !== "svg") continue;
    const style = getComputedStyle(el);
    if (style.display === "none") continue;
    measured += 1;
    if (scrolls(el)) {
      if (el.scrollWidth > el.clientWidth + 1) scrolling.push(describe(el));
      continue;
    }
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      problems.push("content wider than its box (" + el.scrollWidth + " > " + el.clientWidth
        + " px): " + describe(el));
    }
    const parent = el.parentElement;
    if (!parent || parent === document.body.parentElement) continue;
    const pstyle = getComputedStyle(parent);
    if (pstyle.display === "inline" || scrolls(parent)) continue;
    const r = el.getBoundingClientRect(), p = parent.getBoundingClientRect();
    if (r.width > 0 && (r.right > p.right + 1 || r.left < p.left - 1)) {
      problems.push("wider than its container (" + Math.round(r.left) + ".." + Math.round(r.right)
        + " in " + Math.round(p.left) + ".." + Math.round(p.right) + "): " + describe(el));
    }
  }
  const badges = document.querySelectorAll(".flag");
  for (const badge of badges) {
    const r = badge.getBoundingClientRect();
    if (r.width === 0 || r.left < 0 || r.right > view) {
      problems.push("HIGH badge off the page: " + describe(badge));
    }
    if (badge.scrollWidth > badge.clientWidth + 1 || badge.scrollHeight > badge.clientHeight + 1) {
      problems.push("HIGH badge text cut: " + describe(badge));
    }
    for (let e = badge.parentElement; e && e !== document.body; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.overflowX === "visible" && s.overflowY === "visible") continue;
      const b = e.getBoundingClientRect();
      if (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5
          || r.bottom > b.bottom + 0.5) {
        problems.push("HIGH badge clipped by " + describe(e));
      }
    }
  }
  const keys = document.querySelectorAll(".key");
  for (const key of keys) {
    if (key.getClientRects().length !== 1) {
      problems.push("profile number broken over lines: " + describe(key));
    }
  }
  const headings = Array.from(document.querySelectorAll("h2, h3"));
  const out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({
    view: view,
    measured: measured,
    problems: problems,
    scrolling: scrolling,
    badges: badges.length,
    keys: keys.length,
    first_h2: (document.querySelector("h2") || {}).textContent,
    break_after: Array.from(new Set(headings.map(h => getComputedStyle(h).breakAfter))),
    head_break_inside: Array.from(new Set(Array.from(
      document.querySelectorAll(".profile-head")).map(h => getComputedStyle(h).breakInside))),
  });
  document.body.appendChild(out);
})();
</script>
"""


def _measure(report: Path, tmp: Path, width: int, *, print_rules: bool = False) -> dict[str, Any]:
    """Lay the report out at ``width`` px and return what the probe found.

    ``print_rules`` applies the report's ``@media print`` rules on the screen (at the printed
    page's width), so that the printed layout is measured the same way.
    """
    return _probe(report, tmp, width, print_rules=print_rules)[0]


def _probe(
    report: Path, tmp: Path, width: int, *, print_rules: bool = False
) -> tuple[dict[str, Any], str]:
    """:func:`_measure`, and the DOM Chromium laid out (for what a reader sees)."""
    text = report.read_text(encoding="utf-8")
    if print_rules:
        assert "@media print" in text
        text = text.replace("@media print", "@media all")
    probe = tmp / f"{report.stem}-{width}{'-print' if print_rules else ''}.html"
    probe.write_text(text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    dom = _run_chromium(
        [f"--window-size={width},1000", "--dump-dom", probe.as_uri()], tmp / "chromium-profile"
    )
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-2000:]
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result, dom


def _pdf_pages(report: Path, tmp: Path) -> tuple[int, list[float]]:
    pdf = tmp / f"{report.stem}.pdf"
    _run_chromium(
        ["--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri()],
        tmp / "chromium-profile",
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert box is not None
    return pages, [float(x) for x in box.groups()]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's own report, and a backtest of the same store with a low HIGH threshold (so
    that the summary has HIGH badges) broken down by office and regime."""
    _chromium()
    folder = tmp_path_factory.mktemp("browser")
    runner = CliRunner()
    demo = runner.invoke(cli, ["demo", "--dir", str(folder / "demo"), "--profiles", str(PROFILES)])
    assert demo.exit_code == 0, demo.output
    high = folder / "high.html"
    run = runner.invoke(
        cli,
        [
            "backtest", str(PROFILES), "--db", f"sqlite:///{folder / 'demo' / 'riskengine.db'}",
            "--from", "2024-01-01", "--to", "2025-12-31", "--by", "office,regime",
            "--high-selectivity", "1", "--html", str(high), "--no-record", "--format", "csv",
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    return {"demo": folder / "demo" / "backtest.html", "high": high}


@pytest.mark.parametrize("name", ["demo", "high"])
def test_at_1280_px_everything_fits_and_no_badge_is_clipped(
    reports: dict[str, Path], name: str, tmp_path: Path
) -> None:
    found = _measure(reports[name], tmp_path, 1280)
    assert found["view"] == 1280
    assert found["measured"] > 1000  # the whole report was laid out and looked at
    assert found["problems"] == []
    assert found["scrolling"] == []  # at 1,280 px no table even needs its scroll box
    assert found["badges"] > 0
    assert found["keys"] >= 27  # each profile number: in the summary, its heading, its passport
    assert found["first_h2"] == "Summary"


def test_a_narrow_window_scrolls_the_tables_in_their_boxes_not_the_page(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    found = _measure(reports["high"], tmp_path, 640)
    # a badge in a table wider than the window is reached by scrolling that table's box
    assert [p for p in found["problems"] if not p.startswith("HIGH badge")] == []
    assert any("table#summary" in box or "summary" in box for box in found["scrolling"])


def test_the_printed_layout_fits_the_page_and_keeps_headings_with_what_follows(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    found = _measure(reports["high"], tmp_path, PRINT_WIDTH, print_rules=True)
    assert found["problems"] == []
    assert found["scrolling"] == []
    assert found["badges"] > 0
    assert found["break_after"] == ["avoid"]  # no heading ends a page
    assert found["head_break_inside"] == ["avoid"]  # a profile's heading stays with its numbers


@pytest.mark.parametrize("name", ["demo", "high"])
def test_printed_to_pdf_on_a4_landscape_in_a_reasonable_number_of_pages(
    reports: dict[str, Path], name: str, tmp_path: Path
) -> None:
    pages, box = _pdf_pages(reports[name], tmp_path)
    width, height = box[2] - box[0], box[3] - box[1]
    assert abs(width - 842) < 2 and abs(height - 595) < 2  # A4 landscape, in points
    # nine profiles with two breakdowns each: the summary, then about two pages a profile
    assert 9 <= pages <= 24, pages
