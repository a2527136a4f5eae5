"""Issue 11 replayed as a user would: the command, what it prints, its exit status.

Each test is one scenario of the issue run through the command line (or the Python API) on a
scratch folder; the assertions are on what the user sees.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli

MAPPING = """\
[source]
format = "csv"
delimiter = ";"
group_by = "ID"
[fields]
"declaration.id" = "ID"
"declaration.date" = "DATE"
"declaration.office" = "OFFICE"
"declaration.declarant.id" = "DECLARANT"
"item.hs_code" = "HS"
"item.customs_value" = "VALUE"
"item.net_mass" = "NET"
"""
HEADER = "ID;DATE;OFFICE;DECLARANT;HS;VALUE;NET\n"


def _row(decl: str, hs: str, value: str = "100") -> str:
    return f"{decl};2025-01-01;UA100110;1;{hs};{value};10\n"


def _init(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(cli, ["db", "init", "--db", url])
    assert result.exit_code == 0, result.output
    return url


def test_one_declaration_apart_is_said_in_the_singular(tmp_path: Path) -> None:
    """Rows A, B, A: A stored with both items, and the note reads "1 declaration had"."""
    url = _init(tmp_path)
    (tmp_path / "map.toml").write_text(MAPPING)
    export = tmp_path / "aba.csv"
    export.write_text(
        HEADER + _row("A", "6403990000") + _row("B", "6403990000") + _row("A", "6404990000", "300")
    )
    result = CliRunner().invoke(
        cli, ["ingest", str(export), "--mapping", str(tmp_path / "map.toml"), "--db", url]
    )
    assert result.exit_code == 0, result.output
    assert "2 declarations added" in result.output
    assert "1 declaration had rows apart from each other in the file" in result.output
    assert "1 declarations" not in result.output
    engine = sa.create_engine(url)
    with engine.connect() as c:
        items = c.execute(
            sa.text(
                "select d.id, i.hs_code from items i join declarations d "
                "on d.pk = i.decl_pk order by d.id, i.item_no"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in items] == [
        ("A", "6403990000"),
        ("A", "6404990000"),
        ("B", "6403990000"),
    ]


def test_unchanged_ingest_with_one_reject_says_row_was(tmp_path: Path) -> None:
    url = _init(tmp_path)
    (tmp_path / "map.toml").write_text(MAPPING)
    export = tmp_path / "one_bad.csv"
    export.write_text(HEADER + _row("A", "6403990000") + _row("B", "6403990000", "1_000"))
    args = ["ingest", str(export), "--mapping", str(tmp_path / "map.toml"), "--db", url]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 1, first.output
    assert "1 row rejected" in first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1, again.output
    assert f"1 row was rejected: {export}.rejects.csv\n" in again.output


def test_catalogue_help_says_where_the_default_comes_from() -> None:
    """Item 8: the store remembers its catalogue; the help of a command that opens no store
    (sql, test) does not promise the store's catalogue, db init says it records it."""

    def option_help(*command: str) -> str:
        result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        line = next(x for x in result.output.splitlines() if x.strip().startswith("--catalogue"))
        return line

    for command in (("sql",), ("test",)):
        shown = option_help(*command)
        assert "store" not in shown, shown
        assert "[[reason]]" in shown
    for command in (("db", "init"), ("db", "upgrade")):
        assert "the store records it" in option_help(*command)
    for command in (("backtest",), ("ingest",)):
        assert "the catalogue the store was initialised with" in option_help(*command)


ONE_DECLARATION = (
    '{"id": "K1", "date": "2025-03-01", "office": "UA100110", "declarant": {"id": "1"}, '
    '"items": [{"hs_code": "6403990000", "customs_value": 5, "net_mass": 1}]}\n'
)
FOOTWEAR = """\
profile draft "Footwear" {
    indicators {
        footwear: item.hs_code starts with ("6403")
    }
    degree = 100 * footwear
    message "footwear {item.hs_code}"
    controls {
        102 "Documentary check" mandatory from 70
    }
}
"""
#: FOOTWEAR reading the customs value too (in its message): scoring checks the fields the
#: profiles read (issue 13), so a bad value is rejected only in a field some profile reads.
FOOTWEAR_VALUED = FOOTWEAR.replace(
    'message "footwear {item.hs_code}"', 'message "footwear {item.hs_code} at {item.customs_value}"'
)
CONTROLS_MAP = """\
kind = "controls"
[source]
delimiter = ";"
[fields]
declaration_id = "DECL_ID"
procedure = "PROCEDURE"
violation_found = { column = "RESULT", true_values = ["V"], false_values = ["OK"] }
revenue = "REVENUE"
date = "DATE"
"""


