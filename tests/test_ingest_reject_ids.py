"""The declaration id of a JSON Lines line that cannot be read whole (issue 11, left over): the
rejects file names the declaration when the line holds its id before whatever broke it (invalid
JSON, a number out of range, nesting too deep, invalid UTF-8, a NUL, in native and mapped
files, declarations and outcomes), and says the id is unknown when it does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.ingest.mapping import parse_ingest_mapping
from riskengine.ingest.pipeline import ingest_file
from riskengine.ingest.read import salvage_json
from tests.test_ingest_integrity import read_rejects, stored_items

UNKNOWN = "; the declaration id is unknown (none could be found in the line)"


def _line(ident: str, hs: str = "6403990000", **extra: object) -> str:
    record = {
        "id": ident,
        "date": "2024-03-01",
        "items": [{"hs_code": hs, "customs_value": 100, "net_mass": 2}],
        **extra,
    }
    return json.dumps(record)


def test_the_rejects_file_names_the_declaration_of_a_line_read_in_part(
    store_url: str, store: sa.Engine, tmp_path: Path
) -> None:
    good = _line("GOOD")
    lines: list[bytes] = [
        good.encode(),
        _line("CUT")[:40].encode(),  # cut short: invalid JSON after the id
        _line("BIG").replace('"customs_value": 100', '"customs_value": ' + "9" * 400).encode(),
        ('{"x": ' + "[" * 100_000 + "]" * 100_000 + ', "id": "DEEP"}').encode(),
        _line("BYTES").replace('"2024-03-01"', '"2024-03-01\\u0000"').encode(),
        _line("UTF8", note="caf\u00e9").encode().replace(b"caf\\u00e9", b"caf\xe9"),
        b'{"id": 4711, "date": "2024-03-01", "items": [',  # a numeric id, as written
        b"[1, 2, 3]",  # not an object: no id
        b'"just text"',
        b'{"date": "2024-03-01", "items": [}',  # broken, and no id before the error
        b"garbage{",
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", store_url, "--quiet"])
    assert result.exit_code == 1, result.output
    assert "1 declaration added" in result.output
    rejects = [
        (r["row"], r["declaration"], r["reason"]) for r in read_rejects(f"{path}.rejects.csv")
    ]
    assert rejects == [
        ("2", "CUT", "invalid JSON: Unterminated string starting at column 37"),
        ("3", "BIG", "invalid JSON: an integer of 400 digits: out of the range of numbers "
                     "(at most 308 digits)"),
        ("4", "DEEP", "invalid JSON: nested too deeply to read"),
        ("5", "BYTES", "a NUL character (\\u0000) in a text value, which the store cannot hold"),
        ("6", "UTF8", "the line is not valid UTF-8 text"),
        ("7", "4711", "invalid JSON: Expecting value at column 46"),
        ("8", "", "expected a JSON object on each line" + UNKNOWN),
        ("9", "", "expected a JSON object on each line" + UNKNOWN),
        ("10", "", "invalid JSON: Expecting value at column 34" + UNKNOWN),
        ("11", "", "invalid JSON: Expecting value at column 1" + UNKNOWN),
    ]  # fmt: skip
    assert set(stored_items(store)) == {"GOOD"}
    # docs/ingest.md shows two of these lines of the rejects file as they are written
    page = (Path(__file__).parent.parent / "docs" / "ingest.md").read_text(encoding="utf-8")
    shown = page.split("the column stays empty and the reason says so:", 1)[1]
    shown = shown.split("```text\n", 1)[1].split("\n```", 1)[0].splitlines()
    written = Path(f"{path}.rejects.csv").read_bytes().decode(errors="replace").splitlines()
    assert len(shown) == 3 and all(line in written for line in shown), shown


def test_a_mapped_line_is_named_by_its_id_as_read_and_stays_with_its_declaration(
    store: sa.Engine, tmp_path: Path
) -> None:
    """A mapped file: the id is read from its path (here nested and translated to text as a
    good line's), and a broken line whose group key can be found is rejected with its own
    declaration only — no neighbour is rejected as one it "may belong to"."""
    mapping = parse_ingest_mapping(
        """
[source]
format = "jsonl"
group_by = "head.no"
[fields]
"declaration.id" = "head.no"
"declaration.date" = "head.date"
"item.hs_code" = "hs"
""",
        "flat.toml",
    )
    lines = [
        '{"head": {"no": "A", "date": "2024-01-01"}, "hs": "0101"}',
        '{"head": {"no": "B", "date": "2024-01-01"}, "hs": "0202"}',
        '{"head": {"no": "B", "date": "2024-01-01"}, "hs": 1' + "0" * 400 + "}",
        '{"head": {"no": "C", "date": "2024-01-01"}, "hs": "0303"}',
        '{"head": {"date": "2024-01-01"}, "hs": [[[}',
        '{"head": {"no": "D", "date": "2024-01-01"}, "hs": "0404"}',
    ]
    path = tmp_path / "flat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_file(store, path, mapping)
    # C and D are next to a line whose id is unknown: they may be its rows, so they go with it
    assert stored_items(store) == {"A": ["0101"]}
    rejects = [
        (r["row"], r["declaration"], r["reason"]) for r in read_rejects(result.rejects_path or "")
    ]
    assert rejects == [
        ("2", "B", "rejected with its declaration (see row 3)"),
        ("3", "B", "invalid JSON: an integer of 401 digits: out of the range of numbers "
                   "(at most 308 digits)"),
        ("4", "C", "row 5 next to this declaration could not be read and may belong to it"),
        ("5", "", "invalid JSON: Expecting value at column 43" + UNKNOWN),
        ("6", "D", "row 5 next to this declaration could not be read and may belong to it"),
    ]  # fmt: skip


def test_an_outcome_line_read_in_part_names_its_declaration(
    store: sa.Engine, tmp_path: Path
) -> None:
    declarations = tmp_path / "declarations.jsonl"
    declarations.write_text(_line("D1") + "\n" + _line("D2") + "\n", encoding="utf-8")
    ingest_file(store, declarations)
    mapping = parse_ingest_mapping(
        """
kind = "outcomes"
[source]
format = "jsonl"
[fields]
declaration_id = "decl"
date = "day"
completed = "done"
""",
        "outcomes.toml",
    )
    path = tmp_path / "outcomes.jsonl"
    path.write_text(
        '{"decl": "D1", "day": "2024-03-02", "done": true}\n'
        '{"decl": "D2", "day": "2024-03-02", "done": tru\n'
        '{"day": "2024-03-02", "done": tru\n',
        encoding="utf-8",
    )
    result = ingest_file(store, path, mapping)
    rejects = [
        (r["row"], r["declaration"], r["reason"]) for r in read_rejects(result.rejects_path or "")
    ]
    assert rejects == [
        ("2", "D2", "invalid JSON: Expecting value at column 45"),
        ("3", "", "invalid JSON: Expecting value at column 31" + UNKNOWN),
    ]


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ('{"id": "A", "items": [{"id": "item"}]}', {"id": "A"}),
        ('{"items": [{"id": "item"}], "id": 17, "x": [[[', {"id": 17}),
        ('{"a": {"id": "inner"}, "id": "top"', {"id": "top"}),
        ('{"id": "first", "id": "second"', {"id": "second"}),  # as a JSON reader keeps it
        ('{"id": "A\\"B\\u00e9", bad', {"id": 'A"Bé'}),
        ('{"id": ' + "9" * 400 + ", bad", {"id": "9" * 400}),
        ('{"id": 1.5e999', {"id": "1.5e999"}),
        ('{"id": null', {"id": None}),
        ('{"ids": "A"}', None),
        ("[{}]", None),
        ('"id"', None),
        ("", None),
    ],
)
def test_salvage_finds_a_value_before_the_break(line: str, found: object) -> None:
    assert salvage_json(line, ["id"]) == found


def test_salvage_follows_nested_paths() -> None:
    line = '{"head": {"no": "N1", "date": "2024-01-01"}, "goods": [{"head": {"no": "x"}}], oops'
    assert salvage_json(line, ["head.no", "head.date"]) == {
        "head": {"no": "N1", "date": "2024-01-01"}
    }
