"""A service's own non-completion reasons: ``[[reason]]`` (and ``[[reason_group]]``) tables of the
field catalogue extend appendix 3 for ingest (outcome reasons) and for the profiles' negative
history (check), validated with the file and line of each bad table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from riskengine import demo
from riskengine.catalogue import CatalogueError, catalogue_with, default_catalogue
from riskengine.classifiers import reasons
from riskengine.cli import cli

EXAMPLES = Path(demo.__file__).parent / "examples"

SERVICE = """\
# the service's own violation classifier, beside its declaration fields
[[field]]
path = "item.excise_stamp"
type = "code"

[[reason_group]]
code = "14"
name_uk = "Порушення за класифікатором служби"
name_en = "Violations of the service's own classifier"

[[reason]]
code = "1401"
group = "14"
name_uk = "Підроблені акцизні марки"
name_en = "Counterfeit excise stamps"

[[reason]]
code = "1402"
name_uk = "Повторне використання сертифіката"
name_en = "Certificate used twice"

# a new code in a group of appendix 3 (group 2: value of goods)
[[reason]]
code = "0205"
group = "2"
name_uk = "Заниження вартості через пов'язану особу"
"""

PROFILE = """\
profile draft "Stamps" {
    indicators { spirits: item.hs_code starts with ("2208") }
    degree = 60 * spirits + negative_history
    controls { 201 "Physical inspection" mandatory from 60 }
    history per declaration.declarant.id over 365 days {
        negative max 40 per case 20 { 1401: 1.0  0205: 0.5  0201: 0.8 }
    }
}
"""


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env={"NO_COLOR": "1"})


def _catalogue(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "service.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_catalogue_extends_appendix_3(tmp_path: Path) -> None:
    catalogue = catalogue_with(_catalogue(tmp_path, SERVICE))
    table = catalogue.reasons
    assert len(table) == len(reasons()) + 3
    stamps = table.get("1401")
    assert stamps is not None
    assert (stamps.name_en, stamps.group, stamps.group_name_en) == (
        "Counterfeit excise stamps", "14", "Violations of the service's own classifier"
    )  # fmt: skip
    twice = table.get("1402")
    assert twice is not None and twice.group == "14"  # the group from the code's first digits
    related = table.get("0205")
    assert related is not None and related.group_name_en == reasons().get("0201").group_name_en  # type: ignore[union-attr]
    assert related.name_en == related.name_uk  # an English name is optional
    assert "0201" in table and "item.excise_stamp" in catalogue
    # appendix 3 itself and the built-in catalogue are untouched
    assert "1401" not in reasons() and "1401" not in default_catalogue().reasons


@pytest.mark.parametrize(
    ("tables", "line", "message"),
    [
        ('[[reason]]\ncode = "14A1"\nname_uk = "x"\n', 1,
         "reason '14A1': a reason code is four digits, the group and a number, e.g. \"1401\""),
        ('[[reason]]\ncode = 1401\nname_uk = "x"\n', 1,
         'reason 1401: write the code in quotes ("1401" keeps its leading zero)'),
        ('[[reason]]\ncode = "0201"\nname_uk = "x"\n', 1,
         "reason 0201 is already in appendix 3 (Undervaluation of goods on import): "
         "a service adds codes of its own, it does not redefine these"),
        ('[[reason]]\ncode = "0205"\nname_uk = "x"\n\n[[reason]]\ncode = "0205"\nname_uk = "y"\n',
         5, "reason 0205 is given twice"),
        ('[[reason]]\ncode = "1501"\nname_uk = "x"\n', 1,
         "reason 1501: unknown group '15'; declare it with [[reason_group]]"),
        ('[[reason_group]]\ncode = "14"\nname_uk = "g"\n\n[[reason]]\ncode = "0301"\ngroup = "14"'
         '\nname_uk = "x"\n', 5,
         "reason 0301 is already in appendix 3 (Could not have led to reduced payments): a service "
         "adds codes of its own, it does not redefine these"),
        ('[[reason_group]]\ncode = "14"\nname_uk = "g"\n\n[[reason]]\ncode = "0309"\ngroup = "14"'
         '\nname_uk = "x"\n', 5,
         "reason 0309: the code's first two digits (03) are not its group (14)"),
        ('[[reason]]\ncode = "0209"\n', 1, "reason 0209: 'name_uk' must be a non-empty string"),
        ('[[reason]]\ncode = "0209"\nname_uk = "x"\ncoefficient = 2\n', 1,
         "reason 0209: unknown key 'coefficient' (known keys: code, group, name_en, name_uk)"),
        ('[[reason_group]]\ncode = "2"\nname_uk = "g"\n', 1,
         "reason group 2 is already a group of appendix 3 (Incorrect data on the value of goods): "
         'add its reasons with [[reason]] group = "2"'),
        ('[[reason_group]]\ncode = "100"\nname_uk = "g"\n', 1,
         "reason group '100': a group is a number from 1 to 99, e.g. \"14\""),
        ('[[reason]]\ncode = "0209"\nname_uk = ""\n', 1,
         "reason 0209: 'name_uk' must be a non-empty string"),
    ],
)  # fmt: skip
def test_a_bad_reason_table_is_an_error_with_its_line(
    tmp_path: Path, tables: str, line: int, message: str
) -> None:
    head = '[[field]]\npath = "item.x"\ntype = "code"\n\n'
    path = _catalogue(tmp_path, head + tables)
    with pytest.raises(CatalogueError) as caught:
        catalogue_with(path)
    assert caught.value.file == str(path)
    assert caught.value.line == line + 4
    assert caught.value.reason == message
    # the command line says it in one line, with the file and line, and stops
    done = run("check", "--catalogue", path, path.with_name("none.rp"))
    assert done.exit_code != 0


def test_check_accepts_the_services_reasons_in_negative_history(tmp_path: Path) -> None:
    profile = tmp_path / "stamps.rp"
    profile.write_text(PROFILE, encoding="utf-8")
    alone = run("check", profile)
    assert alone.exit_code == 1
    assert "error[RE310]: `1401` is not a non-completion reason of appendix 3" in alone.output
    assert "error[RE310]: `0205` is not a non-completion reason of appendix 3" in alone.output
    catalogue = _catalogue(tmp_path, SERVICE)
    done = run("check", "--catalogue", catalogue, profile)
    assert done.exit_code == 0, done.output
    assert "0 errors" in done.output
    # still checked: an unknown code, a code twice, a coefficient beyond the limits (a
    # negative one does not parse)
    profile.write_text(
        PROFILE.replace("0201: 0.8", "1409: 0.8  1402: 1  1402: 2").replace(
            "1401: 1.0", "1401: 2000"
        ),
        encoding="utf-8",
    )
    bad = run("check", "--catalogue", catalogue, profile)
    assert bad.exit_code == 1
    found = [ln for ln in bad.output.splitlines() if "error[" in ln]
    assert [ln.split(": ", 1)[1] for ln in found] == [
        "error[RE604]: the coefficient of reason 1401 is 2000, above the limit of 1000",
        "error[RE310]: `1409` is not a non-completion reason of appendix 3 or of the catalogue's "
        "[[reason]] tables",
        "error[RE311]: reason 1402 is listed twice (first at line 6)",
    ], bad.output


def test_ingest_stores_outcomes_with_the_services_reasons(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    # declarations without outcomes: from JSON Lines
    lines = tmp_path / "d.jsonl"
    assert run("demo-data", "-n", "5", "--seed", "2", "--jsonl", lines).exit_code == 0
    assert run("db", "init", "--db", url).exit_code == 0
    loaded = run("ingest", lines, "--db", url)
    assert loaded.exit_code == 0, loaded.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM declarations ORDER BY id"))]
    outcomes = tmp_path / "outcomes.csv"
    with outcomes.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["DECL_ID", "STATUS", "STATUS_DATE", "REASON"])
        writer.writerow([ids[0], "NOT_COMPLETED", "05.01.2024", "1401,0201"])
        writer.writerow([ids[1], "NOT_COMPLETED", "05.01.2024", "0205"])
        writer.writerow([ids[2], "NOT_COMPLETED", "05.01.2024", "1409"])
    mapping = EXAMPLES / "demo_outcomes.toml"
    without = run("ingest", outcomes, "--kind", "outcomes", "--mapping", mapping, "--db", url)
    rejects = Path(f"{outcomes}.rejects.csv")
    text = rejects.read_text(encoding="utf-8")
    assert "unknown non-completion reason '1401' (appendix 3)" in text
    assert "0 outcomes added" in without.output or without.exit_code != 0, without.output
    # reasons only (the store was initialised without the service's fields)
    catalogue = _catalogue(tmp_path, SERVICE[SERVICE.index("[[reason_group]]") :])
    refused = run("ingest", outcomes, "--kind", "outcomes", "--mapping", mapping, "--db", url,
                  "--catalogue", catalogue, "--force")  # fmt: skip
    # the store remembers its catalogue, reasons included: another one is recorded first
    assert refused.exit_code == 1, refused.output
    assert "reason 1401 is new" in refused.output
    upgraded = run("db", "upgrade", "--db", url, "--catalogue", catalogue)
    assert upgraded.exit_code == 0, upgraded.output
    done = run("ingest", outcomes, "--kind", "outcomes", "--mapping", mapping, "--db", url,
               "--force")  # fmt: skip
    text = rejects.read_text(encoding="utf-8")
    assert (
        "unknown non-completion reason '1409' (appendix 3 or the catalogue's [[reason]] tables)"
    ) in text, done.output
    assert "'1401'" not in text and "'0205'" not in text
    with engine.connect() as conn:
        stored = sorted(
            conn.execute(
                sa.text(
                    "SELECT d.id, r.reason_code FROM outcome_reasons r "
                    "JOIN declarations d ON d.pk = r.decl_pk"
                )
            ).all()
        )
    engine.dispose()
    assert stored == sorted([(ids[0], "0201"), (ids[0], "1401"), (ids[1], "0205")])


def test_show_names_the_services_reasons_with_its_catalogue(tmp_path: Path) -> None:
    profile = tmp_path / "stamps.rp"
    profile.write_text(PROFILE, encoding="utf-8")
    catalogue = _catalogue(tmp_path, SERVICE)
    plain = run("show", profile)
    assert plain.exit_code == 0, plain.output
    assert "1401 (not in the classifier)" in plain.output
    named = run("show", profile, "--catalogue", catalogue)
    assert named.exit_code == 0, named.output
    assert "1401 — Counterfeit excise stamps" in named.output
    assert "0201 — " + reasons().get("0201").name_en in named.output  # type: ignore[union-attr]
    ukrainian = run("show", profile, "--catalogue", catalogue, "--lang", "uk")
    assert "1401 — Підроблені акцизні марки" in ukrainian.output
