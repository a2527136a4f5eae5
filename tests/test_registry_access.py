"""Access rights on SQLite and DuckDB (the members table, not authenticated) and retention with
its audited purge on every backend: what each refusal says, that it writes nothing, what the
command line prints, and the database triggers that refuse any other deletion."""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine import registry as r
from riskengine.cli import cli
from riskengine.registry.admin import kept_until, today
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)

D = dt.date
ME = "os:" + getpass.getuser()
PEOPLE = ["O. Bondar", "P. Koval"]


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> Iterator[sa.Engine]:
    engine = new_store(f"sqlite:///{os.path.join(tmp_path, 'registry.db')}")
    yield engine
    engine.dispose()


def _log(store: sa.Engine) -> list[r.AuditEntry]:
    with store.connect() as connection:
        return r.entries(connection)


def _refused(store: sa.Engine, call: object, *args: object, **kwargs: object) -> str:
    before = _log(store)
    with pytest.raises(r.RegistryError) as info:
        call(store, *args, **kwargs)  # type: ignore[operator]
    assert _log(store) == before
    return str(info.value)


def _submit(store: sa.Engine, text: str = DRAFT, tests: str = TESTS, **kw: str) -> r.Submission:
    return r.submit(store, text, tests=tests, backtest_run=record_backtest(store, text), **kw)


def _approve(store: sa.Engine, sub: int, year: int = 2025, **kw: str) -> r.Edition:
    return r.approve(store, sub, decision="EC-1", decided_on=D(year, 1, 10), group="1A",
                     unit="12", in_force_from=D(year, 2, 1), **kw)  # fmt: skip


# ------------------------------------------------------------------------------ access rights


def test_without_members_the_local_user_may_do_everything(store: sa.Engine) -> None:
    ed = _approve(store, _submit(store).pk)
    r.suspend(store, ed.number, ground="10.3.3", on=D(2025, 3, 1), reason="x")
    with store.connect() as connection:
        assert r.members(connection) == []
        r.require(connection, "os:anyone", "terminate")


def test_the_first_member_must_be_an_admin(store: sa.Engine) -> None:
    msg = _refused(store, r.grant, "ann", "secretary")
    assert msg == (
        "the first member must be an admin (otherwise nobody could grant the next role): "
        f"`riskengine registry grant {ME.removeprefix('os:')} admin` first"
    )
    assert r.grant(store, ME, "admin") == ME
    assert r.grant(store, "ann", "secretary") == "os:ann"
    assert [(e.action, e.object) for e in _log(store)] == [
        ("grant", f"member/{ME}"),
        ("grant", "member/os:ann"),
    ]
    assert r.verify(store).ok


