"""Ingest integrity (issue 11, items 1, 3, 13, 21): a declaration is stored whole or goes whole to
the rejects file — rows of one declaration apart from each other, a cell over the limit, a NUL
character, JSON numbers and nesting no reader can take — and a killed ingest of such a file
resumes to the same end."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine import demo
from riskengine.cli import cli
from riskengine.ingest.mapping import load_ingest_mapping, parse_ingest_mapping
from riskengine.ingest.pipeline import ingest_file
from riskengine.ingest.read import Row, groups
from riskengine.store.schema import TABLES

EXAMPLES = Path(demo.__file__).parent / "examples"
DECLARATIONS_MAP = EXAMPLES / "demo_export.toml"
HEADER = [name for name, _, _ in demo.EXPORT_COLUMNS]
COL = {name: i for i, name in enumerate(HEADER)}


def ident(record: demo.DemoRecord) -> str:
    return str(record.declaration.header["id"])


def multi_item(records: list[demo.DemoRecord]) -> list[demo.DemoRecord]:
    return [r for r in records if len(r.declaration.items) >= 2]


class Export:
    """A one-row-per-item export built row by row: where each declaration's rows end up, which
    declarations must be stored (with how many items) and which rejected (with which culprit
    reason)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, list[str]]] = []
        self.items: dict[str, list[str]] = {}  # stored id -> its HS codes in file order
        self.bad: dict[str, str] = {}  # rejected id -> a fragment of the culprit's reason

    def add(self, record: demo.DemoRecord, rows: list[list[str]] | None = None) -> None:
        rows = rows if rows is not None else list(demo.export_rows([record]))
        self.rows.extend((ident(record), row) for row in rows)

    def numbers(self, declaration: str) -> list[int]:
        return [n for n, (i, _) in enumerate(self.rows, start=1) if i == declaration]

    def write(self, path: Path) -> Path:
        with open(path, "w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream, delimiter=";")
            writer.writerow(HEADER)
            writer.writerows(row for _, row in self.rows)
        return path


def stored_items(engine: sa.Engine) -> dict[str, list[str]]:
    """Each stored declaration's HS codes in item order."""
    d, i = TABLES.declarations, TABLES.items
    found: dict[str, list[str]] = {}
    with engine.connect() as c:
        for decl_id in c.execute(sa.select(d.c.id)).scalars():
            found[decl_id] = []
        query = (
            sa.select(d.c.id, i.c.hs_code)
            .select_from(i.join(d, d.c.pk == i.c.decl_pk))
            .order_by(d.c.id, i.c.item_no)
        )
        for decl_id, hs in c.execute(query):
            found[decl_id].append(hs)
    return found


def read_rejects(path: str | Path) -> list[dict[str, str]]:
    limit = csv.field_size_limit(1 << 30)
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as stream:
            return list(csv.DictReader(stream))
    finally:
        csv.field_size_limit(limit)


def hs_codes(record: demo.DemoRecord) -> list[str]:
    return [str(item["hs_code"]) for item in record.declaration.items]


def broken_export(records: list[demo.DemoRecord], gap: int = 30) -> Export:
    """The export of ``records`` with every kind of trouble of items 1 and 3: rows of one
    declaration apart (moved ``gap`` declarations further on, so into later batches), good or
    with a bad row on either side; a cell over the limit and a NUL character in a declaration of
    several rows."""
    export = Export()
    kinds = ["split", "split-header", "split-bad", "first-bad", "long", "nul", "split-first",
             "split"]  # fmt: skip
    troubles = dict(zip((ident(r) for r in multi_item(records)), kinds, strict=False))
    later: dict[int, list[tuple[demo.DemoRecord, list[str]]]] = defaultdict(list)
    for index, record in enumerate(records):
        rows = list(demo.export_rows([record]))
        kind = troubles.get(ident(record))
        codes = hs_codes(record)
        if kind is None:
            export.items[ident(record)] = codes
        elif kind in ("split", "split-header", "split-bad", "first-bad"):
            moved = rows.pop()
            later[index + gap].append((record, moved))
            if kind == "split-header":
                moved[COL["DECLARANT"]] = "99999999"
                export.bad[ident(record)] = "column DECLARANT (declaration.declarant.id) differs"
            elif kind == "split-bad":
                moved[COL["NET"]] = "12kg"
                export.bad[ident(record)] = "column NET (item.net_mass): expected a number"
            elif kind == "first-bad":
                rows[0][COL["NET"]] = "12kg"
                export.bad[ident(record)] = "column NET (item.net_mass): expected a number"
            else:
                export.items[ident(record)] = codes
        elif kind == "split-first":  # the first item's row comes later: the items in file order
            later[index + gap].append((record, rows.pop(0)))
            export.items[ident(record)] = codes[1:] + codes[:1]
        elif kind == "long":
            rows[1][COL["DESCRIPTION"]] = "x" * 140_000
            export.bad[ident(record)] = (
                "column DESCRIPTION: a cell of 140,000 characters, over the limit of 131,072"
            )
        elif kind == "nul":
            rows[-1][COL["DESCRIPTION"]] = "Shoes\x00 size 42"
            export.bad[ident(record)] = "column DESCRIPTION: a NUL character"
        export.add(record, rows)
        for moved_record, moved_row in later.pop(index, []):
            export.add(moved_record, [moved_row])
    for index in sorted(later):
        for moved_record, moved_row in later[index]:
            export.add(moved_record, [moved_row])
    assert not set(kinds) - set(troubles.values()), "too few declarations of several items"
    return export


def check_result(engine: sa.Engine, export: Export, rejects_path: str | Path) -> None:
    """Every good declaration stored once with all its items in file order; every row of every
    bad one in the rejects file once, with the culprit's reason; nothing else."""
    stored = stored_items(engine)
    assert set(stored) == set(export.items)
    for declaration, codes in export.items.items():
        assert [c.lstrip("0") for c in stored[declaration]] == [c.lstrip("0") for c in codes], (
            declaration
        )
    rejects = read_rejects(rejects_path)
    numbers = [int(r["row"]) for r in rejects]
    assert len(numbers) == len(set(numbers))  # no reject written twice
    by_declaration: dict[str, list[dict[str, str]]] = defaultdict(list)
    for reject in rejects:
        by_declaration[reject["declaration"]].append(reject)
    assert set(by_declaration) == set(export.bad)
    for declaration, fragment in export.bad.items():
        found = by_declaration[declaration]
        assert sorted(int(r["row"]) for r in found) == export.numbers(declaration)
        culprits = [r for r in found if "rejected with its declaration" not in r["reason"]]
        assert len(culprits) == 1, found
        assert fragment in culprits[0]["reason"], culprits[0]["reason"]
        for other in found:
            if other is not culprits[0]:
                assert other["reason"] == (
                    f"rejected with its declaration (see row {culprits[0]['row']})"
                )


# --- item 1: a declaration is stored whole ------------------------------------------------------


@pytest.mark.parametrize(("batch_rows", "parallel"), [(1, False), (1000, False), (7, True)])
def test_rows_apart_are_one_declaration_and_bad_ones_are_rejected_whole(
    store: sa.Engine, tmp_path: Path, batch_rows: int, parallel: bool
) -> None:
    records = list(demo.generate(60, seed=5))
    export = broken_export(records, gap=4)
    path = export.write(tmp_path / "export.csv")
    result = ingest_file(
        store, path, load_ingest_mapping(DECLARATIONS_MAP), batch_rows=batch_rows,
        parallel=parallel,
    )  # fmt: skip
    check_result(store, export, result.rejects_path or "")
    assert result.records_added == len(export.items)
    assert result.rows_rejected == sum(len(export.numbers(i)) for i in export.bad)
    # an unchanged second run is recognised; a forced one stores nothing twice
    again = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP), force=True)
    assert again.records_added == 0
    assert again.records_skipped == len(export.items)
    check_result(store, export, again.rejects_path or "")


