"""``riskengine score``: one declaration or a JSON Lines batch, as a user sees it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.cli import cli

PROFILE = """\
profile draft "Cheap footwear" {
    module declaration
    spheres 101, 203
    indicators {
        footwear "Footwear": item.hs_code starts with ("6403", "6404")
        cheap: item.customs_value / item.net_mass < 12.50
    }
    degree = 50 * footwear + 30 * cheap + negative_history
    message "Check {item.hs_code}: degree {degree}"
    controls {
        102 "Documentary check" mandatory from 50
        201 "Physical inspection" if necessary from 80
    }
    history per declaration.declarant.id over 365 days {
        negative max 20 per case 10 {
            0201: 1.0
        }
    }
}
"""


#: What the development command says on standard error when the set holds a draft.
DRAFT_NOTE = (
    "note: 1 draft loaded for development (allow_drafts); the clearance software loads only "
    "approved editions, from a signed bundle"
)


def run(*args: str | Path, stdin: str | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


def _profiles(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)
    (folder / "footwear.rp").write_text(PROFILE, encoding="utf-8")
    return folder


def _decl(ident: str, value: object = 1000, date: str | None = "2024-04-02") -> dict[str, object]:
    decl: dict[str, object] = {
        "id": ident,
        "declarant": {"id": "31234567"},
        "items": [{"hs_code": "6403990000", "customs_value": value, "net_mass": 100}],
    }
    if date is not None:
        decl["date"] = date
    return decl


def test_single_declaration_as_json(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1")), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path), "--as-of", "2024-04-02")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == "D1"
    assert data["as_of"] == "2024-04-02"
    assert data["bundle_revision"] is None  # a folder, not a bundle
    assert result.stderr == DRAFT_NOTE + "\n"  # the draft is scored, and the command says so
    assert data["lane"] == "red"
    [fired] = data["fired"]
    assert fired["degree"] == 80  # footwear 50 + 10 UAH/kg < 12.50: 30
    assert [c["code"] for c in fired["controls"]] == ["102", "201"]
    assert fired["message"] == "Check 6403990000: degree 80"
    assert fired["items"] == [1]


def test_single_declaration_takes_its_own_date(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1", date="2025-01-31")), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["as_of"] == "2025-01-31"


def test_single_declaration_without_any_date_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1", date=None)), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path))
    assert result.exit_code == 2
    assert "has no date: give --as-of" in result.output


def test_table_and_explanation(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1", value=5000)), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path), "--format", "table", "--explain")
    assert result.exit_code == 0, result.output
    assert "declaration D1 on 2024-04-02: lane yellow" in result.output
    assert "controls: 102 (mandatory)" in result.output
    assert "indicator cheap: false" in result.output  # 50 UAH/kg is not below 12.50
    assert "control 201 from 80: does not apply" in result.output


def test_explain_in_json(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1")), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path), "--explain")
    [why] = json.loads(result.stdout)["explanations"]
    assert why["fired"] is True and why["applies"] is True
    assert "indicator footwear: true" in why["text"]


def test_wrong_type_in_a_single_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1", value="12,5")), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path))
    assert result.exit_code == 1
    assert "item 1, item.customs_value: expected a number" in result.output
    assert "Traceback" not in result.output


def test_invalid_json_file_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"id": "D1",\n  "items": [}', encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path))
    assert result.exit_code == 1
    assert f"{path}:2:13: not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_batch_with_bad_lines_in_the_middle(tmp_path: Path) -> None:
    lines = [
        json.dumps(_decl("A")),
        "{not json",
        json.dumps(_decl("B", value="12,5")),
        "",
        json.dumps(_decl("C", value=5000, date=None)),
        "[1, 2]",
        json.dumps(_decl("D", value=5000, date="2024-05-01")),
    ]
    result = run("score", "--profiles", _profiles(tmp_path), stdin="\n".join(lines) + "\n")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6  # the empty line is skipped
    assert records[0]["id"] == "A" and records[0]["fired"][0]["degree"] == 80
    assert records[1] == {
        "rejected": True, "line": 2, "id": None, "field": None, "item": None,
        "reason": "not valid JSON: Expecting property name enclosed in double quotes",
    }  # fmt: skip
    assert records[2]["rejected"] and records[2]["line"] == 3
    assert (records[2]["id"], records[2]["field"], records[2]["item"]) == (
        "B",
        "item.customs_value",
        1,
    )
    assert records[3]["line"] == 5 and records[3]["field"] == "declaration.date"
    assert records[4]["line"] == 6 and records[4]["reason"] == "not a JSON object"
    assert records[5]["id"] == "D" and records[5]["as_of"] == "2024-05-01"
    assert records[5]["fired"][0]["degree"] == 50


def test_batch_all_scored_exits_0_and_as_of_overrides(tmp_path: Path) -> None:
    lines = [json.dumps(_decl(f"X{i}", date=None)) for i in range(3)]
    result = run(
        "score", "-", "--profiles", _profiles(tmp_path), "--as-of", "2024-06-01",
        stdin="\n".join(lines),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["X0", "X1", "X2"]
    assert {r["as_of"] for r in records} == {"2024-06-01"}


def test_batch_table_reports_rejects_on_stderr(tmp_path: Path) -> None:
    stdin = json.dumps(_decl("A")) + "\nnope\n"
    result = CliRunner().invoke(
        cli, ["score", "--profiles", str(_profiles(tmp_path)), "--format", "table"], input=stdin
    )
    assert result.exit_code == 1
    assert "declaration A on 2024-04-02: lane red" in result.stdout
    assert "line 2: rejected: not valid JSON" in result.stderr


def test_lanes_file(tmp_path: Path) -> None:
    lanes = tmp_path / "lanes.toml"
    lanes.write_text('[lanes]\nred = []\nyellow = ["201"]\nunknown = "green"\n', encoding="utf-8")
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1")), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path), "--lanes", lanes)
    assert json.loads(result.stdout)["lane"] == "yellow"


def test_history_from_the_store(tmp_path: Path) -> None:
    from riskengine.declaration import normalise_declaration
    from riskengine.store.engine import connect
    from riskengine.store.writer import OutcomeRecord, write_declarations, write_outcomes

    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert run("db", "init", "--db", url).exit_code == 0
    engine = connect(url)
    past = [normalise_declaration(_decl(f"P{i}", date=f"2024-0{i + 1}-10")) for i in range(2)]
    with engine.begin() as conn:
        write_declarations(conn, past)
        write_outcomes(
            conn,
            [OutcomeRecord(f"P{i}", False, dt.date(2024, i + 1, 11), ("0201",)) for i in range(2)],
        )
    engine.dispose()
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1", value=5000)), encoding="utf-8")
    without = json.loads(run("score", path, "--profiles", _profiles(tmp_path)).stdout)
    result = run("score", path, "--profiles", _profiles(tmp_path), "--db", url)
    assert result.exit_code == 0, result.output
    with_history = json.loads(result.stdout)
    assert without["fired"][0]["degree"] == 50
    assert with_history["fired"][0]["degree"] == 70  # 2 cases × 10 × 1.0, capped at 20


def test_missing_profiles_option_is_usage_error(tmp_path: Path) -> None:
    result = run("score", stdin="")
    assert result.exit_code == 2
    assert "--profiles" in result.output


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s), max_size=5))
def test_batch_never_prints_a_traceback(lines: list[str]) -> None:
    folder = Path(__file__).parent.parent / "profiles"
    result = run(
        "score", "--profiles", folder, "--as-of", "2026-10-05", stdin="\n".join(lines) + "\n"
    )
    assert result.exit_code in (0, 1)
    assert "Traceback" not in result.output
    for line in result.output.splitlines():
        json.loads(line)


def test_store_without_tables_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1")), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run("score", path, "--profiles", _profiles(tmp_path), "--db", url)
    assert result.exit_code == 1
    assert "has no riskengine tables: run `riskengine db init`" in result.output
    assert "Traceback" not in result.output


def test_a_batch_never_stops_at_a_bad_line(tmp_path: Path) -> None:
    """Issue 11: 400- and 5,000-digit integers, 100,000-deep arrays, invalid UTF-8, NaN and
    numbers beyond the input range are each rejected with their line; the lines after them are
    scored."""
    good = [json.dumps(_decl(f"G{k}")).encode() for k in range(4)]
    lines = [
        good[0],
        b'{"id": "L400", "items": [{"customs_value": ' + b"9" * 400 + b"}]}",
        b'{"id": "L5000", "items": [{"customs_value": ' + b"9" * 5000 + b"}]}",
        good[1],
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "bad-\xff-utf8", "items": []}',
        good[2],
        b'{"id": "NAN", "items": [{"customs_value": NaN}]}',
        b'{"id": "E999", "items": [{"customs_value": 1e999}]}',
        b'{"id": "S999", "items": [{"customs_value": "1e999"}]}',
        b'{"id": "NEG", "items": [{"net_mass": -1}]}',
        good[3],
    ]
    result = CliRunner().invoke(
        cli, ["score", "--profiles", str(_profiles(tmp_path))], input=b"\n".join(lines) + b"\n"
    )
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records if not r.get("rejected")] == ["G0", "G1", "G2", "G3"]
    assert all(r["fired"][0]["degree"] == 80 for r in records if not r.get("rejected"))
    rejected = {r["line"]: (r["id"], r["field"], r["reason"]) for r in records if r.get("rejected")}
    out_of_range = "is out of range (a number may be at most 1e15 in magnitude)"
    assert rejected == {
        2: ("L400", "item.customs_value", f"an integer of 400 digits {out_of_range}"),
        3: (None, None, f"an integer of more than 4,300 digits {out_of_range}"),
        5: (None, None, "not readable: arrays or objects nested too deeply"),
        6: (None, None, "not valid UTF-8 text: invalid start byte (byte 13)"),
        8: (None, None, "not valid JSON: NaN is not a JSON value"),
        9: ("E999", "item.customs_value", f"1E+999 {out_of_range}"),
        10: ("S999", "item.customs_value", f'"1e999" {out_of_range}'),
        11: ("NEG", "item.net_mass", "expected a number that is not negative, got -1"),
    }
    assert "Traceback" not in result.output


def test_a_batch_in_a_table_reports_a_bad_line_and_goes_on(tmp_path: Path) -> None:
    stdin = (
        b'\xfe\n{"id": "X", "items": [{"customs_value": 1e400}]}\n'
        + json.dumps(_decl("A")).encode()
    )
    result = CliRunner().invoke(
        cli, ["score", "--profiles", str(_profiles(tmp_path)), "--format", "table"], input=stdin
    )
    assert result.exit_code == 1
    assert "declaration A on 2024-04-02: lane red" in result.stdout
    assert result.stderr.splitlines() == [
        DRAFT_NOTE,
        "line 1: rejected: not valid UTF-8 text: invalid start byte (byte 1)",
        "line 2: rejected: item 1, item.customs_value: 1E+400 is out of range (a number may be "
        "at most 1e15 in magnitude)",
    ]


def test_a_single_file_with_a_number_out_of_range_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1", value=10**400)), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path))
    assert result.exit_code == 1
    assert result.output.strip().endswith(
        "item 1, item.customs_value: an integer of 401 digits is out of range (a number may be "
        "at most 1e15 in magnitude)"
    )


def test_the_command_prints_what_the_library_gives(tmp_path: Path) -> None:
    from riskengine.evaluator import Engine

    path = tmp_path / "d.json"
    path.write_text(json.dumps(_decl("D1")), encoding="utf-8")
    result = run("score", path, "--profiles", _profiles(tmp_path), "--explain")
    engine = Engine.load([_profiles(tmp_path)], allow_drafts=True)
    expected = engine.score(_decl("D1"), explain=True).to_json(indent=2)
    assert result.stdout == expected + "\n"


def test_a_batch_checks_the_fields_the_profiles_read_and_prints_what_the_library_gives(
    tmp_path: Path,
) -> None:
    """Issue 13: each line is read by the profile set's compiled reader. A bad value in a field
    no profile reads (item.invoice_value) does not reject the line; one in a field a profile
    reads (item.net_mass) does, with the normaliser's words; every result line is exactly the
    library's ``to_json()``."""
    from riskengine.evaluator import Engine

    unread = _decl("U")
    unread["items"][0]["invoice_value"] = "not a number"  # type: ignore[index]
    read = _decl("R")
    read["items"][0]["net_mass"] = "12,5"  # type: ignore[index]
    plain = {**_decl("P"), "items": [{"hs_code": "6403990000", "customs_value": 30, "net_mass": 1,
                                      "description": "Чоботи «Зима»"}]}  # fmt: skip
    lines = [json.dumps(unread), json.dumps(read), json.dumps(plain, ensure_ascii=False)]
    result = run("score", "--profiles", _profiles(tmp_path), stdin="\n".join(lines) + "\n")
    assert result.exit_code == 1
    first, second, third = result.stdout.splitlines()
    engine = Engine.load([_profiles(tmp_path)], allow_drafts=True)
    assert first == engine.score(unread).to_json()
    assert json.loads(second) == {
        "rejected": True, "line": 2, "id": "R", "field": "item.net_mass", "item": 1,
        "reason": 'expected a number, got "12,5" (the decimal separator is a dot)',
    }  # fmt: skip
    assert third == engine.score(plain).to_json()