def test_each_action_needs_its_role_and_a_refusal_writes_nothing(store: sa.Engine) -> None:
    r.grant(store, ME, "admin")
    for who, role in [("head", "risk_unit_head"), ("sec", "secretary"), ("aud", "auditor")]:
        r.grant(store, who, role)
    r.grant(store, "ann", "office_filler", office="UA100110")
    msg = _refused(store, _submit, actor="os:sec")
    assert (
        msg
        == "os:sec may not submit: it needs the role risk_unit_head; os:sec has the roles secretary"
    )
    sub = _submit(store, REGIONAL, REGIONAL_TESTS, actor="os:head")
    msg = _refused(store, _approve, sub.pk, actor="os:head")
    assert msg == (
        "os:head may not approve: it needs the role secretary; os:head has the roles risk_unit_head"
    )
    msg = _refused(store, _approve, sub.pk, actor="os:nobody")
    assert (
        msg
        == "os:nobody may not approve: it needs the role secretary; os:nobody has no registry role"
    )
    ed = _approve(store, sub.pk, actor="os:sec")
    base = ed.number.rsplit("-", 1)[0]
    for call, kwargs, verb, role in [
        (r.suspend, {"ground": "10.3.3", "on": D(2025, 3, 1), "reason": "x"}, "suspend",
         "risk_unit_head"),
        (r.terminate, {"decision": "x", "decided_on": D(2025, 3, 1), "last_day": D(2025, 3, 31)},
         "terminate", "secretary"),
        (r.purge, {}, "purge", "risk_unit_head"),
    ]:  # fmt: skip
        msg = _refused(store, call, base, actor="os:ann", **kwargs)
        assert msg.startswith(f"os:ann may not {verb}: it needs the role {role};"), msg
    text = fill_text(ed.number, "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    other = text.replace("UA100110", "UA500000")
    msg = _refused(store, r.fill, other, responsible=PEOPLE, viewers=[], actor="os:ann",
                   entered_on=D(2025, 3, 21))  # fmt: skip
    assert msg == (
        "os:ann may not fill: it needs the role office_filler for office UA500000; os:ann has "
        "the roles office_filler for UA100110"
    )
    done = r.fill(store, text, responsible=PEOPLE, viewers=[], actor="os:ann",
                  entered_on=D(2025, 3, 21))  # fmt: skip
    assert done.office == "UA100110" and _log(store)[-1].actor == "os:ann"
    assert r.verify(store).ok


def test_grant_and_revoke_refusals(store: sa.Engine) -> None:
    r.grant(store, ME, "admin")
    assert _refused(store, r.grant, "ann", "clerk").startswith(
        "'clerk' is not a registry role; the roles are analyst, risk_unit_head, secretary"
    )
    assert _refused(store, r.grant, "ann", "office_filler") == (
        "the role office_filler is held for an office: give --office CODE"
    )
    assert _refused(store, r.grant, "ann", "auditor", office="UA1") == (
        "the role auditor is not held for an office (no --office)"
    )
    assert _refused(store, r.grant, "db:ann", "auditor") == (
        "db:ann: on sqlite an actor is os:NAME (the operating-system user)"
    )
    r.grant(store, "ann", "auditor")
    assert _refused(store, r.grant, "ann", "auditor") == "os:ann already has the role auditor"
    assert _refused(store, r.revoke, "bob", "auditor") == "os:bob does not have the role auditor"
    assert _refused(store, r.grant, "bob", "auditor", actor="os:ann") == (
        "os:ann may not grant: it needs the role admin; os:ann has the roles auditor"
    )
    assert _refused(store, r.revoke, ME, "admin") == (
        f"{ME} is the last admin: revoking it would leave nobody able to grant roles (grant "
        "admin to someone else first, or revoke every other role first)"
    )
    r.revoke(store, "ann", "auditor")
    r.revoke(store, ME, "admin")  # the last member: back to the single local user
    with store.connect() as connection:
        assert r.members(connection) == []
    assert [e.action for e in _log(store)] == ["grant", "grant", "revoke", "revoke"]


def _cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["registry", *args, "--db", url])
    return result.exit_code, result.output


def test_the_command_line_grants_lists_and_refuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    new_store(url).dispose()
    assert _cli(url, "members") == (
        0,
        f"no members: the local user ({ME}, recorded, not authenticated) may do every registry "
        "action; `riskengine registry grant USER admin` starts the rights\n",
    )
    assert _cli(url, "grant", ME.removeprefix("os:"), "admin") == (0, f"{ME} has the role admin\n")
    assert _cli(url, "grant", "ann", "office_filler", "--office", "UA100110") == (
        0,
        "os:ann has the role office_filler for UA100110\n",
    )
    code, out = _cli(url, "grant", "ann", "clerk")
    assert code == 2 and "'clerk' is not one of 'analyst', 'risk_unit_head'" in out
    code, out = _cli(url, "grant", "ann", "office_viewer")
    assert code == 2 and "the role office_viewer is held for an office: give --office CODE" in out
    assert _cli(url, "members") == (
        0,
        f"actor{' ' * (len(ME) - 5)}  role           office\n"
        f"os:ann{' ' * (len(ME) - 6)}  office_filler  UA100110\n"
        f"{ME}  admin\n"
        f"you are {ME} (not authenticated): admin\n",
    )
    draft, tests = tmp_path / "d.rp", tmp_path / "t.test.toml"
    draft.write_text(DRAFT, encoding="utf-8")
    tests.write_text(TESTS, encoding="utf-8")
    store = sa.create_engine(url)
    run = record_backtest(store, DRAFT)
    store.dispose()
    for args, verb, role in [
        (("submit", str(draft), "--tests", str(tests), "--run", str(run)), "submit",
         "risk_unit_head"),
        (("approve", "1", "--decision", "x", "--decided-on", "2025-01-10", "--group", "1A",
          "--unit", "12", "--in-force-from", "2025-02-01"), "approve", "secretary"),
        (("suspend", "1A/12/2025/00001", "--ground", "10.3.3", "--on", "2025-03-01", "--reason",
          "x"), "suspend", "risk_unit_head"),
        (("purge", "1A/12/2025/00001"), "purge", "risk_unit_head"),
        (("log",), "log", "auditor"),
        (("verify",), "verify", "auditor"),
    ]:  # fmt: skip
        assert _cli(url, *args) == (
            1,
            f"error: {ME} may not {verb}: it needs the role {role}; {ME} has the roles admin\n",
        ), args
    assert _cli(url, "revoke", "ann", "office_filler", "--office", "UA100110") == (
        0,
        "os:ann no longer has the role office_filler for UA100110\n",
    )