def test_the_simple_case_a_b_a(store: sa.Engine, tmp_path: Path) -> None:
    a, b = multi_item(list(demo.generate(30, seed=2)))[:2]
    a_rows = list(demo.export_rows([a]))
    export = Export()
    export.add(a, a_rows[:1])
    export.add(b)
    export.add(a, a_rows[1:])
    path = export.write(tmp_path / "aba.csv")
    result = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP))
    assert (result.records_added, result.rows_rejected) == (2, 0)
    stored = stored_items(store)
    assert len(stored[ident(a)]) == len(a.declaration.items)
    assert len(stored[ident(b)]) == len(b.declaration.items)


def test_an_interrupted_ingest_completes_a_split_declaration_when_resumed(
    store: sa.Engine, tmp_path: Path
) -> None:
    """Interrupted after the last batch, before the split declarations were completed: the
    store holds the first rows of one (the file is still 'running'); resuming completes it."""
    records = list(demo.generate(40, seed=5))
    export = broken_export(records, gap=3)
    path = export.write(tmp_path / "export.csv")
    total = len(export.rows)

    def stop_at_the_end(_position: int, rows: int) -> None:
        if rows == total:
            raise KeyboardInterrupt

    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    with pytest.raises(KeyboardInterrupt):
        ingest_file(store, path, mapping, batch_rows=10, progress=stop_at_the_end)
    split = next(i for i, codes in export.items.items() if len(export.numbers(i)) > 1)
    with store.connect() as c:
        status = c.execute(sa.select(TABLES.ingest_files.c.status)).scalar_one()
    assert status == "running"
    assert len(stored_items(store)[split]) < len(export.items[split])
    result = ingest_file(store, path, mapping, batch_rows=10)
    assert result.resumed_from == total
    check_result(store, export, result.rejects_path or "")
    assert result.records_added == len(export.items)