def test_one_selected_declaration_with_a_control_of_another_procedure(tmp_path: Path) -> None:
    """Item 15 in the singular: "its 1 selected declaration has 1 control result"."""
    url = _init(tmp_path)
    runner = CliRunner()
    (tmp_path / "one.jsonl").write_text(ONE_DECLARATION)
    assert runner.invoke(cli, ["ingest", str(tmp_path / "one.jsonl"), "--db", url]).exit_code == 0
    (tmp_path / "ctl.toml").write_text(CONTROLS_MAP)
    (tmp_path / "ctl.csv").write_text(
        "DECL_ID;PROCEDURE;RESULT;REVENUE;DATE\nK1;INSPECTION;V;100.10;2025-03-02\n"
    )
    ingested = runner.invoke(
        cli, ["ingest", str(tmp_path / "ctl.csv"), "--mapping", str(tmp_path / "ctl.toml"),
              "--db", url],
    )  # fmt: skip
    assert ingested.exit_code == 0, ingested.output
    (tmp_path / "footwear.rp").write_text(FOOTWEAR)
    run = runner.invoke(
        cli, ["backtest", str(tmp_path / "footwear.rp"), "--db", url, "--from", "2025-01-01",
              "--to", "2025-12-31", "--no-record"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert (
        "warning: Footwear: its 1 selected declaration has 1 control result, none for a "
        "procedure it applied (102): 0 controls counted; --any-control counts them"
    ) in " ".join(run.stderr.split())


ONE_DAY_GAP = """\
profile 5B/20/2012/00007-01 "Regional price limits" {
    approved 2012-02-01
    in force 2012-03-01 .. 2012-12-31
    filling regional by "Regional customs"
    module declaration
    spheres 203
    regional { max_price: number }
    indicators { cheap: item.customs_value / item.net_mass < region.max_price }
    degree = 100 * cheap
    message "Price below {region.max_price}"
    controls { 102 "Documentary check" mandatory from 50 }
}

fill for 5B/20/2012/00007-01 {
    office UA100000 order "1" of 2012-03-01 valid 2012-03-01 .. 2012-05-31
    values { max_price = 1.5 }
}

fill for 5B/20/2012/00007-01 {
    office UA100000 order "2" of 2012-05-20 valid 2012-06-02 .. 2012-08-31
    values { max_price = 1.2 }
}
"""


def test_a_regional_gap_of_one_day_is_said_in_the_singular(tmp_path: Path) -> None:
    """Item 12's warning (RE415) for a single day: "on that day", not "on those 1 days"."""
    path = tmp_path / "regional.rp"
    path.write_text(ONE_DAY_GAP)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning[RE415]: no office's fill is valid on 2012-06-01 of the in-force period" in (
        result.output
    )
    assert "applies to no declaration on that day" in result.output
    assert "1 days" not in result.output


def test_the_sweep_charts_say_one_declaration_in_the_singular(tmp_path: Path) -> None:
    """The HTML sweep's tooltips: "(1 declaration)", "(1 hit in 1 control)"."""
    url = _init(tmp_path)
    runner = CliRunner()
    (tmp_path / "one.jsonl").write_text(ONE_DECLARATION)
    assert runner.invoke(cli, ["ingest", str(tmp_path / "one.jsonl"), "--db", url]).exit_code == 0
    (tmp_path / "ctl.toml").write_text(CONTROLS_MAP)
    (tmp_path / "ctl.csv").write_text(
        "DECL_ID;PROCEDURE;RESULT;REVENUE;DATE\nK1;102;V;100.10;2025-03-02\n"
    )
    ingested = runner.invoke(
        cli, ["ingest", str(tmp_path / "ctl.csv"), "--mapping", str(tmp_path / "ctl.toml"),
              "--db", url],
    )  # fmt: skip
    assert ingested.exit_code == 0, ingested.output
    (tmp_path / "footwear.rp").write_text(FOOTWEAR)
    html = tmp_path / "report.html"
    run = runner.invoke(
        cli, ["backtest", str(tmp_path / "footwear.rp"), "--db", url, "--from", "2025-01-01",
              "--to", "2025-12-31", "--no-record", "--sweep", "--html", str(html)],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    text = html.read_text(encoding="utf-8")
    assert "selectivity 100.00 % (1 declaration)" in text
    assert "hit rate 100.00 % (1 hit in 1 control)" in text
    assert "(1 declarations)" not in text and "1 hits" not in text


def test_a_catalogue_with_errors_is_a_usage_error_in_every_command(tmp_path: Path) -> None:
    """docs/cli.md: a bad option value is status 2. `check`, `show` and `fields` said so for a
    catalogue with errors; the commands that open a store said status 1: now all say 2, with
    the file, line and reason, and create nothing."""
    bad = tmp_path / "reasons.toml"
    bad.write_text('[[reason]]\ncode = 1401\nname_uk = "x"\n', encoding="utf-8")
    (tmp_path / "p.rp").write_text(FOOTWEAR)
    (tmp_path / "one.jsonl").write_text(ONE_DECLARATION)
    (tmp_path / "tests").mkdir()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    profile, decls = str(tmp_path / "p.rp"), str(tmp_path / "one.jsonl")
    period = ["--from", "2025-01-01", "--to", "2025-12-31"]
    for command in (
        ["db", "init", "--db", url], ["db", "upgrade", "--db", url],
        ["db", "current", "--db", url], ["ingest", decls, "--db", url],
        ["backtest", profile, "--db", url, *period], ["score", decls, "--profiles", profile],
        ["sql", profile], ["test", str(tmp_path / "tests")], ["show", profile], ["fields"],
        ["check", profile],
    ):  # fmt: skip
        result = CliRunner().invoke(cli, [*command, "--catalogue", str(bad)])
        assert result.exit_code == 2, (command, result.output)
        assert "Invalid value for '--catalogue'" in result.output, command
        assert f"{bad}:1: reason 1401: write the code in quotes" in result.output, command
        assert "Traceback" not in result.output
    assert not (tmp_path / "store.db").exists()


SAMPLE_PROFILES = Path(__file__).resolve().parent.parent / "profiles"


def test_sql_for_sqlite_runs_as_printed_with_riskengines_function(tmp_path: Path) -> None:
    """Item 19: `riskengine sql` prints a query to run by hand. On SQLite a `matches` compiles
    to riskengine's own re_fullmatch: the output says so, and with the function registered the
    printed text runs as it is on an initialised store."""
    from riskengine.sql.compile import register_functions

    url = _init(tmp_path)
    result = CliRunner().invoke(
        cli, ["sql", str(SAMPLE_PROFILES), "--dialect", "sqlite", "--from", "2024-01-01",
              "--to", "2024-12-31"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "re_fullmatch(" in result.output
    assert "-- re_fullmatch(pattern, value) (`matches`) is riskengine's own SQLite function" in (
        result.output
    )
    engine = sa.create_engine(url)
    register_functions(engine)
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql(result.output.rstrip().rstrip(";")).fetchall() == []
    finally:
        engine.dispose()
    # the other dialects have no such comment
    pg = CliRunner().invoke(cli, ["sql", str(SAMPLE_PROFILES), "--dialect", "postgresql"])
    assert pg.exit_code == 0 and "re_fullmatch" not in pg.output


def test_fields_with_a_plain_word_that_matches_nothing_suggests_a_wildcard() -> None:
    """`riskengine fields brand` matched nothing without a word why (patterns match whole
    paths); it now points to '*brand*', which lists item.brand."""
    runner = CliRunner()
    plain = runner.invoke(cli, ["fields", "brand"])
    assert plain.exit_code == 0, plain.output
    assert plain.output == (
        "no field matches brand (a pattern matches whole paths: '*brand*' finds the paths "
        "containing it)\n"
    )
    wild = runner.invoke(cli, ["fields", "*brand*", "--format", "json"])
    assert "item.brand" in [f["path"] for f in json.loads(wild.output)]
    assert runner.invoke(cli, ["fields", "x*"]).output == "no field matches x*\n"


def test_a_json_number_beyond_the_float_range_is_out_of_range_as_in_score(
    tmp_path: Path,
) -> None:
    """Item 4, one rule everywhere: `ingest` said "got inf" for a JSON `1e400` that `score`
    reports as "1E+400 is out of range"; both now say the latter, and the good line is stored."""
    url = _init(tmp_path)
    good = ONE_DECLARATION.strip()
    bad = good.replace('"K1"', '"K0"').replace('"customs_value": 5', '"customs_value": 1e400')
    batch = tmp_path / "batch.jsonl"
    batch.write_text(f"{bad}\n{good}\n")
    ingested = CliRunner().invoke(cli, ["ingest", str(batch), "--db", url])
    assert ingested.exit_code == 1, ingested.output
    assert "1 declaration added" in ingested.output
    rejects = (tmp_path / "batch.jsonl.rejects.csv").read_text()
    reason = "1E+400 is out of range (a number may be at most 1e15 in magnitude)"
    assert f'1,1,K0,"item 1, item.customs_value: {reason}"' in rejects
    assert "inf" not in rejects.split("\n")[1].split(",{")[0]
    (tmp_path / "p.rp").write_text(FOOTWEAR_VALUED)
    scored = CliRunner().invoke(
        cli, ["score", "-", "--profiles", str(tmp_path / "p.rp")], input=f"{bad}\n{good}\n"
    )
    assert scored.exit_code == 1
    first, second = (json.loads(line) for line in scored.stdout.splitlines())
    assert (first["rejected"], first["id"], first["reason"]) == (True, "K0", reason)
    assert second["id"] == "K1" and second["selected"] is True


def test_score_reads_a_jsonl_file_as_a_batch(tmp_path: Path) -> None:
    """`riskengine score batch.jsonl` said "batch.jsonl:2:1: not valid JSON: Extra data": a
    .jsonl file is now scored line by line as standard input is, bad lines rejected with their
    numbers, bad UTF-8 included, and the good lines after them scored."""
    good = ONE_DECLARATION.strip().encode()
    bad_number = good.replace(b'"K1"', b'"K0"').replace(b": 5,", b": 1e400,")
    not_utf8 = good.replace(b'"K1"', b'"K\xff"')
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(b"\n".join([bad_number, not_utf8, b"", good]) + b"\n")
    (tmp_path / "p.rp").write_text(FOOTWEAR_VALUED)
    result = CliRunner().invoke(cli, ["score", str(batch), "--profiles", str(tmp_path / "p.rp")])
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r.get("rejected", False), r.get("line"), r["id"]) for r in records] == [
        (True, 1, "K0"), (True, 2, None), (False, None, "K1")
    ]  # fmt: skip
    assert records[1]["reason"].startswith("not valid UTF-8 text")
    assert records[2]["selected"] is True


JSONL_MAPPING = """\
[source]
format = "jsonl"
[fields]
"declaration.id" = "id"
"declaration.date" = "date"
"item.customs_value" = "v"
"""


def test_a_csv_file_under_a_json_lines_mapping_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """Item 13 with a mapping: a CSV export under a mapping that reads JSON Lines had every row
    rejected as invalid JSON and the previous rejects file replaced. Now refused, nothing
    written; a JSON Lines file whose first line is broken still goes through line by line."""
    (tmp_path / "jsonl.toml").write_text(JSONL_MAPPING)
    export = tmp_path / "export.csv"
    export.write_text(HEADER + _row("A", "6403990000"))
    rejects = tmp_path / "export.csv.rejects.csv"
    rejects.write_text("the rejects of the last run\n")
    url = f"sqlite:///{tmp_path / 'new.db'}"
    args = ["ingest", str(export), "--mapping", str(tmp_path / "jsonl.toml"), "--db", url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output  # a mapping that does not fit the file: bad input
    assert (
        f"{export} is not JSON Lines (no line starts with '{{'), but the mapping reads JSON "
        'Lines: set format = "csv" in [source] for a CSV file; nothing was read or written'
    ) in result.output
    assert rejects.read_text() == "the rejects of the last run\n"
    assert not (tmp_path / "new.db").exists()
    lines = tmp_path / "lines.jsonl"
    lines.write_text('garbage\n{"id": "W2", "date": "2025-03-01", "v": 1.5e3}\n')
    args = ["ingest", str(lines), "--mapping", str(tmp_path / "jsonl.toml"), "--db", url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "1 declaration added" in result.output and "1 row rejected" in result.output


def test_the_lists_written_are_named_and_counted_in_the_singular(tmp_path: Path) -> None:
    """Item 14's lists: "1 selected declaration written to …", "1 change of selection written
    to …", and the comparison points to the file written instead of "--changes FILE"."""
    url = _init(tmp_path)
    (tmp_path / "one.jsonl").write_text(ONE_DECLARATION)
    assert (
        CliRunner().invoke(cli, ["ingest", str(tmp_path / "one.jsonl"), "--db", url]).exit_code == 0
    )
    old, new = tmp_path / "old.rp", tmp_path / "new.rp"
    old.write_text(FOOTWEAR)
    new.write_text(FOOTWEAR.replace("degree = 100 * footwear", "degree = 50 * footwear"))
    selected, changes = tmp_path / "selected.csv", tmp_path / "changes.csv"
    run = CliRunner().invoke(
        cli, ["backtest", str(old), "--compare", str(new), "--db", url, "--from", "2025-01-01",
              "--to", "2025-12-31", "--no-record", "--selected", str(selected),
              "--changes", str(changes)],
        terminal_width=400,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert f"1 selected declaration written to {selected}" in run.stderr
    assert f"1 change of selection written to {changes}" in run.stderr
    said = " ".join(run.stdout.split())
    assert f"newly selected by A: 1 (e.g. K1); no longer selected: 0; every one in {changes}" in (
        said
    )
    assert "--changes FILE" not in said
    assert len(changes.read_text().splitlines()) == 2  # the header and K1


def test_a_csv_export_named_json_without_a_mapping_is_a_usage_error(tmp_path: Path) -> None:
    """Item 13: the suffix .json/.jsonl no longer overrides the content: a CSV export named
    export.json without --mapping is refused (status 2) before anything is written."""
    export = tmp_path / "export.json"
    export.write_text(HEADER + _row("A", "6403990000"))
    rejects = tmp_path / "export.json.rejects.csv"
    rejects.write_text("the rejects of the last run\n")
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = CliRunner().invoke(cli, ["ingest", str(export), "--db", url])
    assert result.exit_code == 2, result.output
    assert f"{export} is not JSON Lines" in result.output
    assert "a CSV file needs --mapping MAP.toml" in result.output
    assert rejects.read_text() == "the rejects of the last run\n"
    assert not (tmp_path / "new.db").exists()


def test_a_backtest_where_no_form_applies_prints_no_empty_table(tmp_path: Path) -> None:
    """Item 12 on the terminal: a regional profile with no fill valid in the period says so and
    prints no header-only "Control forms applied" table."""
    url = _init(tmp_path)
    (tmp_path / "one.jsonl").write_text(ONE_DECLARATION)
    assert (
        CliRunner().invoke(cli, ["ingest", str(tmp_path / "one.jsonl"), "--db", url]).exit_code == 0
    )
    sample = (SAMPLE_PROFILES / "regional_unit_price.rp").read_text(encoding="utf-8")
    (tmp_path / "regional.rp").write_text(sample, encoding="utf-8")  # without its fills
    run = CliRunner().invoke(
        cli, ["backtest", str(tmp_path / "regional.rp"), "--db", url, "--from", "2025-01-01",
              "--to", "2025-12-31", "--no-record"],
        terminal_width=200,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert (
        "1A/20/2023/00005-01: regional, not applied: no fill valid in 2025-01-01 .. 2025-12-31"
        in run.stdout
    )
    assert "Control forms applied" not in run.stdout


def test_a_backtest_period_that_ends_before_it_starts_is_a_usage_error(tmp_path: Path) -> None:
    """docs/cli.md: a bad option value is status 2, as `sql` and `demo-data` say for the same
    mistake; `backtest` said status 1 after opening the store."""
    (tmp_path / "p.rp").write_text(FOOTWEAR)
    result = CliRunner().invoke(
        cli, ["backtest", str(tmp_path / "p.rp"), "--db", f"sqlite:///{tmp_path / 'n.db'}",
              "--from", "2025-12-01", "--to", "2025-01-31"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--to': --to 2025-01-31 is before --from 2025-12-01" in (
        result.output
    )
    assert not (tmp_path / "n.db").exists()


def test_backtest_output_in_a_missing_folder_is_a_usage_error_not_an_internal_one(
    tmp_path: Path,
) -> None:
    """`backtest -o nodir/o.json` ran the whole backtest, then ended with "internal error:
    FileNotFoundError" (status 70); `--html nodir/r.html` failed after the run (status 1).
    Both folders are now checked with the options, as --selected's is (status 2)."""
    url = _init(tmp_path)
    (tmp_path / "p.rp").write_text(FOOTWEAR)
    base = ["backtest", str(tmp_path / "p.rp"), "--db", url, "--from", "2025-01-01", "--to",
            "2025-12-31", "--no-record"]  # fmt: skip
    missing = tmp_path / "nodir"
    for option, name in (("-o", "o.json"), ("--html", "r.html")):
        extra = ["--format", "json"] if option == "-o" else []
        result = CliRunner().invoke(cli, [*base, *extra, option, str(missing / name)])
        assert result.exit_code == 2, result.output
        assert f"{str(missing / name)!r}: the folder {str(missing)!r} does not exist" in (
            result.output
        )
        assert "internal error" not in result.output
    done = CliRunner().invoke(cli, [*base, "--format", "json", "-o", str(tmp_path / "o.json")])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "o.json").read_text())["profiles"][0]["key"] == "Footwear"
