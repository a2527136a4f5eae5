"""The command line as a user sees it: exit codes, messages, JSON, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.cli.common import EXIT_INTERNAL

DATA = Path(__file__).parent / "data"
KITCHEN_SINK = DATA / "kitchen_sink.rp"
ROOT = Path(__file__).parent.parent

BAD_LINE = '    indicators { a: item.origin = "CN" }'
BAD = f'profile "bad" {{\n{BAD_LINE}\n}}\n'


def run(*args: str | Path, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


CLEAN = """\
profile draft "Cheap footwear" {
    module declaration
    spheres 101, 203
    indicators {
        footwear "Footwear": item.hs_code starts with ("6403", "6404")
        cheap: item.customs_value / item.net_mass < 12.50
    }
    degree = 50 * footwear + 50 * cheap
    message "Check {item.hs_code}"
    controls {
        102 "Documentary check" mandatory from 50
    }
}
"""
REGIONAL = """\
profile 1A/20/2024/00001-01 "Regional unit price" {
    filling regional by "Customs value division"
    regional { max_price: number "Maximum price per kg" }
    indicators { cheap: item.customs_value / item.net_mass < region.max_price }
    degree = 100 * cheap
    controls { 102 "Documentary check" mandatory from 50 }
}
fill for 1A/20/2024/00001-01 {
    office UA500000 "Odesa customs"
    valid 2024-01-15 .. 2024-04-14
    values { max_price = 3.5 }
}
"""
# A draft with nothing to evaluate: valid, but the checks warn about it.
WARNED = 'profile "empty" { }\n'


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    path = tmp_path / "clean.rp"
    path.write_text(CLEAN, encoding="utf-8")
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.rp"
    path.write_text(BAD, encoding="utf-8")
    return path


def _no_traceback(result: click.testing.Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------------------------ check


def test_check_clean_file_exits_0_with_a_summary(clean: Path) -> None:
    result = run("check", clean)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "checked 1 file: 0 errors, 0 warnings"


def test_check_kitchen_sink_reports_what_the_checks_find() -> None:
    result = run("check", "--format", "json", KITCHEN_SINK)
    document = json.loads(result.output)
    assert result.exit_code == (1 if document["errors"] else 0)
    assert document["files"] == [str(KITCHEN_SINK)]
    text = run("check", KITCHEN_SINK)
    for d in document["diagnostics"]:
        assert f"{d['file']}:{d['line']}:{d['column']}: {d['severity']}[{d['code']}]" in text.output


def test_check_reports_the_line_the_caret_and_exits_1(bad: Path) -> None:
    result = run("check", bad)
    assert result.exit_code == 1
    column = BAD_LINE.index(" = ") + 2
    lines = result.output.splitlines()
    assert f"{bad}:2:{column}: error[RE002]: unexpected `=`" in lines
    source_line = next(i for i, x in enumerate(lines) if x.endswith(BAD_LINE))
    caret = lines[source_line + 1]
    assert caret.index("^") - caret.index("|") - 2 == column - 1
    assert lines[-1] == "checked 1 file: 1 error, 0 warnings"
    assert "\x1b[" not in result.output  # not a terminal: no colour codes


def test_check_json_has_files_diagnostics_and_counts(bad: Path, clean: Path) -> None:
    result = run("check", "--format", "json", bad, clean)
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["files"] == [str(bad), str(clean)]
    assert document["errors"] == 1
    assert document["warnings"] == sum(d["severity"] == "warning" for d in document["diagnostics"])
    (first,) = [d for d in document["diagnostics"] if d["severity"] == "error"]
    assert first["code"] == "RE002" and first["file"] == str(bad)
    assert (first["line"], first["column"]) == (2, BAD_LINE.index(" = ") + 2)


def test_check_searches_directories_for_profile_files(tmp_path: Path, bad: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.rp").write_text(CLEAN, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a profile", encoding="utf-8")
    result = run("check", "--format", "json", tmp_path)
    document = json.loads(result.output)
    assert sorted(document["files"]) == sorted([str(bad), str(tmp_path / "sub" / "ok.rp")])


def test_check_a_directory_without_profiles_is_a_usage_error(tmp_path: Path) -> None:
    result = run("check", tmp_path)
    assert result.exit_code == 2
    assert "no .rp files found" in result.output


def test_warnings_fail_only_with_warnings_as_errors(tmp_path: Path) -> None:
    path = tmp_path / "w.rp"
    path.write_text(WARNED, encoding="utf-8")
    plain = run("check", path)
    assert plain.exit_code == 0
    assert f"{path}:1:9: warning[" in plain.output
    assert plain.output.splitlines()[-1] == "checked 1 file: 0 errors, 1 warning"
    strict = run("check", "--warnings-as-errors", path)
    assert strict.exit_code == 1


def test_check_with_a_bad_catalogue_is_a_usage_error(tmp_path: Path) -> None:
    catalogue = tmp_path / "fields.toml"
    catalogue.write_text("[[field]\n", encoding="utf-8")
    result = run("check", "--catalogue", catalogue, KITCHEN_SINK)
    assert result.exit_code == 2, result.output
    assert "--catalogue" in result.output
    _no_traceback(result)


def test_missing_path_and_binary_file_print_no_traceback(tmp_path: Path) -> None:
    missing = run("check", tmp_path / "nope.rp")
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    _no_traceback(missing)
    binary = tmp_path / "binary.rp"
    binary.write_bytes(bytes(range(256)) * 4)
    for args in (("check", binary), ("show", binary), ("check", "--format", "json", binary)):
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert "RE005" in result.output  # not UTF-8
        _no_traceback(result)


def test_control_characters_in_a_file_are_shown_not_sent_to_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "nul.rp"
    path.write_text("\x1b[31m\x00", encoding="utf-8")
    result = run("check", path)
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x00" not in result.output
    assert "␛" in result.output


# ------------------------------------------------------------------------------------ fmt

UGLY = 'profile   "p"{indicators{a:item.x==1}}\n'


def _format_text(text: str, name: str) -> str:
    from riskengine.format import format_text

    return format_text(text, name)


def test_fmt_check_lists_files_that_would_change_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.rp"
    path.write_text(UGLY, encoding="utf-8")
    pretty = _format_text(UGLY, str(path))
    assert pretty != UGLY
    result = run("fmt", "--check", path)
    assert result.exit_code == 1
    assert f"would reformat {path}" in result.output
    assert path.read_text(encoding="utf-8") == UGLY
    tidy = tmp_path / "tidy.rp"
    tidy.write_text(pretty, encoding="utf-8")
    assert run("fmt", "--check", tidy).exit_code == 0


def test_fmt_rewrites_in_place_and_is_then_stable(tmp_path: Path) -> None:
    path = tmp_path / "p.rp"
    path.write_text(UGLY, encoding="utf-8")
    result = run("fmt", path)
    assert result.exit_code == 0, result.output
    assert f"reformatted {path}" in result.output
    assert path.read_text(encoding="utf-8") == _format_text(UGLY, str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["p.rp"]  # no temporary file left behind
    again = run("fmt", "--check", path)
    assert again.exit_code == 0


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.rp"
    path.write_text(UGLY, encoding="utf-8")
    _format_text(UGLY, str(path))
    result = run("fmt", "--diff", path)
    assert result.exit_code == 1
    assert f"--- a/{path}" in result.output and f"+++ b/{path}" in result.output
    assert f"-{UGLY.rstrip()}" in result.output
    assert path.read_text(encoding="utf-8") == UGLY


def test_fmt_leaves_files_with_errors_untouched_and_formats_the_rest(
    tmp_path: Path, bad: Path
) -> None:
    good = tmp_path / "good.rp"
    good.write_text(UGLY, encoding="utf-8")
    expected = _format_text(UGLY, str(good))
    result = run("fmt", bad, good)
    assert result.exit_code == 1
    assert "error[RE002]" in result.output and BAD_LINE in result.output
    assert f"not formatted: {bad} has errors" in result.output
    assert bad.read_text(encoding="utf-8") == BAD
    assert good.read_text(encoding="utf-8") == expected


def test_fmt_dash_formats_standard_input() -> None:
    expected = _format_text(UGLY, "<stdin>")
    result = CliRunner().invoke(cli, ["fmt", "-"], input=UGLY)
    assert result.exit_code == 0
    assert result.output == expected


# ------------------------------------------------------------------------------------ show

FIELD_ORDER_EN = [
    "Profile approval date",
    "Edition approval date",
    "Profile in force from",
    "Profile in force to",
    "Edition in force from",
    "Risk profile No.",
    "Profile name",
    "Filling method",
    "Risk spheres",
    "Risk indicators",
    "Risk degree assessment",
    "Control forms",
    "Maximum negative history",
    "Maximum positive history",
    "Contact person",
    "Effectiveness control term",
    "Analytical note",
]


def _in_order(text: str, labels: list[str]) -> bool:
    positions = [text.find(x) for x in labels]
    return -1 not in positions and positions == sorted(positions)


def test_show_markdown_has_the_fields_in_seed_order() -> None:
    result = run("show", KITCHEN_SINK)
    assert result.exit_code == 0, result.output
    assert _in_order(result.output, FIELD_ORDER_EN)
    assert "2A/08/2012/00042-03" in result.output


def test_show_in_ukrainian_uses_the_seed_field_names() -> None:
    result = run("show", "--lang", "uk", KITCHEN_SINK)
    assert result.exit_code == 0
    labels = ["Дата затвердження ПР", "Спосіб наповнення ПР", "Поріг ступеня ризику"]
    assert _in_order(result.output, labels)


def test_show_selects_a_profile_by_number_base_or_name(tmp_path: Path) -> None:
    path = tmp_path / "regional.rp"
    path.write_text(CLEAN + REGIONAL, encoding="utf-8")
    for selector in ("1A/20/2024/00001-01", "1A/20/2024/00001", "regional UNIT price"):
        result = run("show", "--profile", selector, path)
        assert result.exit_code == 0, selector
        assert "Cheap footwear" not in result.output
        assert "# Risk profile 1A/20/2024/00001-01" in result.output
        assert "# Regional fill of risk profile 1A/20/2024/00001-01 — UA500000" in result.output
    everything = run("show", path)
    assert _in_order(everything.output, ["# Cheap footwear", "# Risk profile 1A", "# Regional"])
    unknown = run("show", "--profile", "9Z/01/2000/00001-01", path)
    assert unknown.exit_code == 2
    assert "no profile '9Z/01/2000/00001-01'" in unknown.output
    assert "1A/20/2024/00001-01 'Regional unit price'" in unknown.output


def test_show_html_escapes_script_and_needs_no_network(tmp_path: Path) -> None:
    path = tmp_path / "x.rp"
    path.write_text(
        'profile draft "<script>alert(1)</script>" { indicators { a: item.x == 1 } }\n',
        encoding="utf-8",
    )
    out = tmp_path / "x.html"
    result = run("show", "--format", "html", "-o", out, path)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for attribute in ("src", "href"):
        for scheme in ("http://", "https://", "//"):
            assert f'{attribute}="{scheme}' not in page
    assert "http://" not in page and "https://" not in page


def test_show_refuses_a_file_with_errors(bad: Path) -> None:
    result = run("show", bad)
    assert result.exit_code == 1
    assert "error[RE002]" in result.output
    assert "has errors" in result.output


def test_show_bad_option_value_is_a_usage_error() -> None:
    result = run("show", "--format", "pdf", KITCHEN_SINK)
    assert result.exit_code == 2
    assert "'pdf' is not one of 'markdown', 'html'" in result.output


def test_show_writes_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "p.md"
    result = run("show", "-o", out, KITCHEN_SINK)
    assert result.exit_code == 0
    assert f"wrote {out}" in result.output
    assert _in_order(out.read_text(encoding="utf-8"), FIELD_ORDER_EN)


# ------------------------------------------------------------------------------------ frame


def test_version_and_help() -> None:
    version = run("--version")
    assert version.exit_code == 0 and version.output.startswith("riskengine, version ")
    helped = run("--help")
    assert helped.exit_code == 0
    for command in ("check", "fmt", "show"):
        assert command in helped.output


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_an_internal_error_is_reported_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from riskengine.cli import lang

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the renderer broke")

    monkeypatch.setattr(lang, "render", broken)
    monkeypatch.delenv("RISKENGINE_DEBUG", raising=False)
    result = run("show", KITCHEN_SINK)
    assert result.exit_code == EXIT_INTERNAL
    assert "internal error: RuntimeError: the renderer broke" in result.output
    assert "please report" in result.output and "RISKENGINE_DEBUG=1" in result.output
    _no_traceback(result)
    debug = run("show", KITCHEN_SINK, env={"RISKENGINE_DEBUG": "1"})
    assert isinstance(debug.exception, RuntimeError)


#: What ``riskengine --help`` listed before the commands were registered statically, and
#: ``registry`` and ``bundle`` (issue 12), ``kpi`` and ``review`` (issue 14) and ``serve``
#: (issue 13).
COMMANDS = [
    "backtest", "bundle", "check", "db", "demo", "demo-data", "fields", "fmt", "ingest", "kpi",
    "registry", "review", "score", "serve", "show", "sql", "test",
]  # fmt: skip


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0, result.output
    section = result.output.split("Commands:\n", 1)[1]
    listed = [line.split()[0] for line in section.splitlines() if line.startswith("  ")]
    assert listed == COMMANDS
    assert sorted(cli.commands) == COMMANDS
    assert sorted(cli.commands["db"].commands) == ["analyze", "current", "init", "upgrade"]  # type: ignore[attr-defined]
    assert sorted(cli.commands["bundle"].commands) == [  # type: ignore[attr-defined]
        "build", "inspect", "keygen", "verify",
    ]  # fmt: skip
    assert sorted(cli.commands["registry"].commands) == [  # type: ignore[attr-defined]
        "amend", "approve", "clarify", "export", "fill", "grant", "list", "log", "members",
        "purge", "resume", "return", "review", "revoke", "show", "submit", "suspend",
        "terminate", "verify",
    ]  # fmt: skip


def test_a_command_module_that_fails_to_import_is_an_error(tmp_path: Path) -> None:
    """No command is optional: a broken command module stops the program with the import error
    (and an internal-error status), it is not skipped with a warning."""
    script = (
        "import sys\n"
        "sys.modules['riskengine.cli.backtest'] = None  # importing it now raises ImportError\n"
        "from riskengine.cli import main\n"
        "main(['--help'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError: import of riskengine.cli.backtest halted" in done.stderr
    assert "warning" not in done.stderr and "Commands:" not in done.stdout


def test_end_to_end_in_a_subprocess(tmp_path: Path, clean: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RISKENGINE_DEBUG", None)
    ok = subprocess.run(
        [sys.executable, "-m", "riskengine", "check", "--format", "json", str(clean)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["errors"] == 0
    missing = subprocess.run(
        [sys.executable, "-m", "riskengine", "show", str(tmp_path / "nope.rp")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