def test_rejects_written_by_a_batch_that_did_not_commit_are_not_kept(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch writes its rejects, then is interrupted before it commits: the resumed ingest
    cuts the rejects file back to the committed batches' rejects and writes them once."""
    from riskengine.ingest.rejects import RejectsFile

    records = list(demo.generate(60, seed=5))
    export = broken_export(records, gap=4)
    path = export.write(tmp_path / "export.csv")
    mapping = load_ingest_mapping(DECLARATIONS_MAP)
    original = RejectsFile.write
    calls = []

    def write_then_stop(self: RejectsFile, rejects: Any) -> None:
        original(self, rejects)
        if rejects:
            calls.append(len(rejects))
            if len(calls) == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(RejectsFile, "write", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        ingest_file(store, path, mapping, batch_rows=5)
    written = read_rejects(f"{path}.rejects.csv")
    with store.connect() as c:
        committed = c.execute(sa.select(TABLES.ingest_files.c.rows_rejected)).scalar_one()
    assert len(written) == sum(calls) > committed == calls[0]
    monkeypatch.setattr(RejectsFile, "write", original)
    result = ingest_file(store, path, mapping, batch_rows=5)
    assert result.resumed_from > 0
    check_result(store, export, result.rejects_path or "")


def test_without_group_by_a_repeated_id_is_a_second_declaration(
    store: sa.Engine, tmp_path: Path
) -> None:
    text = DECLARATIONS_MAP.read_text(encoding="utf-8")
    mapping = parse_ingest_mapping(text.replace('group_by = "DECL_ID"', ""), "flat.toml")
    one = [r for r in demo.generate(30, seed=4) if len(r.declaration.items) == 1][:2]
    export = Export()
    export.add(one[0])
    export.add(one[1])
    export.add(one[0])
    path = export.write(tmp_path / "flat.csv")
    result = ingest_file(store, path, mapping)
    assert (result.records_added, result.rows_rejected) == (2, 1)
    (reject,) = read_rejects(result.rejects_path or "")
    assert reject["row"] == "3"
    assert reject["reason"] == (
        f"declaration {ident(one[0])} appeared before at row 1: a second declaration with the "
        "same id (without group_by in [source], one row is one declaration)"
    )


def test_flat_json_lines_grouped_by_a_key_follow_the_same_rules(
    store: sa.Engine, tmp_path: Path
) -> None:
    mapping = parse_ingest_mapping(
        """
[source]
format = "jsonl"
group_by = "id"
[fields]
"declaration.id" = "id"
"declaration.date" = "date"
"item.hs_code" = "hs"
""",
        "flat.toml",
    )
    lines = [
        {"id": "A", "date": "2024-01-01", "hs": "0101"},
        {"id": "B", "date": "2024-01-01", "hs": "0202"},
        {"id": "A", "date": "2024-01-01", "hs": "0303"},  # A's rows apart: one declaration
        {"id": "C", "date": "2024-01-01", "hs": "0404"},
        {"id": "C", "date": "2024-01-02", "hs": "0505"},  # C disagrees with itself
        "garbage{",  # unreadable: B's second part below is rejected, so all of B
        {"id": "B", "date": "2024-01-01", "hs": "0606"},
    ]
    path = tmp_path / "flat.jsonl"
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    result = ingest_file(store, path, mapping, batch_rows=1)
    assert stored_items(store) == {"A": ["0101", "0303"]}
    rejects = [
        (r["row"], r["declaration"], r["reason"]) for r in read_rejects(result.rejects_path or "")
    ]
    assert rejects == [
        ("4", "C", "rejected with its declaration (see row 5)"),
        ("5", "C", "column date (declaration.date) differs from row 4 of the same declaration: "
                   "'2024-01-02' vs '2024-01-01'"),
        ("6", "", "invalid JSON: Expecting value at column 1; the declaration id is unknown "
                  "(none could be found in the line)"),
        ("2", "B", "rejected with its declaration (see row 7)"),
        ("7", "B", "row 6 next to this declaration could not be read and may belong to it"),
    ]  # fmt: skip


def test_the_cell_limit_is_configurable(store: sa.Engine, tmp_path: Path) -> None:
    record = multi_item(list(demo.generate(30, seed=2)))[0]
    rows = list(demo.export_rows([record]))
    rows[1][COL["DESCRIPTION"]] = "y" * 200_000
    export = Export()
    export.add(record, rows)
    path = export.write(tmp_path / "long.csv")
    text = DECLARATIONS_MAP.read_text(encoding="utf-8")
    default = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP))
    rejects = read_rejects(default.rejects_path or "")
    assert [(r["row"], r["declaration"]) for r in rejects] == [
        (str(n), ident(record)) for n in range(1, len(rows) + 1)
    ]
    assert rejects[1]["reason"] == (
        "column DESCRIPTION: a cell of 200,000 characters, over the limit of 131,072 (max_cell "
        "in [source] of the mapping)"
    )
    assert rejects[0]["reason"] == "rejected with its declaration (see row 2)"
    assert len(rejects[1]["DESCRIPTION"]) == 200_000  # the row as read
    raised = parse_ingest_mapping(
        text.replace("[source]\n", "[source]\nmax_cell = 250_000\n"), "raised.toml"
    )
    result = ingest_file(store, path, raised)
    assert (result.records_added, result.rows_rejected) == (1, 0)
    assert len(stored_items(store)[ident(record)]) == len(rows)
    with pytest.raises(Exception, match="max_cell must be a positive whole number"):
        parse_ingest_mapping(text.replace("[source]\n", "[source]\nmax_cell = 0\n"), "x.toml")


