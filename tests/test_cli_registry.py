"""``riskengine registry VERB``: the whole lifecycle on the command line, what each verb prints,
the case file, the log, tamper detection by ``verify`` and the exit codes of refusals."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import click.testing
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.registry.audit import entries
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)

NUMBER = "1A/12/2025/00001"


def run(url: str, *args: str | Path) -> click.testing.Result:
    return CliRunner().invoke(cli, ["registry", *[str(a) for a in args], "--db", url])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{os.path.join(tmp_path, 'registry.db')}"


def _submit_and_approve(url: str, tmp_path: Path, text: str = DRAFT, tests: str = TESTS) -> str:
    store = new_store(url)
    run_pk = record_backtest(store, text)
    store.dispose()
    draft, test_file = write(tmp_path / "draft.rp", text), write(tmp_path / "t.test.toml", tests)
    result = run(url, "submit", draft, "--tests", test_file, "--run", str(run_pk))
    assert result.exit_code == 0, result.output
    sub = result.stdout.split(":")[0].removeprefix("submission ")
    result = run(
        url,
        "approve",
        sub,
        "--decision",
        "EC-12/2025",
        "--decided-on",
        "2025-01-10",
        "--group",
        "1A",
        "--unit",
        "12",
        "--in-force-from",
        "2025-02-01",
        "--in-force-to",
        "2026-12-31",
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _edition_text(url: str, number: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return str(
                connection.execute(
                    sa.text("SELECT text FROM profile_editions WHERE number = :n"), {"n": number}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _whole_path(url: str, tmp_path: Path) -> None:
    assert _submit_and_approve(url, tmp_path) == (
        f"approved: {NUMBER}-01 (decision EC-12/2025 of 2025-01-10), in force "
        "2025-02-01 .. 2026-12-31\n"
    )
    first = _edition_text(url, f"{NUMBER}-01")

    result = run(url, "list", "--as-of", "2025-03-01")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "number            name                             in force             state",
        f"{NUMBER}  Undervalued footwear from China  {NUMBER}-01  approved",
    ]

    clarified = write(tmp_path / "clar.rp", first.replace("000 0000", "000 0001"))
    result = run(
        url, "clarify", f"{NUMBER}-01", clarified, "--ground", "10.2.3", "--reason", "new phone"
    )
    assert (result.exit_code, result.stdout) == (
        0,
        f"clarified {NUMBER}-01 (ground 10.2.3): contact changed\n",
    )

    amended_text = clarified.read_text(encoding="utf-8").replace("< 400", "< 450")
    store = sa.create_engine(url)
    run_pk = record_backtest(store, amended_text)
    store.dispose()
    amended = write(tmp_path / "amended.rp", amended_text)
    tests = write(tmp_path / "t.test.toml", TESTS)
    result = run(
        url, "submit", amended, "--tests", tests, "--run", str(run_pk), "--amends", f"{NUMBER}-01"
    )
    assert (result.exit_code, result.stdout) == (
        0,
        f'submission 2: "Undervalued footwear from China", an amendment of {NUMBER}-01, '
        "awaits the commission\n",
    )
    result = run(
        url,
        "amend",
        "2",
        "--decision",
        "EC-40/2025",
        "--decided-on",
        "2025-06-02",
        "--in-force-from",
        "2025-07-01",
    )
    assert (result.exit_code, result.stdout) == (
        0,
        f"amended: {NUMBER}-02 in force 2025-07-01 .. 2026-12-31; the previous edition "
        "applies until 2025-06-30\n",
    )

    result = run(
        url,
        "suspend",
        NUMBER,
        "--ground",
        "10.3.4",
        "--on",
        "2025-08-01",
        "--reason",
        "false hits",
    )
    assert (result.exit_code, result.stdout) == (
        0,
        f"suspended {NUMBER} from 2025-08-01 (ground 10.3.4)\n",
    )
    result = run(url, "list", "--as-of", "2025-08-02")
    assert result.stdout.splitlines()[1] == (
        f"{NUMBER}  Undervalued footwear from China  -         suspended"
    )
    result = run(url, "resume", NUMBER, "--on", "2025-08-15", "--reason", "checked")
    assert (result.exit_code, result.stdout) == (0, f"resumed {NUMBER} from 2025-08-15\n")

    out = tmp_path / "export"
    result = run(url, "export", out, "--as-of", "2025-09-01")
    assert (result.exit_code, result.stdout) == (
        0,
        f"1 edition in force on 2025-09-01 written to {out}\n",
    )
    assert [p.name for p in out.iterdir()] == ["1A_12_2025_00001-02.rp"]
    assert (out / "1A_12_2025_00001-02.rp").read_text(encoding="utf-8") == _edition_text(
        url, f"{NUMBER}-02"
    )

    result = run(
        url,
        "terminate",
        NUMBER,
        "--decision",
        "EC-90/2025",
        "--decided-on",
        "2025-11-03",
        "--last-day",
        "2025-11-30",
    )
    assert (result.exit_code, result.stdout) == (
        0,
        f"terminated {NUMBER} (decision EC-90/2025 of 2025-11-03): it applies until 2025-11-30\n",
    )

    result = run(url, "show", NUMBER)
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert shown.startswith(
        f"# {NUMBER}: Undervalued footwear from China\n\nState: terminated (last day 2025-11-30)."
    )
    assert f"| {NUMBER}-01 | 2025-01-10 | 2025-02-01 .. 2025-06-30 |" in shown
    assert f"| {NUMBER}-02 | 2025-06-02 | 2025-07-01 .. 2025-11-30 |" in shown
    assert f"### {NUMBER}-02: changes from {NUMBER}-01" in shown
    cheap = '        cheap "Under 400 UAH per kg": item.customs_value / item.net_mass'
    assert f"\n-{cheap} < 400\n+{cheap} < 450\n" in shown
    assert "Current (clarified) text of " + NUMBER + "-01:" in shown
    assert "| approve | EC-12/2025 | 2025-01-10 | 1 |" in shown
    assert "| amend | EC-40/2025 | 2025-06-02 | 2 |" in shown
    assert "| terminate | EC-90/2025 | 2025-11-03 |  |" in shown
    assert f"| {NUMBER}-01 | 10.2.3 | new phone | contact |" in shown
    assert "| suspend | 2025-08-01 | 10.3.4 | false hits |" in shown
    assert "| resume | 2025-08-15 |  | checked |" in shown
    assert (
        "| 1 | new | approved | 0 errors, 0 warnings in 1 file | 1 passed, 0 failed | 50.0% | 1 |"
    ) in shown
    log = shown.split("## Log")[1].splitlines()
    log_rows = [x for x in log if x.startswith("| ") and "|-" not in x]
    assert [x.split(" | ")[3] for x in log_rows[1:]] == [
        "submit",
        "approve",
        "clarify",
        "submit",
        "amend",
        "suspend",
        "resume",
        "terminate",
    ]

    result = run(url, "log")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [x.split(" ")[0] for x in lines] == [str(i) for i in range(1, 9)]
    assert [x.split(" ")[4] for x in lines] == [
        "submit",
        "approve",
        "clarify",
        "submit",
        "amend",
        "suspend",
        "resume",
        "terminate",
    ]
    assert f'number="{NUMBER}-02"' in lines[4]

    result = run(url, "verify")
    assert (result.exit_code, result.stdout) == (0, "the log verifies: 8 entries\n")


def test_the_whole_path_on_every_backend(db_url: str, tmp_path: Path) -> None:
    """SQLite, PostgreSQL (a fresh schema of the local server; in CI it must be there) and
    DuckDB, through the conftest's ``db_url``."""
    _whole_path(db_url, tmp_path)


