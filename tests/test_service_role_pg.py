"""The scoring service's database role (revision r0009) on PostgreSQL, with real logins made for
the test (trust auth on the test server): a login in ``riskengine_service`` scores with history
from the store (``StoreHistoryProvider``, its LISTEN included) and writes the decision log
(``DecisionLog``, COPY and ``ON CONFLICT DO NOTHING``), and the database refuses it everything
else; the registry's roles read the decision log and release times as docs/registry.md says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from riskengine import registry as r
from riskengine.decisionlog import DecisionLog
from riskengine.demo import write_demo
from riskengine.demo.generate import generate
from riskengine.evaluator import Engine
from riskengine.store import migrate
from riskengine.store.history import StoreHistoryProvider
from tests.registry_support import PgSite

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parent.parent
LOGINS = ("service", "analyst", "head", "auditor", "filler")
DENIED = ("permission denied", "must be owner")


class Site(PgSite):
    """The store with demo data, and the logins of the test."""

    def may(self, who: str, table: str, privilege: str) -> bool:
        with self.admin.connect() as connection:
            return bool(
                connection.execute(
                    sa.text("SELECT has_table_privilege(:login, to_regclass(:t), :p)"),
                    {"login": self.logins[who], "t": f'"{self.schema}".{table}', "p": privilege},
                ).scalar_one()
            )


@pytest.fixture
def site(pg_schema: tuple[sa.URL, str]) -> Iterator[Site]:
    s = Site(*pg_schema, LOGINS)
    try:
        write_demo(s.admin, 300, seed=2)
        with s.admin.begin() as connection:
            connection.execute(sa.text(f'GRANT riskengine_service TO "{s.logins["service"]}"'))
        r.grant(s.admin, s.logins["analyst"], "analyst")
        r.grant(s.admin, s.logins["head"], "risk_unit_head")
        r.grant(s.admin, s.logins["auditor"], "auditor")
        r.grant(s.admin, s.logins["filler"], "office_filler", office="UA100110")
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def declarations() -> list:  # type: ignore[type-arg]
    return [x.declaration for x in generate(300, seed=2)]


def test_a_service_login_scores_with_history_and_writes_the_decision_log(
    site: Site,
    tmp_path: Path,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    service = site.engine("service")
    with (
        StoreHistoryProvider(service) as as_service,
        StoreHistoryProvider(site.admin, listen=False) as as_admin,
    ):
        engine = Engine.load(ROOT / "profiles", history=as_service)
        results = [engine.score(d) for d in declarations]
        reference = Engine.load(ROOT / "profiles", history=as_admin)
        assert results == [reference.score(d) for d in declarations]
        assert as_service.queries > 0 and as_service.listener_error is None
        assert sum(1 for x in results if x.fired) > 0
        # LISTEN works for the login: the channel's round trip comes back
        as_service.sync()
        assert as_service.listener_error is None

        spool = tmp_path / "spool.jsonl"
        with DecisionLog(engine=service, spool=spool, revision="rev-1", batch_size=100) as log:
            for result, declaration in zip(results, declarations, strict=True):
                log.record(result, declaration)
            assert log.flush(60)
            for result, declaration in zip(results[:10], declarations[:10], strict=True):
                log.record(result, declaration)  # the same decisions again: ignored
            assert log.flush(60)
            stats = log.stats()
    assert (stats.written, stats.duplicates) == (len(declarations), 10)
    assert (stats.failures, stats.spool_appends, stats.last_error) == (0, 0, None)
    with site.admin.connect() as connection:
        logged = connection.execute(
            sa.text("SELECT count(*), count(DISTINCT declaration_id) FROM decision_log")
        ).one()
    assert tuple(logged) == (len(declarations), len(declarations))


def test_a_service_login_is_refused_everything_else(site: Site) -> None:
    row = (
        "INSERT INTO decision_log VALUES ('D1', 'rev-1', NULL, DATE '2025-01-01', NULL, NULL, "
        "false, 'green', NULL, '[]', '[]', now())"
    )
    assert site.raw("service", row) == ""  # what it may do: insert a decision
    for statement in (
        "UPDATE decision_log SET lane = 'red'",
        "DELETE FROM decision_log",
        "TRUNCATE decision_log",
        "SELECT * FROM decision_log",
        "SELECT * FROM audit_log",
        "SELECT * FROM registry_members",
        "SELECT * FROM profiles",
        "SELECT * FROM release_times",
        "INSERT INTO registry_members VALUES (99, 'db:x', 'secretary', NULL, now(), 'db:x')",
        "INSERT INTO audit_log (pk) VALUES (99)",
        "DELETE FROM control_results",
        "UPDATE clearance_outcomes SET completed = true",
        "INSERT INTO backtest_runs (pk) VALUES (99)",
        "ALTER TABLE decision_log ADD COLUMN x int",
        "DROP TABLE decision_log",
    ):
        refused = site.raw("service", statement)
        assert any(m in refused for m in DENIED), (statement, refused)
    # through riskengine: no registry role, so no registry action
    with site.engine("service").connect() as connection:
        assert r.roles_of(connection, "") == []
    with pytest.raises(r.RegistryError) as info:
        r.grant(site.engine("service"), site.logins["analyst"], "secretary")
    assert str(info.value).startswith(f"db:{site.logins['service']} may not grant")
    with site.admin.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM decision_log")).scalar() == 1


def test_the_registry_roles_read_the_decision_log_and_release_times(site: Site) -> None:
    for who in ("analyst", "head", "auditor"):
        assert site.raw(who, "SELECT * FROM decision_log") == "", who
        for statement in ("DELETE FROM decision_log", "UPDATE decision_log SET lane = 'red'"):
            assert any(m in site.raw(who, statement) for m in DENIED), (who, statement)
    assert any(m in site.raw("filler", "SELECT * FROM decision_log") for m in DENIED)
    assert any(
        m in site.raw("analyst", "INSERT INTO decision_log (declaration_id) VALUES ('x')")
        for m in DENIED
    )
    with site.engine("analyst").connect() as connection:
        released = connection.execute(sa.text("SELECT count(*) FROM release_times")).scalar()
    assert released and released > 0  # the demo data records release times
    for who in ("head", "auditor", "filler"):
        assert any(m in site.raw(who, "SELECT * FROM release_times") for m in DENIED), who
    for who in ("analyst", "head", "auditor", "filler", "service"):
        assert not site.may(who, "release_times", "INSERT"), who


def test_r0009_goes_down_and_up_again(site: Site) -> None:
    assert site.may("service", "decision_log", "INSERT")
    assert site.may("service", "declarations", "SELECT")
    assert site.may("auditor", "decision_log", "SELECT")
    with site.admin.begin() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
        command.downgrade(migrate.alembic_config(connection), "r0009-1")
    assert not site.may("service", "decision_log", "INSERT")
    assert not site.may("service", "declarations", "SELECT")
    assert not site.may("auditor", "decision_log", "SELECT")
    assert not site.may("analyst", "release_times", "SELECT")
    with site.admin.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "head")
        assert migrate.current_revision(connection) == migrate.head_revision()
    assert site.may("service", "decision_log", "INSERT")
    assert site.may("analyst", "release_times", "SELECT")
    assert not site.may("service", "decision_log", "DELETE")