def test_a_row_too_long_to_read_rejects_the_declarations_around_it(
    store: sa.Engine, tmp_path: Path
) -> None:
    """A cell over the reader's own limit (16 MiB: an unclosed quote running through a file)
    makes its row unreadable, so its declaration is unknown: the declarations on both sides of
    it are rejected with it, the others stored."""
    from riskengine.ingest.read import READ_LIMIT

    a, b, c = multi_item(list(demo.generate(40, seed=2)))[:3]
    a_rows = list(demo.export_rows([a]))
    huge = list(a_rows[0])
    huge[COL["DESCRIPTION"]] = "z" * (READ_LIMIT + 10)
    export = Export()
    export.add(c)
    export.add(a, a_rows[:1])
    export.rows.append(("?", huge))
    export.add(a, a_rows[1:])
    export.add(b)
    path = export.write(tmp_path / "huge.csv")
    limit = csv.field_size_limit(131_072)  # as in a fresh process: the reader raises it
    try:
        result = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP))
    finally:
        csv.field_size_limit(limit)
    assert set(stored_items(store)) == {ident(b), ident(c)}
    rejects = read_rejects(result.rejects_path or "")
    unreadable = export.numbers("?")[0]
    near = f"row {unreadable} next to this declaration could not be read and may belong to it"
    assert [(int(r["row"]), r["declaration"], r["reason"]) for r in rejects] == [
        (export.numbers(ident(a))[0], ident(a), near),
        (unreadable, "", "unreadable CSV: a cell of more than 16,777,216 characters (an "
                         "unclosed quote?): the row cannot be read"),
        *[(n, ident(a), near if n == export.numbers(ident(a))[1] else
           f"rejected with its declaration (see row {export.numbers(ident(a))[1]})")
          for n in export.numbers(ident(a))[1:]],
    ]  # fmt: skip