def test_a_tampered_log_row_fails_verify_naming_it(url: str, tmp_path: Path) -> None:
    _submit_and_approve(url, tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        names = connection.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ).scalars()
        for name in [n for n in names if "audit" in n]:
            connection.execute(sa.text(f'DROP TRIGGER "{name}"'))
        connection.execute(sa.text("UPDATE audit_log SET actor = 'os:mallory' WHERE pk = 1"))
    with engine.connect() as connection:
        assert entries(connection)[0].actor == "os:mallory"
    engine.dispose()
    result = run(url, "verify")
    assert (result.exit_code, result.stdout) == (
        1,
        "the log does not verify: entry 1 (submit profile/1) was edited: its content no longer "
        "matches its hash\n",
    )


def test_refusals_are_the_library_message_and_status_1(url: str, tmp_path: Path) -> None:
    _submit_and_approve(url, tmp_path)
    result = run(
        url,
        "approve",
        "1",
        "--decision",
        "EC-1",
        "--decided-on",
        "2025-01-10",
        "--group",
        "1A",
        "--unit",
        "12",
        "--in-force-from",
        "2025-02-01",
    )
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: submission 1 is approved, not awaiting a decision\n"
    result = run(url, "resume", NUMBER, "--on", "2025-03-01", "--reason", "x")
    assert (result.exit_code, result.stderr) == (1, f"error: {NUMBER} is not suspended\n")
    result = run(url, "show", "9Z/99/2025/00042")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the registry has no approved profile 9Z/99/2025/00042\n",
    )
    changed = write(tmp_path / "c.rp", _edition_text(url, f"{NUMBER}-01").replace("< 400", "< 450"))
    result = run(url, "clarify", f"{NUMBER}-01", changed, "--ground", "10.2.1", "--reason", "x")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: the clarification changes what ground 10.2.1 (a technical error in the passport) "
        "does not allow; it needs the commission (amend):\n  line "
    )
    assert "indicator `cheap` changed" in result.stderr
    assert "Traceback" not in result.output
    result = run(url, "verify")
    assert (result.exit_code, result.stdout) == (0, "the log verifies: 2 entries\n")


