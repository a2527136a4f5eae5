"""docs/effectiveness.md's sessions are what the commands print: the demo is run in a fresh
folder, then every ``$ riskengine …`` command of the page; its output must be the lines shown (a
line ``…`` stands for lines left out of the page). Also: a profile the registry knows is named
in its review."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "effectiveness.md"
PRELUDE = 'riskengine() { "$PY" -m riskengine "$@"; }\n'


def _sessions(text: str) -> list[list[tuple[str, list[str]]]]:
    """Each text block with commands: its (command, lines shown) in order."""
    sessions = []
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        if not block.startswith("$ "):
            continue
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        sessions.append(steps)
    return sessions


def _matches(got: list[str], want: list[str]) -> bool:
    """``got`` is ``want`` where each line ``…`` stands for any lines (none or more)."""
    parts: list[list[str]] = [[]]
    for line in want:
        if line == "…":
            parts.append([])
        else:
            parts[-1].append(line)
    if len(parts) == 1:
        return got == want
    head, *middle, tail = parts
    if got[: len(head)] != head or got[len(got) - len(tail) :] != tail:
        return False
    at, end = len(head), len(got) - len(tail)
    for part in middle:
        found = next(
            (i for i in range(at, end - len(part) + 1) if got[i : i + len(part)] == part), None
        )
        if found is None:
            return False
        at = found + len(part)
    return True


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("effectiveness-doc")


def _run(folder: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PY": sys.executable, "NO_COLOR": "1"}
    env.pop("RISKENGINE_DB", None)
    return subprocess.run(
        ["bash", "-c", PRELUDE + command], cwd=folder, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_the_sessions_of_effectiveness_md_are_real(folder: Path) -> None:
    shutil.copytree(ROOT / "profiles", folder / "profiles")  # the sample profiles, as a user has
    sessions = _sessions(PAGE.read_text(encoding="utf-8"))
    assert sessions[0][0][0] == "riskengine demo > /dev/null"
    ran = 0
    for steps in sessions:
        for command, want in steps:
            target = re.fullmatch(r"cat (\S+)", command)
            if target:  # the page shows a file: write it as shown
                (folder / target[1]).write_text("\n".join(want) + "\n", encoding="utf-8")
            done = _run(folder, command)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            assert _matches(done.stdout.splitlines(), want), f"{command}\n{done.stdout}"
            ran += 1
    assert ran >= 6
    assert (folder / "review-q4.html").is_file()


def test_the_error_shown_for_a_bad_rules_file(folder: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    shown = next(line for line in text.splitlines() if line.startswith("error: my-rules.toml"))
    rules = folder / "my-rules.toml"
    (folder / "bad-rules.toml").write_text(
        rules.read_text(encoding="utf-8").replace("controlled < 30", "controled < 30"),
        encoding="utf-8",
    )
    done = _run(
        folder,
        "riskengine review report 2A/08/2013/00117-04 --from 2025-01-01 --to 2025-12-31 "
        "--db riskengine-demo/riskengine.db --rules bad-rules.toml",
    )
    assert done.returncode == 1 and done.stdout == ""
    prefix = shown[: shown.index("…")].replace("my-rules.toml", "bad-rules.toml")
    assert done.stderr.startswith(prefix), done.stderr


def test_a_profile_the_registry_knows_is_named(folder: Path) -> None:
    # the demo approved the README's draft as 1A/12/2025/00001-01, in force 2025-02-01 ..
    # 2025-12-31; the demo's decision log was scored with the sample profiles, so it never fired
    done = _run(
        folder,
        "riskengine review report 1A/12/2025/00001 --from 2025-01-01 --to 2025-12-31 "
        "--db riskengine-demo/riskengine.db",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        'Effectiveness review of 1A/12/2025/00001 "Cheap footwear from Asia", 2025-01-01 .. '
        "2025-12-31 (365 days)"
    )
    assert lines[2] == (
        "registry: approved; editions in force: 1A/12/2025/00001-01 (2025-02-01 .. 2025-12-31)"
    )
    assert "fired on 0 of 4,939 declarations scored (0.0 %); bundle revisions: —" in lines
    assert lines[-1] == "Recommendation: terminate"


def test_the_python_example_runs(folder: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (folder / "example.py").write_text(block, encoding="utf-8")
    done = _run(folder, '"$PY" example.py')
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    # the year's figures of the page: amend; 9 of 64 = 14.0625 %; random 0 of 69 from 0 %
    assert first.startswith("amend 14.0625 (")
    assert second == (
        "Effectiveness review of 2A/08/2013/00117-04, 2025-01-01 .. 2025-12-31 (365 days)"
    )