def test_an_unreadable_row_rejects_the_declarations_around_it() -> None:
    def row(number: int, key: str | None, problem: str | None = None) -> Row:
        return Row(number, number, [key or ""], [key or ""], problem)

    rows = [row(1, "A"), row(2, "A"), row(3, None, "unreadable CSV: x"), row(4, "A"),
            row(5, "B"), row(6, "C"), row(7, None, "unreadable CSV: y"),
            row(8, None, "unreadable CSV: z"), row(9, "D"), row(10, "E")]  # fmt: skip
    found = [
        ([r.number for r in g.rows], g.broken, g.note)
        for g in groups(iter(rows), lambda r: r.cells[0] or None)
    ]
    near = "next to this declaration could not be read and may belong to it"
    assert found == [
        ([1, 2], True, f"row 3 {near}"),
        ([3], True, None),
        ([4], True, f"row 3 {near}"),
        ([5], False, None),
        ([6], True, f"row 7 {near}"),
        ([7], True, None),
        ([8], True, None),
        ([9], True, f"row 8 {near}"),
        ([10], False, None),
    ]


def test_outcome_rows_apart_are_rejected_saying_so(store: sa.Engine, tmp_path: Path) -> None:
    records = list(demo.generate(5, seed=7))
    declarations = Export()
    for record in records:
        declarations.add(record)
    ingest_file(
        store, declarations.write(tmp_path / "d.csv"), load_ingest_mapping(DECLARATIONS_MAP)
    )
    a, b = ident(records[0]), ident(records[1])
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        "DECL_ID;STATUS;STATUS_DATE;REASON\n"
        f"{a};NOT_COMPLETED;05.01.2024;0201\n"
        f"{b};COMPLETED;06.01.2024;\n"
        f"{a};NOT_COMPLETED;05.01.2024;1301\n",
        encoding="utf-8",
    )
    result = ingest_file(store, outcomes, load_ingest_mapping(EXAMPLES / "demo_outcomes.toml"))
    assert (result.records_added, result.rows_rejected) == (2, 1)
    (reject,) = read_rejects(result.rejects_path or "")
    assert (reject["row"], reject["declaration"]) == ("3", a)
    assert reject["reason"] == (
        f"the outcome of declaration {a} was read from row 1 on already: the rows of one outcome "
        "must be consecutive (these rows are not stored)"
    )


# --- item 3: one bad record never stops a batch --------------------------------------------------


def test_a_nul_character_rejects_its_declaration_only(store: sa.Engine, tmp_path: Path) -> None:
    records = list(demo.generate(12, seed=3))
    export = Export()
    for index, record in enumerate(records):
        rows = list(demo.export_rows([record]))
        if index == 5:
            rows[0][COL["DECLARANT_NAME"]] = "TOV \x00Nul"
            export.bad[ident(record)] = (
                "column DECLARANT_NAME: a NUL character (\\x00) in the text, which the store "
                "cannot hold"
            )
        else:
            export.items[ident(record)] = hs_codes(record)
        export.add(record, rows)
    path = export.write(tmp_path / "nul.csv")
    result = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP))  # one batch
    assert result.batches == 1
    check_result(store, export, result.rejects_path or "")


def test_a_nul_character_in_a_column_the_mapping_does_not_read_is_left_alone(
    store: sa.Engine, tmp_path: Path
) -> None:
    records = list(demo.generate(3, seed=3))
    path = tmp_path / "extra.csv"
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow([*HEADER, "NOTE"])
        for row in demo.export_rows(records):
            writer.writerow([*row, "free\x00text"])
    result = ingest_file(store, path, load_ingest_mapping(DECLARATIONS_MAP))
    assert (result.records_added, result.rows_rejected) == (3, 0)


