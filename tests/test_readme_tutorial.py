"""The README's first hour, as written: the demo command, the first profile, the tutorial's
commands (taken from README.md, run by a shell in a fresh folder), and every figure the README
quotes compared with what those commands print.

Nothing here restates a figure: the expected numbers are read from the README's prose and the
actual ones from the commands' output, so the test fails when either drifts from the other.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks of ``text``: (language, body)."""
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def _commands(body: str) -> list[str]:
    """The shell commands of a block, continuation lines joined."""
    return [c.strip() for c in body.replace("\\\n", " ").splitlines() if c.strip()]


def _prose(section: str) -> str:
    """The section without its code blocks, on one line (numbers wrap with the text)."""
    return " ".join(re.sub(r"^```.*?^```$", "", section, flags=re.M | re.S).split())


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _is_key(cell: str, key: str) -> bool:
    """Whether a first cell names ``key`` (possibly flagged: "KEY HIGH"), not another profile
    whose key starts with it ("KEY (old.rp)")."""
    return cell == key or (cell.startswith(key + " ") and not cell.startswith(key + " ("))


def _summary_line(output: str, key: str) -> str:
    """The first table row (the summary's) of profile ``key``."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and _is_key(cells[0], key):
            return line
    raise AssertionError(f"no table row for {key!r} in:\n{output}")


def _row(output: str, key: str) -> list[float]:
    """The numeric cells, in order, of the summary row of profile ``key``."""
    cells = [c.strip() for c in re.split(r"[│┃]", _summary_line(output, key))[1:-1]]
    return [_number(c) for c in cells[1:] if re.fullmatch(r"-?[\d,]+(\.\d+)?", c)]


def _flagged(output: str, key: str) -> bool:
    """Whether the summary flags ``key`` HIGH (on the row, or under the key in its cell)."""
    lines = output.splitlines()
    at = lines.index(_summary_line(output, key))
    below = (
        [c.strip() for c in re.split(r"[│┃]", lines[at + 1])[1:-1]] if at + 1 < len(lines) else []
    )
    return "HIGH" in lines[at] or (bool(below) and below[0] == "HIGH")


def _form_row(output: str, key: str, code: str) -> int:
    """Declarations on which control ``code`` of ``key`` applied (the control forms table)."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) >= 3 and cells[0] == key and cells[1] == code:
            return int(_number(cells[-1]))
    raise AssertionError(f"no control-form row {key} {code} in:\n{output}")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run the README's demo command and the tutorial's commands in a fresh folder; their
    outputs by command."""
    text = README.read_text(encoding="utf-8")
    folder = tmp_path_factory.mktemp("readme")
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    # the environment the README's first command creates: its python and its riskengine
    for name, args in (("python", ""), ("riskengine", " -m riskengine")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)}{args} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        NO_COLOR="1",
        COLUMNS="160",
    )
    env.pop("RISKENGINE_DB", None)

    def run(command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    outputs: dict[str, str] = {}
    # the first command: the install is not repeated here (the folder's .venv/bin holds this
    # interpreter and this source tree's riskengine); the demo runs as written
    install = _blocks(text)[0][1].strip()
    demo = install.split("&&")[-1].strip()
    assert demo.endswith("-m riskengine demo"), install
    outputs["demo"] = run(demo)

    section = _section(text, "A first profile")
    blocks = _blocks(section)
    profile = blocks[0][1]
    assert profile.startswith("profile draft"), profile
    (folder / "first.rp").write_text(profile, encoding="utf-8")
    for language, body in blocks[1:]:
        assert language == "bash"
        for command in _commands(body):
            outputs[command] = run(command)
    outputs["prose"] = _prose(section)
    outputs["first.rp"] = (folder / "first.rp").read_text(encoding="utf-8")
    return outputs


def _named(outputs: dict[str, str], *words: str) -> list[str]:
    return [c for c in outputs if all(w in c.split() for w in words)]


def test_the_demo_stores_the_declarations_the_readme_announces(tutorial: dict[str, str]) -> None:
    intro = " ".join(README.read_text(encoding="utf-8").split())
    count = re.search(r"it generates ([\d,]+) reproducible demo declarations", intro)
    assert count is not None
    assert f"{count[1]} new declarations" in tutorial["demo"]


def test_check_fmt_and_show_work_on_the_first_profile(tutorial: dict[str, str]) -> None:
    (check,) = [c for c in tutorial if c.startswith("riskengine check first.rp")]
    assert "0 errors, 0 warnings" in tutorial[check]
    (fmt,) = [c for c in tutorial if c.startswith("riskengine fmt first.rp")]
    assert "already formatted" in tutorial[fmt]
    (show,) = [c for c in tutorial if c.startswith("riskengine show first.rp")]
    assert "# Cheap footwear from Asia" in tutorial[show]


def test_the_first_backtest_gives_the_figures_the_readme_quotes(tutorial: dict[str, str]) -> None:
    prose = tutorial["prose"]
    (first,) = [c for c in _named(tutorial, "backtest", "first.rp") if "--compare" not in c]
    out = tutorial[first]
    quoted = re.search(
        r"this draft selects ([\d,]+) of the ([\d,]+) declarations \(([\d.]+) %\), and the "
        r"backtest flags it HIGH .* Its (\d+) recorded controls found (\d+) violations \(hit "
        r"rate ([\d.]+) %\)\. Only (\d+) declarations are cheap as well",
        prose,
    )
    assert quoted is not None, prose
    selected, considered, selectivity, controls, hits, hit_rate, cheap = (
        _number(x) for x in quoted.groups()
    )
    assert f"{int(considered):,} declarations" in out
    assert _row(out, "Cheap footwear from Asia")[:5] == [
        selected, selectivity, controls, hits, hit_rate
    ]  # fmt: skip
    assert _flagged(out, "Cheap footwear from Asia")
    assert _form_row(out, "Cheap footwear from Asia", "201") == cheap
    assert "report written to first.html" in out


def test_raising_the_threshold_and_comparing_works_as_written(tutorial: dict[str, str]) -> None:
    prose = tutorial["prose"]
    assert "from 100" in tutorial["first.rp"] and "from 70" not in tutorial["first.rp"]
    (compare,) = _named(tutorial, "backtest", "--compare")
    out = tutorial[compare]
    quoted = re.search(
        r"The new version selects (\d+) declarations \(([\d.]+) %\), and (\d+) of its (\d+) "
        r"controls found a violation \(hit rate ([\d.]+) %\)\. .* shown as `([^`]+)`; the "
        r"comparison says that no declaration is newly selected and ([\d,]+) are no longer "
        r"selected",
        prose,
    )
    assert quoted is not None, prose
    selected, selectivity, hits, controls, hit_rate = (_number(x) for x in quoted.groups()[:5])
    assert _row(out, "Cheap footwear from Asia")[:5] == [
        selected, selectivity, controls, hits, hit_rate
    ]  # fmt: skip
    assert not _flagged(out, "Cheap footwear from Asia")
    old_key = quoted[6]
    # the earlier version: the same figures as the first backtest
    (first,) = [c for c in _named(tutorial, "backtest", "first.rp") if "--compare" not in c]
    assert _row(out, old_key)[:5] == _row(tutorial[first], "Cheap footwear from Asia")[:5]
    newly = re.search(r"newly selected\D*?(\d[\d,]*)", out)
    gone = re.search(r"no longer selected\D*?(\d[\d,]*)", out)
    assert newly is not None and gone is not None, out
    assert _number(newly[1]) == 0
    assert _number(gone[1]) == _number(quoted[7])
    assert _number(gone[1]) == _row(out, old_key)[0] - selected


def test_the_demo_ends_with_the_draft_to_bundle_lines_the_readme_shows(
    tutorial: dict[str, str],
) -> None:
    """The README quotes the demo's last step (draft → registry → signed bundle → scored from
    the bundle); the demo prints exactly those lines (the key id, random per run, is `…`)."""
    import re

    text = README.read_text(encoding="utf-8")
    after = text[text.index("Last, it takes the profile of") :]
    start = after.index("```text\n") + len("```text\n")
    block = after[start : after.index("\n```", start)]
    assert len(block.splitlines()) >= 5, block  # the block itself, not an empty slice
    printed = tutorial["demo"].splitlines()
    for line in block.splitlines():
        pattern = re.escape(line).replace("…", "[0-9a-f]{16}")
        assert any(re.fullmatch(pattern, p.rstrip()) for p in printed), line
