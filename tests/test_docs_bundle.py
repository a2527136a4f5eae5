"""docs/bundle.md as written: its console sessions run by a shell in a fresh folder whose store
holds the registry the page describes, each output compared with the page's (the key id, the
times, the user and the log's hashes normalised); and its Python example prints what it shows."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from riskengine import registry as r
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "bundle.md"
D = dt.date


def _blocks(text: str, language: str) -> list[str]:
    return [m[1] for m in re.finditer(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)]


def _normal(text: str) -> str:
    text = re.sub(r"ed25519:[0-9a-f]{16}", "ed25519:KEY", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", text)
    text = re.sub(r"os:[\w.-]+", "os:USER", text)
    return re.sub(r"audit log entry (\d+) \([0-9a-f]{12}\)", r"audit log entry \1 (HASH)", text)


def _populate(folder: Path) -> None:
    """The registry the page describes, the files its session uses."""
    store = new_store(f"sqlite:///{folder / 'riskengine.db'}")
    try:
        run = record_backtest(store, DRAFT, REGIONAL)
        first = r.submit(store, DRAFT, tests=TESTS, backtest_run=run, file="footwear.rp")
        r.approve(store, first.pk, decision="EC-12/2025", decided_on=D(2025, 1, 10), group="1A",
                  unit="12", in_force_from=D(2025, 2, 1), in_force_to=D(2026, 12, 31))  # fmt: skip
        second = r.submit(store, REGIONAL, tests=REGIONAL_TESTS, backtest_run=run)
        r.approve(store, second.pk, decision="EC-13/2025", decided_on=D(2025, 1, 10),
                  group="1A", unit="20", in_force_from=D(2025, 2, 1))  # fmt: skip
        r.suspend(store, "1A/12/2025/00001", ground="10.3.4", on=D(2025, 8, 1),
                  reason="false hits in Odesa")  # fmt: skip
        r.resume(store, "1A/12/2025/00001", on=D(2025, 8, 15), reason="indicator checked")
    finally:
        store.dispose()
    (folder / "fill.rp").write_text(
        fill_text("1A/20/2025/00002-01", "N-17", "2025-03-03", "2025-03-10 .. 2025-06-09"),
        encoding="utf-8",
    )
    item = {"hs_code": "6403990000", "origin": "CN", "customs_value": 1000, "net_mass": 10}
    fridge = {"hs_code": "8418100000", "customs_value": 1500, "net_mass": 10}
    declaration = {"id": "UA100110-2025-000042", "date": "2025-03-12", "office": "UA100110",
                   "items": [item, fridge]}  # fmt: skip
    (folder / "boots.json").write_text(json.dumps(declaration), encoding="utf-8")
    (folder / "drafts").mkdir()
    (folder / "drafts" / "footwear.rp").write_text(DRAFT, encoding="utf-8")
    tamper = next(b for b in _blocks(PAGE.read_text(encoding="utf-8"), "python") if "zipfile" in b)
    (folder / "tamper.py").write_text(tamper, encoding="utf-8")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str, str]]]:
    """The folder, and every command of the page's console blocks: (command, expected output,
    actual output)."""
    folder = tmp_path_factory.mktemp("bundle_docs")
    _populate(folder)
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for name, args in (("python", ""), ("riskengine", " -m riskengine")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)}{args} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        NO_COLOR="1",
        COLUMNS="100",
    )
    env.pop("RISKENGINE_DB", None)
    out = []
    for block in _blocks(PAGE.read_text(encoding="utf-8"), "console"):
        parts = re.split(r"^\$ (.*)\n", block, flags=re.M)
        for command, expected in zip(parts[1::2], parts[2::2], strict=True):
            done = subprocess.run(
                ["bash", "-c", command + " 2>&1"], cwd=folder, env=env, capture_output=True,
                text=True, timeout=600,
            )  # fmt: skip
            out.append((command, expected, done.stdout))
    return folder, out


def test_every_command_of_the_page_prints_what_the_page_shows(
    session: tuple[Path, list[tuple[str, str, str]]],
) -> None:
    commands = session[1]
    assert len(commands) >= 15
    for command, expected, actual in commands:
        shown = _normal(expected).splitlines()
        got = _normal(actual).splitlines()
        if shown and shown[-1].strip() == "…":  # the page shows the beginning only
            assert got[: len(shown) - 1] == shown[:-1], command
        else:
            assert got == shown, command


def test_the_python_example_prints_what_the_page_shows(
    session: tuple[Path, list[tuple[str, str, str]]],
) -> None:
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(r"## In Python\n\n```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```", text,
                      re.S)  # fmt: skip
    assert found is not None
    code, shown = found.groups()
    folder = session[0]  # after the session: the bundle of revision 2
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/bundle.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue() == shown
