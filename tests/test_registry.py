"""The registry: the lifecycle on every backend, each refusal with its message, the audit log's
chain and its tamper detection, the triggers that keep the log and approved texts unchanged."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from riskengine import registry as r
from riskengine.checks import check_sources
from riskengine.format import format_text
from riskengine.registry import audit
from riskengine.registry.audit import GENESIS
from riskengine.registry.lifecycle import sha256
from riskengine.store.schema import TABLES
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


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> Iterator[sa.Engine]:
    engine = new_store(f"sqlite:///{os.path.join(tmp_path, 'registry.db')}")
    yield engine
    engine.dispose()


def _approved(store: sa.Engine, text: str = DRAFT, tests: str = TESTS) -> r.Edition:
    sub = r.submit(store, text, tests=tests, backtest_run=record_backtest(store, text))
    return r.approve(
        store,
        sub.pk,
        decision="EC-12/2025",
        decided_on=D(2025, 1, 10),
        group="1A",
        unit="12",
        in_force_from=D(2025, 2, 1),
        in_force_to=D(2026, 12, 31),
    )


def _log(store: sa.Engine) -> list[r.AuditEntry]:
    with store.connect() as connection:
        return r.entries(connection)


def _numbers(store: sa.Engine, day: dt.date) -> list[str]:
    with store.connect() as connection:
        return [x.number for x in r.in_force(connection, day)]


def _refused(store: sa.Engine, call: object, *args: object, **kwargs: object) -> str:
    """Run a refused action: its message; the log and every table are as before."""
    before = _log(store)
    with pytest.raises(r.RegistryError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    assert _log(store) == before
    assert r.verify(store).ok
    return str(info.value)


# ------------------------------------------------------------------------------------ lifecycle


def test_the_whole_lifecycle_on_every_backend(db_url: str) -> None:
    store = new_store(db_url)
    try:
        first = _approved(store)
        assert first.number == "1A/12/2025/00001-01"
        assert _numbers(store, D(2025, 1, 31)) == []
        assert _numbers(store, D(2025, 2, 1)) == ["1A/12/2025/00001-01"]

        clarified = first.text.replace("+380 44 000 0000", "+380 44 000 0001")
        assert r.clarify(store, first.number, clarified, ground="10.2.3", reason="new phone") == [
            "contact"
        ]
        with store.connect() as connection:
            assert r.current_text(connection, first.pk) == clarified

        amended_text = clarified.replace("< 400", "< 450")
        sub = r.submit(
            store,
            amended_text,
            tests=TESTS,
            backtest_run=record_backtest(store, amended_text),
            amends=first.number,
        )
        second = r.amend(
            store,
            sub.pk,
            decision="EC-40/2025",
            decided_on=D(2025, 6, 2),
            in_force_from=D(2025, 7, 1),
        )
        assert second.number == "1A/12/2025/00001-02"
        assert "edition in force 2025-07-01" in second.text
        assert "approved 2025-01-10" in second.text
        assert _numbers(store, D(2025, 6, 30)) == ["1A/12/2025/00001-01"]
        assert _numbers(store, D(2025, 7, 1)) == ["1A/12/2025/00001-02"]

        r.suspend(store, second.number, ground="10.3.4", on=D(2025, 8, 1), reason="false hits")
        r.resume(store, second.number, on=D(2025, 8, 15), reason="checked")
        assert _numbers(store, D(2025, 8, 14)) == []
        assert _numbers(store, D(2025, 8, 15)) == ["1A/12/2025/00001-02"]

        r.terminate(
            store,
            "1A/12/2025/00001",
            decision="EC-90/2025",
            decided_on=D(2025, 11, 3),
            last_day=D(2025, 11, 30),
        )
        assert _numbers(store, D(2025, 11, 30)) == ["1A/12/2025/00001-02"]
        assert _numbers(store, D(2025, 12, 1)) == []

        log = _log(store)
        assert [e.action for e in log] == [
            "submit",
            "approve",
            "clarify",
            "submit",
            "amend",
            "suspend",
            "resume",
            "terminate",
        ]
        assert log[0].prev_hash == GENESIS and log[0].hash_before is None
        assert all(e.object == "profile/1" for e in log)
        if db_url.startswith("postgresql"):
            assert {e.actor for e in log} == {"db:postgres"}  # the database login
        else:
            assert {e.actor for e in log} == {audit.os_actor()}
        assert all(a.hash_after == b.hash_before for a, b in itertools.pairwise(log))
        assert r.verify(store) == r.Verification(8)
        with store.connect() as connection:
            eds = TABLES.profile_editions
            stored = connection.execute(
                sa.select(eds.c.text, eds.c.sha256).order_by(eds.c.edition)
            ).all()
        assert [(t, h) for t, h in stored] == [
            (first.text, sha256(first.text)),
            (second.text, sha256(second.text)),
        ]
    finally:
        store.dispose()


def test_a_real_backtest_run_is_the_evidence(store: sa.Engine, tmp_path: os.PathLike[str]) -> None:
    from click.testing import CliRunner

    from riskengine.cli import cli

    draft = os.path.join(tmp_path, "footwear.rp")
    with open(draft, "w", encoding="utf-8") as f:
        f.write(DRAFT)
    url = store.url.render_as_string(hide_password=False)
    args = ["backtest", draft, "--db", url, "--from", "2025-01-01", "--to", "2025-12-31"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=1, file="footwear.rp")
    assert (sub.pk, sub.kind) == (1, "new")
    with store.connect() as connection:
        row = connection.execute(
            sa.text("SELECT backtest_run_pk, tests_passed, coverage FROM profile_submissions")
        ).one()
    assert tuple(row) == (1, 1, 50.0)


def test_the_approved_text_is_the_formatters_and_keeps_the_comments(store: sa.Engine) -> None:
    edition = _approved(store)
    assert format_text(edition.text, "x.rp") == edition.text
    assert check_sources({"x.rp": edition.text}).ok
    assert "# the price floor of the price database" in edition.text
    assert edition.text.splitlines()[1:7] == [
        'profile 1A/12/2025/00001-01 "Undervalued footwear from China" {',
        "    approved 2025-01-10",
        "    edition approved 2025-01-10",
        "    in force 2025-02-01 .. 2026-12-31",
        "    edition in force 2025-02-01",
        '    filling central by "Customs value unit"',
    ]
    assert edition.sha256 == sha256(edition.text)


def test_sequence_numbers_follow_each_other(store: sa.Engine) -> None:
    _approved(store)
    other = DRAFT.replace("Undervalued footwear from China", "Second profile")
    assert _approved(store, other).number == "1A/12/2025/00002-01"


def test_a_returned_draft_can_be_submitted_again(store: sa.Engine) -> None:
    sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=record_backtest(store, DRAFT))
    r.return_for_rework(store, sub.pk, decision="EC-1", decided_on=D(2025, 1, 5))
    again = r.submit(store, DRAFT, tests=TESTS, backtest_run=record_backtest(store, DRAFT))
    assert again.profile_pk == sub.profile_pk and again.pk == sub.pk + 1
    assert [e.action for e in _log(store)] == ["submit", "return", "submit"]


# ------------------------------------------------------------------------------------- refusals


def test_submit_refusals(store: sa.Engine) -> None:
    run = record_backtest(store, DRAFT)
    bad = DRAFT.replace("item.origin", "item.orgin")
    msg = _refused(store, r.submit, store, bad, tests=TESTS, backtest_run=run)
    assert msg.startswith("profile.rp does not check clean:")
    assert "unknown field `item.orgin`" in msg

    two = DRAFT + DRAFT.replace("Undervalued footwear from China", "Other")
    msg = _refused(store, r.submit, store, two, tests=TESTS, backtest_run=run)
    assert "holds 2 profiles and 0 fills: a submission is one profile" in msg

    failing = TESTS.replace("degree = 100", "degree = 90")
    msg = _refused(store, r.submit, store, DRAFT, tests=failing, backtest_run=run)
    assert msg.startswith("1 of 1 unit tests do not pass:")
    assert "FAIL cheap Chinese shoes: degree expected 90, got 100" in msg

    msg = _refused(store, r.submit, store, DRAFT, tests="[[case]", backtest_run=run)
    assert msg.startswith("the unit tests cannot be read:")

    msg = _refused(store, r.submit, store, DRAFT, tests=TESTS, backtest_run=None)
    assert msg.startswith("no backtest run given: back-test Undervalued footwear from China")
    msg = _refused(store, r.submit, store, DRAFT, tests=TESTS, backtest_run=99)
    assert msg == "the store records no backtest run 99"
    unfinished = record_backtest(store, DRAFT, finished=False)
    msg = _refused(store, r.submit, store, DRAFT, tests=TESTS, backtest_run=unfinished)
    assert msg == f"backtest run {unfinished} did not finish"
    changed = DRAFT.replace("< 400", "< 300")
    msg = _refused(store, r.submit, store, changed, tests=TESTS, backtest_run=run)
    assert msg.startswith(f"backtest run {run} did not test this text of Undervalued footwear")

    r.submit(store, DRAFT, tests=TESTS, backtest_run=run)
    msg = _refused(store, r.submit, store, DRAFT, tests=TESTS, backtest_run=run)
    assert msg == (
        'the registry already has a profile named "Undervalued footwear from China" '
        "(submitted): a profile's name is unique (§4.2.7)"
    )


def test_a_numbered_text_is_not_a_new_submission(store: sa.Engine) -> None:
    edition = _approved(store)
    other = edition.text.replace("Undervalued footwear from China", "Copy")
    msg = _refused(
        store, r.submit, store, other, tests=TESTS, backtest_run=record_backtest(store, other)
    )
    assert msg.startswith("profile.rp is numbered 1A/12/2025/00001-01: a new profile is submitted")


def test_approve_and_amend_refusals(store: sa.Engine) -> None:
    sub = r.submit(store, DRAFT, tests=TESTS, backtest_run=record_backtest(store, DRAFT))
    early = dict(decision="EC-1", decided_on=D(2025, 3, 1), group="1A", unit="12")
    msg = _refused(store, r.approve, store, sub.pk, in_force_from=D(2025, 2, 1), **early)
    assert msg == "in force from 2025-02-01 is before the decision of 2025-03-01"
    msg = _refused(
        store,
        r.approve,
        store,
        sub.pk,
        decision=" ",
        decided_on=D(2025, 1, 1),
        group="1A",
        unit="12",
        in_force_from=D(2025, 2, 1),
    )
    assert msg == "the commission's decision needs its number"
    msg = _refused(store, r.approve, store, 7, in_force_from=D(2025, 3, 1), **early)
    assert msg == "the registry has no submission 7"
    msg = _refused(
        store,
        r.approve,
        store,
        sub.pk,
        decision="EC-1",
        decided_on=D(2025, 1, 1),
        group="1A",
        unit="99",
        in_force_from=D(2025, 2, 1),
    )
    assert "is not an initiating unit of appendix 4" in msg

    edition = r.approve(store, sub.pk, in_force_from=D(2025, 3, 1), **early)
    msg = _refused(store, r.approve, store, sub.pk, in_force_from=D(2025, 3, 1), **early)
    assert msg == "submission 1 is approved, not awaiting a decision"

    msg = _refused(
        store,
        r.submit,
        store,
        DRAFT,
        tests=TESTS,
        backtest_run=record_backtest(store, DRAFT),
        amends=edition.number,
    )
    assert (
        msg
        == "an amendment starts from the latest edition 1A/12/2025/00001-01; profile.rp is a draft"
    )

    text = edition.text.replace("< 400", "< 450")
    sub2 = r.submit(
        store,
        text,
        tests=TESTS,
        backtest_run=record_backtest(store, text),
        amends="1A/12/2025/00001",
    )
    msg = _refused(store, r.approve, store, sub2.pk, in_force_from=D(2025, 3, 1), **early)
    assert msg == "submission 2 is an amendment: use `amend`"
    msg = _refused(
        store,
        r.amend,
        store,
        sub2.pk,
        decision="EC-2",
        decided_on=D(2025, 2, 1),
        in_force_from=D(2025, 3, 1),
    )
    assert msg == (
        "edition 2 must come into force after edition 1A/12/2025/00001-01 did (2025-03-01), "
        "not on 2025-03-01"
    )
    msg = _refused(
        store,
        r.submit,
        store,
        text,
        tests=TESTS,
        backtest_run=record_backtest(store, text),
        amends="1A/12/2025/00001",
    )
    assert msg == "submission 2 of 1A/12/2025/00001 awaits the commission"


def test_clarification_refusals_are_located(store: sa.Engine) -> None:
    edition = _approved(store)
    n = edition.number
    msg = _refused(store, r.clarify, store, n, edition.text, ground="10.2.9", reason="x")
    assert msg.startswith("'10.2.9' is not a ground for a technical clarification; §10.2 allows")
    msg = _refused(store, r.clarify, store, n, edition.text, ground="10.2.1", reason="typo")
    assert msg == f"the clarification changes nothing in {n}"

    threshold = edition.text.replace("< 400", "< 450")
    msg = _refused(store, r.clarify, store, n, threshold, ground="10.2.1", reason="typo")
    assert msg.splitlines()[:2] == [
        "the clarification changes what ground 10.2.1 (a technical error in the passport) does "
        "not allow; it needs the commission (amend):",
        "  line 15: indicator `cheap` changed",
    ]
    assert '-        cheap "Under 400 UAH per kg": item.customs_value / item.net_mass < 400' in msg
    assert '+        cheap "Under 400 UAH per kg": item.customs_value / item.net_mass < 450' in msg

    control = edition.text.replace("mandatory    from 60", "mandatory    from 50")
    msg = _refused(store, r.clarify, store, n, control, ground="10.2.1", reason="typo")
    assert "  line 23: control `103` changed" in msg.splitlines()

    dates = edition.text.replace("edition in force 2025-02-01", "edition in force 2025-02-02")
    msg = _refused(store, r.clarify, store, n, dates, ground="10.2.1", reason="typo")
    assert "  line 6: `edition in force` changed" in msg.splitlines()

    message = edition.text.replace("Check the value", "Verify the value")
    msg = _refused(store, r.clarify, store, n, message, ground="10.2.3", reason="x")
    assert "  line 20: `message` changed" in msg.splitlines()
    assert r.clarify(store, n, message, ground="10.2.1", reason="wording") == ["message"]

    titles = edition.text.replace('"Footwear"', '"Footwear (HS 6403, 6404)"')
    titles = titles.replace("Ivan Petrenko", "Olha Petrenko")
    titles = titles.replace('"Physical inspection"', '"Physical examination"')
    titles = titles.replace("Check the value", "Verify the value")
    assert r.clarify(store, n, titles, ground="10.2.2", reason="new order") == [
        "contact",
        "indicator footwear title",
        "control 201 name",
    ]


def test_suspension_and_termination_refusals(store: sa.Engine) -> None:
    edition = _approved(store)
    n = edition.number
    msg = _refused(store, r.suspend, store, n, ground="10.2.1", on=D(2025, 3, 1), reason="x")
    assert msg.startswith("'10.2.1' is not a ground for suspension; §10.3 allows 10.3.1")
    msg = _refused(
        store, r.suspend, store, "1A/12/2025/00077", ground="10.3.3", on=D(2025, 3, 1), reason="x"
    )
    assert msg == "the registry has no approved profile 1A/12/2025/00077"
    msg = _refused(store, r.resume, store, n, on=D(2025, 3, 1), reason="x")
    assert msg == "1A/12/2025/00001 is not suspended"
    r.suspend(store, n, ground="10.3.3", on=D(2025, 3, 1), reason="stale")
    msg = _refused(store, r.suspend, store, n, ground="10.3.3", on=D(2025, 3, 2), reason="x")
    assert msg == "1A/12/2025/00001 is already suspended from 2025-03-01"
    msg = _refused(store, r.resume, store, n, on=D(2025, 2, 28), reason="x")
    assert (
        msg == "1A/12/2025/00001 is suspended from 2025-03-01: it cannot be resumed on 2025-02-28"
    )
    msg = _refused(store, r.terminate, store, n, decision="EC-9", decided_on=D(2025, 4, 1),
                   last_day=D(2025, 3, 30))  # fmt: skip
    assert msg == (
        "a decision of 2025-04-01 cannot end the profile in the past (2025-03-30): the earliest "
        "last day is the day before the decision"
    )
    r.terminate(store, n, decision="EC-9", decided_on=D(2025, 4, 1), last_day=D(2025, 4, 30))
    msg = _refused(
        store,
        r.terminate,
        store,
        n,
        decision="EC-9",
        decided_on=D(2025, 4, 1),
        last_day=D(2025, 4, 30),
    )
    assert msg == "1A/12/2025/00001 is terminated: it cannot be terminated"
    text = edition.text.replace("< 400", "< 450")
    msg = _refused(
        store,
        r.submit,
        store,
        text,
        tests=TESTS,
        backtest_run=record_backtest(store, text),
        amends=n,
    )
    assert msg == "1A/12/2025/00001 is terminated: it cannot be amended"


def test_termination_withdraws_an_edition_not_yet_in_force(store: sa.Engine) -> None:
    edition = _approved(store)
    text = edition.text.replace("< 400", "< 450")
    sub = r.submit(
        store, text, tests=TESTS, backtest_run=record_backtest(store, text), amends=edition.number
    )
    r.amend(store, sub.pk, decision="EC-2", decided_on=D(2025, 5, 1), in_force_from=D(2025, 9, 1))
    r.terminate(
        store, edition.number, decision="EC-3", decided_on=D(2025, 6, 1), last_day=D(2025, 6, 30)
    )
    assert _numbers(store, D(2025, 6, 30)) == [edition.number]
    assert _numbers(store, D(2025, 9, 1)) == []
    with store.connect() as connection:
        eds = TABLES.profile_editions
        rows = connection.execute(
            sa.select(eds.c.edition, eds.c.in_force_to, eds.c.withdrawn).order_by(eds.c.edition)
        ).all()
    assert [tuple(x) for x in rows] == [(1, D(2025, 6, 30), False), (2, D(2026, 12, 31), True)]


# ----------------------------------------------------------------------------------------- fills


def _regional(store: sa.Engine) -> r.Edition:
    return _approved(store, REGIONAL, REGIONAL_TESTS)


def test_a_fill_is_recorded_with_its_order_and_late_entry_flagged(store: sa.Engine) -> None:
    n = _regional(store).number
    people = ["O. Bondar, inspector, +380 44 1", "P. Koval, inspector, +380 44 2"]
    # order on Thursday 2025-03-20: 2 working days end on Monday 2025-03-24
    text = fill_text(n, "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    on_time = r.fill(store, text, responsible=people, viewers=["Head"], entered_on=D(2025, 3, 24))
    assert (on_time.office, on_time.order_number, on_time.late) == ("UA100110", "131", False)
    text2 = fill_text(n, "132", "2025-03-20", "2025-07-01 .. 2025-09-30")
    late = r.fill(store, text2, responsible=people, viewers=[], entered_on=D(2025, 3, 25))
    assert late.late is True
    assert _log(store)[-1].action == "fill" and r.verify(store).ok
    with store.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT responsible, viewers, late FROM regional_fills ORDER BY pk")
        ).all()
    assert rows[0] == (
        '["O. Bondar, inspector, +380 44 1","P. Koval, inspector, +380 44 2"]',
        '["Head"]',
        0,
    )


def test_fill_refusals(store: sa.Engine) -> None:
    n = _regional(store).number
    people = ["A", "B"]
    good = fill_text(n, "131", "2025-03-20", "2025-04-01 .. 2025-06-30")
    msg = _refused(store, r.fill, store, good, responsible=["A", "A"], viewers=[])
    assert msg == (
        "the office's order names at least 2 persons responsible for the fill (§11.1); 1 given"
    )
    long = fill_text(n, "131", "2025-03-20", "2025-04-01 .. 2025-07-01")
    msg = _refused(store, r.fill, store, long, responsible=people, viewers=[])
    assert "longer than 3 months" in msg
    msg = _refused(
        store, r.fill, store, good, responsible=people, viewers=[], entered_on=D(2025, 3, 19)
    )
    assert msg == "the fill is entered on 2025-03-19, before its order of 2025-03-20"
    unknown = fill_text("1A/12/2025/00009-01", "1", "2025-03-20", "2025-04-01 .. 2025-06-30")
    msg = _refused(store, r.fill, store, unknown, responsible=people, viewers=[])
    assert msg.startswith("the registry has no edition 1A/12/2025/00009-01")
    before = fill_text(n, "131", "2024-09-20", "2024-10-01 .. 2024-12-31")
    msg = _refused(store, r.fill, store, before, responsible=people, viewers=[])
    assert msg == (
        f"the fill is valid 2024-10-01 .. 2024-12-31, when {n} is not in force "
        "(2025-02-01 .. 2026-12-31)"
    )
    central = _approved(store).number
    msg = _refused(store, r.fill, store, good.replace(n, central), responsible=people, viewers=[])
    assert "1A/12/2025/00002-01" in msg


# ----------------------------------------------------------------------------------- audit log


def test_the_database_refuses_to_change_the_log_or_an_approved_text(db_url: str) -> None:
    if db_url.startswith("duckdb"):
        pytest.skip("DuckDB has no triggers: verify detects edits there (documented)")
    store = new_store(db_url)
    try:
        _approved(store)
        for statement in (
            "UPDATE audit_log SET actor = 'someone else' WHERE pk = 1",
            "DELETE FROM audit_log WHERE pk = 2",
            "UPDATE profile_editions SET text = 'x' WHERE pk = 1",
            "DELETE FROM profile_editions",
        ):
            with pytest.raises(sa.exc.DBAPIError) as info, store.begin() as connection:
                connection.execute(sa.text(statement))
            text = str(info.value)
            assert "append-only" in text or "never" in text, text
        assert r.verify(store).ok and len(_log(store)) == 2
    finally:
        store.dispose()


def _tamper(store: sa.Engine, *statements: str) -> None:
    """Change the store by raw SQL as someone with the file could (the triggers dropped)."""
    with store.begin() as connection:
        connection.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        connection.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            connection.execute(sa.text(statement))


def _three_entries(store: sa.Engine) -> r.Edition:
    edition = _approved(store)
    r.suspend(store, edition.number, ground="10.3.3", on=D(2025, 3, 1), reason="stale")
    r.resume(store, edition.number, on=D(2025, 3, 9), reason="back")
    assert r.verify(store).ok
    return edition


def test_an_edited_entry_is_named(store: sa.Engine) -> None:
    _three_entries(store)
    _tamper(store, "UPDATE audit_log SET actor = 'os:mallory' WHERE pk = 2")
    assert r.verify(store) == r.Verification(
        4, "entry 2 (approve profile/1) was edited: its content no longer matches its hash", 2
    )


def test_a_removed_entry_is_named(store: sa.Engine) -> None:
    _three_entries(store)
    _tamper(store, "DELETE FROM audit_log WHERE pk = 3")
    result = r.verify(store)
    assert result.entry == 3
    assert result.problem == "entry 3 is missing: the log goes from entry 2 to entry 4 (removed)"


def test_reordered_entries_are_named(store: sa.Engine) -> None:
    _three_entries(store)
    # swap the content of entries 3 and 4, keys kept in place
    columns = (
        "logged_at, actor, action, object, details, hash_before, hash_after, prev_hash, entry_hash"
    )
    _tamper(
        store,
        f"CREATE TEMP TABLE keep AS SELECT pk, {columns} FROM audit_log WHERE pk IN (3, 4)",
        "UPDATE audit_log SET ("
        + columns
        + ") = (SELECT "
        + columns
        + " FROM keep WHERE keep.pk = 7 - audit_log.pk) WHERE pk IN (3, 4)",
    )
    result = r.verify(store)
    assert result.entry == 3
    assert result.problem is not None and result.problem.startswith("entry 3 (resume profile/1)")


def test_a_removed_last_entry_and_a_change_around_the_registry_are_found(
    store: sa.Engine,
) -> None:
    _three_entries(store)
    _tamper(store, "DELETE FROM audit_log WHERE pk = 4")
    assert r.verify(store) == r.Verification(
        3,
        "the case file of profile/1 is not in the state entry 3 (suspend) recorded: it was "
        "changed outside the registry, or the entries after it were removed",
        3,
    )


def test_a_row_changed_outside_the_registry_is_found(store: sa.Engine) -> None:
    _three_entries(store)
    with store.begin() as connection:
        connection.execute(sa.text("UPDATE profile_suspensions SET ground = '10.3.1'"))
    result = r.verify(store)
    assert result.entry == 4 and result.problem is not None
    assert result.problem.startswith("the case file of profile/1 is not in the state entry 4")


def test_the_actor_is_the_os_user_on_sqlite(store: sa.Engine) -> None:
    import getpass

    _approved(store)
    assert {e.actor for e in _log(store)} == {"os:" + getpass.getuser()}
    with store.connect() as connection:
        recorded = connection.execute(sa.text("SELECT recorded_by FROM profiles")).scalar_one()
    assert recorded == "os:" + getpass.getuser()


# ------------------------------------------------------------------------------------ migration


def test_r0003_goes_down_to_r0002_and_up_again(db_url: str) -> None:
    from alembic import command

    from riskengine.store import migrate

    store = new_store(db_url)
    try:
        _approved(store)
        with store.begin() as connection:
            # the downgrade drops the registry's tables with their rows and triggers
            command.downgrade(migrate.alembic_config(connection), "r0002")
            assert migrate.current_revision(connection) == "r0002"
            assert "profile_submissions" not in sa.inspect(connection).get_table_names()
            command.upgrade(migrate.alembic_config(connection), "head")
            assert migrate.current_revision(connection) == migrate.head_revision()
        assert _approved(store).number == "1A/12/2025/00001-01"
    finally:
        store.dispose()


def test_r0003_will_not_drop_a_placeholder_holding_rows(tmp_path: os.PathLike[str]) -> None:
    from riskengine.store import migrate
    from riskengine.store.engine import connect

    engine = connect(f"sqlite:///{os.path.join(tmp_path, 'old.db')}")
    try:
        with engine.begin() as connection:
            migrate.upgrade_connection(connection, revision="r0002")
            connection.execute(
                sa.text(
                    "INSERT INTO audit_log (pk, logged_at, actor, action) "
                    "VALUES (1, '2025-01-01 00:00:00', 'x', 'y')"
                )
            )
        with pytest.raises(RuntimeError) as info, engine.begin() as connection:
            migrate.upgrade_connection(connection)
        assert str(info.value) == (
            "table audit_log holds 1 rows: r0003 replaces the empty placeholder tables of r0001 "
            "and will not drop data; move the rows away first"
        )
    finally:
        engine.dispose()


def test_a_key_taken_by_a_concurrent_action_is_a_clear_refusal(
    store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riskengine.registry import base

    r.submit(store, DRAFT, tests=TESTS, backtest_run=record_backtest(store, DRAFT))
    # what a concurrent writer would see: the same max(pk) + 1 as the other transaction
    monkeypatch.setattr(base, "next_key", lambda connection, name: 1)
    other = DRAFT.replace("Undervalued footwear from China", "Other")
    msg = _refused(store, r.submit, store, other, tests=TESTS,
                   backtest_run=record_backtest(store, other))  # fmt: skip
    assert msg.startswith("submit refused by the database (UNIQUE constraint failed: profiles.pk)")
    assert msg.endswith(
        "another registry action ran at the same time; nothing was written, try again"
    )


def test_verify_names_an_edited_entry_on_every_backend(db_url: str) -> None:
    """Someone able to lift the guard (SQLite: drop the trigger; PostgreSQL: a superuser
    disabling the table's triggers; DuckDB: none) edits entry 2: verify names it."""
    store = new_store(db_url)
    try:
        _approved(store)
        with store.begin() as connection:
            lift = {
                "sqlite": ["DROP TRIGGER audit_log_no_update"],
                "postgresql": ["ALTER TABLE audit_log DISABLE TRIGGER USER"],
            }.get(connection.dialect.name, [])
            for statement in lift:
                connection.execute(sa.text(statement))
            connection.execute(sa.text("UPDATE audit_log SET details = '{}' WHERE pk = 2"))
        assert r.verify(store) == r.Verification(
            2, "entry 2 (approve profile/1) was edited: its content no longer matches its hash", 2
        )
    finally:
        store.dispose()
