"""Access rights on PostgreSQL with real database roles: logins made for the test (trust auth on
the test server), members of the riskengine_* group roles of revision r0004. What riskengine
refuses, the database refuses too when the same login goes around it with raw SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from riskengine import registry as r
from tests.registry_support import (
    REGIONAL,
    REGIONAL_TESTS,
    PgSite,
    fill_text,
    record_backtest,
)

pytestmark = pytest.mark.postgresql

D = dt.date
PEOPLE = ["O. Bondar", "P. Koval"]
LOGINS = ("filler", "other", "head", "secretary", "analyst", "auditor", "viewer")


@pytest.fixture
def site(pg_schema: tuple[sa.URL, str]) -> Iterator[PgSite]:
    s = PgSite(*pg_schema, LOGINS)
    try:
        yield s
    finally:
        s.close()


def _setup(site: PgSite) -> str:
    """Roles granted by the superuser (the administrator), a regional profile approved by the
    secretary login: its full number."""
    lg = site.logins
    r.grant(site.admin, lg["filler"], "office_filler", office="UA100110")
    r.grant(site.admin, lg["other"], "office_filler", office="UA500000")
    r.grant(site.admin, lg["head"], "risk_unit_head")
    r.grant(site.admin, lg["secretary"], "secretary")
    r.grant(site.admin, lg["analyst"], "analyst")
    r.grant(site.admin, lg["auditor"], "auditor")
    r.grant(site.admin, lg["viewer"], "office_viewer", office="UA100110")
    run = record_backtest(site.admin, REGIONAL)
    sub = r.submit(site.engine("head"), REGIONAL, tests=REGIONAL_TESTS, backtest_run=run)
    ed = r.approve(site.engine("secretary"), sub.pk, decision="EC-1", decided_on=D(2025, 1, 10),
                   group="1A", unit="12", in_force_from=D(2025, 2, 1),
                   in_force_to=D(2026, 12, 31))  # fmt: skip
    return ed.number


def _fill(number: str, office: str = "UA100110") -> str:
    text = fill_text(number, "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    return text.replace("UA100110", office)


def test_an_office_filler_fills_its_own_office_only_through_riskengine(site: PgSite) -> None:
    number = _setup(site)
    filler = site.logins["filler"]
    done = r.fill(site.engine("filler"), _fill(number), responsible=PEOPLE, viewers=[],
                  entered_on=D(2025, 3, 21))  # fmt: skip
    assert done.office == "UA100110"
    with pytest.raises(r.RegistryError) as info:
        r.fill(site.engine("filler"), _fill(number, "UA500000"), responsible=PEOPLE,
               viewers=[], entered_on=D(2025, 3, 21))  # fmt: skip
    assert str(info.value) == (
        f"db:{filler} may not fill: it needs the role office_filler for office UA500000; "
        f"db:{filler} has the roles office_filler for UA100110"
    )
    with site.admin.connect() as connection:
        log = r.entries(connection)
        offices = connection.execute(sa.text("SELECT office FROM regional_fills")).scalars().all()
    assert offices == ["UA100110"]
    assert [(e.action, e.actor) for e in log[-3:]] == [
        ("submit", f"db:{site.logins['head']}"),
        ("approve", f"db:{site.logins['secretary']}"),
        ("fill", f"db:{filler}"),
    ]
    assert r.verify(site.admin).ok


def test_an_office_filler_cannot_write_another_offices_fill_with_raw_sql(site: PgSite) -> None:
    number = _setup(site)
    r.fill(site.engine("other"), _fill(number, "UA500000"), responsible=PEOPLE, viewers=[],
           entered_on=D(2025, 3, 21))  # fmt: skip
    insert = (
        "INSERT INTO regional_fills SELECT pk + 100, profile_pk, edition_pk, '{office}', text, "
        "sha256, order_number, order_date, valid_from, valid_to, responsible, viewers, "
        "entered_on, late, recorded_at, 'db:' || current_user FROM regional_fills"
    )
    refused = site.raw("filler", insert.format(office="UA500000"))
    assert 'new row violates row-level security policy for table "regional_fills"' in refused
    # its own office passes the policy (riskengine would also log it; raw SQL does not)
    assert site.raw("filler", insert.format(office="UA100110")) == ""
    for statement in (
        "UPDATE regional_fills SET valid_to = '2025-12-31'",
        "DELETE FROM regional_fills",
        "ALTER TABLE regional_fills DISABLE ROW LEVEL SECURITY",
        "DROP POLICY fills_own_office ON regional_fills",
        "INSERT INTO registry_members VALUES (99, 'db:x', 'office_filler', 'UA500000', now(), 'x')",
        "INSERT INTO commission_decisions VALUES (99, 1, NULL, 'approve', 'x', now(), now(), 'x')",
    ):
        refused = site.raw("filler", statement)
        assert "permission denied" in refused or "must be owner" in refused, (statement, refused)


def test_every_role_is_refused_what_it_may_not_do(site: PgSite) -> None:
    number = _setup(site)
    base = number.rsplit("-", 1)[0]
    lg = site.logins
    cases = [
        ("filler", lambda e: r.suspend(e, base, ground="10.3.3", on=D(2025, 5, 1), reason="x"),
         "suspend", "risk_unit_head"),
        ("analyst", lambda e: r.terminate(e, base, decision="x", decided_on=D(2025, 5, 1),
                                          last_day=D(2025, 5, 31)), "terminate", "secretary"),
        ("head", lambda e: r.terminate(e, base, decision="x", decided_on=D(2025, 5, 1),
                                       last_day=D(2025, 5, 31)), "terminate", "secretary"),
        ("secretary", lambda e: r.suspend(e, base, ground="10.3.3", on=D(2025, 5, 1),
                                          reason="x"), "suspend", "risk_unit_head"),
        ("viewer", lambda e: r.fill(e, _fill(number), responsible=PEOPLE, viewers=[],
                                    entered_on=D(2025, 3, 21)), "fill", "office_filler"),
    ]  # fmt: skip
    for who, call, verb, role in cases:
        with pytest.raises(r.RegistryError) as info:
            call(site.engine(who))
        assert str(info.value).startswith(
            f"db:{lg[who]} may not {verb}: it needs the role {role}"
        ), str(info.value)
    # the same by raw SQL: the grants refuse
    assert "permission denied" in site.raw(
        "head",
        "INSERT INTO commission_decisions VALUES (99, 1, NULL, 'terminate', 'x', "
        "now(), now(), 'x')",
    )
    assert "permission denied" in site.raw(
        "secretary",
        "INSERT INTO profile_suspensions VALUES (99, 1, 'suspend', now(), "
        "'10.3.3', 'x', now(), 'x')",
    )
    assert "permission denied" in site.raw("analyst", "SELECT * FROM audit_log")
    assert "permission denied" in site.raw("viewer", "SELECT * FROM audit_log")
    assert site.raw("auditor", "SELECT * FROM audit_log") == ""
    with site.admin.connect() as connection:
        assert [e.action for e in r.entries(connection)][-2:] == ["submit", "approve"]


def test_update_or_delete_of_the_log_fails_for_every_role(site: PgSite) -> None:
    _setup(site)
    for who in LOGINS:
        for statement in (
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
        ):
            refused = site.raw(who, statement)
            assert "permission denied" in refused or "must be owner" in refused, (who, refused)
    # the tables' owner role itself (NOLOGIN; the administrator can act as it): the triggers
    with site.admin.begin() as connection:
        owner = connection.execute(
            sa.text(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log' "
                "AND schemaname = current_schema()"
            )
        ).scalar_one()
    assert owner == "riskengine_owner"
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError) as info, site.admin.begin() as connection:
            connection.execute(sa.text("SET LOCAL ROLE riskengine_owner"))
            connection.execute(sa.text(statement))
        assert "the audit log is append-only" in str(info.value.orig)
    assert r.verify(site.admin).ok


def test_retention_holds_for_the_purging_role_and_purge_is_logged(site: PgSite) -> None:
    number = _setup(site)
    base = number.rsplit("-", 1)[0]
    head = site.engine("head")
    refused = site.raw("head", "DELETE FROM profile_suspensions")
    assert refused == ""  # no rows: nothing to refuse
    refused = site.raw("head", "DELETE FROM profile_editions")
    assert "DELETE refused on profile_editions (profile/1): a case file is kept" in refused
    r.terminate(site.engine("secretary"), base, decision="EC-9", decided_on=D(2025, 3, 1),
                last_day=D(2025, 3, 31))  # fmt: skip
    with pytest.raises(r.RegistryError) as info:
        r.purge(head, base)
    assert str(info.value) == (
        f"{base} ended on 2025-03-31: its case file is kept until 2028-03-31 (3 years after "
        "its end, §7.3-7.4); purge refused"
    )
    with pytest.raises(r.RegistryError) as info:
        r.purge(site.engine("secretary"), base)
    assert str(info.value).startswith(f"db:{site.logins['secretary']} may not purge")


def test_an_old_case_file_is_purged_by_the_head_only_through_purge(site: PgSite) -> None:
    lg = site.logins
    r.grant(site.admin, lg["head"], "risk_unit_head")
    r.grant(site.admin, lg["secretary"], "secretary")
    run = record_backtest(site.admin, REGIONAL)
    sub = r.submit(site.engine("head"), REGIONAL, tests=REGIONAL_TESTS, backtest_run=run)
    ed = r.approve(site.engine("secretary"), sub.pk, decision="EC-1", decided_on=D(2019, 1, 10),
                   group="1A", unit="12", in_force_from=D(2019, 2, 1))  # fmt: skip
    base = ed.number.rsplit("-", 1)[0]
    r.grant(site.admin, lg["filler"], "office_filler", office="UA100110")
    fill = fill_text(ed.number, "131", "2019-03-20", "2019-04-01 .. 2019-06-30")
    r.fill(site.engine("filler"), fill, responsible=PEOPLE, viewers=[],
           entered_on=D(2019, 3, 21))  # fmt: skip
    r.terminate(site.engine("secretary"), base, decision="EC-2", decided_on=D(2020, 1, 10),
                last_day=D(2020, 1, 31))  # fmt: skip
    # past retention, but a raw DELETE has no purge entry in the log: refused
    for name in ("regional_fills", "commission_decisions", "profiles"):
        assert "a case file is kept" in site.raw("head", f"DELETE FROM {name}")
    assert "permission denied" in site.raw("filler", "DELETE FROM regional_fills")
    details = r.purge(site.engine("head"), base)
    assert details["rows"]["profiles"] == 1 and details["kept_until"] == "2023-01-31"
    assert details["rows"]["regional_fills"] == 1
    with site.admin.connect() as connection:
        last = r.entries(connection)[-1]
        left = connection.execute(sa.text("SELECT count(*) FROM profile_editions")).scalar()
    assert (last.action, last.actor, last.hash_after, left) == (
        "purge",
        f"db:{lg['head']}",
        None,
        0,
    )
    assert last.hash_before is not None and ed.sha256 in last.details
    assert r.verify(site.admin).ok


def test_a_revoked_filler_can_no_longer_fill(site: PgSite) -> None:
    number = _setup(site)
    filler = site.logins["filler"]
    r.revoke(site.admin, filler, "office_filler", office="UA100110")
    with pytest.raises(r.RegistryError) as info:
        r.fill(site.engine("filler"), _fill(number), responsible=PEOPLE, viewers=[],
               entered_on=D(2025, 3, 21))  # fmt: skip
    assert str(info.value) == (
        f"db:{filler} may not fill: it needs the role office_filler; db:{filler} has no "
        "registry role"
    )
    refused = site.raw(
        "filler",
        f"INSERT INTO \"{site.schema}\".audit_log VALUES (99, now(), 'x', 'x', 'x', "
        "'{}', NULL, NULL, '0', '0')",
    )
    assert f"permission denied for schema {site.schema}" in refused


def test_granting_to_a_login_that_does_not_exist_is_a_clear_refusal(site: PgSite) -> None:
    with pytest.raises(r.RegistryError) as info:
        r.grant(site.admin, f"{site.schema}_nobody", "auditor")
    assert str(info.value) == (
        f'PostgreSQL refused `GRANT riskengine_auditor TO "{site.schema}_nobody"`: role '
        f'"{site.schema}_nobody" does not exist'
    )
    with pytest.raises(r.RegistryError) as info:
        r.grant(site.engine("head"), site.logins["auditor"], "auditor")
    assert str(info.value) == (
        f"db:{site.logins['head']} may not grant: it needs the role admin; "
        f"db:{site.logins['head']} has no registry role"
    )
    with site.admin.connect() as connection:
        assert r.members(connection) == [] and r.entries(connection) == []


def test_the_recorded_actor_is_the_login(site: PgSite) -> None:
    number = _setup(site)
    filler = site.logins["filler"]
    with pytest.raises(r.RegistryError) as info:
        r.fill(site.engine("filler"), _fill(number), responsible=PEOPLE, viewers=[],
               entered_on=D(2025, 3, 21), actor="db:someone_else")  # fmt: skip
    assert str(info.value) == (
        f"on PostgreSQL the actor is the database login db:{filler}: actor='db:someone_else' "
        "is refused"
    )
    # raw SQL naming someone else: the database refuses
    refused = site.raw(
        "filler",
        "INSERT INTO audit_log SELECT pk + 1, logged_at, 'db:someone_else', action, object, "
        "details, hash_before, hash_after, entry_hash, entry_hash FROM audit_log "
        "ORDER BY pk DESC LIMIT 1",
    )
    assert (
        f"INSERT refused on audit_log: actor is db:someone_else, but the login is db:{filler}"
        in refused
    )