# ---------------------------------------------------------------------------------- retention


def test_kept_until_is_three_years_after_the_last_day() -> None:
    assert kept_until(D(2025, 3, 31)) == D(2028, 3, 31)
    assert kept_until(D(2024, 2, 29)) == D(2027, 3, 1)  # as SQLite's date(…, '+3 years')


def _terminated(store: sa.Engine, year: int) -> str:
    text = DRAFT.replace("Undervalued footwear from China", f"Footwear {year}")
    ed = _approve(store, _submit(store, text).pk, year=year)
    base = ed.number.rsplit("-", 1)[0]
    r.clarify(store, ed.number, ed.text.replace("000 0000", "000 0001"), ground="10.2.3",
              reason="phone")  # fmt: skip
    r.suspend(store, base, ground="10.3.3", on=D(year, 3, 1), reason="x")
    r.terminate(store, base, decision="EC-9", decided_on=D(year, 4, 1), last_day=D(year, 4, 30))
    return base


def test_purge_is_refused_in_force_and_within_three_years(store: sa.Engine) -> None:
    ed = _approve(store, _submit(store).pk, year=2025)
    base = ed.number.rsplit("-", 1)[0]
    assert _refused(store, r.purge, base) == (
        f"{base} is approved: a case file is kept while the profile is in force and 3 years "
        "after its end (§7.3-7.4); only a terminated profile's case file can be purged"
    )
    r.terminate(store, base, decision="EC-9", decided_on=D(2025, 4, 1), last_day=D(2025, 4, 30))
    assert _refused(store, r.purge, base) == (
        f"{base} ended on 2025-04-30: its case file is kept until 2028-04-30 (3 years after its "
        "end, §7.3-7.4); purge refused"
    )
    with store.connect() as connection:
        from riskengine.registry.casefile import case_file

        shown = case_file(connection, base)
    assert "terminated" in shown and ed.sha256[:12] in shown  # a terminated case file is read


def test_the_database_refuses_deleting_a_case_file_outside_purge(store: sa.Engine) -> None:
    recent = _terminated(store, 2025)
    old = _terminated(store, 2020)  # retention over, but no purge entry in the log
    for name in (  # (a fill: tests/test_registry_roles_pg.py)
        "profile_clarifications",
        "profile_suspensions",
        "profile_editions",
        "commission_decisions",
        "profile_submissions",
        "profiles",
    ):
        with pytest.raises(sa.exc.IntegrityError) as info, store.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM {name}"))
        assert f"DELETE refused on {name}: a case file is kept while the profile is in force" in (
            str(info.value)
        )
    assert r.verify(store).ok and {recent, old} == {"1A/12/2025/00001", "1A/12/2020/00002"}


