"""A bad input file named by an option is bad usage, status 2, in every command (issue 11, left
over): a mapping file (``ingest --mapping``) and a lane file (``score --lanes``) said
``error: …`` with status 1 while a bad ``--catalogue`` or ``--config`` was status 2. Each now
says ``Invalid value for '--OPTION': FILE[:LINE]: reason`` with status 2 before anything is
read or written; and a mapping that does not fit the data file is status 2 too."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from riskengine.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FOOTWEAR = ROOT / "profiles" / "undervaluation_footwear_textiles.rp"
PERIOD = ["--from", "2024-01-01", "--to", "2024-12-31"]
DECLARATION = '{"id": "X1", "date": "2024-03-01", "items": []}\n'
CSV = "ID,DATE\nA,2024-01-01\n"

#: option -> (file name, bad content, the reason shown after ``FILE``)
BAD_FILES: dict[str, tuple[str, bytes, str]] = {
    "mapping-key": (
        "map.toml",
        b'[source]\nformat = "csv"\n[fields]\n"item.hs_cod" = "x"\n',
        ":4: fields.item.hs_cod: not a catalogue field; did you mean 'item.hs_code'?",
    ),
    "mapping-yaml": (
        "map.yaml",
        b"fields:\n  declaration.id: [ID\n",
        ":3: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    "lanes-value": (
        "lanes.toml",
        b'[lanes]\nred = "201"\n',
        ": lanes.red must be a list of procedure codes",
    ),
    "lanes-key": (
        "lanes.toml",
        b'[lanes]\nred = ["201"]\nblue = ["101"]\n',
        ": unknown lane setting 'blue' (known: ['count_if_necessary', 'red', 'unknown', 'yellow'])",
    ),
    "lanes-toml": (
        "lanes.toml",
        b"[lanes\n",
        ": cannot read the lane settings: Expected ']' at the end of a table declaration "
        "(at line 1, column 7)",
    ),
    "lanes-bytes": (
        "lanes.toml",
        b'[lanes]\nred = ["\xff"]\n',
        ": not UTF-8 text (invalid start byte at byte 16)",
    ),
    "catalogue": ("fields.toml", b"[[field]]\npath = 7\n", ""),
    "config": ("thresholds.toml", b"[backtest]\nhigh_selectivty = 5\n", ""),
}


def _command(case: str, bad: Path, tmp: Path) -> list[str]:
    store = f"sqlite:///{tmp / 'store.db'}"
    if case.startswith("mapping"):
        (tmp / "export.csv").write_text(CSV, encoding="utf-8")
        return ["ingest", str(tmp / "export.csv"), "--db", store, "--mapping", str(bad)]
    if case.startswith("lanes"):
        (tmp / "d.json").write_text(DECLARATION, encoding="utf-8")
        return ["score", str(tmp / "d.json"), "--profiles", str(FOOTWEAR), "--lanes", str(bad)]
    if case == "catalogue":
        return ["db", "init", "--db", store, "--catalogue", str(bad)]
    return ["backtest", str(FOOTWEAR), *PERIOD, "--db", store, "--config", str(bad)]


def _one_line(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_option_file_is_status_2_naming_the_option_and_the_file(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name, content, reason = BAD_FILES[case]
    bad = tmp_path / name
    bad.write_bytes(content)
    args = _command(case, bad, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    option = args[args.index(str(bad)) - 1]
    shown = _one_line(result).replace(f"for {option}:", f"for '{option}':")  # backtest's form
    assert f"Error: Invalid value for '{option}': {bad}" in shown
    if reason:
        assert f"Error: Invalid value for '{option}': {bad}{reason}" in shown
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no store, no rejects file


def test_a_mapping_that_does_not_fit_the_file_is_status_2_and_writes_nothing(
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[source]\nformat = "csv"\n[fields]\n"declaration.id" = "ID"\n"declaration.date" = "DAY"\n',
        encoding="utf-8",
    )
    export = tmp_path / "export.csv"
    export.write_text(CSV, encoding="utf-8")
    store = tmp_path / "store.db"
    args = ["ingest", str(export), "--db", f"sqlite:///{store}", "--mapping", str(mapping)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert f"Error: {mapping}: DAY: the file has no column 'DAY' (columns: ID, DATE)" in _one_line(
        result
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "map.toml"]
    # the mapping is for declarations, the command asks for outcomes: bad usage too
    outcomes = CliRunner().invoke(cli, [*args, "--kind", "outcomes"])
    assert outcomes.exit_code == 2, outcomes.output
    assert "Invalid value for '--mapping'" in _one_line(outcomes)
    assert "not a field of outcomes" in _one_line(outcomes)


def test_a_good_lane_file_still_scores(tmp_path: Path) -> None:
    lanes = tmp_path / "lanes.toml"
    lanes.write_text('[lanes]\nred = []\nyellow = ["103"]\nunknown = "green"\n', encoding="utf-8")
    declaration = tmp_path / "d.json"
    declaration.write_text(DECLARATION, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["score", str(declaration), "--profiles", str(FOOTWEAR), "--lanes", str(lanes)]
    )
    assert result.exit_code == 0, result.output


def test_docs_cli_md_says_a_bad_option_file_is_status_2() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    [row] = [line for line in doc.splitlines() if line.startswith("  | 2 |")]
    for option in ("--catalogue", "--config", "--mapping", "--lanes"):
        assert f"`{option}`" in row, option
    assert "does not fit the file" in row