def test_jsonl_lines_no_reader_can_take_are_rejected_and_the_rest_stored(
    store_url: str, store: sa.Engine, tmp_path: Path
) -> None:
    good = tmp_path / "good.jsonl"
    records = list(demo.generate(8, seed=9))
    demo.export_jsonl(records, good)
    lines = good.read_text(encoding="utf-8").splitlines()

    def with_value(line: str, value: str) -> str:
        return line[:-1] + f', "customs_extra": {value}}}'

    def item_value(line: str, digits: int) -> str:
        data = json.loads(line)
        data["items"][0]["customs_value"] = 7
        return json.dumps(data).replace('"customs_value": 7', '"customs_value": ' + "9" * digits)

    bad = {
        2: (item_value(lines[1], 400), "invalid JSON: an integer of 400 digits: out of the "
            "range of numbers (at most 308 digits)"),
        3: (item_value(lines[2], 5_000), "invalid JSON: an integer of 5,000 digits"),
        4: (with_value(lines[3], "[" * 100_000 + "]" * 100_000),
            "invalid JSON: nested too deeply to read"),
        6: (lines[5].replace('"date"', '"note": "a\\u0000b", "date"', 1),
            "a NUL character (\\u0000) in a text value, which the store cannot hold"),
    }  # fmt: skip
    for number, (text, _) in bad.items():
        lines[number - 1] = text
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", store_url, "--quiet"])
    assert result.exit_code == 1, result.output
    assert f"{len(records) - len(bad)} declarations added" in result.output
    assert f"{len(bad)} rows rejected" in result.output
    rejects = read_rejects(f"{path}.rejects.csv")
    assert [int(r["row"]) for r in rejects] == sorted(bad)
    for reject in rejects:
        assert bad[int(reject["row"])][1] in reject["reason"]
        assert reject["raw"] == bad[int(reject["row"])][0]
    stored = set(stored_items(store))
    assert stored == {ident(r) for n, r in enumerate(records, start=1) if n not in bad}


# --- item 13: a CSV file without a mapping ------------------------------------------------------


