"""docs/registry.md, "A whole life": the README's first profile from draft to termination, one
console session replayed in a fresh folder and each output compared with the page's.

The folder starts with nothing but ``first.rp`` and ``first.test.toml``, written from
``riskengine.demo.lifecycle`` (``DRAFT``, ``TESTS``), so the page's ``cat`` of them also checks
that the page shows the demo's profile; ``boots.json`` and ``sandals.json`` are written by the
session itself. ``riskengine`` commands run in-process (``CliRunner``, standard output and error
interleaved as written, 100 columns, no ``RISKENGINE_DB``); the others (``cat``, ``echo``,
``head``, ``sed``, ``grep``) run in ``bash``. What changes between runs is normalised on both
sides: the key id, times, the local user and the log entry's hash
(``tests.test_docs_bundle._normal``), the durations ``riskengine`` prints (``500 ms``) and
trailing blanks (rich pads a table's title).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.demo.lifecycle import DRAFT, TESTS
from tests.test_docs_bundle import _normal
from tests.test_registry_access import _block

PAGE = Path(__file__).resolve().parents[1] / "docs" / "registry.md"
HEADING = "## A whole life"


def replay(folder: Path, commands: list[str]) -> list[tuple[str, str, int]]:
    """Run ``commands`` in ``folder`` as the page does: (command, output, exit status)."""
    (folder / "first.rp").write_text(DRAFT, encoding="utf-8")
    (folder / "first.test.toml").write_text(TESTS, encoding="utf-8")
    env = {"RISKENGINE_DB": None, "COLUMNS": "100", "NO_COLOR": "1"}
    done = []
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        for command in commands:
            if command.startswith("riskengine "):
                result = CliRunner().invoke(cli, shlex.split(command)[1:], env=env)
                done.append((command, result.output, result.exit_code))
            else:
                shell = subprocess.run(
                    ["bash", "-c", command + " 2>&1"], capture_output=True, text=True, timeout=60
                )
                done.append((command, shell.stdout, shell.returncode))
    finally:
        os.chdir(cwd)
    return done


def normal(text: str) -> str:
    """The output without what changes between runs, nor trailing blanks (the page has none)."""
    text = re.sub(r"\b\d+(\.\d+)? (ms|s)\b", "N ms", _normal(text))  # any duration, load varies
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


@pytest.fixture(scope="module")
def session(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[tuple[str, str, str, int]], float]:
    """The folder, every command of the page's session with the output it shows, the output
    it printed and its status, and the seconds the session took."""
    folder = tmp_path_factory.mktemp("walkthrough")
    steps = _block(PAGE.read_text(encoding="utf-8"), HEADING)
    started = time.monotonic()
    done = replay(folder, [command for command, _ in steps])
    seconds = time.monotonic() - started
    out = [
        (c, shown, output, status)
        for (c, shown), (_, output, status) in zip(steps, done, strict=True)
    ]
    return folder, out, seconds


def test_every_command_of_the_whole_life_prints_what_the_page_shows(
    session: tuple[Path, list[tuple[str, str, str, int]], float],
) -> None:
    _, steps, seconds = session
    assert len(steps) == 30
    for command, shown, output, status in steps:
        assert normal(output) == normal(shown), command
        assert status == 0, command
    assert seconds < 60  # the page's session stays quick (about 5 s on a quiet machine)


def test_the_whole_life_ends_terminated_with_every_step_in_the_log(
    session: tuple[Path, list[tuple[str, str, str, int]], float],
) -> None:
    """What the session leaves behind, read again from the store."""
    folder = session[0]
    store = f"sqlite:///{folder / 'demo.db'}"
    result = CliRunner().invoke(cli, ["registry", "log", "--db", store])
    assert result.exit_code == 0, result.output
    actions = [line.split()[4] for line in result.output.splitlines()]
    assert actions == [
        "submit", "approve", "bundle", "clarify", "submit", "amend", "bundle",
        "suspend", "resume", "terminate",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, ["registry", "list", "--as-of", "2025-12-01", "--db", store])
    assert result.output.splitlines()[1].split()[-2:] == ["-", "terminated"]


if __name__ == "__main__":  # pragma: no cover
    # Regenerates the session: python -m tests.test_registry_walkthrough < session.txt prints
    # each "$ command" line of session.txt followed by what it prints now.
    import sys
    import tempfile

    commands = [line[2:] for line in sys.stdin.read().splitlines() if line.startswith("$ ")]
    with tempfile.TemporaryDirectory() as scratch:
        for command, output, status in replay(Path(scratch), commands):
            if status:
                print(f"status {status}: {command}", file=sys.stderr)
            print(f"$ {command}\n{output}", end="")
