"""docs/review-queue.md, "A session": every command of its console blocks, run in order in a fresh
folder, prints what the page shows (after normalising durations). The files the session reads are
the README's first profile (``riskengine.demo.lifecycle``), the regional profile of the tests,
the two fills the page describes and the page's own ``log_decisions.py``."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.demo.lifecycle import DRAFT, TESTS
from tests.registry_support import REGIONAL, REGIONAL_TESTS

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "review-queue.md"

KYIV = """\
fill for 1A/12/2025/00002-01 {
    office UA100110 "Kyiv customs"
    order "131" of 2025-03-20
    valid 2025-04-01 .. 2025-06-30

    values {
        headings = ("8418", "8450")
        max_unit_price = 170
    }
}
"""
KYIV_Q3 = KYIV.replace('"131" of 2025-03-20', '"140" of 2025-06-25').replace(
    "2025-04-01 .. 2025-06-30", "2025-07-01 .. 2025-09-30"
)


def _session(page: str) -> list[tuple[str, str]]:
    """The ``$`` lines of the console blocks after "## A session", each with its output."""
    part = page.split("## A session", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)\n```", part, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return [(command, "\n".join(out)) for command, out in steps]


def _normal(text: str) -> str:
    text = re.sub(r"\d[\d,.]* (ms|s)\b", "N ms", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def test_the_session_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = PAGE.read_text(encoding="utf-8")
    script = re.search(r"```python\n(\"\"\"Score demo declarations.*?)```", page, flags=re.S)
    assert script is not None
    files = {
        "first.rp": DRAFT,
        "first.test.toml": TESTS,
        "regional.rp": REGIONAL,
        "regional.test.toml": REGIONAL_TESTS,
        "kyiv.rp": KYIV,
        "kyiv-q3.rp": KYIV_Q3,
        "log_decisions.py": script.group(1),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    steps = _session(page)
    assert len(steps) == 19
    for command, shown in steps:
        command = command.replace("riskengine/data/kpis/", f"{ROOT}/riskengine/data/kpis/")
        if command.startswith("python "):
            done = subprocess.run(
                [sys.executable, *shlex.split(command)[1:]],
                capture_output=True,
                text=True,
                check=False,
                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            )
            printed, code = done.stdout, done.returncode
        else:
            args = shlex.split(command.split(" 2>/dev/null")[0])
            assert args[0] == "riskengine", command
            result = CliRunner().invoke(cli, args[1:])
            printed, code = result.stdout + result.stderr, result.exit_code
            if "| head -1" in command:
                printed = printed.splitlines()[0]
        assert _normal(printed) == _normal(shown), command
        assert code == (1 if shown.startswith("error:") else 0), command
    _registry_section(tmp_path)


def _masked(text: str) -> str:
    """A log line without what changes between runs: the time and the actor."""
    return re.sub(r"^(\d+) \S+ \S+ \S+ ", r"\1 TIME ACTOR ", text, flags=re.MULTILINE)


def _registry_section(folder: Path) -> None:
    """docs/registry.md's "Recording the effectiveness review" session, on the store the
    review-queue session left (the page leaves out ``--db queue.db``)."""
    page = (ROOT / "docs" / "registry.md").read_text(encoding="utf-8")
    part = page.split("## Recording the effectiveness review", 1)[1]
    part = part.split("\n## The tables", 1)[0]
    [block] = re.findall(r"```console\n(.*?)\n```", part, flags=re.S)
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert len(steps) == 12
    url = f"sqlite:///{folder / 'queue.db'}"
    for command, out in steps:
        shown = "\n".join(out)
        env = {"RISKENGINE_DB": url, "LOGNAME": "root", "USER": "root"}  # as the page ran
        if command.startswith("LOGNAME="):
            who, command = command.split(" ", 1)
            env["LOGNAME"] = env["USER"] = who.removeprefix("LOGNAME=")
        args = shlex.split(command.split(" | ")[0])
        assert args[0] == "riskengine", command
        result = CliRunner().invoke(cli, args[1:], env=env)
        printed = result.stdout + result.stderr
        if " | sed -n " in command:  # the section of the case file
            printed = "## Effectiveness reviews" + printed.split("## Effectiveness reviews", 1)[1]
            printed = printed.split("## Evidence of the submissions", 1)[0]
            printed += "## Evidence of the submissions"
        if " | grep " in command:
            printed = "\n".join(
                x for x in printed.splitlines() if re.search(r" (review|monitor) ", x)
            )
        assert _masked(_normal(printed)) == _masked(_normal(shown)), command
        assert result.exit_code == (1 if shown.startswith("error:") else 0), command