def test_an_old_case_file_is_purged_with_a_log_entry(db_url: str) -> None:
    store = new_store(db_url)
    try:
        recent = _terminated(store, 2025)
        old = _terminated(store, 2020)
        with store.connect() as connection:
            before = r.entries(connection)
        details = r.purge(store, old)
        assert details["rows"] == {
            "profile_clarifications": 1,
            "regional_fills": 0,
            "profile_suspensions": 1,
            "profile_editions": 1,
            "commission_decisions": 2,
            "profile_submissions": 1,
            "profiles": 1,
        }
        assert (details["last_day"], details["kept_until"]) == ("2020-04-30", "2023-04-30")
        with store.connect() as connection:
            log = r.entries(connection)
            names = connection.execute(sa.text("SELECT base_number FROM profiles")).scalars()
            assert list(names) == [recent]
        assert log[: len(before)] == before  # the profile's earlier entries stay
        last = log[-1]
        assert (last.action, last.object, last.hash_after) == ("purge", "profile/2", None)
        assert last.hash_before == before[-1].hash_after  # the case file as it was
        assert r.verify(store).ok
        with pytest.raises(r.RegistryError) as info:
            r.purge(store, old)
        assert str(info.value).startswith(
            f"the case file of {old} was purged on {today()} after its retention period "
            f"(log entry {last.pk})"
        )
        # keys are never given again: the next submission is 3, its profile 3
        sub = _submit(store, DRAFT.replace("Undervalued footwear from China", "Next"))
        assert (sub.pk, sub.profile_pk) == (3, 3)
    finally:
        store.dispose()


def test_r0004_goes_down_to_r0003_and_up_again(db_url: str) -> None:
    from alembic import command

    from riskengine.store import migrate

    store = new_store(db_url)
    try:
        _approve(store, _submit(store).pk)  # a store at r0003 with a case file, upgraded
        with store.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "r0003")
            assert "registry_members" not in sa.inspect(connection).get_table_names()
            command.upgrade(migrate.alembic_config(connection), "head")
            assert migrate.current_revision(connection) == migrate.head_revision()
        assert r.verify(store).ok
        other = DRAFT.replace("Undervalued footwear from China", "Other")
        assert _approve(store, _submit(store, other).pk).number == "1A/12/2025/00002-01"
        assert r.verify(store).ok
    finally:
        store.dispose()


# ------------------------------------------------------------------------------------- docs


def _block(page: str, heading: str) -> list[tuple[str, str]]:
    """The commands of the first ``console`` block after ``heading``, with their output."""
    block = page.split(heading, 1)[1].split("```console\n", 1)[1].split("\n```\n", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "".join(x + "\n" for x in out)) for command, out in steps]


def _replay(tmp_path: Path, steps: list[tuple[str, str]]) -> None:
    import re
    import shlex

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    for command, shown in steps:
        args = shlex.split(command)
        env = {"RISKENGINE_DB": url, "LOGNAME": "root"}  # the page's user, on any machine
        while "=" in args[0]:
            name, value = args.pop(0).split("=", 1)
            env[name] = value
        assert args[:2] == ["riskengine", "registry"], command
        result = CliRunner().invoke(cli, args[1:], env=env)
        expected = re.sub(r"purged on \S+ ", f"purged on {today()} ", shown)
        assert result.output == expected, command
        assert result.exit_code == (1 if shown.startswith("error:") else 0), command


def _setup_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *texts: str) -> None:
    monkeypatch.chdir(tmp_path)
    store = new_store(f"sqlite:///{tmp_path / 'registry.db'}")
    for text in texts:
        record_backtest(store, text)
    store.dispose()
    (tmp_path / "footwear.rp").write_text(DRAFT, encoding="utf-8")
    (tmp_path / "footwear.test.toml").write_text(TESTS, encoding="utf-8")


PAGE = Path(__file__).parent.parent / "docs" / "registry.md"


def test_the_access_session_in_docs_registry_md_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = _block(PAGE.read_text(encoding="utf-8"), "### SQLite and DuckDB")
    assert len(steps) == 13
    _setup_docs(tmp_path, monkeypatch, DRAFT)
    _replay(tmp_path, steps)


def test_the_retention_session_in_docs_registry_md_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = _block(PAGE.read_text(encoding="utf-8"), "## Retention")
    assert len(steps) == 12
    boots = DRAFT.replace("Undervalued footwear from China", "Undervalued boots")
    _setup_docs(tmp_path, monkeypatch, DRAFT, boots)
    (tmp_path / "boots.rp").write_text(boots, encoding="utf-8")
    _replay(tmp_path, steps)
