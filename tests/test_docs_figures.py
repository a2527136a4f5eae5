"""The figures quoted in docs/backtest.md come from a real run: every ``console`` session of the
page is replayed in a fresh folder (with a copy of ``profiles/``, as if from the repository
root) and what the page shows must be what the commands print.

A shown output may leave lines out (``…``); the lines it shows must appear in the actual output
in the same order. Timings and rows-per-second figures are not compared. The JSON snippet and the
figures quoted in the prose are checked against runs too. When an output changes on purpose,
re-run the page's commands and paste their output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "backtest.md"


def _sessions(text: str) -> list[list[tuple[str, list[str]]]]:
    """The ``console`` blocks: per block, (command, shown output lines) in order."""
    out = []
    for body in re.findall(r"^```console\n(.*?)^```$", text, re.M | re.S):
        steps: list[tuple[str, list[str]]] = []
        lines = body.splitlines()
        k = 0
        while k < len(lines):
            line = lines[k]
            assert line.startswith("$ "), f"output before any command in docs: {line!r}"
            command = line[2:]
            while command.endswith("\\"):
                k += 1
                command = command[:-1] + " " + lines[k].strip()
            k += 1
            shown = []
            while k < len(lines) and not lines[k].startswith("$ "):
                shown.append(lines[k])
                k += 1
            steps.append((command, shown))
        out.append(steps)
    return out


# a duration as riskengine.render.words.duration writes it: 0.4 ms, 436 ms, 4.1 s, 42 s,
# 3 min 05 s, 1 h 02 min (and the 4.96 s of older pages)
_DURATION = re.compile(r"\b(?:\d+ h \d\d min|\d+ min \d\d s|\d+(?:\.\d+)? m?s)\b(?!/)")
# a rate, given only when a run took long enough: ", 12,345 rows/s" or " (12,345 rows/s)"
_RATE = re.compile(r"(?:, | \()\d[\d,]*(?:\.\d+)? [a-z]+/s\b\)?")


def _normal(line: str) -> str:
    """The line with its timings made equal: every duration becomes ``<t>`` and a rate is left
    out (it is there or not depending on how long the run took); nothing else changes."""
    return _DURATION.sub("<t>", _RATE.sub("", line.rstrip()))


def _in_order(shown: list[str], stdout: str, stderr: str) -> str | None:
    """None when every shown line (``…`` aside) is a line of ``stdout``, in order, or a line of
    ``stderr`` (the page shows both streams as a terminal interleaves them); else the first
    shown line that is neither."""
    lines = [_normal(x) for x in stdout.splitlines()]
    errors = {_normal(x) for x in stderr.splitlines()}
    at = 0
    for want in (_normal(x) for x in shown):
        if want.strip() in ("…", "") or want in errors:
            continue
        try:
            at = lines.index(want, at) + 1
        except ValueError:
            return want
    return None


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every session of the page, run in order in one folder: command → its output."""
    folder = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "profiles", folder / "profiles")
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "riskengine"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m riskengine "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        NO_COLOR="1",
        COLUMNS="120",
    )
    env.pop("RISKENGINE_DB", None)
    outputs: dict[str, str] = {"folder": str(folder)}
    for steps in _sessions(PAGE.read_text(encoding="utf-8")):
        for command, shown in steps:
            if command.startswith("sqlite3") and shutil.which("sqlite3") is None:
                continue
            cat = re.fullmatch(r"cat (\S+)", command)
            if cat and not (folder / cat[1]).exists():
                # a file the reader writes: the page shows its content
                (folder / cat[1]).write_text("\n".join(shown) + "\n", encoding="utf-8")
            done = subprocess.run(
                ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
                timeout=600,
            )  # fmt: skip
            outputs[command] = done.stdout + done.stderr
            missing = _in_order(shown, done.stdout, done.stderr)
            assert missing is None, (
                f"docs/backtest.md shows for `{command}` the line\n{missing}\nwhich the command "
                f"does not print:\n{outputs[command]}"
            )
    return outputs


def test_every_session_of_the_page_prints_what_it_shows(replay: dict[str, str]) -> None:
    commands = [c for c in replay if c != "folder"]
    assert any(c.startswith("riskengine backtest profiles --from") for c in commands)
    assert any("--compare" in c for c in commands)


def test_the_json_total_is_the_drafts(replay: dict[str, str]) -> None:
    text = PAGE.read_text(encoding="utf-8")
    (snippet,) = re.findall(r"^```json\n(.*?)^```$", text, re.M | re.S)
    shown = json.loads("{" + snippet + "}")["total"]
    command = re.search(r"\(`(riskengine backtest drafts/footwear-05\.rp[^`]*)`\)", text, re.S)
    assert command is not None
    args = " ".join(command[1].split()).split()[2:]
    done = subprocess.run(
        [sys.executable, "-m", "riskengine", "backtest", *args, "--no-record"],
        cwd=replay["folder"], capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (total,) = [p["total"] for p in json.loads(done.stdout)["profiles"]]
    assert total == shown


def test_the_figures_in_the_prose(replay: dict[str, str]) -> None:
    prose = " ".join(PAGE.read_text(encoding="utf-8").split())
    history = re.search(
        r"`(6F/12/2014/00021-03)` selects (\d+) declarations with history and (\d+) with "
        r"`--no-history`",
        prose,
    )
    assert history is not None
    key, with_history, without = history.groups()
    first = next(v for c, v in replay.items() if c.startswith("riskengine backtest profiles --"))
    lines = first.splitlines()
    header = next(ln for ln in lines if ln.startswith("┃ Profile "))
    column = [h.strip() for h in header.split("┃")].index("Selected")
    row = next(ln for ln in lines if ln.startswith(f"│ {key} "))
    assert row.split("│")[column].strip() == with_history
    done = subprocess.run(
        [sys.executable, "-m", "riskengine", "backtest", "profiles/drug_precursors.rp", "--from",
         "2024-01-01", "--to", "2025-12-31", "--no-history", "--no-record", "--format", "json"],
        cwd=replay["folder"], capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["profiles"][0]["total"]["selected"] == int(without)
    random = re.search(r"the generator's (\d+) random controls find no violation", prose)
    assert random is not None
    engine = sa.create_engine(f"sqlite:///{replay['folder']}/riskengine.db")
    with engine.connect() as conn:
        count, found = conn.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(violation_found), 0) FROM control_results "
                "WHERE random_control"
            )
        ).one()
    engine.dispose()
    assert (count, found) == (int(random[1]), 0)