def test_a_submission_without_evidence_is_refused(url: str, tmp_path: Path) -> None:
    new_store(url).dispose()
    draft, tests = write(tmp_path / "d.rp", DRAFT), write(tmp_path / "d.test.toml", TESTS)
    result = run(url, "submit", draft, "--tests", tests, "--run", "7")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the store records no backtest run 7\n",
    )
    result = run(url, "list")
    assert (result.exit_code, result.stdout) == (0, "the registry is empty\n")
    result = run(url, "log")
    assert (result.exit_code, result.stdout) == (0, "the log is empty\n")


def test_usage_errors_are_status_2(url: str, tmp_path: Path) -> None:
    new_store(url).dispose()
    when = ["--on", "2025-01-01", "--reason", "x"]
    result = run(url, "suspend", NUMBER, "--ground", "10.2.3", *when)
    assert result.exit_code == 2
    assert "'10.2.3' is not one of '10.3.1', '10.3.2', '10.3.3', '10.3.4'" in result.stderr
    result = run(url, "resume", NUMBER, "--on", "1 May", "--reason", "x")
    assert result.exit_code == 2
    assert "expected a date YYYY-MM-DD, got '1 May'" in result.stderr
    result = run(url, "submit", tmp_path / "missing.rp", "--tests", "x", "--run", "1")
    assert result.exit_code == 2


def test_an_uninitialised_store_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = run(url, "list")
    assert result.exit_code == 1
    assert "has no riskengine tables: run `riskengine db init`" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_fill_prints_its_order_and_flags_a_late_entry(url: str, tmp_path: Path) -> None:
    _submit_and_approve(url, tmp_path, REGIONAL, REGIONAL_TESTS)
    text = fill_text(f"{NUMBER}-01", "N-17", "2025-03-03", "2025-03-10 .. 2025-06-09")
    fill = write(tmp_path / "fill.rp", text)
    people = ["--responsible", "O. Koval", "--responsible", "P. Shevchenko"]
    people += ["--viewer", "I. Bondar"]
    result = run(url, "fill", fill, *people, "--entered-on", "2025-03-05")
    assert (result.exit_code, result.stdout) == (
        0,
        "fill 1 of UA100110: order N-17 of 2025-03-03, valid 2025-03-10 .. 2025-06-09\n",
    )
    result = run(url, "fill", fill, *people, "--entered-on", "2025-03-06")
    assert (result.exit_code, result.stdout) == (
        0,
        "fill 2 of UA100110: order N-17 of 2025-03-03, valid 2025-03-10 .. 2025-06-09; LATE: "
        "entered 2025-03-06, due by 2025-03-05 (2 working days after the order, §11.4)\n",
    )
    result = run(url, "fill", fill, "--responsible", "O. Koval", "--entered-on", "2025-03-05")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: the office's order names at least 2 persons responsible for the fill (§11.1)"
    )
    shown = run(url, "show", NUMBER).stdout
    assert (
        f"| {NUMBER}-01 | UA100110 | N-17 of 2025-03-03 | 2025-03-10 .. 2025-06-09 | "
        "O. Koval, P. Shevchenko | I. Bondar | 2025-03-06 | late |"
    ) in shown


def test_the_case_file_escapes_texts_in_its_tables(url: str, tmp_path: Path) -> None:
    _submit_and_approve(url, tmp_path)
    reason = "hits | <b>bold</b> *x*"
    result = run(
        url, "suspend", NUMBER, "--ground", "10.3.3", "--on", "2025-03-01", "--reason", reason
    )
    assert result.exit_code == 0, result.output
    shown = run(url, "show", NUMBER).stdout
    assert r"| suspend | 2025-03-01 | 10.3.3 | hits \| \<b\>bold\</b\> \*x\* |" in shown


def _session(page: str) -> list[tuple[str, str]]:
    """The commands of the page's ``console`` block after "On the command line", each with the
    output shown under it."""
    block = page.split("## On the command line", 1)[1].split("```console\n", 1)[1]
    block = block.split("\n```\n", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "".join(x + "\n" for x in out)) for command, out in steps]