@pytest.mark.parametrize("name", ["export.csv", "export.txt", "export"])
def test_a_csv_file_without_a_mapping_is_a_usage_error_that_touches_nothing(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    demo.export_csv(list(demo.generate(3, seed=1)), path)
    rejects = Path(f"{path}.rejects.csv")
    rejects.write_text("row,line,declaration,reason,raw\n1,1,X,earlier,run\n", encoding="utf-8")
    db = tmp_path / "store.db"
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", f"sqlite:///{db}"])
    assert result.exit_code == 2, result.output
    assert f"{path} is not JSON Lines (its first line does not start with '{{'): a CSV file " in (
        " ".join(result.output.split())
    )
    assert "needs --mapping MAP.toml" in " ".join(result.output.split())
    assert rejects.read_text(encoding="utf-8") == (
        "row,line,declaration,reason,raw\n1,1,X,earlier,run\n"
    )
    assert not db.exists()
    # the library says the same (a MappingError), also before writing anything
    from riskengine.ingest.mapping import MappingError
    from riskengine.store.engine import connect

    engine = connect(f"sqlite:///{db}")
    try:
        with pytest.raises(MappingError, match="a CSV file needs a mapping file"):
            ingest_file(engine, path)
    finally:
        engine.dispose()
    assert rejects.read_text(encoding="utf-8").endswith("earlier,run\n")


def test_json_lines_are_recognised_without_a_suffix(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "declarations.export"
    demo.export_jsonl(list(demo.generate(4, seed=1)), path)
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", store_url, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "4 declarations added" in result.output


# --- the kill-and-resume proof -----------------------------------------------------------------


def broken_jsonl(records: list[demo.DemoRecord], path: Path) -> tuple[Export, dict[int, str]]:
    """JSON Lines of ``records`` with every kind of line of item 3 (and invalid JSON, and an id
    repeated) among them: the expected store and the rejected lines with their reasons."""
    demo.export_jsonl(records, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    export = Export()
    bad: dict[int, str] = {}

    def digits(line: str, count: int) -> str:
        data = json.loads(line)
        data["items"][0]["customs_value"] = 7
        return json.dumps(data).replace('"customs_value": 7', '"customs_value": ' + "9" * count)

    kinds = {
        7: (lambda line: digits(line, 400), "an integer of 400 digits"),
        150: (lambda line: digits(line, 5_000), "an integer of 5,000 digits"),
        420: (lambda line: line[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
              "nested too deeply to read"),
        700: (lambda line: line.replace('"date"', '"memo": "\\u0000", "date"', 1),
              "a NUL character"),
        900: (lambda line: line[: len(line) // 2], "invalid JSON"),
        1100: (lambda _line: lines[9], "appeared before at row 10: a second declaration"),
    }  # fmt: skip
    for number, (change, fragment) in kinds.items():
        lines[number - 1] = change(lines[number - 1])
        bad[number] = fragment
    for number, record in enumerate(records, start=1):
        if number not in bad:
            export.items[ident(record)] = hs_codes(record)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return export, bad


def check_jsonl_result(
    engine: sa.Engine, export: Export, bad: dict[int, str], rejects_path: Path
) -> None:
    stored = stored_items(engine)
    assert set(stored) == set(export.items)
    for declaration, codes in export.items.items():
        assert [c.lstrip("0") for c in stored[declaration]] == [c.lstrip("0") for c in codes]
    rejects = read_rejects(rejects_path)
    assert [int(r["row"]) for r in rejects] == sorted(bad)
    for reject in rejects:
        assert bad[int(reject["row"])] in reject["reason"], reject["reason"]


@pytest.mark.parametrize("variant", ["csv", "csv-parallel", "jsonl"])
def test_a_killed_ingest_of_a_broken_file_resumes_to_the_same_end(
    store: sa.Engine, store_url: str, tmp_path: Path, variant: str
) -> None:
    """The issue's proof: an ingest of a file with the broken rows of items 1 and 3, killed
    (SIGKILL, a real process) a third of the way and run again, ends with every good
    declaration stored once, whole, and every bad one in the rejects file once."""
    if store.dialect.name == "duckdb":
        pytest.skip(
            "DuckDB lets one process open a database for writing, so this test cannot watch the "
            "killed process's progress"
        )
    records = list(demo.generate(1200, seed=13))
    if variant == "jsonl":
        path = tmp_path / "broken.jsonl"
        export, bad = broken_jsonl(records, path)
        options = ["--batch-rows", "20"]
        total = len(records)
    else:
        export = broken_export(records, gap=60)
        path = export.write(tmp_path / "broken.csv")
        parallel = "yes" if variant == "csv-parallel" else "no"
        options = ["--mapping", str(DECLARATIONS_MAP), "--batch-rows", "20", "--parallel",
                   parallel]  # fmt: skip
        total = len(export.rows)
    script = "import sys\nfrom riskengine.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    args = [sys.executable, "-c", script, "ingest", str(path), "--db", store_url, *options,
            "--quiet"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    files = TABLES.ingest_files
    deadline = time.monotonic() + 120
    committed = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            with store.connect() as c:
                committed = c.execute(sa.select(sa.func.max(files.c.rows_committed))).scalar() or 0
            if committed >= total // 3:
                break
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    if process.returncode in (0, 1):
        pytest.skip("the ingest finished before it could be killed")
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    with store.connect() as c:
        status = c.execute(sa.select(files.c.status, files.c.rows_committed)).one()
    assert status.status == "running"
    assert 0 < status.rows_committed < total
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", store_url, *options, "--quiet"])
    assert result.exit_code == 1, result.output
    assert f"resumed after row {status.rows_committed}" in result.output
    if variant != "jsonl":  # split, split-header, split-bad, split-first and split again
        assert "5 declarations had rows apart from each other in the file" in result.output
    if variant == "jsonl":
        check_jsonl_result(store, export, bad, Path(f"{path}.rejects.csv"))
    else:
        check_result(store, export, f"{path}.rejects.csv")
    with store.connect() as c:
        final = c.execute(sa.select(files.c.status, files.c.records_added)).one()
    assert final.status == "done"
    assert final.records_added == len(export.items)
