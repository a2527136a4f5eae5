"""Recording the outcome of an effectiveness review (seed 003 §9.4-9.5) and an office's monitoring
of its fills (§11.5): ``riskengine.registry.review`` and ``riskengine registry review``. Each
write is access-checked, audited in the hash-chained log, shown in the case file, and refused
whole (nothing written, its log entry included) when it is refused."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine import registry as r
from riskengine.cli import cli
from riskengine.registry.casefile import case_file
from riskengine.registry.casefile_html import case_file_html
from riskengine.registry.review import add_months
from riskengine.registry.state import table
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    PgSite,
    fill_text,
    new_store,
    record_backtest,
)
from tests.test_registry_roles_pg import _fill, _setup, site  # noqa: F401

D = dt.date
NUMBER = "1A/12/2025/00001"
PEOPLE = ["O. Bondar", "P. Koval"]


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A store with DRAFT approved as 1A/12/2025/00001 (decision of 2025-01-10, in force
    2025-02-01 .. 2026-12-31), on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{os.path.join(tmp_path, 'r.db')}"
    else:
        url = request.getfixturevalue("db_url_pg")
    engine = new_store(url)
    run = record_backtest(engine, DRAFT)
    sub = r.submit(engine, DRAFT, tests=TESTS, backtest_run=run)
    r.approve(engine, sub.pk, decision="EC-12/2025", decided_on=D(2025, 1, 10), group="1A",
              unit="12", in_force_from=D(2025, 2, 1), in_force_to=D(2026, 12, 31))  # fmt: skip
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db_url_pg(pg_schema: tuple[sa.URL, str]) -> str:
    from tests.conftest import _pg_url

    return _pg_url(*pg_schema)


def _reviews(store: sa.Engine) -> list[tuple[object, ...]]:
    t = table("profile_reviews")
    columns = (t.c.office, t.c.decision, t.c.decided_on, t.c.next_review, t.c.minutes)
    with store.connect() as c:
        return [
            tuple(row) for row in c.execute(sa.select(*columns, t.c.recorded_by).order_by(t.c.pk))
        ]


def _log(store: sa.Engine) -> list[r.AuditEntry]:
    with store.connect() as c:
        return r.entries(c)


def test_a_review_decision_is_recorded_audited_and_shown(store: sa.Engine) -> None:
    done = r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 5),
                    next_review=D(2026, 2, 1), minutes="EC-30/2025,  item 4")  # fmt: skip
    assert (done.number, done.decision, done.next_review, done.next_step) == (
        NUMBER, "keep", D(2026, 2, 1), ""
    )  # fmt: skip
    rows = _reviews(store)
    assert [row[:5] for row in rows] == [
        (None, "keep", D(2025, 8, 5), D(2026, 2, 1), "EC-30/2025, item 4")
    ]
    log = _log(store)
    assert [e.action for e in log] == ["submit", "approve", "review"]
    assert log[-1].object == "profile/1"
    assert log[-1].actor == rows[0][5]  # the recorded actor is the log's
    assert json.loads(log[-1].details) == {
        "number": NUMBER,
        "decision": "keep",
        "decided_on": "2025-08-05",
        "next_review": "2026-02-01",
        "minutes": "EC-30/2025, item 4",
    }
    assert log[-1].hash_before != log[-1].hash_after  # the case file changed
    assert r.verify(store).ok
    with store.connect() as c:
        shown = case_file(c, NUMBER)
        page = case_file_html(c, NUMBER)
    reviews = page.split('<section id="reviews">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Effectiveness reviews</h2>" in reviews
    assert "commission" in reviews and "EC-30/2025, item 4" in reviews
    section = shown.split("## Effectiveness reviews\n", 1)[1].split("\n## ", 1)[0]
    assert section.strip().splitlines() == [
        "| decided | by | decision | next review | minutes |",
        "|---|---|---|---|---|",
        "| 2025-08-05 | commission | keep | 2026-02-01 | EC-30/2025, item 4 |",
    ]


def test_terminate_and_amend_say_the_next_step_and_change_no_lifecycle(store: sa.Engine) -> None:
    amend = r.review(store, NUMBER, decision="narrow", decided_on=D(2025, 8, 5),
                     next_review=D(2026, 2, 1))  # fmt: skip
    assert amend.next_step.startswith(
        "the changed text goes to the commission: riskengine registry submit FILE --amends "
        + NUMBER
    )
    end = r.review(store, NUMBER, decision="terminate", decided_on=D(2026, 2, 3), next_review=None)
    assert end.next_step == (
        f"record the termination: riskengine registry terminate {NUMBER} --decision N "
        "--decided-on DATE --last-day DATE"
    )
    with store.connect() as c:
        p, eds = table("profiles"), table("profile_editions")
        status = c.execute(sa.select(p.c.status, p.c.terminated_on)).one()
        editions = c.execute(sa.select(eds.c.in_force_to)).scalars().all()
        in_force = [x.number for x in r.in_force(c, D(2026, 6, 1))]
    assert tuple(status) == ("approved", None)  # the termination is its own verb
    assert editions == [D(2026, 12, 31)]
    assert in_force == [f"{NUMBER}-01"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "drop"}, "'drop' is not a review decision; §9.4 allows keep (keep the"),
        ({"next_review": None}, "a decision to keep needs the date of the next review (§9.5"),
        ({"decision": "terminate"}, "a decision to terminate sets no next review"),
        (
            {"next_review": D(2025, 8, 5)},
            "the next review (2025-08-05) must come after the decision (2025-08-05)",
        ),
        (
            {"decided_on": D(2025, 1, 9), "next_review": D(2025, 6, 1)},
            f"{NUMBER} was approved on 2025-01-10: a review cannot be decided before (2025-01-09)",
        ),
        ({"number": "1A/12/2025/00042"}, "the registry has no approved profile 1A/12/2025/00042"),
    ],
)
def test_a_refused_review_writes_nothing(
    store: sa.Engine, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {
        "number": NUMBER,
        "decision": "keep",
        "decided_on": D(2025, 8, 5),
        "next_review": D(2026, 2, 1),
    }
    args.update(kwargs)
    before = len(_log(store))
    with pytest.raises(r.RegistryError) as info:
        r.review(store, **args)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert _reviews(store) == []
    assert len(_log(store)) == before


def test_reviews_are_recorded_in_the_order_decided(store: sa.Engine) -> None:
    r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 5), next_review=D(2026, 2, 1))
    with pytest.raises(r.RegistryError, match="the last review of 1A/12/2025/00001 was decided "
                       "on 2025-08-05: one decided before it \\(2025-08-04\\)"):  # fmt: skip
        r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 4),
                 next_review=D(2026, 2, 1))  # fmt: skip


def test_a_terminated_profile_has_no_review(store: sa.Engine) -> None:
    r.terminate(
        store, NUMBER, decision="EC-90", decided_on=D(2025, 11, 3), last_day=D(2025, 11, 30)
    )
    with pytest.raises(r.RegistryError, match=f"^{NUMBER} is terminated: it has no effectiveness"):
        r.review(store, NUMBER, decision="keep", decided_on=D(2025, 12, 1),
                 next_review=D(2026, 6, 1))  # fmt: skip


def test_only_the_secretary_records_the_commissions_decision_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = new_store(url)
    run = record_backtest(store, DRAFT)
    sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=run)
    r.approve(store, sub.pk, decision="EC-12/2025", decided_on=D(2025, 1, 10), group="1A",
              unit="12", in_force_from=D(2025, 2, 1))  # fmt: skip
    r.grant(store, "root", "admin", actor="os:root")
    r.grant(store, "ann", "risk_unit_head", actor="os:root")
    r.grant(store, "bob", "secretary", actor="os:root")
    with pytest.raises(r.RegistryError) as info:
        r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 5),
                 next_review=D(2026, 2, 1), actor="os:ann")  # fmt: skip
    assert str(info.value) == (
        "os:ann may not review: it needs the role secretary; os:ann has the roles risk_unit_head"
    )
    assert _reviews(store) == []
    r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 5), next_review=D(2026, 2, 1),
             actor="os:bob")  # fmt: skip
    assert [(row[1], row[5]) for row in _reviews(store)] == [("keep", "os:bob")]
    store.dispose()


# --- an office's monitoring (§11.5) ----------------------------------------------------------


def _regional(url: str) -> sa.Engine:
    store = new_store(url)
    run = record_backtest(store, REGIONAL)
    sub = r.submit(store, REGIONAL, tests=REGIONAL_TESTS, backtest_run=run)
    r.approve(store, sub.pk, decision="EC-1", decided_on=D(2025, 1, 10), group="1A", unit="12",
              in_force_from=D(2025, 2, 1), in_force_to=D(2026, 12, 31))  # fmt: skip
    text = fill_text(f"{NUMBER}-01", "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    r.fill(store, text, responsible=PEOPLE, viewers=[], entered_on=D(2025, 3, 21))
    return store


def test_an_office_records_its_monitoring_at_most_three_months_apart(tmp_path: Path) -> None:
    store = _regional(f"sqlite:///{tmp_path / 'r.db'}")
    done = r.review(store, NUMBER, decision="amend", decided_on=D(2025, 6, 30), next_review=None,
                    office="UA100110", minutes="values lowered")  # fmt: skip
    # 2025-06-30 + 3 months = 2025-09-30
    assert (done.office, done.next_review, done.next_step) == ("UA100110", D(2025, 9, 30), "")
    assert _log(store)[-1].action == "monitor"
    assert json.loads(_log(store)[-1].details)["office"] == "UA100110"
    with pytest.raises(r.RegistryError, match=r"the next monitoring \(2025-10-01\) is more than 3 "
                       r"months after this one \(2025-06-30\).*by 2025-09-30"):  # fmt: skip
        r.review(store, NUMBER, decision="keep", decided_on=D(2025, 6, 30),
                 next_review=D(2025, 10, 1), office="UA100110")  # fmt: skip
    with pytest.raises(r.RegistryError, match="office UA500000 has no fill of this profile"):
        r.review(store, NUMBER, decision="keep", decided_on=D(2025, 7, 1), next_review=None,
                 office="UA500000")  # fmt: skip
    with pytest.raises(r.RegistryError, match="terminating the profile is the commission's"):
        r.review(store, NUMBER, decision="terminate", decided_on=D(2025, 7, 1), next_review=None,
                 office="UA100110")  # fmt: skip
    assert len(_reviews(store)) == 1
    with store.connect() as c:
        assert "| 2025-06-30 | office UA100110 | amend | 2025-09-30 | values lowered |" in (
            case_file(c, NUMBER)
        )
    store.dispose()


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    assert add_months(D(2025, 1, 31), 1) == D(2025, 2, 28)
    assert add_months(D(2024, 11, 30), 3) == D(2025, 2, 28)
    assert add_months(D(2024, 2, 29), 12) == D(2025, 2, 28)
    assert add_months(D(2025, 10, 15), 3) == D(2026, 1, 15)
    assert add_months(D(2025, 5, 31), -3) == D(2025, 2, 28)


def test_sqlite_refuses_a_raw_delete_of_a_review(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = _regional(url)
    r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 5), next_review=D(2026, 2, 1))
    refused = "DELETE refused on profile_reviews: a case file is kept"
    with pytest.raises(sa.exc.DatabaseError, match=refused), store.begin() as c:
        c.execute(sa.text("DELETE FROM profile_reviews"))
    assert len(_reviews(store)) == 1
    store.dispose()


# --- the command line ------------------------------------------------------------------------


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["registry", "review", *args, "--db", url])
    return result.exit_code, result.stdout, result.stderr


def test_the_review_verb(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _regional(url).dispose()
    assert _cli(url, NUMBER, "--decision", "keep", "--next-review", "2026-02-01", "--date",
                "2025-08-05", "--minutes", "EC-30/2025 item 4") == (
        0, f"review of {NUMBER} on 2025-08-05: keep; next review 2026-02-01\n", ""
    )  # fmt: skip
    code, out, err = _cli(url, NUMBER, "--decision", "terminate", "--date", "2026-01-20")
    assert (code, err) == (0, "")
    assert out == (
        f"review of {NUMBER} on 2026-01-20: terminate; no next review\n"
        f"next step: record the termination: riskengine registry terminate {NUMBER} --decision N "
        "--decided-on DATE --last-day DATE\n"
    )
    assert _cli(url, NUMBER, "--decision", "keep", "--date", "2025-09-01", "--office",
                "UA100110") == (
        0, f"monitoring by UA100110 of {NUMBER} on 2025-09-01: keep; next review 2025-12-01\n", ""
    )  # fmt: skip
    code, _, err = _cli(url, NUMBER, "--decision", "keep", "--date", "2026-02-01")
    assert (code, err) == (
        1, "error: a decision to keep needs the date of the next review (§9.5: when the profile "
        "stays in force, changed or not, a new review date is set)\n"
    )  # fmt: skip
    code, _, err = _cli(url, NUMBER, "--decision", "stop", "--next-review", "2026-02-01")
    assert code == 2 and "'stop' is not one of 'keep', 'widen'" in err
    code, _, err = _cli(url, NUMBER, "--decision", "keep", "--next-review", "soon")
    assert code == 2 and "expected a date YYYY-MM-DD, got 'soon'" in err
    assert len(_reviews(new_store(url))) == 3


# --- PostgreSQL with real logins ------------------------------------------------------------


@pytest.mark.postgresql
def test_postgresql_the_secretary_records_the_head_cannot_even_with_raw_sql(site: PgSite) -> None:  # noqa: F811
    number = _setup(site).rsplit("-", 1)[0]
    lg = site.logins
    with pytest.raises(r.RegistryError) as info:
        r.review(site.engine("head"), number, decision="keep", decided_on=D(2025, 8, 5),
                 next_review=D(2026, 2, 1))  # fmt: skip
    assert str(info.value) == (
        f"db:{lg['head']} may not review: it needs the role secretary; db:{lg['head']} has the "
        "roles risk_unit_head"
    )
    done = r.review(site.engine("secretary"), number, decision="widen", decided_on=D(2025, 8, 5),
                    next_review=D(2026, 2, 1))  # fmt: skip
    assert done.decision == "widen"
    refused = site.raw(
        "head",
        "INSERT INTO profile_reviews VALUES (9, 1, NULL, 'keep', '2025-09-01', '2026-01-01', '', "
        f"now(), 'db:{lg['head']}')",
    )
    assert "permission denied for table profile_reviews" in refused
    r.fill(site.engine("filler"), _fill(number + "-01"), responsible=PEOPLE,
           viewers=[], entered_on=D(2025, 3, 21))  # fmt: skip
    r.review(site.engine("filler"), number, decision="keep", decided_on=D(2025, 6, 30),
             next_review=None, office="UA100110")  # fmt: skip
    # the filler may insert rows, but not the commission's (no office) nor another office's
    for office in ("NULL", "'UA500000'"):
        refused = site.raw(
            "filler",
            f"INSERT INTO profile_reviews VALUES (9, 1, {office}, 'keep', '2025-09-01', "
            f"'2025-12-01', '', now(), 'db:{lg['filler']}')",
        )
        assert "new row violates row-level security policy" in refused, office
    with site.admin.connect() as c:
        rows = c.execute(sa.text("SELECT office, decision, recorded_by FROM profile_reviews "
                                 "ORDER BY pk")).all()  # fmt: skip
    assert [tuple(x) for x in rows] == [
        (None, "widen", f"db:{lg['secretary']}"),
        ("UA100110", "keep", f"db:{lg['filler']}"),
    ]
    assert r.verify(site.admin).ok


def test_reviews_are_purged_with_their_case_file(store: sa.Engine) -> None:
    # a profile of 2020, reviewed, terminated on 2020-04-30: kept until 2023-04-30, purgeable now
    text = DRAFT.replace("Undervalued footwear from China", "Footwear 2020")
    sub = r.submit(store, text, tests=TESTS, backtest_run=record_backtest(store, text))
    ed = r.approve(store, sub.pk, decision="EC-1", decided_on=D(2020, 1, 10), group="1A",
                   unit="12", in_force_from=D(2020, 2, 1))  # fmt: skip
    base = ed.number.rsplit("-", 1)[0]
    r.review(store, base, decision="terminate", decided_on=D(2020, 3, 2), next_review=None)
    r.terminate(store, base, decision="EC-9", decided_on=D(2020, 4, 1), last_day=D(2020, 4, 30))
    r.review(store, NUMBER, decision="keep", decided_on=D(2025, 8, 5), next_review=D(2026, 2, 1))
    details = r.purge(store, base)
    assert details["rows"]["profile_reviews"] == 1
    # the other profile's review stays
    assert [(row[1], row[2]) for row in _reviews(store)] == [("keep", D(2025, 8, 5))]
    assert r.verify(store).ok