def _masked(text: str) -> str:
    """A log line without what changes between runs: the time and the actor."""
    return re.sub(r"^(\d+) \S+ \S+ \S+ ", r"\1 TIME ACTOR ", text, flags=re.MULTILINE)


def test_the_session_in_docs_registry_md_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (Path(__file__).parent.parent / "docs" / "registry.md").read_text(encoding="utf-8")
    steps = _session(page)
    assert len(steps) == 15
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = new_store(url)
    assert record_backtest(store, DRAFT) == 1
    store.dispose()
    write(tmp_path / "footwear.rp", DRAFT)
    write(tmp_path / "footwear.test.toml", TESTS)
    for command, shown in steps:
        if command.startswith("sed "):
            subprocess.run(command, shell=True, check=True, cwd=tmp_path)
            continue
        args = shlex.split(command)
        assert args[:2] == ["riskengine", "registry"], command
        result = CliRunner().invoke(cli, args[1:], env={"RISKENGINE_DB": url})
        assert _masked(result.output) == _masked(shown), command
        assert result.exit_code == (1 if shown.startswith("error:") else 0), command


def test_a_submitted_profile_is_listed_and_shown_by_its_key(url: str, tmp_path: Path) -> None:
    store = new_store(url)
    run_pk = record_backtest(store, DRAFT)
    store.dispose()
    draft, tests = write(tmp_path / "d.rp", DRAFT), write(tmp_path / "d.test.toml", TESTS)
    assert run(url, "submit", draft, "--tests", tests, "--run", str(run_pk)).exit_code == 0
    result = run(url, "list")
    assert result.stdout.splitlines()[1] == (
        "profile/1  Undervalued footwear from China  -         submitted"
    )
    shown = run(url, "show", "profile/1")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(
        "# profile/1: Undervalued footwear from China\n\nState: submitted."
    )
    assert "| 1 | new | pending | 0 errors, 0 warnings in 1 file | 1 passed, 0 failed |" in (
        shown.stdout
    )
    result = run(url, "show", "profile/7")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the registry has no profile profile/7\n",
    )


def test_a_file_that_is_not_utf8_is_refused(url: str, tmp_path: Path) -> None:
    new_store(url).dispose()
    bad = tmp_path / "bad.rp"
    bad.write_bytes(b'profile draft "\xff" {}\n')
    result = run(url, "fill", bad, "--responsible", "A", "--responsible", "B")
    assert result.exit_code == 1
    assert result.stderr == (f"error: {bad} is not UTF-8 text (invalid start byte at byte 15)\n")


def test_export_refuses_a_folder_with_other_profiles(url: str, tmp_path: Path) -> None:
    _submit_and_approve(url, tmp_path)
    out = tmp_path / "out"
    result = run(url, "export", out, "--as-of", "2025-03-01")
    assert result.exit_code == 0, result.output
    result = run(url, "export", out, "--as-of", "2025-03-01")  # the same set again: fine
    assert result.exit_code == 0, result.output
    result = run(url, "export", out, "--as-of", "2025-01-01")  # nothing in force yet
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {out} holds 1A_12_2025_00001-01.rp, not an edition in force on 2025-01-01: a "
        "folder loaded as the profiles in force must hold nothing else; export to an empty "
        "folder (nothing was written)\n"
    )
    assert [p.name for p in out.iterdir()] == ["1A_12_2025_00001-01.rp"]
    afile = write(tmp_path / "afile", "x")
    result = run(url, "export", afile, "--as-of", "2025-03-01")
    assert result.exit_code == 2  # click: a directory is expected


def test_a_returned_submission_can_be_submitted_again(url: str, tmp_path: Path) -> None:
    store = new_store(url)
    run_pk = record_backtest(store, DRAFT)
    store.dispose()
    draft, tests = write(tmp_path / "d.rp", DRAFT), write(tmp_path / "d.test.toml", TESTS)
    submit = ["submit", draft, "--tests", tests, "--run", str(run_pk)]
    assert run(url, *submit).exit_code == 0
    result = run(url, "return", "1", "--decision", "EC-2/2025", "--decided-on", "2025-01-10")
    assert (result.exit_code, result.stdout) == (
        0,
        "submission 1 returned for rework (decision EC-2/2025 of 2025-01-10)\n",
    )
    assert run(url, "list").stdout.splitlines()[1].split()[-1] == "returned"
    result = run(url, "return", "1", "--decision", "EC-3/2025", "--decided-on", "2025-01-11")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: submission 1 is returned, not awaiting a decision\n",
    )
    result = run(url, *submit)
    assert (result.exit_code, result.stdout) == (
        0,
        'submission 2: "Undervalued footwear from China", a new profile, awaits the commission\n',
    )
    assert run(url, "verify").stdout == "the log verifies: 3 entries\n"
