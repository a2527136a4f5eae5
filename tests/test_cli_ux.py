"""The command line as an analyst meets it: tables that fit and never cut a number, the commands
peers expect (`sql`, `fields`, `check --format sarif`, `--version`), exit statuses, wording."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from click.testing import CliRunner, Result

import riskengine
from riskengine import demo
from riskengine.backtest.output import cell
from riskengine.catalogue import default_catalogue
from riskengine.cli import cli
from riskengine.cli.demo import DEFAULT_SEED
from riskengine.render.words import duration, plural, rate
from riskengine.store.engine import connect

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "profiles"
FOOTWEAR = PROFILES / "undervaluation_footwear_textiles.rp"
PERIOD = ["--from", "2024-01-01", "--to", "2025-12-31"]


def run(
    *args: str | Path, env: dict[str, str | None] | None = None, input: str | None = None
) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input)


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "internal error" not in result.output


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo store of 2,000 declarations (the default seed)."""
    path = tmp_path_factory.mktemp("ux") / "demo.db"
    engine = connect(f"sqlite:///{path}")
    demo.write_demo(engine, 2000, DEFAULT_SEED)
    engine.dispose()
    return f"sqlite:///{path}"


def _backtest_json(store: str, *paths: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run(
        "backtest", *paths, "--db", store, *PERIOD, "--no-record", "--format", "json", *extra
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# ------------------------------------------------------------------------------ 18: tables


def _summary_rows(output: str) -> dict[str, str]:
    """Each profile's first summary line, by its key."""
    rows = {}
    for line in output.splitlines():
        found = re.match(r"│ (\S+/\S+) ", line)
        if found and found.group(1) not in rows:
            rows[found.group(1)] = line
    return rows


@pytest.mark.parametrize("columns", [None, "200", "60"])
def test_piped_tables_honour_columns_show_names_and_never_cut_a_number(
    store: str, columns: str | None
) -> None:
    args = ("backtest", PROFILES, "--db", store, *PERIOD, "--no-record", "--high-selectivity", "1")
    result = run(*args, env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "…" not in out  # nothing was shortened
    data = _backtest_json(store, PROFILES, extra=("--high-selectivity", "1"))
    rows = _summary_rows(out.split("Control forms applied")[0])
    assert len(rows) == len(data["profiles"]) == 9
    for p in data["profiles"]:
        line = rows[p["key"]]
        total = p["total"]
        cells = [c.strip() for c in line.split("│")]
        for metric in ("selected", "selectivity", "hits", "hit_rate", "revenue"):
            assert cell(metric, total[metric]) in cells, (metric, line)
    widths = {len(line) for line in out.splitlines() if line.startswith(("┏", "│", "└"))}
    if columns == "200":
        # the summary spreads to the width asked for, and each name is there (wrapped at words)
        assert max(widths) == 200
        flat = re.sub(r"[│\s]+", " ", out)
        for p in data["profiles"]:
            assert " ".join(p["name"].split()[:4]) in flat
        assert "HIGH" in out
    elif columns is None:
        assert max(widths) <= 120  # the width of piped output when COLUMNS does not say
    else:
        # narrower than the numbers need: the table keeps its numbers whole, wider than asked
        assert max(widths) > 60


def test_a_table_in_a_narrow_terminal_is_printed_wider_not_cut() -> None:
    from rich.console import Console
    from rich.table import Table

    from riskengine.render.terminal import print_table, terminal_width

    console = Console(width=30, record=True, no_color=True, file=open("/dev/null", "w"))  # noqa: SIM115
    table = Table()
    table.add_column("Profile", no_wrap=True, width=19)
    table.add_column("Hit %", justify="right", no_wrap=True, width=6)
    table.add_column("Revenue", justify="right", no_wrap=True, width=14)
    table.add_row("6F/12/2014/00021-03", "49.23", "127,348,250.26")
    print_table(console, table)
    text = console.export_text()
    assert "49.23" in text and "127,348,250.26" in text and "6F/12/2014/00021-03" in text
    assert console.width == 30  # back to its own width for what follows
    assert terminal_width(False) == 120


def test_columns_is_read_for_piped_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from riskengine.render.terminal import terminal_width

    monkeypatch.setenv("COLUMNS", "150")
    assert terminal_width(False) == 150 and terminal_width(True) == 150
    monkeypatch.setenv("COLUMNS", "nonsense")
    assert terminal_width(False) == 120 and terminal_width(True) is None


# ------------------------------------------------------------------------------ 19: sql


def _sql_body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()


def test_sql_prints_the_backtest_query_and_it_gives_the_backtests_numbers(store: str) -> None:
    result = run("sql", FOOTWEAR, "--dialect", "sqlite", *PERIOD)
    assert result.exit_code == 0, result.output
    head = result.stdout.splitlines()[:2]
    assert head[0].startswith(
        f"-- riskengine {riskengine.__version__}: the backtest query on sqlite"
    )
    assert "literals" in head[1] and "bound parameters" in head[1]
    body = _sql_body(result.stdout)
    assert body.endswith(";")
    assert "'2024-01-01'" in body and "'2025-12-31'" in body
    # run the printed text as it is, on the store
    from riskengine.sql.compile import register_functions

    engine = connect(store)
    register_functions(engine)
    with engine.connect() as conn:
        rows = [r._mapping for r in conn.exec_driver_sql(body.rstrip(";"))]
    engine.dispose()
    selected = sum(int(r["selected"] or 0) for r in rows if r["n"] == 0)
    hits = sum(int(r["hits"] or 0) for r in rows if r["n"] == 0)
    [profile] = _backtest_json(store, FOOTWEAR)["profiles"]
    assert selected == profile["total"]["selected"] > 0
    assert hits == profile["total"]["hits"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "duckdb"])
def test_sql_compiles_for_each_dialect_with_literals_not_placeholders(dialect: str) -> None:
    result = run("sql", PROFILES, "--dialect", dialect, *PERIOD, "--by", "office")
    assert result.exit_code == 0, result.output
    body = _sql_body(result.stdout)
    assert body.upper().startswith(("WITH", "SELECT"))
    outside_strings = re.sub(r"'(?:[^']|'')*'", "''", body)
    # no bound parameter left: no ?, :name or %(name)s
    assert not re.search(r"%\(\w+\)s|(?<![:\w]):[a-z_]\w*\b|\?", outside_strings)
    assert "g_office" in body and f"on {dialect}" in result.stdout


def test_sql_with_an_unknown_profile_or_dialect_is_bad_usage() -> None:
    unknown = run("sql", FOOTWEAR, "--profile", "9Z/99/2099/99999")
    assert unknown.exit_code == 2 and "no profile '9Z/99/2099/99999'" in unknown.output
    dialect = run("sql", FOOTWEAR, "--dialect", "oracle")
    assert dialect.exit_code == 2
    one = run("sql", PROFILES, "--profile", "2A/08/2013/00117", "--dialect", "duckdb")
    assert one.exit_code == 0 and "'103'" in one.stdout


# ------------------------------------------------------------------------------ 19: fields


def test_fields_lists_the_catalogue(tmp_path: Path) -> None:
    table = run("fields", "item.origin", env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    [row] = [line for line in table.stdout.splitlines() if "item.origin" in line]
    assert [c.strip() for c in row.split("│")][1:4] == ["item.origin", "code", "34"]
    assert "(1 field)" in table.stdout
    listed = json.loads(run("fields", "--format", "json").stdout)
    assert [f["path"] for f in listed] == [f.path for f in default_catalogue()]
    assert {f["source"] for f in listed} == {"built-in"}
    user = tmp_path / "fields.toml"
    user.write_text(
        '[[field]]\npath = "item.brand_owner.id"\ntype = "code"\n'
        'description = "Registry code of the holder of the trade mark"\n',
        encoding="utf-8",
    )
    extended = json.loads(run("fields", "--catalogue", user, "--format", "json", "item.*").stdout)
    mine = [f for f in extended if f["path"] == "item.brand_owner.id"]
    assert mine and mine[0]["source"] == "catalogue" and mine[0]["type"] == "code"
    assert all(f["path"].startswith("item.") for f in extended)
    shown = run("fields", "--catalogue", user, "item.brand_owner.*", env={"COLUMNS": "160"})
    assert "Registry code of the holder" in shown.stdout and "from " in shown.stdout
    uk = run("fields", "--lang", "uk", "item.origin", env={"COLUMNS": "200"})
    assert "Код країни походження товару" in uk.stdout


# ------------------------------------------------------------------------------ 19: SARIF

LEVEL = {"$ref": "#/$defs/level"}
REGION = ("startLine", "startColumn", "endLine", "endColumn")

#: The parts of the SARIF 2.1.0 schema (OASIS) that a log of ours uses, with their required
#: properties and types; the test also checks the cross references the schema cannot.
SARIF_SHAPE: dict[str, Any] = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "help": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {"$ref": "#/$defs/level"}
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "artifacts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"location": {"$ref": "#/$defs/artifactLocation"}},
                        },
                    },
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "properties": {
                                                    "artifactLocation": {
                                                        "$ref": "#/$defs/artifactLocation"
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {
                                                            k: {"type": "integer", "minimum": 1}
                                                            for k in REGION
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "level": {"enum": ["none", "note", "warning", "error"]},
        "message": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string"}},
        },
        "artifactLocation": {
            "type": "object",
            "required": ["uri"],
            "properties": {"uri": {"type": "string", "minLength": 1}},
        },
    },
}


def test_check_sarif_is_a_sarif_2_1_0_log_of_the_same_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.rp").write_text(
        'profile draft "X" {\n    indicators { a: item.origin = "CN" }\n    degree = 100 * a\n}\n',
        encoding="utf-8",
    )
    (tmp_path / "empty.rp").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # relative paths, as CI passes them
    sarif = run("check", "--format", "sarif", "bad.rp", "empty.rp")
    plain = run("check", "--format", "json", "bad.rp", "empty.rp")
    assert sarif.exit_code == plain.exit_code == 1
    log = json.loads(sarif.stdout)
    jsonschema.Draft202012Validator(SARIF_SHAPE).validate(log)
    [the_run] = log["runs"]
    assert the_run["tool"]["driver"]["name"] == "riskengine"
    assert the_run["tool"]["driver"]["version"] == riskengine.__version__
    rules = the_run["tool"]["driver"]["rules"]
    expected = json.loads(plain.stdout)["diagnostics"]
    assert len(the_run["results"]) == len(expected) == 2
    for result, d in zip(the_run["results"], expected, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == d["code"]
        assert result["level"] == d["severity"]
        assert result["message"]["text"].startswith(d["message"])
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == d["file"]  # relative, as given
        assert physical["region"] == {
            "startLine": d["line"], "startColumn": d["column"],
            "endLine": d["end_line"], "endColumn": d["end_column"],
        }  # fmt: skip
    assert [r["ruleId"] for r in the_run["results"]] == ["RE002", "RE007"]
    assert [r["level"] for r in the_run["results"]] == ["error", "warning"]


# ------------------------------------------------------------------------------ 19: version


def test_version_is_the_packages_and_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert riskengine.__version__ == metadata.version("riskengine") == project["project"]["version"]
    for flag in ("--version", "-V"):
        result = run(flag)
        assert result.exit_code == 0
        assert result.output == f"riskengine, version {riskengine.__version__}\n"


# ------------------------------------------------------------------------------ 19: exit codes

#: Every command with a file it reads, given a file that does not exist. ``None``: the command
#: reads no file the user names (its outputs are created).
MISSING: dict[str, list[list[str]] | None] = {
    "check": [["check", "nope.rp"], ["check", "--catalogue", "nope.toml", str(FOOTWEAR)]],
    "fmt": [["fmt", "nope.rp"]],
    "show": [["show", "nope.rp"]],
    "score": [
        ["score", "nope.json", "--profiles", str(PROFILES)],
        ["score", "--profiles", "nope"],
        ["score", "--profiles", str(PROFILES), "--lanes", "nope.toml"],
        ["score", "--bundle", "nope.bundle", "--public-key", str(FOOTWEAR)],
    ],
    "test": [["test", "nope"], ["test", str(PROFILES), "--profiles", "nope"]],
    "backtest": [
        ["backtest", "nope.rp", *PERIOD],
        ["backtest", str(FOOTWEAR), *PERIOD, "--compare", "nope.rp"],
        ["backtest", str(FOOTWEAR), *PERIOD, "--config", "nope.toml"],
    ],
    "ingest": [["ingest", "nope.csv"], ["ingest", str(FOOTWEAR), "--mapping", "nope.toml"]],
    "db": [["db", sub, "--catalogue", "nope.toml"] for sub in ("init", "upgrade", "current")],
    "demo": [["demo", "--profiles", "nope"]],
    "demo-data": None,
    "sql": [["sql", "nope.rp"], ["sql", str(FOOTWEAR), "--catalogue", "nope.toml"]],
    "fields": [["fields", "--catalogue", "nope.toml"]],
    "kpi": [
        ["kpi", "check", "nope.toml"],
        ["kpi", "report", "--year", "2025", "--passports", "nope"],
    ],
    "review": [
        ["review", "report", "1A/12/2025/00001-01", *PERIOD, "--rules", "nope.toml"],
        ["review", "due", "--intervals", "nope.toml"],
    ],
    "registry": [
        ["registry", "submit", "nope.rp", "--tests", str(FOOTWEAR), "--run", "1"],
        ["registry", "submit", str(FOOTWEAR), "--tests", "nope.toml", "--run", "1"],
        ["registry", "clarify", "1A/12/2025/00001-01", "nope.rp", "--ground", "10.2.3"],
        ["registry", "fill", "nope.rp", "--responsible", "A", "--responsible", "B"],
    ],
    "bundle": [
        ["bundle", "build", "--key", "nope.key", "-o", "x.bundle"],
        ["bundle", "verify", "nope.bundle", "--public-key", str(FOOTWEAR)],
        ["bundle", "verify", str(FOOTWEAR), "--public-key", "nope.pub"],
        ["bundle", "inspect", "nope.bundle"],
    ],
    "serve": [
        ["serve", "--bundle", "nope.bundle", "--public-key", str(FOOTWEAR), "--db", "x.db"],
        ["serve", "--bundle", str(FOOTWEAR), "--public-key", "nope.pub", "--db", "x.db"],
        ["serve", "--random-config", "nope.toml", "--bundle", str(FOOTWEAR), "--db", "x.db"],
    ],
}


def test_every_command_is_in_the_missing_file_table() -> None:
    assert sorted(MISSING) == sorted(cli.commands)


@pytest.mark.parametrize(
    "args",
    [args for cases in MISSING.values() if cases for args in cases],
    ids=lambda args: " ".join(a if "/" not in a else Path(a).name for a in args),
)
def test_a_missing_file_is_bad_usage_for_every_command(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    made = sorted(p.name for p in tmp_path.iterdir())
    _no_traceback(result)
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output and "nope" in result.output
    assert made == []  # nothing was created on the way (no store, no rejects file)


def test_docs_cli_md_says_a_missing_file_is_status_2() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    [row] = [line for line in doc.splitlines() if line.startswith("  | 2 |")]
    assert "a path that does not exist" in row


# ------------------------------------------------------------------------------ 21: wording


def test_counts_read_in_the_singular_and_the_plural() -> None:
    assert plural(1, "profile") == "1 profile" and plural(9, "profile") == "9 profiles"
    assert plural(0, "warning") == "0 warnings" and plural(12345, "row") == "12,345 rows"
    assert plural(2, "entry", "entries") == "2 entries"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0004, "0.4 ms"), (0.037, "37 ms"), (0.9994, "999 ms"), (1.0, "1.0 s"), (4.14, "4.1 s"),
        (42.4, "42 s"), (185.2, "3 min 05 s"), (3725, "1 h 02 min"),
    ],
)  # fmt: skip
def test_durations_read_well_from_milliseconds_to_hours(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_a_rate_is_given_only_for_runs_long_enough_to_mean_something() -> None:
    assert rate(6, 0.037, "row") == ""
    assert rate(100_000, 2.0, "row") == ", 50,000 rows/s"


def test_one_profile_backtest_and_a_small_ingest_read_right(store: str, tmp_path: Path) -> None:
    result = run("backtest", FOOTWEAR, "--db", store, *PERIOD, "--no-record")
    assert result.exit_code == 0, result.output
    head = result.stdout.splitlines()[0]
    assert re.fullmatch(
        r"Backtest 2024-01-01 \.\. 2025-12-31 on sqlite: 2,000 declarations, 1 profile, "
        r"\d+(\.\d)? (ms|s)",
        head,
    ), head
    lines = tmp_path / "six.jsonl"
    assert run("demo-data", "-n", "6", "--jsonl", lines).exit_code == 0
    ingested = run("ingest", lines, "--db", f"sqlite:///{tmp_path / 'six.db'}", "-q")
    assert ingested.exit_code == 0, ingested.output
    [line] = [x for x in ingested.output.splitlines() if x.startswith("ingested")]
    assert "6 rows, 6 declarations added" in line
    assert re.search(r"0 rows rejected in \d+(\.\d)? ms$", line), line  # no "0.0 s", no rows/s
    assert "rows/s" not in line


def test_demo_and_demo_data_use_the_same_default_seed(tmp_path: Path) -> None:
    def seed_default(command: click.Command) -> Any:
        [option] = [p for p in command.params if p.name == "seed"]
        return option.default

    assert seed_default(cli.commands["demo"]) == seed_default(cli.commands["demo-data"]) == 1
    out = tmp_path / "d.jsonl"
    assert run("demo-data", "-n", "40", "--jsonl", out).exit_code == 0
    ids = [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert ids == [r.declaration.header["id"] for r in demo.generate(40, seed=DEFAULT_SEED)]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "the file is empty"),
        ("# a note\n\n", "nothing but comments"),
        ('list origins = ("CN", "VN")\n', "only 1 list"),
    ],
)
def test_check_warns_about_a_file_without_a_profile(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "notes.rp"
    path.write_text(text, encoding="utf-8")
    result = run("check", path)
    assert result.exit_code == 0, result.output
    assert f"warning[RE007]: no profile or fill in the file ({why})" in result.output
    assert result.output.rstrip().endswith("checked 1 file: 0 errors, 1 warning")
    assert run("check", "--warnings-as-errors", path).exit_code == 1
    # a real profile file says nothing of the kind
    assert "RE007" not in run("check", PROFILES).output
