"""``riskengine registry show NUMBER --format html``: the case file as a page, read as a user
reads it — in headless Chromium (its DOM after layout, its text, its layout at 1,280 and 640 px
and when printed, and a PDF).

The case file is made by the command line from a real registry history of a regional profile:
submitted, approved, clarified, amended to edition 02, suspended, resumed, filled twice (once
late), terminated. Its name, the clarified message and a suspension's reason hold markup
(``<script>``, ``<b>``), which must show as text and never run.

Chromium is Debian's ``chromium`` package; without it these tests are skipped, except in CI
(``CI=true``) where they fail (the helpers of ``test_report_browser.py``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from riskengine.cli import cli
from riskengine.registry.casefile import CaseFile
from riskengine.registry.casefile_html import diff_rows, render_html
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)
from tests.test_cli_registry import _session
from tests.test_report_browser import _chromium, _measure, _pdf_pages, _run_chromium

NUMBER = "1A/12/2025/00001"
NAME = 'Low unit prices <script>document.title="pwned"</script> & co'
#: A4 portrait less the case file's @page margins (210 mm - 2 x 12 mm) in CSS pixels.
PRINT_WIDTH = round((210 - 24) / 25.4 * 96)


def _run(url: str, *args: str | Path) -> Result:
    result = CliRunner().invoke(cli, ["registry", *[str(a) for a in args], "--db", url])
    assert result.exit_code == 0, result.output
    return result


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _edition_text(folder: Path, url: str, number: str) -> str:
    _run(url, "export", folder / "export", "--as-of", "2025-03-01")
    return (folder / "export" / (number.replace("/", "_") + ".rp")).read_text(encoding="utf-8")


def _history(folder: Path) -> str:
    """A store whose profile went through the whole lifecycle; returns its URL."""
    url = f"sqlite:///{os.path.join(folder, 'registry.db')}"
    draft = REGIONAL.replace(
        '"Low unit prices chosen by the office"', '"' + NAME.replace('"', '\\"') + '"'
    )
    store = new_store(url)
    first_run = record_backtest(store, draft)
    store.dispose()
    tests = _write(folder / "regional.test.toml", REGIONAL_TESTS)
    _run(
        url, "submit", _write(folder / "draft.rp", draft), "--tests", tests, "--run", str(first_run)
    )
    _run(
        url, "approve", "1", "--decision", "EC-12/2025", "--decided-on", "2025-01-10",
        "--group", "1A", "--unit", "12", "--in-force-from", "2025-02-01",
        "--in-force-to", "2026-12-31",
    )  # fmt: skip
    approved = _edition_text(folder, url, f"{NUMBER}-01")
    clarified = approved.replace(
        'message "Low unit price of {item.hs_code}"',
        'message "Low unit price of {item.hs_code} <b>check</b>"',
    )
    assert clarified != approved
    _run(
        url, "clarify", f"{NUMBER}-01", _write(folder / "clarified.rp", clarified),
        "--ground", "10.2.1", "--reason", "typo in the message <i>sic</i>",
    )  # fmt: skip
    fill1 = fill_text(f"{NUMBER}-01", "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    _run(
        url, "fill", _write(folder / "fill1.rp", fill1), "--responsible", "O. Bondar",
        "--responsible", "P. Koval", "--viewer", "Head of post", "--entered-on", "2025-03-24",
    )  # fmt: skip
    amended = clarified.replace("degree = 60 * low", "degree = 70 * low")
    store = new_store(url)
    second_run = record_backtest(store, amended)
    store.dispose()
    _run(
        url, "submit", _write(folder / "amended.rp", amended), "--tests", tests,
        "--run", str(second_run), "--amends", f"{NUMBER}-01",
    )  # fmt: skip
    _run(
        url, "amend", "2", "--decision", "EC-40/2025", "--decided-on", "2025-06-02",
        "--in-force-from", "2025-07-01",
    )  # fmt: skip
    _run(
        url, "suspend", NUMBER, "--ground", "10.3.4", "--on", "2025-08-01",
        "--reason", "false hits | <script>alert(1)</script>",
    )  # fmt: skip
    _run(url, "resume", NUMBER, "--on", "2025-08-15", "--reason", "indicator checked")
    fill2 = fill_text(f"{NUMBER}-02", "N-17", "2025-08-28", "2025-09-01 .. 2025-11-30")
    _run(
        url, "fill", _write(folder / "fill2.rp", fill2), "--responsible", "O. Bondar",
        "--responsible", "I. Shevchenko", "--entered-on", "2025-09-03",  # 2 days late: Sat, Sun
    )  # fmt: skip
    _run(
        url, "terminate", NUMBER, "--decision", "EC-90/2025", "--decided-on", "2025-11-03",
        "--last-day", "2025-11-30",
    )  # fmt: skip
    return url


# What a reader sees, read from the laid-out page: the window's title, the scripts in the
# document, the heading, each section's rendered text, each diff line's classes and cells, and
# the LATE flags.
_READ = r"""
<script>
(function () {
  const text = el => el.innerText.replace(/\s+/g, " ").trim();
  const out = {
    title: document.title,
    scripts: document.scripts.length - 1,
    h1: text(document.querySelector("h1")),
    sections: {},
    diffs: [],
    flags: Array.from(document.querySelectorAll(".flag")).map(text),
  };
  for (const s of document.querySelectorAll("section")) out.sections[s.id] = text(s);
  for (const t of document.querySelectorAll("table.diff")) {
    out.diffs.push({
      caption: text(t.querySelector("caption")),
      rows: Array.from(t.querySelectorAll("tr")).map(
        r => [r.className].concat(Array.from(r.cells).map(c => c.innerText))),
    });
  }
  const pre = document.createElement("pre");
  pre.id = "seen";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def _seen(page: Path, tmp: Path) -> dict[str, Any]:
    probe = tmp / "read.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _READ + "</body>"), encoding="utf-8"
    )
    dom = _run_chromium(
        ["--window-size=1280,1000", "--dump-dom", probe.as_uri()], tmp / "chromium-profile"
    )
    found = re.search(r'<pre id="seen">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-2000:]
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The store with the history, and its case file written by ``show --format html -o``."""
    folder = tmp_path_factory.mktemp("casefile")
    url = _history(folder)
    page = folder / "case.html"
    result = CliRunner().invoke(
        cli, ["registry", "show", NUMBER, "--format", "html", "-o", str(page), "--db", url]
    )
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"wrote {page}\n")
    return url, page


def test_the_page_shows_the_whole_case_file(case: tuple[str, Path], tmp_path: Path) -> None:
    _chromium()
    seen = _seen(case[1], tmp_path)
    # the markup in the name, the message and a reason is text: nothing ran, nothing was added
    assert seen["scripts"] == 0
    assert seen["title"] == f"Case file {NUMBER}: {NAME}"
    assert seen["h1"] == f"Case file of {NUMBER}: {NAME}"
    sections = seen["sections"]
    assert list(sections) == [
        "editions", "decisions", "clarifications", "suspensions", "fills", "reviews",
        "evidence", "log",
    ]  # fmt: skip
    editions = sections["editions"]
    assert f"{NUMBER}-01 2025-01-10 2025-02-01 .. 2025-06-30 yes" in editions
    assert f"{NUMBER}-02 2025-06-02 2025-07-01 .. 2025-11-30 no" in editions
    assert f"{NUMBER}-01: the approved text" in editions
    assert f"{NUMBER}-01: the current (clarified) text, changes from the approved text" in editions
    assert f"{NUMBER}-02: changes from {NUMBER}-01" in editions
    assert "1 degree = 60 * low" not in editions  # line numbers are cells, not part of the text
    assert sections["decisions"] == (
        "Commission decisions decision number date submission approve EC-12/2025 2025-01-10 1 "
        "amend EC-40/2025 2025-06-02 2 terminate EC-90/2025 2025-11-03 —"
    )
    assert (
        f"{NUMBER}-01 10.2.1 typo in the message <i>sic</i> message" in (sections["clarifications"])
    )
    assert sections["suspensions"] == (
        "Suspensions and resumptions event from ground (§10.3) reason suspend 2025-08-01 10.3.4 "
        "false hits | <script>alert(1)</script> resume 2025-08-15 — indicator checked"
    )
    fills = sections["fills"]
    assert (
        "1 01 UA100110 131 of 2025-03-20 2025-04-01 .. 2025-06-30 O. Bondar P. Koval "
        "Head of post 2025-03-24 on time"
    ) in fills
    assert (
        "2 02 UA100110 N-17 of 2025-08-28 2025-09-01 .. 2025-11-30 O. Bondar "
        "I. Shevchenko — 2025-09-03 LATE due by 2025-09-01"
    ) in fills
    assert f"fill for {NUMBER}-02 {{" in fills and 'order "N-17" of 2025-08-28' in fills
    assert seen["flags"] == ["LATE"]
    evidence = sections["evidence"]
    assert "1 new approved 0 errors, 0 warnings in 1 file 1 passed, 0 failed 0.0% 1" in evidence
    assert "2 amend approved 0 errors, 1 warning in 1 file 1 passed, 0 failed 0.0% 2" in evidence
    log = sections["log"]
    actions = re.findall(r"\d{2}:\d{2}:\d{2} \S+ (\w+)", log)
    assert actions == [
        "submit", "approve", "clarify", "fill", "submit", "amend", "suspend", "resume", "fill",
        "terminate",
    ]  # fmt: skip
    assert 'ground="10.3.4"' in log and "late=true" in log


def test_the_diffs_show_each_change_with_its_marker_and_line_numbers(
    case: tuple[str, Path], tmp_path: Path
) -> None:
    _chromium()
    clarified, amended = _seen(case[1], tmp_path)["diffs"]
    assert clarified["caption"] == (
        f"--- {NUMBER}-01 approved +++ {NUMBER}-01 current: 1 line added (+), 1 removed (-)"
    )
    changed = [r for r in clarified["rows"] if r[0] in ("del", "add")]
    assert changed == [
        ["del", "22", "", "-", '    message "Low unit price of {item.hs_code}"'],
        ["add", "", "22", "+", '    message "Low unit price of {item.hs_code} <b>check</b>"'],
    ]
    assert amended["caption"].endswith("5 lines added (+), 5 removed (-)")
    rows = amended["rows"]
    assert rows[0] == ["hunk", "@@ -1,8 +1,8 @@"]
    assert ["del", "20", "", "-", "    degree = 60 * low"] in rows
    assert ["add", "", "20", "+", "    degree = 70 * low"] in rows
    assert ["", "21", "21", "", ""] in rows  # context: both line numbers, no marker
    # every changed line carries its marker as text: the diff reads in black and white
    assert all(r[3] == {"del": "-", "add": "+"}[r[0]] for r in rows if r[0] in ("del", "add"))


def test_at_1280_px_everything_fits(case: tuple[str, Path], tmp_path: Path) -> None:
    found = _measure(case[1], tmp_path, 1280)
    assert found["view"] == 1280
    assert found["measured"] > 500  # the whole page was laid out and looked at
    assert found["problems"] == []
    assert found["scrolling"] == []  # no table even needs its scroll box
    assert found["badges"] == 1  # the LATE flag, checked for clipping
    assert found["keys"] >= 10  # each number is kept on one line
    assert found["first_h2"] == "Editions"


def test_at_640_px_the_page_never_scrolls_sideways(case: tuple[str, Path], tmp_path: Path) -> None:
    found = _measure(case[1], tmp_path, 640)
    assert found["view"] == 640
    # the profile's texts, the diffs and the tables wrap: nothing needs its scroll box
    assert found["problems"] == []
    assert found["scrolling"] == []
    assert found["badges"] == 1


def test_the_printed_layout_fits_a4_portrait_and_keeps_headings_with_what_follows(
    case: tuple[str, Path], tmp_path: Path
) -> None:
    found = _measure(case[1], tmp_path, PRINT_WIDTH, print_rules=True)
    assert found["problems"] == []
    assert found["scrolling"] == []
    assert found["break_after"] == ["avoid"]


def test_printed_to_pdf_on_a4_portrait(case: tuple[str, Path], tmp_path: Path) -> None:
    pages, box = _pdf_pages(case[1], tmp_path)
    width, height = box[2] - box[0], box[3] - box[1]
    assert abs(width - 595) < 2 and abs(height - 842) < 2  # A4 portrait, in points
    assert 3 <= pages <= 8, pages


# ------------------------------------------------------------------------- the command, no browser


def test_the_page_is_self_contained_and_escapes_every_text(case: tuple[str, Path]) -> None:
    page = case[1].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>\n") and "<style>" in page
    # nothing is fetched: no script, no link, no image, no url() or @import in the CSS
    for fetching in ("<script", "<link", "<img", "<iframe", "url(", "@import", "http://"):
        assert fetching not in page.lower(), fetching
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;sic&lt;/i&gt;" in page
    assert "<b>check</b>" not in page


def test_html_on_standard_output_is_the_file_and_markdown_stays_the_default(
    case: tuple[str, Path],
) -> None:
    url, page = case
    shown = CliRunner().invoke(cli, ["registry", "show", NUMBER, "--format", "html", "--db", url])
    assert shown.exit_code == 0, shown.output
    generated = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    assert generated.sub("T", shown.stdout) == generated.sub("T", page.read_text("utf-8"))
    markdown = CliRunner().invoke(cli, ["registry", "show", NUMBER, "--db", url])
    assert markdown.exit_code == 0
    assert markdown.stdout.startswith(f"# {NUMBER}: Low unit prices \\<script\\>")
    as_file = page.parent / "case.md"
    written = CliRunner().invoke(cli, ["registry", "show", NUMBER, "-o", str(as_file), "--db", url])
    assert (written.exit_code, written.stderr) == (0, f"wrote {as_file}\n")
    assert as_file.read_text(encoding="utf-8") == markdown.stdout


def test_show_refusals_and_bad_options(case: tuple[str, Path], tmp_path: Path) -> None:
    url = case[0]
    runner = CliRunner()
    unknown = runner.invoke(
        cli, ["registry", "show", "9Z/99/2025/00042", "--format", "html", "--db", url]
    )
    assert (unknown.exit_code, unknown.stderr) == (
        1,
        "error: the registry has no approved profile 9Z/99/2025/00042\n",
    )
    nowhere = tmp_path / "no" / "such" / "case.html"
    unwritable = runner.invoke(
        cli, ["registry", "show", NUMBER, "--format", "html", "-o", str(nowhere), "--db", url]
    )
    assert unwritable.exit_code == 1
    assert unwritable.stderr == f"error: cannot write {nowhere}: No such file or directory\n"
    assert not nowhere.parent.exists()
    bad = runner.invoke(cli, ["registry", "show", NUMBER, "--format", "pdf", "--db", url])
    assert bad.exit_code == 2
    assert "Invalid value for '--format': 'pdf' is not one of 'markdown', 'html'." in bad.stderr


def test_a_diff_of_equal_texts_is_empty_and_every_line_is_escaped() -> None:
    assert diff_rows("a\nb\n", "a\nb\n") == []
    rows = diff_rows("x = 1\n<tag>\n", "x = 2\n<tag>\n")
    assert rows[0] == '<tr class="hunk"><td colspan="4">@@ -1,2 +1,2 @@</td></tr>'
    assert rows[1:] == [
        '<tr class="del"><td class="ln">1</td><td class="ln"></td><td class="mark">-</td>'
        '<td class="code">x = <span class="chg">1</span></td></tr>',
        '<tr class="add"><td class="ln"></td><td class="ln">1</td><td class="mark">+</td>'
        '<td class="code">x = <span class="chg">2</span></td></tr>',
        '<tr><td class="ln">2</td><td class="ln">2</td><td class="mark"></td>'
        '<td class="code">&lt;tag&gt;</td></tr>',
    ]
    control = render_html(_minimal("bell\x07 and <b>"))
    assert "bell\u2407 and &lt;b&gt;" in control and "\x07" not in control


def _minimal(name: str) -> CaseFile:
    return CaseFile(
        key="profile/1", name=name, status="submitted", terminated_on=None, editions=(),
        decisions=(), clarifications=(), suspensions=(), fills=(), evidence=(), log=(),
    )  # fmt: skip


def test_a_returned_draft_shows_its_submitted_text(tmp_path: Path) -> None:
    from riskengine import registry as r
    from riskengine.registry.casefile import read_case_file

    store = new_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=record_backtest(store, DRAFT))
        r.return_for_rework(store, sub.pk, decision="EC-3", decided_on=dt.date(2025, 1, 5))
        with store.connect() as connection:
            page = render_html(read_case_file(connection, "profile/1"))
    finally:
        store.dispose()
    assert "<h3>Submission 1 (returned): the submitted text</h3>" in page
    assert '<td class="ln">1</td><td class="code"># Footwear under-valuation: first draft.' in page
    assert '<p class="none">None: the profile has not been approved.</p>' in page


def test_a_profile_not_yet_approved_has_an_empty_but_complete_page() -> None:
    page = render_html(_minimal("Draft"), generated=dt.datetime(2026, 1, 2, 3, 4, 5))
    assert '<h1>Case file of <span class="key">profile/1</span>: Draft</h1>' in page
    assert "2026-01-02 03:04:05 UTC" in page
    assert '<p class="none">None: the profile has not been approved.</p>' in page
    assert page.count('<p class="none">None.</p>') == 7  # decisions … fills, reviews, evidence, log


def test_the_commands_in_docs_registry_md_print_what_they_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console block of the HTML section, run after the page's session (as it says)."""
    page = (Path(__file__).parent.parent / "docs" / "registry.md").read_text(encoding="utf-8")
    section = page.split("### The case file as a page (`show NUMBER --format html`)", 1)[1]
    block = section.split("```console\n", 1)[1].split("\n```\n", 1)[0]
    steps = re.findall(r"^\$ (.*)\n((?:[^$].*\n)*)", block + "\n", re.MULTILINE)
    assert len(steps) == 2
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = new_store(url)
    assert record_backtest(store, DRAFT) == 1
    store.dispose()
    _write(tmp_path / "footwear.rp", DRAFT)
    _write(tmp_path / "footwear.test.toml", TESTS)
    for command, _shown in _session(page):
        if command.startswith("sed "):
            subprocess.run(command, shell=True, check=True, cwd=tmp_path)
        else:
            CliRunner().invoke(cli, shlex.split(command)[1:], env={"RISKENGINE_DB": url})
    for command, shown in steps:
        result = CliRunner().invoke(cli, shlex.split(command)[1:], env={"RISKENGINE_DB": url})
        assert result.output == shown, command
        assert result.exit_code == (1 if shown.startswith("error:") else 0), command
    written = (tmp_path / "case-00001.html").read_text(encoding="utf-8")
    assert '<h1>Case file of <span class="key">1A/12/2025/00001</span>: Undervalued' in written
    assert not (tmp_path / "x.html").exists()


def test_the_page_is_built_from_every_backend(db_url: str) -> None:
    """The case file read from SQLite, PostgreSQL and DuckDB: one edition clarified, one
    amended; the page shows both diffs and the escaped reason."""
    from riskengine import registry as r
    from riskengine.registry.casefile import read_case_file

    store = new_store(db_url)
    try:
        sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=record_backtest(store, DRAFT))
        first = r.approve(
            store, sub.pk, decision="EC-1", decided_on=dt.date(2025, 1, 10), group="1A",
            unit="12", in_force_from=dt.date(2025, 2, 1),
        )  # fmt: skip
        clarified = first.text.replace("+380 44 000 0000", "+380 44 000 0001")
        r.clarify(store, first.number, clarified, ground="10.2.3", reason="new <phone>")
        amended = clarified.replace("< 400", "< 450")
        run = record_backtest(store, amended)
        sub2 = r.submit(store, amended, tests=TESTS, backtest_run=run, amends=first.number)
        r.amend(
            store, sub2.pk, decision="EC-2", decided_on=dt.date(2025, 6, 2),
            in_force_from=dt.date(2025, 7, 1),
        )  # fmt: skip
        with store.connect() as connection:
            second = r.current_text(connection, 2)
        third = second.replace("< 450", "< 500")  # awaits the commission
        run = record_backtest(store, third)
        later = TESTS.replace("as_of = 2025-05-05", "as_of = 2025-08-05")  # 02 is in force
        r.submit(store, third, tests=later, backtest_run=run, amends=f"{NUMBER}-02")
        with store.connect() as connection:
            found = read_case_file(connection, NUMBER)
    finally:
        store.dispose()
    assert [e.number for e in found.editions] == [f"{NUMBER}-01", f"{NUMBER}-02"]
    assert [a.action for a in found.log] == [
        "submit", "approve", "clarify", "submit", "amend", "submit",
    ]  # fmt: skip
    page = render_html(found, generated=dt.datetime(2026, 1, 1))
    # the clarification changed 1 line (the phone); edition 02's approved text differs from
    # 01's in 5 (the number, edition approved, edition in force, the phone, the price); the
    # pending amendment changes 1 line of 02's current text (the price)
    assert page.count('<tr class="del">') == 7 and page.count('<tr class="add">') == 7
    assert "<h3>Submission 3 (pending): the submitted text</h3>" in page
    assert f"--- {NUMBER}-02 current  +++ submission 3: 1 line added (+), 1 removed (-)" in page
    assert "new &lt;phone&gt;" in page
    assert f'<span class="key">{NUMBER}-02</span>: changes from' in page
    assert (
        '<td class="code">    contact &quot;Ivan Petrenko&quot; phone &quot;+380 44 000 '
        '<span class="chg">0001</span>&quot;</td>'
    ) in page
