"""docs/production.md's command-line session is what the commands print: the session is
replayed in a fresh folder with the page's random.toml, the demo key and 2,000 demo
declarations."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "production.md"
DEMO_KEY = "demo-key-never-use-in-production"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_cli_session_of_production_md_is_real(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    config = next(b for b in _blocks(text, "toml") if "[random]" in b)
    session = next(b for b in _blocks(text, "text") if "$ riskengine score decls.jsonl" in b)
    (tmp_path / "random.toml").write_text(config, encoding="utf-8")
    (tmp_path / "random.key").write_text(DEMO_KEY + "\n", encoding="utf-8")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PY": sys.executable}
    env.pop("RISKENGINE_RANDOM_KEY", None)
    env.pop("RISKENGINE_RANDOM_KEY_FILE", None)
    prelude = 'riskengine() { "$PY" -m riskengine "$@"; }\n'
    subprocess.run(
        ["bash", "-c", prelude + "riskengine demo-data -n 2000 --jsonl decls.jsonl -q"],
        cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    commands: list[str] = []
    shown: list[list[str]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
            shown.append([])
        else:
            shown[-1].append(line)
    script = prelude + "".join(f"{c}\necho '@@@'\n" for c in commands)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    outputs = done.stdout.split("@@@\n")
    assert len(outputs) == len(commands) + 1, done.stderr
    for command, want, got in zip(commands, shown, outputs, strict=False):
        assert got.splitlines() == want, command
    error = next(b for b in _blocks(text, "text") if "Invalid value for '--random-config'" in b)
    command, *want = error.splitlines()
    assert command.startswith("$ ")
    failed = subprocess.run(
        ["bash", "-c", prelude + command[2:] + " 2>&1"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2
    assert failed.stdout.splitlines() == want
    assert DEMO_KEY not in done.stdout + done.stderr + failed.stdout


def test_the_python_example_of_production_md_is_real(tmp_path: Path) -> None:
    """The decision-log example: run as the page shows it (a SQLite store, then nothing
    listening on port 1, then the store again), it prints what the page says."""
    text = PAGE.read_text(encoding="utf-8")
    code = next(b for b in _blocks(text, "python") if "DecisionLog(URL" in b)
    config = next(b for b in _blocks(text, "toml") if "[random]" in b)
    start = text.index(code)
    shown = next(b for b in _blocks(text[start:], "text"))
    (tmp_path / "random.toml").write_text(config, encoding="utf-8")
    (tmp_path / "random.key").write_text(DEMO_KEY + "\n", encoding="utf-8")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RISKENGINE_RANDOM_KEY_FILE": "random.key"}
    env.pop("RISKENGINE_RANDOM_KEY", None)
    done = subprocess.run(
        [sys.executable, "-u", "example.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == shown.splitlines()
